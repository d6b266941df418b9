"""Joining tensors, splitting them into pieces, and taking one of several results."""

import operator

import torch

from ..graph import value
from .registry import aten, define, emit, lowers, static_dim


def item(values, index):
    """`values[index]`: one of the results of an op that returns several (`x.split(2)`, `x.max(1)`)."""
    return values[index]


define({
    item: lambda values, index: values[index],
    torch.cat: lambda tensors, dim: torch.cat(tensors, dim),
    torch.stack: lambda tensors, dim: torch.stack(tensors, dim),
    torch.split: lambda input, split_size_or_sections, dim: input.split(split_size_or_sections, dim),
    torch.chunk: lambda input, chunks, dim: input.chunk(chunks, dim),
    torch.unbind: lambda input, dim: input.unbind(dim),
})


def _holds_tensors(x) -> bool:
    val = value(x)
    return isinstance(val, (tuple, list)) and any(isinstance(v, torch.Tensor) for v in val)


@lowers(operator.getitem)
def _getitem(values, index):
    if isinstance(values, (tuple, list)):  # a lowering that returned several values as a tuple
        return values[index]
    if _holds_tensors(values):
        return emit(item, values, index)
    if isinstance(value(values), torch.Tensor):
        from .indexing import index_tensor

        return index_tensor(values, index)
    return NotImplemented  # a size, a shape: no gradient to carry


@lowers(torch.cat, torch.concat, torch.concatenate, aten.cat, aten.concat, aten.concatenate)
def _cat(tensors, dim=0):
    return emit(torch.cat, tuple(tensors), static_dim(dim))


@lowers(torch.stack, aten.stack)
def _stack(tensors, dim=0):
    return emit(torch.stack, tuple(tensors), static_dim(dim))


@lowers(torch.split, "Tensor.split", aten.split, aten.split_with_sizes, torch.unsafe_split, aten.unsafe_split,
        torch.unsafe_split_with_sizes, aten.unsafe_split_with_sizes)
def _split(input, split_size_or_sections, dim=0):
    sections = split_size_or_sections
    return emit(torch.split, input, tuple(sections) if isinstance(sections, list) else sections, static_dim(dim))


@lowers(torch.chunk, "Tensor.chunk", aten.chunk, torch.unsafe_chunk, aten.unsafe_chunk)
def _chunk(input, chunks, dim=0):
    return emit(torch.chunk, input, chunks, static_dim(dim))


@lowers(torch.unbind, "Tensor.unbind", aten.unbind)
def _unbind(input, dim=0):
    return emit(torch.unbind, input, static_dim(dim))
