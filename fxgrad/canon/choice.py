"""Ops that choose each element from one of their operands: maximum and minimum, clamp, where,
masked_fill, and the triangles tril and triu (the input or zero)."""

import torch

from .registry import aten, define, emit, lowers, lowers_directly


def _write_clamp(input, min, max):
    if min is None:
        return input.clamp(max=max)
    return input.clamp(min=min) if max is None else input.clamp(min, max)


define({
    torch.maximum: lambda input, other: torch.maximum(input, other),
    torch.minimum: lambda input, other: torch.minimum(input, other),
    # bounds: numbers, tensors or None (clamp_min and clamp_max have one)
    torch.clamp: _write_clamp,
    torch.where: lambda condition, input, other: torch.where(condition, input, other),
    torch.masked_fill: lambda input, mask, value: input.masked_fill(mask, value),
    torch.tril: lambda input, diagonal: input.tril(diagonal) if diagonal else input.tril(),
    torch.triu: lambda input, diagonal: input.triu(diagonal) if diagonal else input.triu(),
})

lowers_directly(torch.maximum, torch.maximum, "Tensor.maximum", aten.maximum)
lowers_directly(torch.minimum, torch.minimum, "Tensor.minimum", aten.minimum)


@lowers(torch.clamp, torch.clip, "Tensor.clamp", "Tensor.clip", aten.clamp, aten.clip)
def _clamp(input, min=None, max=None):
    return emit(torch.clamp, input, min, max)


@lowers(torch.clamp_min, "Tensor.clamp_min", aten.clamp_min)
def _clamp_min(input, min):
    return emit(torch.clamp, input, min, None)


@lowers(torch.clamp_max, "Tensor.clamp_max", aten.clamp_max)
def _clamp_max(input, max):
    return emit(torch.clamp, input, None, max)


@lowers(torch.where, aten.where)
def _where(condition, input=None, other=None):
    if input is None:  # torch.where(condition): the indices where it holds, no gradient to carry
        return NotImplemented
    return emit(torch.where, condition, input, other)


@lowers("Tensor.where")
def _where_method(input, condition, other):
    return emit(torch.where, condition, input, other)


lowers_directly(torch.masked_fill, torch.masked_fill, "Tensor.masked_fill", aten.masked_fill)


@lowers(torch.tril, "Tensor.tril", aten.tril)
def _tril(input, diagonal=0):
    return emit(torch.tril, input, diagonal)


@lowers(torch.triu, "Tensor.triu", aten.triu)
def _triu(input, diagonal=0):
    return emit(torch.triu, input, diagonal)
