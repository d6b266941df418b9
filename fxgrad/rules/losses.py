"""Losses. Class weights are constants to torch, which refuses to differentiate them: so do these
rules (NotDifferentiable)."""

import torch
import torch.nn.functional as F

from ..graph import value
from ..shapes import along_channels, channel_dim, unreduce
from . import NotDifferentiable, rule


@rule(F.smooth_l1_loss, in_float32=True, math="y = smooth_l1(x − t): ∂x = ∂y ⊙ clamp((x − t)/β, −1, 1), ∂t = −∂x")
def smooth_l1_loss(g, input, target, beta):
    # ℓ = d²/(2β) where |d| < β, |d| - β/2 elsewhere: dℓ/dd = clamp(d/β, -1, 1)
    grad = g * ((input - target) / beta).clamp(-1, 1)
    return grad, -grad


@rule(F.kl_div, in_float32=True, math="y = t ⊙ (log t − x): ∂x = −∂y ⊙ t, ∂t = ∂y ⊙ (log t + 1 − x) (log_target: e^t in place of t)")
def kl_div(g, input, target, log_target):
    if log_target:  # ℓ = exp(t)·(t - x)
        return -g * target.exp(), g * (target + 1 - input) * target.exp()
    # ℓ = xlogy(t, t) - t·x: dℓ/dt = log t + t/t - x, NaN where t = 0, as torch's xlogy gives it
    return -g * target, g * (target.log() + target / target - input)


@rule(F.binary_cross_entropy_with_logits, in_float32=True,
      math="y = bce(σ(x), t): ∂x = ∂y ⊙ (σ(x) − t), ∂t = −∂y ⊙ x (without weights)")
def binary_cross_entropy_with_logits(g, input, target, weight, pos_weight):
    # ℓ = (1 - t)·x + (1 + (p - 1)·t)·softplus(-x), p = pos_weight (1 if not given)
    if pos_weight is None:
        grad_input, grad_target = torch.sigmoid(input) - target, -input
    else:
        grad_input = (1 + (pos_weight - 1) * target) * torch.sigmoid(input) - pos_weight * target
        grad_target = -input - (pos_weight - 1) * F.logsigmoid(input)
    if weight is not None:
        g = g * weight
    return g * grad_input, g * grad_target, NotDifferentiable("weight"), NotDifferentiable("pos_weight")


def _target_weights(input, target, weight, reduction, ignore_index, label_smoothing=0.0):
    """q, the weight of each log-probability in the loss -Σ q·log p: each counted target's one-hot
    (times its class weight; smoothed: (1 - ε)·one-hot + ε/C), over the loss's denominator."""
    dim = channel_dim(input)
    counted = (target != ignore_index).unsqueeze(dim)
    one_hot = torch.zeros_like(input).scatter(dim, torch.where(counted, target.unsqueeze(dim), 0), 1.0)
    weights = counted if weight is None else along_channels(weight, input) * counted  # by sample and class
    hit = one_hot * weights
    q = hit
    if label_smoothing:  # (a number times a boolean mask is a float32 tensor: the mask in the input's dtype)
        spread = weights.to(value(input).dtype) if weight is None else weights
        q = (1 - label_smoothing) * hit + label_smoothing / input.size(dim) * spread
    if reduction != "mean":
        return q
    # over the summed weight of the counted targets (their number, unweighted); where none is
    # counted the loss is 0/0, and its gradient 0, as torch has it
    return torch.where(counted, q / hit.sum(), 0.0)


def _per_element(g, input, reduction):
    """The incoming gradient, broadcast over the class dim."""
    return unreduce(g, input, channel_dim(input), keepdim=False) if reduction == "none" else g


@rule(F.nll_loss, in_float32=True, math="y = −Σ q ⊙ x, q the targets' one-hot weights: ∂x = −∂y ⊙ q")
def nll_loss(g, input, target, weight, reduction, ignore_index):
    # ℓ = -Σ q·input
    q = _target_weights(input, target, weight, reduction, ignore_index)
    return -_per_element(g, input, reduction) * q, None, NotDifferentiable("weight")


@rule(F.cross_entropy, in_float32=True, math="y = −Σ q ⊙ log softmax(x): ∂x = ∂y ⊙ (softmax(x) Σq − q)")
def cross_entropy(g, input, target, weight, reduction, ignore_index, label_smoothing):
    # ℓ = -Σ q·log softmax(x): dℓ/dx = softmax(x)·Σq - q
    dim = channel_dim(input)
    if weight is None and not label_smoothing and _class_indices(input, target):
        # q is each counted target's one-hot over their number: dℓ/dx = (softmax(x) - one-hot)·counted/n,
        # written without the one-hot (a few passes over the logits, not ten)
        counted = (target != ignore_index).unsqueeze(dim)
        scale = _per_element(g, input, reduction) * counted
        if reduction == "mean":
            scale = scale / counted.sum().clamp(min=1)  # none counted: the gradient is 0, as torch has it
        picked = torch.where(counted, target.unsqueeze(dim), 0)
        minus_one = torch.full_like(picked, -1, dtype=input.dtype)
        return scale * input.softmax(dim).scatter_add(dim, picked, minus_one), None, NotDifferentiable("weight")
    q = _target_weights(input, target, weight, reduction, ignore_index, label_smoothing)
    grad_input = _per_element(g, input, reduction) * (input.softmax(dim) * q.sum(dim, keepdim=True) - q)
    return grad_input, None, NotDifferentiable("weight")


def _class_indices(input, target) -> bool:
    return not value(target).is_floating_point()
