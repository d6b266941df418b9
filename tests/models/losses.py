"""Losses written by hand in public code."""

import torch
import torch.nn.functional as F

from .registry import model, randn, targets


@model("label-smoothing cross-entropy (timm loss/cross_entropy.py: LabelSmoothingCrossEntropy)")
def label_smoothing_ce(x, target):
    smoothing = 0.1
    logprobs = F.log_softmax(x, dim=-1)
    nll_loss = -logprobs.gather(dim=-1, index=target.unsqueeze(1)).squeeze(1)
    smooth_loss = -logprobs.mean(dim=-1)
    return ((1.0 - smoothing) * nll_loss + smoothing * smooth_loss).mean()


label_smoothing_ce.inputs = lambda g: (randn(g, 6, 5), targets(g, 5, 6))


@model("PyTorch F.cross_entropy with label_smoothing and class weights (constants: torch cannot differentiate them)")
def weighted_smoothed_ce(logits, target):
    weight = torch.linspace(0.5, 1.5, logits.shape[-1], dtype=logits.dtype)
    return F.cross_entropy(logits, target, weight=weight, label_smoothing=0.25)


weighted_smoothed_ce.inputs = lambda g: (randn(g, 6, 4), targets(g, 4, 6))


@model("focal loss (torchvision ops/focal_loss.py: sigmoid_focal_loss)")
def focal_loss(inputs, targets_):
    alpha, gamma = 0.25, 2.0
    p = torch.sigmoid(inputs)
    ce_loss = F.binary_cross_entropy_with_logits(inputs, targets_, reduction="none")
    p_t = p * targets_ + (1 - p) * (1 - targets_)
    loss = ce_loss * ((1 - p_t) ** gamma)
    alpha_t = alpha * targets_ + (1 - alpha) * (1 - targets_)
    return (alpha_t * loss).mean()


focal_loss.inputs = lambda g: (randn(g, 4, 3), (torch.rand(4, 3, generator=g) > 0.5).double())


@model("OpenCLIP loss.py: ClipLoss (normalised features, both directions)")
def clip_loss(image_features, text_features, logit_scale):
    image_features = image_features / image_features.norm(dim=-1, keepdim=True)
    text_features = text_features / text_features.norm(dim=-1, keepdim=True)
    logits_per_image = logit_scale.exp() * image_features @ text_features.T
    logits_per_text = logits_per_image.T
    labels = torch.arange(logits_per_image.shape[0])
    return (F.cross_entropy(logits_per_image, labels) + F.cross_entropy(logits_per_text, labels)) / 2


clip_loss.inputs = lambda g: (randn(g, 4, 6), randn(g, 4, 6), torch.tensor(2.0, dtype=torch.float64))


def _box_cxcywh_to_xyxy(x):
    x_c, y_c, w, h = x.unbind(-1)
    return torch.stack([(x_c - 0.5 * w), (y_c - 0.5 * h), (x_c + 0.5 * w), (y_c + 0.5 * h)], dim=-1)


@model("DETR box_ops.py and matcher losses: L1 box loss and generalized IoU")
def detr_box_losses(src_boxes, target_boxes):
    loss_bbox = F.l1_loss(src_boxes, target_boxes, reduction="none").sum() / src_boxes.shape[0]
    boxes1, boxes2 = _box_cxcywh_to_xyxy(src_boxes), _box_cxcywh_to_xyxy(target_boxes)
    area1 = (boxes1[:, 2] - boxes1[:, 0]) * (boxes1[:, 3] - boxes1[:, 1])
    area2 = (boxes2[:, 2] - boxes2[:, 0]) * (boxes2[:, 3] - boxes2[:, 1])
    lt = torch.max(boxes1[:, None, :2], boxes2[:, :2])
    rb = torch.min(boxes1[:, None, 2:], boxes2[:, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[:, :, 0] * wh[:, :, 1]
    union = area1[:, None] + area2 - inter
    iou = inter / union
    lt_c = torch.min(boxes1[:, None, :2], boxes2[:, :2])
    rb_c = torch.max(boxes1[:, None, 2:], boxes2[:, 2:])
    wh_c = rb_c - lt_c
    area_c = wh_c[:, :, 0] * wh_c[:, :, 1]
    giou = iou - (area_c - union) / area_c
    matched = torch.arange(src_boxes.shape[0])
    loss_giou = (1 - giou[matched, matched]).sum() / src_boxes.shape[0]
    return loss_bbox + loss_giou


def _boxes(g, n):
    centers = torch.rand(n, 2, generator=g, dtype=torch.float64) * 0.5 + 0.25
    sizes = torch.rand(n, 2, generator=g, dtype=torch.float64) * 0.3 + 0.1
    return torch.cat([centers, sizes], dim=-1)


detr_box_losses.inputs = lambda g: (_boxes(g, 3), _boxes(g, 3))


@model("knowledge distillation (Hinton et al.): temperature-softened KL divergence")
def distillation_kl(student_logits, teacher_logits):
    temperature = 2.0
    log_p = F.log_softmax(student_logits / temperature, dim=-1)
    q = F.softmax(teacher_logits / temperature, dim=-1)
    return (q * (q.log() - log_p)).sum(-1).mean() * temperature**2


distillation_kl.inputs = lambda g: (randn(g, 4, 5), randn(g, 4, 5))


@model("Fast R-CNN box regression: smooth L1 (Huber) loss")
def smooth_l1_regression(pred, target):
    return F.smooth_l1_loss(pred, target, beta=1.0 / 9) + F.mse_loss(pred, target, reduction="sum") * 0.01


smooth_l1_regression.inputs = lambda g: (randn(g, 5, 4), randn(g, 5, 4))


@model("linear regression with MSE (seed 003)")
def linear_regression_mse(X, W, b, Y):
    out = X @ W + b
    return (out - Y).square().mean()


linear_regression_mse.inputs = lambda g: (randn(g, 6, 3), randn(g, 3, 1), randn(g, ()), randn(g, 6, 1))


@model("heteroscedastic regression (PyTorch nn.GaussianNLLLoss docs) with a KL term to a unit Gaussian")
def gaussian_regression_with_kl(mean, log_var, target):
    nll = F.gaussian_nll_loss(mean, target, log_var.exp(), full=True)
    log_q = F.log_softmax(mean, dim=-1)
    kl = F.kl_div(log_q, torch.full_like(mean, 1.0 / mean.shape[-1]), reduction="batchmean")
    return nll + 0.1 * kl


gaussian_regression_with_kl.inputs = lambda g: (randn(g, 5, 3), randn(g, 5, 3, scale=0.3), randn(g, 5, 3))


@model("metric learning (pytorch-metric-learning style): triplet, cosine embedding and margin ranking losses")
def metric_learning_losses(anchor, positive, negative):
    same = torch.ones(anchor.shape[0], dtype=torch.long)
    triplet = F.triplet_margin_loss(anchor, positive, negative, margin=0.5)
    cosine = F.cosine_embedding_loss(anchor, positive, same) + F.cosine_embedding_loss(anchor, negative, -same)
    ranking = F.margin_ranking_loss((anchor * positive).sum(-1), (anchor * negative).sum(-1),
                                    torch.ones(anchor.shape[0], dtype=anchor.dtype), margin=0.1)
    return triplet + cosine + ranking


metric_learning_losses.inputs = lambda g: (randn(g, 4, 6), randn(g, 4, 6), randn(g, 4, 6))
