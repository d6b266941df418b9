"""Sums, means and the Euclidean norm."""

import torch

from ..shapes import reduced_dims, unreduce
from . import rule


@rule(torch.sum)
def sum(g, input, dim, keepdim):
    return unreduce(g, input, dim, keepdim)


@rule(torch.mean, in_float32=True)
def mean(g, input, dim, keepdim):
    return unreduce(g, input, dim, keepdim) / reduced_count(input, dim)


@rule(torch.linalg.vector_norm, in_float32=True)
def vector_norm(g, input, dim, keepdim, *, out):
    # d ‖x‖ = x/‖x‖, and 0 where ‖x‖ = 0, as torch's norm_backward defines it (a NaN or ∞
    # gradient there still gives NaN: the 0 is x/‖x‖'s, and g multiplies it)
    norm = unreduce(out, input, dim, keepdim)
    return unreduce(g, input, dim, keepdim) * torch.where(norm == 0, 0.0, input / norm)


def reduced_count(input, dim):
    """How many elements each mean averages, read from `input` at run time."""
    if dim is None:
        return input.numel()
    count = 1
    for d in reduced_dims(input, dim):
        count = count * input.size(d)
    return count
