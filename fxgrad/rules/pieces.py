"""Joining and splitting: the backward of one is the other."""

import torch

from ..canon.pieces import item
from ..graph import value
from ..shapes import filled
from . import rule


@rule(item)
def item_(g, values, index):
    # of the several results, the one taken gets the gradient
    grads = [None] * len(value(values))
    grads[index] = g
    return (tuple(grads),)


@rule(torch.cat)
def cat(g, tensors, dim):
    pieces = g.split([t.size(dim) for t in tensors], dim)
    return (tuple(pieces[i] for i in range(len(tensors))),)


@rule(torch.stack)
def stack(g, tensors, dim):
    pieces = g.unbind(dim)
    return (tuple(pieces[i] for i in range(len(tensors))),)


@rule(torch.split, torch.chunk)
def split(g, input, sections, dim, *, out):
    return torch.cat(filled(g, out), dim)


@rule(torch.unbind)
def unbind(g, input, dim, *, out):
    return torch.stack(filled(g, out), dim)
