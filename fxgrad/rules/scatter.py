"""Writing into a tensor: the written values get the gradient at the places they were written to,
the input the rest of it (torch's formulas: where an index repeats, every value written there gets
the gradient of that place, as autograd gives it)."""

import torch

from ..canon.indexing import diagonal_arguments
from ..graph import value
from . import NotDifferentiable, rule


def _gathered(g, dim, index, src):
    """The gradient of the `src` of a scatter along `dim`: g at the places index names. torch's
    autograd gives it index's shape, so a larger src gets none (autograd fails there)."""
    if value(src).shape != value(index).shape:
        return NotDifferentiable("src (larger than its index, where torch's autograd fails)")
    return g.gather(dim, index)


@rule(torch.scatter, math="y = scatter(x, i, s): ∂x = ∂y zeroed at i, ∂s = gather(∂y, i)")
def scatter(g, input, dim, index, src):
    # the places written to come from src, the others from input
    grad_src = _gathered(g, dim, index, src) if isinstance(src, torch.fx.Proxy) else None
    return g.scatter(dim, index, 0.0), None, None, grad_src


@rule(torch.scatter_add, math="y = scatter_add(x, i, s): ∂x = ∂y, ∂s = gather(∂y, i)")
def scatter_add(g, input, dim, index, src):
    return g, None, None, _gathered(g, dim, index, src)


@rule(torch.scatter_reduce, math="y = scatter_reduce(x, i, s): ∂x, ∂s = ∂y at each place, shared as the reduction takes them (mean ÷ count, amax/amin to the extremes, prod as y / value)")
def scatter_reduce(g, input, dim, index, src, reduce, include_self, *, out):
    grad_input, grad_src = _REDUCED[reduce](g, input, dim, index, src, include_self, out)
    if not include_self:  # the places written to do not read input
        grad_input = grad_input.scatter(dim, index, 0.0)
    return grad_input, None, None, grad_src


def _reduced_sum(g, input, dim, index, src, include_self, out):
    return g, g.gather(dim, index)


def _reduced_mean(g, input, dim, index, src, include_self, out):
    # each place is the mean of its count of values (input's own among them if included)
    count = (torch.ones_like(g) if include_self else torch.zeros_like(g)).scatter_add(dim, index, torch.ones_like(src))
    count = count.masked_fill(count == 0, 1)
    return g / count, g.gather(dim, index) / count.gather(dim, index)


def _reduced_extreme(g, input, dim, index, src, include_self, out):
    # the values equal to the extreme share its gradient evenly (input's counted, even when not
    # included, as torch counts it)
    input_is_out = input == out
    src_is_out = src == out.gather(dim, index)
    dtype = value(g).dtype
    shared = g / input_is_out.to(dtype).scatter_add(dim, index, src_is_out.to(dtype))
    return input_is_out * shared, src_is_out * shared.gather(dim, index)


def _reduced_prod(g, input, dim, index, src, include_self, out):
    # d Πx / dx = Π of the others: the product over a zero taken as 1, as torch does
    input_nonzero = input.masked_fill(input == 0, 1)
    grad_input = g * input_nonzero.scatter_reduce(dim, index, src, "prod", include_self=include_self) / input_nonzero
    src_zero = src == 0
    zeros_at = torch.zeros_like(input).scatter_add(dim, index, src_zero.to(input.dtype)).gather(dim, index)
    single_zero = src_zero & (zeros_at == 1)  # the others' product: the product with that zero as 1
    without_zero = input.scatter_reduce(dim, index, src.masked_fill(single_zero, 1), "prod",
                                        include_self=include_self)
    grad_src = torch.where(single_zero, (g * without_zero).gather(dim, index),
                           (g * out).gather(dim, index) / src.masked_fill(src_zero, 1))
    return grad_input, grad_src


_REDUCED = {"sum": _reduced_sum, "mean": _reduced_mean, "amax": _reduced_extreme, "amin": _reduced_extreme,
            "prod": _reduced_prod}


@rule(torch.index_put, math="y = x with v put at i: ∂x = ∂y zeroed at i (kept if accumulating), ∂v = ∂y[i]")
def index_put(g, input, indices, values, accumulate):
    # the values get the gradient of the places they were put at (broadcast: the engine sums it)
    grad_input = g if accumulate else g.index_put(indices, g.new_zeros(()))
    return grad_input, None, g[indices]


@rule(torch.select_scatter, math="y = x with s at index k: ∂x = ∂y zeroed there, ∂s = ∂y selected at k")
def select_scatter(g, input, src, dim, index):
    return g.select_scatter(torch.zeros_like(src), dim, index), g.select(dim, index)


@rule(torch.slice_scatter, math="y = x with s in a slice: ∂x = ∂y zeroed there, ∂s = ∂y sliced")
def slice_scatter(g, input, src, dim, start, end, step):
    return (g.slice_scatter(torch.zeros_like(src), dim, start, end, step),
            g[(slice(None),) * dim + (slice(start, end, step),)])


@rule(torch.diagonal_scatter, math="y = x with s on a diagonal: ∂x = ∂y zeroed there, ∂s = diagonal(∂y)")
def diagonal_scatter(g, input, src, offset, dim1, dim2):
    where = diagonal_arguments(offset, dim1, dim2)
    return g.diagonal_scatter(torch.zeros_like(src), *where), g.diagonal(*where)


@rule(torch.masked_scatter, math="y = x with s where m: ∂x = ∂y zeroed where m, ∂s = ∂y[m] in order, zeros after")
def masked_scatter(g, input, mask, source):
    # source's elements fill the masked places in order: the k-th masked place (counted as
    # g's elements are laid out) holds source's k-th element; the rest of source is unused
    masked = mask.expand_as(g).reshape(-1)
    place = torch.where(masked, masked.cumsum(0) - 1, 0)
    grad_source = torch.zeros_like(source).reshape(-1).scatter_add(0, place, torch.where(masked, g.reshape(-1), 0.0))
    return g.masked_fill(mask, 0.0), None, grad_source.reshape(source.shape)
