"""Torch functions whose Python code reads tensor values to check its arguments, which no tracer
on fake or proxy tensors can follow: traced as what they compute, without the check.

`F.gaussian_nll_loss` raises where `torch.any(var < 0)`: a check on values, which carries no
gradient, left out of the trace (a backward called with a negative variance computes with it
clamped, as the loss does).
`F.ctc_loss` sizes its alignment by the values of the target lengths: refused, by name. And
`F.pad(mode="circular")`, which make_fx records as copies into an empty tensor, is traced as the
`torch.cat` of its pieces.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from .errors import UnsupportedArgumentError


def gaussian_nll_loss(input, target, var, full=False, eps=1e-6, reduction="mean"):
    """torch's `F.gaussian_nll_loss`, as torch 2.13 writes it, without its check that `var` has no
    negative entry."""
    if isinstance(var, float):
        if var < 0:
            raise ValueError("var has negative entry/entries")
        var = var * torch.ones_like(input)
    if var.size() != input.size():
        if input.size()[:-1] == var.size():  # one variance per sample
            var = torch.unsqueeze(var, -1)
        elif not (input.ndim == var.ndim
                  and sum(y for x, y in zip(input.size(), var.size()) if x != y) == 1):
            raise ValueError("var is of incorrect size")
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(reduction + " is not valid")
    # torch clamps a copy of `var` in place under no_grad: the value is clamped, and the gradient
    # passes to `var` as through the identity
    var = var + (var.clamp(min=eps) - var).detach()
    loss = 0.5 * (torch.log(var) + (input - target) ** 2 / var)
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def _refuse_ctc_loss(*args, **kwargs):
    raise UnsupportedArgumentError(
        "`F.ctc_loss` (the sizes of its alignment depend on the values of the target lengths, which "
        "no tracer records) is not supported")


def pad(input, pad, mode="constant", value=None):
    """`F.pad`, circular padding by `torch.cat` of the wrapped slices: make_fx records torch's as
    copies into an empty tensor, in place."""
    if mode != "circular" or any(p < 0 for p in pad):
        return F.pad(input, pad, mode, value)
    for i in range(len(pad) // 2):  # the last dim first
        dim, before, after = input.ndim - 1 - i, pad[2 * i], pad[2 * i + 1]
        size = input.size(dim)
        input = torch.cat([input.narrow(dim, size - before, before), input, input.narrow(dim, 0, after)], dim)
    return input


_SUBSTITUTES = {F.gaussian_nll_loss: gaussian_nll_loss, F.ctc_loss: _refuse_ctc_loss, F.pad: pad}


class Substituted(TorchFunctionMode):
    """Runs the substitutes in place of the torch functions they stand for, while a tracer records."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        return _SUBSTITUTES.get(func, func)(*args, **(kwargs or {}))
