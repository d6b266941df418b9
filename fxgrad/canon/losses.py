"""Losses. Those that are plain arithmetic (mse, l1, cross-entropy on probabilities) are written
out in canonical ops; the others are canonical ops with a closed-form backward. Reductions are
those of torch: "mean" of a class-index loss divides by the summed weight of the targets that
are not ignored."""

import torch
import torch.nn.functional as F
from torch.nn import _reduction as legacy

from ..graph import value
from ..shapes import channel_dim
from .registry import aten, call, define, emit, given, lowers

define({
    # the elementwise losses, unreduced
    F.smooth_l1_loss: lambda input, target, beta: call(F.smooth_l1_loss, input, target, reduction="none", beta=beta),
    F.kl_div: lambda input, target, log_target: call(
        F.kl_div, input, target, reduction="none", **({"log_target": True} if log_target else {})),
    F.binary_cross_entropy_with_logits: lambda input, target, weight, pos_weight: call(
        F.binary_cross_entropy_with_logits, input, target, **given(weight=weight, pos_weight=pos_weight),
        reduction="none"),
    # class-index targets; reduction: "mean", "sum" or "none"
    F.nll_loss: lambda input, target, weight, reduction, ignore_index: call(
        F.nll_loss, input, target, **given(weight=weight), **_options(reduction, ignore_index)),
    F.cross_entropy: lambda input, target, weight, reduction, ignore_index, label_smoothing: call(
        F.cross_entropy, input, target, **given(weight=weight), **_options(reduction, ignore_index, label_smoothing)),
})


def _options(reduction, ignore_index, label_smoothing=0.0) -> dict:
    """The options that are not torch's defaults."""
    options = {"ignore_index": ignore_index, "reduction": reduction, "label_smoothing": label_smoothing}
    defaults = {"ignore_index": -100, "reduction": "mean", "label_smoothing": 0.0}
    return {key: option for key, option in options.items() if option != defaults[key]}


def _reduction_name(size_average, reduce, reduction) -> str:
    """The reduction's name, from the deprecated `size_average`/`reduce` if given, or from ATen's
    enum (0, 1, 2)."""
    if size_average is not None or reduce is not None:
        return legacy.legacy_get_string(size_average, reduce)
    return {0: "none", 1: "mean", 2: "sum"}.get(reduction, reduction)


def _reduce(loss, reduction):
    if reduction == "mean":
        return emit(torch.mean, loss, None, False)
    if reduction == "sum":
        return emit(torch.sum, loss, None, False)
    return loss


@lowers(F.mse_loss)
def _mse_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    reduction = _reduction_name(size_average, reduce, reduction)
    squared = emit(torch.pow, emit(torch.sub, input, target), 2)
    if weight is None:
        return _reduce(squared, reduction)
    weighted = emit(torch.mul, squared, weight)
    if reduction == "mean":  # the weighted mean
        return emit(torch.div, _reduce(weighted, "sum"), _reduce(weight, "sum"))
    return _reduce(weighted, reduction)


@lowers(aten.mse_loss)
def _aten_mse_loss(input, target, reduction=1):
    return _mse_loss(input, target, reduction=reduction)


@lowers(F.l1_loss)
def _l1_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    return _reduce(emit(torch.abs, emit(torch.sub, input, target)), _reduction_name(size_average, reduce, reduction))


@lowers(aten.l1_loss)
def _aten_l1_loss(input, target, reduction=1):
    return _l1_loss(input, target, reduction=reduction)


@lowers(F.smooth_l1_loss)
def _smooth_l1_loss(input, target, size_average=None, reduce=None, reduction="mean", beta=1.0):
    if beta == 0:  # torch's l1_loss, and no division by beta
        return _l1_loss(input, target, size_average, reduce, reduction)
    return _reduce(emit(F.smooth_l1_loss, input, target, beta), _reduction_name(size_average, reduce, reduction))


@lowers(aten.smooth_l1_loss)
def _aten_smooth_l1_loss(input, target, reduction=1, beta=1.0):
    return _smooth_l1_loss(input, target, reduction=reduction, beta=beta)


@lowers(F.kl_div)
def _kl_div(input, target, size_average=None, reduce=None, reduction="mean", log_target=False):
    loss = emit(F.kl_div, input, target, log_target)
    if reduction == "batchmean" and size_average is None and reduce is None:
        # the sum over the batch size, read when the backward runs
        total = _reduce(loss, "sum")
        return total if value(input).ndim == 0 else emit(torch.div, total, input.size(0))
    return _reduce(loss, _reduction_name(size_average, reduce, reduction))


@lowers(torch.kl_div, aten.kl_div)
def _aten_kl_div(input, target, reduction=1, log_target=False):
    return _kl_div(input, target, reduction=reduction, log_target=log_target)


@lowers(F.binary_cross_entropy_with_logits)
def _binary_cross_entropy_with_logits(input, target, weight=None, size_average=None, reduce=None, reduction="mean",
                                      pos_weight=None):
    loss = emit(F.binary_cross_entropy_with_logits, input, target, weight, pos_weight)
    return _reduce(loss, _reduction_name(size_average, reduce, reduction))


@lowers(aten.binary_cross_entropy_with_logits)
def _aten_binary_cross_entropy_with_logits(input, target, weight=None, pos_weight=None, reduction=1):
    return _binary_cross_entropy_with_logits(input, target, weight, pos_weight=pos_weight, reduction=reduction)


@lowers(F.nll_loss)
def _nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean"):
    return emit(F.nll_loss, input, target, weight, _reduction_name(size_average, reduce, reduction), ignore_index)


@lowers(aten.nll_loss_nd)
def _aten_nll_loss(input, target, weight=None, reduction=1, ignore_index=-100):
    return _nll_loss(input, target, weight, ignore_index=ignore_index, reduction=reduction)


@lowers(aten.nll_loss_forward, aten.nll_loss2d_forward)
def _nll_loss_forward(input, target, weight, reduction, ignore_index):
    # (loss, total weight): the summed weight of the targets that are not ignored
    counted = target != ignore_index
    target_weight = counted if weight is None else torch.where(counted, weight[torch.where(counted, target, 0)], 0)
    total_weight = target_weight.sum().to(value(input).dtype)
    return _aten_nll_loss(input, target, weight, reduction, ignore_index), total_weight


@lowers(F.cross_entropy)
def _cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean",
                   label_smoothing=0.0):
    reduction = _reduction_name(size_average, reduce, reduction)
    if value(target).is_floating_point():
        return _cross_entropy_probabilities(input, target, weight, reduction, label_smoothing)
    return emit(F.cross_entropy, input, target, weight, reduction, ignore_index, label_smoothing)


@lowers(aten.cross_entropy_loss)
def _aten_cross_entropy(input, target, weight=None, reduction=1, ignore_index=-100, label_smoothing=0.0):
    return _cross_entropy(input, target, weight, ignore_index=ignore_index, reduction=reduction,
                          label_smoothing=label_smoothing)


def _cross_entropy_probabilities(input, target, weight, reduction, label_smoothing):
    """-Σ_c weight_c·target_c·log softmax(input)_c over the class dim (mean: over the other elements);
    a smoothed target is target·(1 - ε) + ε/C."""
    dim = channel_dim(input)
    log_probabilities = emit(torch.log_softmax, input, dim)
    if label_smoothing:
        smoothed = emit(torch.mul, target, 1 - label_smoothing)
        target = emit(torch.add, smoothed, label_smoothing / input.size(dim))
    if weight is not None:  # along the class dim
        trailing = value(input).ndim - 2
        target = emit(torch.mul, target, emit(torch.reshape, weight, (-1, *(1,) * trailing)) if trailing > 0
                      else weight)
    loss = emit(torch.neg, emit(torch.sum, emit(torch.mul, log_probabilities, target), dim, False))
    return _reduce(loss, reduction)
