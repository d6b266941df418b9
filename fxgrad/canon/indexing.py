"""Indexing: `x[1:3, 0, None, ...]`, `x[:, idx]`, and the ops it is made of.

Python indexing is lowered onto three canonical ops, as ATen records it: `select` for an int,
`slice` for a slice, and `index` for tensors of indices; `None` becomes an unsqueeze. Each has
a functional backward (`select_scatter`, `slice_scatter`, `index_add`/`index_put`).
"""

import torch

from ..graph import value
from .registry import aten, define, dim_in_range, emit, lowers, unsupported_argument


def _full(dims: int) -> tuple:
    return (slice(None),) * dims


def _write_index(input, indices):
    """`x[:, idx]`: `None` in `indices` stands for a whole dim."""
    return input[tuple(slice(None) if i is None else i for i in indices)]


define({
    torch.select: lambda input, dim, index: input[(*_full(dim), index)],
    aten.slice: lambda input, dim, start, end, step: input[(*_full(dim), slice(start, end, step))],
    aten.index: _write_index,
})


def _slice(input, dim, start, end, step):
    # (identity tests: an index may be a size read at run time, a Proxy)
    if _is(start, None, 0) and end is None and _is(step, None, 1):
        return input
    return emit(aten.slice, input, dim, start, end, None if _is(step, 1) else step)


def _is(x, *constants) -> bool:
    """`x in constants` for a Python constant; False for a Proxy, which has no value yet."""
    return not isinstance(x, torch.fx.Proxy) and any(x is c or (c is not None and x == c) for c in constants)


def _whole(i) -> bool:
    return isinstance(i, slice) and i.start is None and i.stop is None and i.step is None


def index_tensor(input, index):
    """`input[index]` in canonical ops."""
    index = index if isinstance(index, tuple) else (index,)
    if any(isinstance(i, torch.fx.Proxy) and isinstance(value(i), torch.Tensor) for i in index):
        return _index_with_tensors(input, index)
    indexed = sum(1 for i in index if i is not None and i is not Ellipsis)
    at = next((k for k, i in enumerate(index) if i is Ellipsis), None)
    if at is not None:
        index = index[:at] + _full(value(input).ndim - indexed) + index[at + 1:]
    dim = 0
    for i in index:
        if i is None:
            input = emit(torch.unsqueeze, input, dim)
            dim += 1
        elif isinstance(i, slice):
            input = _slice(input, dim, i.start, i.stop, i.step)
            dim += 1
        else:  # an int, or a size read at run time
            input = emit(torch.select, input, dim, i)
    return input


def _index_with_tensors(input, index):
    tensors = [k for k, i in enumerate(index) if isinstance(value(i), torch.Tensor)]
    if any(value(index[k]).dtype == torch.bool for k in tensors):
        unsupported_argument("indexing with a boolean mask (the result's size depends on the values)")
    whole = all(_whole(i) for k, i in enumerate(index) if k not in tensors)
    one_dim = len(tensors) == 1
    leading = tensors == list(range(len(tensors)))
    if not whole or not (one_dim or leading):
        unsupported_argument("indexing that mixes tensors of indices with ints, slices or None (other than `:`); "
                             "write it as an index_select or gather")
    return emit(aten.index, input, tuple(i if k in tensors else None for k, i in enumerate(index)))


@lowers(torch.select, "Tensor.select", aten.select)
def _select(input, dim, index):
    return emit(torch.select, input, dim_in_range(input, dim), index)


@lowers(aten.slice)
def _aten_slice(input, dim=0, start=None, end=None, step=1):
    return _slice(input, dim_in_range(input, dim), start, end, step)


@lowers(torch.narrow, "Tensor.narrow", aten.narrow)
def _narrow(input, dim, start, length):
    return _slice(input, dim_in_range(input, dim), start, start + length, 1)


@lowers(aten.index)
def _aten_index(input, indices):
    return index_tensor(input, tuple(slice(None) if i is None else i for i in indices))
