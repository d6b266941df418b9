"""Ops that only move elements around or stop gradients."""

import torch

from . import rule


@rule(torch.reshape, torch.flatten, torch.unflatten, torch.unsqueeze, torch.squeeze)
def reshape(g, input, *shape_arguments):
    return g.reshape(input.shape)


@rule(torch.Tensor.expand, torch.Tensor.expand_as)
def expand(g, input, size_or_other):
    return g  # the engine sums the gradient back to the input's shape


@rule(torch.detach)
def detach(g, input):
    return None


@rule(torch.full_like, torch.Tensor.new_full)
def filled(g, input, *options):
    return None  # only the shape and dtype of `input` are read, not its values
