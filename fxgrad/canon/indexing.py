"""Indexing: `x[1:3, 0, None, ...]`, `x[:, idx]`, and the ops it is made of.

Python indexing is lowered onto three canonical ops, as ATen records it: `select` for an int,
`slice` for a slice, and `index` for tensors of indices; `None` becomes an unsqueeze. Each has
a functional backward (`select_scatter`, `slice_scatter`, `index_add`/`index_put`).
"""

import operator
import sys

import torch
import torch.fx as fx

from ..errors import MutationError
from ..graph import value
from .registry import aten, define, dim_in_range, emit, is_constant, lowers, static_dim, unsupported_argument
from .shape import fill


def _full(dims: int) -> tuple:
    return (slice(None),) * dims


def _write_index(input, indices):
    """`x[:, idx]`: `None` in `indices` stands for a whole dim."""
    return input[tuple(slice(None) if i is None else i for i in indices)]


def diagonal_arguments(offset, dim1, dim2) -> tuple:
    """`(offset, dim1, dim2)` of a diagonal, left out where they are torch's defaults."""
    return () if (offset, dim1, dim2) == (0, 0, 1) else (offset, dim1, dim2)


def _write_diagonal(input, offset, dim1, dim2):
    return input.diagonal(*diagonal_arguments(offset, dim1, dim2))


define({
    torch.select: lambda input, dim, index: input[(*_full(dim), index)],
    aten.slice: lambda input, dim, start, end, step: input[(*_full(dim), slice(start, end, step))],
    aten.index: _write_index,
    torch.diagonal: _write_diagonal,
})


def _slice(input, dim, start, end, step):
    # (identity tests: an index may be a size read at run time, a Proxy)
    if is_constant(start, None, 0) and end is None and is_constant(step, None, 1):
        return input
    return emit(aten.slice, input, dim, start, end, None if is_constant(step, 1) else step)


def written_back(view, base, new):
    """`base` with the elements its slice or select `view` shows replaced by `new` (the inverse
    of the view, as functionalisation writes a change of a view back to its base): the pieces
    of `base` on either side joined with `new`. None where `view` is not such a view of `base`
    with constant bounds (a step of 1, an end past the start) or a constant index."""
    node = view.node if isinstance(view, fx.Proxy) else None
    if node is None or node.meta.get("fxgrad_op") not in (torch.select, aten.slice):
        return None  # (a view of another kind: `y.t()`, `y.detach()`)
    op, args = node.meta["fxgrad_op"], node.meta["fxgrad_args"]
    if not isinstance(base, fx.Proxy) or args[0] is not base.node:
        return None
    dim = args[1]
    if op is torch.select and isinstance(args[2], int):
        index = args[2]
        before = None if index == 0 else (None, index)
        after = None if index == -1 else (index + 1, None)
        pieces = [emit(torch.unsqueeze, new, dim)]
    elif op is aten.slice and args[4] is None and all(i is None or isinstance(i, int) for i in args[2:4]):
        start, end = args[2], args[3]
        first, last, _ = slice(start, end).indices(value(base).shape[dim])
        if first > last:  # (an empty view whose pieces around it would overlap)
            return None
        before = None if start in (None, 0) else (None, start)
        after = None if end is None or end >= sys.maxsize else (end, None)
        pieces = [new]
    else:
        return None
    if before is not None:
        pieces.insert(0, _slice(base, dim, *before, None))
    if after is not None:
        pieces.append(_slice(base, dim, *after, None))
    return pieces[0] if len(pieces) == 1 else emit(torch.cat, tuple(pieces), dim)


def set_item(input, index, values):
    """The out-of-place twin of `x[index] = values`, the value x then has, for indices of ints,
    slices and `...`: the view they make, filled with `values`, written back step by step (at
    tensors of indices: `canon/scatter.py`)."""
    indices = index if isinstance(index, tuple) else (index,)
    if not all(i is Ellipsis or isinstance(i, slice) or type(i) is int for i in indices):
        raise MutationError("item assignment through lists or None as indices, or tensors mixed with them, is not "
                            "supported (write `torch.where(mask, v, y)` rather than `y[mask] = v`)")
    view = index_tensor(input, index)
    new = fill(view, values)
    while view.node is not input.node:
        base = fx.Proxy(view.node.meta["fxgrad_args"][0], view.tracer)
        new = written_back(view, base, new)
        if new is None:
            raise MutationError(f"item assignment through `{index}`, a slice with a step or with bounds read at run "
                                "time, is not supported")
        view = base
    return new


def _whole(i) -> bool:
    return isinstance(i, slice) and i.start is None and i.stop is None and i.step is None


def index_tensor(input, index):
    """`input[index]` in canonical ops."""
    if isinstance(index, list) and any(isinstance(i, (list, tuple)) for i in index):
        unsupported_argument("indexing with a list of lists, which torch reads as a tuple of indices, as it warns "
                             "(write `x[tuple(seq)]` or a tensor of indices)")
    index = tuple(map(_as_index_tensor(input), index if isinstance(index, tuple) else (index,)))
    indexed = sum(1 for i in index if i is not None and i is not Ellipsis)
    at = next((k for k, i in enumerate(index) if i is Ellipsis), None)
    if at is not None:
        index = index[:at] + _full(value(input).ndim - indexed) + index[at + 1:]
    if any(_is_tensor(i) for i in index):
        return _index_with_tensors(input, index)
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


def _is_tensor(i) -> bool:
    return isinstance(i, torch.fx.Proxy) and isinstance(value(i), torch.Tensor)


def _as_index_tensor(input):
    """An index that is a list of ints (`x[[0, 2]]`) as the tensor of indices torch takes it for,
    made on the input's device; other indices as they are."""
    def convert(i):
        if not isinstance(i, (list, tuple)):
            return i
        if not _ints(i):
            unsupported_argument("indexing with a list of anything but ints (write a tensor of indices)")
        return input.new_tensor(list(i), dtype=torch.bool if _has_bool(i) else torch.int64)

    return convert


def _ints(i) -> bool:
    return all(_ints(j) if isinstance(j, (list, tuple)) else isinstance(j, int) for j in i)


def _has_bool(i) -> bool:
    return any(_has_bool(j) if isinstance(j, (list, tuple)) else isinstance(j, bool) for j in i)


def _index_with_tensors(input, index):
    tensors = [k for k, i in enumerate(index) if _is_tensor(i)]
    if any(value(index[k]).dtype == torch.bool for k in tensors):
        unsupported_argument("indexing with a boolean mask (the result's size depends on the values)")
    # slices of the other dims commute with the indexing: x[idx, 1:] is x[:, 1:][idx], as ATen records it
    for k, i in enumerate(index):
        if isinstance(i, slice) and not _whole(i):
            input = _slice(input, k, i.start, i.stop, i.step)
    index = tuple(slice(None) if isinstance(i, slice) else i for i in index)
    whole = all(_whole(i) for k, i in enumerate(index) if k not in tensors)
    one_dim = len(tensors) == 1
    leading = tensors == list(range(len(tensors)))
    if not whole or not (one_dim or leading):
        unsupported_argument("indexing that mixes tensors of indices with ints or None "
                             "(write it as an index_select or gather)")
    return emit(aten.index, input, tuple(i if k in tensors else None for k, i in enumerate(index)))


@lowers(torch.select, "Tensor.select", aten.select)
def _select(input, dim, index):
    return emit(torch.select, input, dim_in_range(input, dim), index)


@lowers(aten.slice)
def _aten_slice(input, dim=0, start=None, end=None, step=1):
    return _slice(input, dim_in_range(input, dim), start, end, step)


@lowers(torch.narrow, "Tensor.narrow", aten.narrow)
def _narrow(input, dim, start, length):
    if _is_tensor(start):  # its value may differ from call to call, where a derived graph fixes slices
        unsupported_argument("narrow with a tensor start (pass an int, or `start.item()` outside the function)")
    end = start + length
    if isinstance(start, int) and start < 0 and end == 0:  # the last `length`: up to the end, not to 0
        end = None
    return _slice(input, dim_in_range(input, dim), start, end, 1)


@lowers(aten.index)
def _aten_index(input, indices):
    return index_tensor(input, tuple(slice(None) if i is None else i for i in indices))


@lowers(torch.diagonal, "Tensor.diagonal", aten.diagonal, aten.diagonal_copy)
def _diagonal(input, offset=0, dim1=0, dim2=1):
    return emit(torch.diagonal, input, offset, dim_in_range(input, dim1), dim_in_range(input, dim2))


