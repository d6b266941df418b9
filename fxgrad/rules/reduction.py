"""Sums, means, products and the Euclidean norm."""

import torch

from ..shapes import reduced_dims, unreduce
from . import rule


@rule(torch.sum, math="y = Σ x: ∂x = ∂y, broadcast back over the summed dims")
def sum(g, input, dim, keepdim):
    return unreduce(g, input, dim, keepdim)


@rule(torch.mean, in_float32=True, math="y = mean(x): ∂x = ∂y / N, broadcast back over the reduced dims")
def mean(g, input, dim, keepdim):
    return unreduce(g, input, dim, keepdim) / reduced_count(input, dim)


@rule(torch.prod, in_float32=True, math="y = Π x: ∂x = ∂y ⊙ y / x, zeros of x taken apart")
def prod(g, input, dim, keepdim, *, out):
    # d Πx/dxᵢ = Π_{j≠i} xⱼ: out/xᵢ where xᵢ ≠ 0; where xᵢ = 0, the product of the other elements,
    # which is 0 unless xᵢ is the only zero (out/xᵢ would be 0/0 there, so torch's prod_backward
    # takes the zeros apart too)
    zero = input == 0
    if dim is None:
        others, only_zero = torch.where(zero, 1.0, input).prod(), zero.sum() == 1
    else:
        others, only_zero = torch.where(zero, 1.0, input).prod(dim, keepdim=True), zero.sum(dim, keepdim=True) == 1
    at_zero = torch.where(only_zero, others, 0.0)
    return unreduce(g, input, dim, keepdim) * torch.where(zero, at_zero, unreduce(out, input, dim, keepdim) / input)


@rule(torch.linalg.vector_norm, in_float32=True, math="y = ‖x‖: ∂x = ∂y ⊙ x / y, 0 where y = 0")
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
