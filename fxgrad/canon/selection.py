"""Reductions that select (max, min, amax, amin), sorting (sort, topk), gathering, and repeating,
rolling, flipping.

`x.max()` reduces every dim; `x.max(1)` returns (values, indices), a tuple-valued op whose
results are taken with `item` (`x.max(1)[0]`, `x.max(1).values`), as do `x.sort(1)` and
`x.topk(2)`; `x.amax(dims)` returns values only. The binary `torch.max(a, b)` is
`torch.maximum`, lowered where that op is.
"""

import torch

from ..graph import is_tensor, value
from .indexing import index_tensor
from .pieces import item
from .registry import (LOWERINGS, aten, define, dim_in_range, emit, lowers, options_given, sizes, splat,
                       static_dim, unsupported_argument)


def _one_or_all(values: tuple):
    """`(1,)` as `1`, for the way generated code reads."""
    return values[0] if len(values) == 1 else values


def _dims(dims):
    """A dims argument as constants: an int, a tuple of several, or None where none is given."""
    dims = static_dim(dims)
    if isinstance(dims, tuple):
        return _one_or_all(dims) if dims else None
    return dims


def _reduce(method, dim, keepdim):
    """`x.amax()`, `x.amax(1)`, `x.amax(1, keepdim=True)`: keepdim written only where it is set."""
    if dim is None:
        return method()
    return method(dim, keepdim=True) if keepdim else method(dim)


def roll(input, shifts, dims):
    """`input.roll(shifts, dims)`; dims None rolls the flattened tensor."""
    return input.roll(shifts) if dims is None else input.roll(shifts, dims)


define({
    # dim: an int or a tuple of ints, or None for every dim (keepdim False)
    torch.amax: lambda input, dim, keepdim: _reduce(input.amax, dim, keepdim),
    torch.amin: lambda input, dim, keepdim: _reduce(input.amin, dim, keepdim),
    torch.Tensor.max: lambda input: input.max(),  # over every dim
    torch.Tensor.min: lambda input: input.min(),
    # along one dim: (values, indices)
    torch.max: lambda input, dim, keepdim: _reduce(input.max, dim, keepdim),
    torch.min: lambda input, dim, keepdim: _reduce(input.min, dim, keepdim),
    torch.gather: lambda input, dim, index: input.gather(dim, index),
    # order statistics: the median over every dim; along one dim (values, indices)
    torch.Tensor.median: lambda input: input.median(),
    torch.median: lambda input, dim, keepdim: _reduce(input.median, dim, keepdim),
    torch.kthvalue: lambda input, k, dim, keepdim: input.kthvalue(k, dim, keepdim=True) if keepdim
    else input.kthvalue(k, dim),
    torch.mode: lambda input, dim, keepdim: _reduce(input.mode, dim, keepdim),
    # the running extremes along a dim: (values, indices), of the input's shape
    torch.cummax: lambda input, dim: input.cummax(dim),
    torch.cummin: lambda input, dim: input.cummin(dim),
    torch.Tensor.repeat: lambda input, repeats: splat(input.repeat, repeats),
    torch.repeat_interleave: lambda input, repeats, dim: input.repeat_interleave(repeats, dim),
    torch.roll: roll,
    torch.flip: lambda input, dims: splat(input.flip, dims),
    # (values, indices), options written where they are not torch's defaults
    torch.sort: lambda input, dim, descending, stable: (
        input.sort(stable=True, dim=dim, **options_given({"descending": False}, descending=descending)) if stable
        else input.sort(dim, **options_given({"descending": False}, descending=descending))),
    torch.topk: lambda input, k, dim, largest, sorted: input.topk(
        k, dim, **options_given({"largest": True, "sorted": True}, largest=largest, sorted=sorted)),
})


def _extreme(along_dim, over_all, elementwise):
    """The lowering of `torch.max` (`torch.min`) in its three forms: over every dim, along one
    dim with indices, and elementwise between two tensors."""

    def lowering(input, dim=None, keepdim=False, *, other=None):
        if other is not None or is_tensor(dim):  # torch.max(a, b)
            lower = LOWERINGS.get(elementwise)
            return NotImplemented if lower is None else lower(input, dim if other is None else other)
        if dim is None:
            return emit(over_all, input)
        return emit(along_dim, input, dim_in_range(input, dim), keepdim)

    return lowering


lowers(torch.max, "Tensor.max", aten.max)(_extreme(torch.max, torch.Tensor.max, torch.maximum))
lowers(torch.min, "Tensor.min", aten.min)(_extreme(torch.min, torch.Tensor.min, torch.minimum))


@lowers(torch.median, "Tensor.median", aten.median)
def _median(input, dim=None, keepdim=False):
    if dim is None:
        return emit(torch.Tensor.median, input)
    return emit(torch.median, input, dim_in_range(input, dim), keepdim)


@lowers(torch.kthvalue, "Tensor.kthvalue", aten.kthvalue)
def _kthvalue(input, k, dim=-1, keepdim=False):
    return emit(torch.kthvalue, input, k, dim_in_range(input, dim), keepdim)


@lowers(torch.mode, "Tensor.mode", aten.mode)
def _mode(input, dim=-1, keepdim=False):
    return emit(torch.mode, input, dim_in_range(input, dim), keepdim)


def _running_extreme(op):
    return lambda input, dim: emit(op, input, dim_in_range(input, dim))


lowers(torch.cummax, "Tensor.cummax", aten.cummax)(_running_extreme(torch.cummax))
lowers(torch.cummin, "Tensor.cummin", aten.cummin)(_running_extreme(torch.cummin))


def _select_reduction(op):
    def lowering(input, dim=(), keepdim=False):
        dims = _dims(dim)
        if dims is None and keepdim:
            dims = tuple(range(value(input).ndim))
        return emit(op, input, dims, keepdim and dims is not None)

    return lowering


@lowers(torch.sort, "Tensor.sort", aten.sort)
def _sort(input, dim=-1, descending=False, stable=False):
    return emit(torch.sort, input, dim_in_range(input, dim), descending, bool(stable))


@lowers(torch.topk, "Tensor.topk", aten.topk)
def _topk(input, k, dim=-1, largest=True, sorted=True):
    return emit(torch.topk, input, k, dim_in_range(input, dim), largest, sorted)


lowers(torch.amax, "Tensor.amax", aten.amax)(_select_reduction(torch.amax))
lowers(torch.amin, "Tensor.amin", aten.amin)(_select_reduction(torch.amin))


def _result(index):
    """`x.max(1).values` (index 0), `.indices` (1); a sparse tensor's values() is copied as it is."""
    return lambda values_and_indices: (NotImplemented if is_tensor(values_and_indices)
                                       else emit(item, values_and_indices, index))


lowers("Tensor.values")(_result(0))
lowers("Tensor.indices")(_result(1))


@lowers(torch.gather, "Tensor.gather", aten.gather)
def _gather(input, dim, index, *, sparse_grad=False):
    # sparse_grad asks autograd for a sparse gradient; the derived one is dense, of the same values
    return emit(torch.gather, input, dim_in_range(input, dim), index)


@lowers(torch.take_along_dim, "Tensor.take_along_dim", aten.take_along_dim)
def _take_along_dim(input, indices, dim=None):
    if dim is None:  # along the flattened tensor
        return _gather(emit(torch.flatten, input, 0, -1), 0, emit(torch.flatten, indices, 0, -1))
    dim = dim_in_range(input, dim)
    shape, index_shape = value(input).shape, value(indices).shape
    if any(a != b for d, (a, b) in enumerate(zip(shape, index_shape)) if d != dim):
        unsupported_argument("take_along_dim with indices that broadcast against the input (expand them first)")
    return _gather(input, dim, indices)


@lowers(torch.index_select, "Tensor.index_select", aten.index_select)
def _index_select(input, dim, index):
    if value(index).ndim == 0:  # index_select keeps the dim an index of one element selects
        index = emit(torch.unsqueeze, index, 0)
    return index_tensor(input, (slice(None),) * dim_in_range(input, dim) + (index,))


@lowers("Tensor.repeat")
def _repeat(input, *repeats):
    return _aten_repeat(input, sizes(repeats))


@lowers(aten.repeat)
def _aten_repeat(input, repeats):
    if not isinstance(repeats, (tuple, list)):
        unsupported_argument("repeat(<a shape read at run time>) (write the repeats out)")
    return emit(torch.Tensor.repeat, input, tuple(repeats))


@lowers(torch.repeat_interleave, "Tensor.repeat_interleave", aten.repeat_interleave)
def _repeat_interleave(input, repeats=None, dim=None, *, output_size=None):
    if not isinstance(value(repeats), int):  # a tensor of repeats: sizes that depend on values
        return NotImplemented
    if dim is None:  # along the flattened tensor
        return emit(torch.repeat_interleave, emit(torch.flatten, input, 0, -1), repeats, 0)
    return emit(torch.repeat_interleave, input, repeats, dim_in_range(input, dim))


@lowers(torch.roll, "Tensor.roll", aten.roll)
def _roll(input, shifts, dims=None):
    shifts = _one_or_all(tuple(shifts)) if isinstance(shifts, (tuple, list)) else shifts
    return emit(torch.roll, input, shifts, _dims(dims))


@lowers(torch.flip, aten.flip)
def _flip(input, dims):
    dims = _dims(dims)
    return emit(torch.flip, input, () if dims is None else dims)


@lowers("Tensor.flip")
def _flip_method(input, *dims):
    return _flip(input, sizes(dims))


@lowers(torch.fliplr, "Tensor.fliplr", aten.fliplr)
def _fliplr(input):
    return _flip(input, 1)


@lowers(torch.flipud, "Tensor.flipud", aten.flipud)
def _flipud(input):
    return _flip(input, 0)
