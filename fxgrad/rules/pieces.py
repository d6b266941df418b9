"""Joining and splitting: the backward of one is the other."""

import torch

from ..canon.pieces import item
from ..graph import value
from ..shapes import filled
from . import rule


@rule(item, math="y = x[i] of several results: ∂x[i] = ∂y")
def item_(g, values, index):
    # of the several results, the one taken gets the gradient
    grads = [None] * len(value(values))
    grads[index] = g
    return (tuple(grads),)


@rule(torch.cat, math="y = cat(x₁, x₂, …): ∂xₖ = ∂y's piece of xₖ")
def cat(g, tensors, dim):
    # torch.cat skips 1-D empty tensors, whatever the dim (an HF cache of keys starts as one): no
    # gradient for them
    joined = [i for i, t in enumerate(tensors) if not (value(t).ndim == 1 and value(t).numel() == 0)]
    pieces = g.split([tensors[i].size(dim) for i in joined], dim)
    return (tuple(pieces[joined.index(i)] if i in joined else None for i in range(len(tensors))),)


@rule(torch.stack, math="y = stack(x₁, x₂, …): ∂xₖ = ∂y[k]")
def stack(g, tensors, dim):
    pieces = g.unbind(dim)
    return (tuple(pieces[i] for i in range(len(tensors))),)


@rule(torch.split, torch.chunk, math="y₁, y₂, … = split(x): ∂x = cat(∂y₁, ∂y₂, …), zeros for those without a gradient")
def split(g, input, sections, dim, *, out):
    return torch.cat(filled(g, out), dim)


@rule(torch.unbind, math="y₁, y₂, … = unbind(x): ∂x = stack(∂y₁, ∂y₂, …), zeros for those without a gradient")
def unbind(g, input, dim, *, out):
    return torch.stack(filled(g, out), dim)
