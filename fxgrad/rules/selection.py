"""Selecting reductions, gathering, repeating: the gradient goes back to where each value came from."""

import torch

from ..canon.registry import splat
from ..canon.selection import roll as roll_
from ..graph import value
from ..shapes import unreduce
from . import rule


@rule(torch.amax, torch.amin, math="y = amax(x): ∂x = ∂y / count where x = y (ties share), else 0")
def amax(g, input, dim, keepdim, *, out):
    # the elements equal to the extreme share its gradient evenly, as torch shares it among ties
    chosen = input == unreduce(out, input, dim, keepdim)
    count = chosen.sum() if dim is None else chosen.sum(dim, keepdim=True)
    return unreduce(g, input, dim, keepdim) / count * chosen


@rule(torch.Tensor.max, torch.Tensor.min, torch.Tensor.median, math="y = max(x): ∂x = ∂y / count where x = y (ties share), else 0")
def max_all(g, input, *, out):
    # as amax, except that where the extreme (the median) is NaN, the NaNs share its gradient (as torch)
    chosen = (input == out) | input.isnan()
    return g / chosen.sum() * chosen


@rule(torch.max, torch.min, torch.median, torch.mode, math="y, i = max(x, dim): ∂x = zeros with ∂y at i")
def max_along(g, input, dim, keepdim, *, out):
    grad, _ = g  # the indices carry no gradient
    grad, indices = unreduce(grad, input, dim, keepdim), unreduce(out[1], input, dim, keepdim)
    # all of it to the element the indices name
    return torch.zeros_like(input).scatter(dim, indices, grad)


def _to_indices(g, input, dim, out):
    """Each value's gradient back to the place its index names (distinct places), zero elsewhere."""
    grad, _ = g  # the indices carry no gradient
    return torch.zeros_like(input).scatter(dim, out[1], grad)


@rule(torch.sort, math="(y, i) = sort(x): ∂x = zeros with ∂y put back at i")
def sort(g, input, dim, descending, stable, *, out):
    return _to_indices(g, input, dim, out)  # the indices are a permutation


@rule(torch.topk, math="(y, i) = topk(x): ∂x = zeros with ∂y put back at i")
def topk(g, input, k, dim, largest, sorted, *, out):
    return _to_indices(g, input, dim, out)


@rule(torch.kthvalue, math="y, i = kthvalue(x, k, dim): ∂x = zeros with ∂y at i")
def kthvalue(g, input, k, dim, keepdim, *, out):
    return max_along(g, input, dim, keepdim, out=out)


@rule(torch.cummax, torch.cummin, math="y, i = cummax(x): ∂x = zeros with each ∂y added at its i")
def cummax(g, input, dim, *, out):
    grad, _ = g
    # each running extreme to the element it is; an element that stays the extreme collects them all
    return torch.zeros_like(input).scatter_add(dim, out[1], grad)


@rule(torch.gather, math="y = gather(x, i): ∂x = zeros with ∂y added at i")
def gather(g, input, dim, index):
    # each gathered element back to where it came from; repeated indices add up
    return torch.zeros_like(input).scatter_add(dim, index, g)


@rule(torch.Tensor.repeat, math="y = repeat(x): ∂x = Σ of ∂y over the copies")
def repeat(g, input, repeats):
    # g over (r0·s0, r1·s1, ...) viewed as (r0, s0, r1, s1, ...), summed over the copies
    # (repeats beyond the input's rank add leading dims of copies)
    extra = len(repeats) - value(input).ndim
    if all(_is_one(r) for r in repeats[extra:]):
        return g  # copies along new leading dims only: the engine sums those
    shape, copies = [], []
    for i, r in enumerate(repeats):
        if not _is_one(r):
            copies.append(len(shape))
            shape.append(r)
        if i >= extra:
            shape.append(input.size(i - extra))
    return g.reshape(*shape).sum(copies[0] if len(copies) == 1 else tuple(copies))


def _is_one(repeat) -> bool:
    return isinstance(repeat, int) and repeat == 1  # (a repeat read at run time may be anything)


@rule(torch.repeat_interleave, math="y = repeat_interleave(x, r): ∂x = Σ of ∂y over each element's r copies")
def repeat_interleave(g, input, repeats, dim):
    # each element was repeated in place: (s·r) viewed as (s, r), summed over the r copies
    return g.unflatten(dim, (-1, repeats)).sum(dim + 1)


@rule(torch.roll, math="y = roll(x, s): ∂x = roll(∂y, −s)")
def roll(g, input, shifts, dims):
    # rolled back
    return roll_(g, tuple(-s for s in shifts) if isinstance(shifts, tuple) else -shifts, dims)


@rule(torch.flip, math="y = flip(x): ∂x = flip(∂y)")
def flip(g, input, dims):
    return splat(g.flip, dims)  # flipped back
