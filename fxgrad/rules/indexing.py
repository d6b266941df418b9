"""Indexing: the gradient lands where the values were taken from, zeros elsewhere."""

import torch

from ..canon.indexing import diagonal_arguments
from ..shapes import add_at
from . import rule

aten = torch.ops.aten


@rule(torch.select, math="y = x[…, i]: ∂x = zeros with ∂y at i")
def select(g, input, dim, index):
    return torch.zeros_like(input).select_scatter(g, dim, index)


@rule(aten.slice, math="y = x[…, a:b:s]: ∂x = zeros with ∂y at a:b:s")
def slice_(g, input, dim, start, end, step):
    return torch.zeros_like(input).slice_scatter(g, dim, start, end, 1 if step is None else step)


@rule(aten.index, math="y = x[i]: ∂x = zeros with ∂y added at i (repeats add up)")
def index(g, input, indices):
    tensors = [i for i in indices if i is not None]
    if len(tensors) > 1:  # tensors of indices for the leading dims; repeated indices add up
        return torch.zeros_like(input).index_put(tuple(tensors), g, accumulate=True)
    (idx,) = tensors
    dim = next(d for d, i in enumerate(indices) if i is not None)
    # indices may count from the end, as Python's do; index_add's may not
    return add_at(input, dim, idx % input.size(dim), g)


@rule(torch.diagonal, math="y = diagonal(x): ∂x = zeros with ∂y on the diagonal")
def diagonal(g, input, offset, dim1, dim2):
    return torch.zeros_like(input).diagonal_scatter(g, *diagonal_arguments(offset, dim1, dim2))
