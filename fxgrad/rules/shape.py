"""Ops that only move elements around or stop gradients."""

import torch

from . import rule


@rule(torch.reshape, torch.flatten, torch.unsqueeze, torch.squeeze, torch.unflatten,
      math="y = reshape(x): ∂x = reshape(∂y) to x's shape")
def reshape(g, input, *shape_arguments):
    return g.reshape(input.shape)


@rule(torch.Tensor.expand, torch.Tensor.expand_as, math="y = expand(x): ∂x = ∂y summed over the expanded dims")
def expand(g, input, size_or_other):
    return g  # the engine sums the gradient back to the input's shape


@rule(torch.detach, math="y = detach(x): ∂x = 0")
def detach(g, input):
    return None


@rule(torch.full_like, torch.Tensor.new_full, math="y = a constant of x's shape: ∂x = 0")
def filled(g, input, *options):
    return None  # only the shape and dtype of `input` are read, not its values
