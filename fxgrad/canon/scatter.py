"""Writing into a tensor: `scatter`, `scatter_add`, `scatter_reduce`, `index_put` (and `y[idx] = v`
on a fresh value), `select_scatter`, `slice_scatter`, `diagonal_scatter`, `masked_scatter`, and
ATen's `copy`.

Each is functional, as torch's functionalisation records an in-place write (`y.scatter_(...)`,
`y.index_put_(...)`, `y.copy_(x)` on a fresh `y` are lowered as their out-of-place twins).
"""

import operator

import torch

from ..graph import value
from .conversion import convert
from .indexing import diagonal_arguments, set_item
from .registry import aten, define, dim_in_range, emit, lowers, unsupported_argument


def _write_index_put(input, indices, values, accumulate):
    return input.index_put(indices, values, accumulate=True) if accumulate else input.index_put(indices, values)


def _write_scatter_reduce(input, dim, index, src, reduce, include_self):
    if include_self:
        return input.scatter_reduce(dim, index, src, reduce)
    return input.scatter_reduce(dim, index, src, reduce, include_self=False)


define({
    # src: a tensor (of index's shape) or a number
    torch.scatter: lambda input, dim, index, src: input.scatter(dim, index, src),
    torch.scatter_add: lambda input, dim, index, src: input.scatter_add(dim, index, src),
    # reduce: "sum", "prod", "mean", "amax" or "amin"; include_self: whether input's values take part
    torch.scatter_reduce: _write_scatter_reduce,
    # indices: a tuple of tensors of indices, for the leading dims
    torch.index_put: _write_index_put,
    torch.select_scatter: lambda input, src, dim, index: input.select_scatter(src, dim, index),
    torch.slice_scatter: lambda input, src, dim, start, end, step: input.slice_scatter(src, dim, start, end, step),
    torch.diagonal_scatter: lambda input, src, offset, dim1, dim2: input.diagonal_scatter(
        src, *diagonal_arguments(offset, dim1, dim2)),
    torch.masked_scatter: lambda input, mask, source: input.masked_scatter(mask, source),
})


@lowers(torch.scatter, "Tensor.scatter", aten.scatter)
def _scatter(input, dim, index, src=None, *, value=None, reduce=None):
    if reduce is not None:
        unsupported_argument(f"scatter(reduce={reduce!r}) (write scatter_add, or scatter_reduce)")
    return emit(torch.scatter, input, dim_in_range(input, dim), index, value if src is None else src)


@lowers(torch.scatter_add, "Tensor.scatter_add", aten.scatter_add)
def _scatter_add(input, dim, index, src):
    return emit(torch.scatter_add, input, dim_in_range(input, dim), index, src)


@lowers(torch.scatter_reduce, "Tensor.scatter_reduce", aten.scatter_reduce)
def _scatter_reduce(input, dim, index, src, reduce, *, include_self=True):
    if value(src).shape != value(index).shape:  # (torch's autograd fails for it)
        unsupported_argument("scatter_reduce with a src larger than its index (slice src to index's shape)")
    return emit(torch.scatter_reduce, input, dim_in_range(input, dim), index, src, reduce, include_self)


@lowers(torch.index_put, "Tensor.index_put", aten.index_put)
def _index_put(input, indices, values, accumulate=False):
    indices = list(indices)
    while indices and indices[-1] is None:  # whole trailing dims
        indices.pop()
    if any(i is None for i in indices):  # (which Tensor.index_put cannot write)
        unsupported_argument("index_put with whole dims before indexed ones (`y[:, idx] = v`; write it on "
                             "`y.transpose(0, 1)`, or with index_add)")
    if any(value(i).dtype == torch.bool for i in indices):
        unsupported_argument("index_put with a boolean mask (which values are written depends on the mask's "
                             "values; write `torch.where(mask, v, y)`)")
    if not isinstance(values, torch.fx.Proxy):  # `y[idx] = 2.0`: a number, as a tensor of y's dtype
        values = emit(torch.Tensor.new_full, input, (), values, None)
    return emit(torch.index_put, input, tuple(indices), values, bool(accumulate))


@lowers(operator.setitem)
def _setitem(input, index, values):
    # with tensors of indices, an index_put; with ints, slices and ..., the view written back
    index = index if isinstance(index, tuple) else (index,)
    if not any(isinstance(i, torch.fx.Proxy) for i in index):
        return set_item(input, index, values)
    whole = [isinstance(i, slice) and (i.start, i.stop, i.step) == (None, None, None) for i in index]
    if not all(w or isinstance(i, torch.fx.Proxy) for w, i in zip(whole, index)):
        unsupported_argument("item assignment that mixes tensors of indices with ints, slices, None or ... "
                             "(write it as index_put with None for whole dims)")
    return _index_put(input, tuple(None if w else i for w, i in zip(whole, index)), values)


@lowers(torch.select_scatter, "Tensor.select_scatter", aten.select_scatter)
def _select_scatter(input, src, dim, index):
    return emit(torch.select_scatter, input, src, dim_in_range(input, dim), index)


@lowers(torch.slice_scatter, "Tensor.slice_scatter", aten.slice_scatter)
def _slice_scatter(input, src, dim=0, start=None, end=None, step=1):
    return emit(torch.slice_scatter, input, src, dim_in_range(input, dim), start, end, step)


@lowers(torch.diagonal_scatter, "Tensor.diagonal_scatter", aten.diagonal_scatter)
def _diagonal_scatter(input, src, offset=0, dim1=0, dim2=1):
    return emit(torch.diagonal_scatter, input, src, offset, dim_in_range(input, dim1), dim_in_range(input, dim2))


@lowers(torch.masked_scatter, "Tensor.masked_scatter", aten.masked_scatter)
def _masked_scatter(input, mask, source):
    return emit(torch.masked_scatter, input, mask, source)
