"""Sums, means, products and the Euclidean norm."""

import math

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


@rule(torch.linalg.vector_norm, in_float32=True,
      math="y = ‖x‖ₚ: ∂x = ∂y ⊙ sgn(x) ⊙ |x|ᵖ⁻¹ / yᵖ⁻¹ (∂x = ∂y ⊙ x / y for p = 2), 0 where y = 0")
def vector_norm(g, input, dim, keepdim, ord=2, *, out):
    # d ‖x‖ₚ = sgn(x)·|x|ᵖ⁻¹/‖x‖ₚᵖ⁻¹, and 0 where ‖x‖ = 0, as torch's norm_backward defines it (a NaN
    # or ∞ gradient there still gives NaN: the 0 is the derivative's, and g multiplies it); the
    # ∞-norms share it between the elements that attain them, the 0-"norm" counts (no gradient)
    g, norm = unreduce(g, input, dim, keepdim), unreduce(out, input, dim, keepdim)
    if ord == 0:
        return None
    if ord == 1:
        return g * input.sgn()
    if ord == 2:
        return g * torch.where(norm == 0, 0.0, input / norm)
    if ord in (math.inf, -math.inf):
        attained = (input.abs() == norm) | input.isnan()
        count = attained.sum() if dim is None else attained.sum(dim, keepdim=True)
        return input.sgn() * (g / count) * attained
    if ord < 1:  # |x|ᵖ⁻¹ is ∞ at 0, where torch takes the derivative as 0
        return g * torch.where(input == 0, 0.0, input.sgn() * input.abs() ** (ord - 1)) * norm ** (1 - ord)
    if ord < 2:
        return g * torch.where(norm == 0, 0.0, input.sgn() * input.abs() ** (ord - 1) / norm ** (ord - 1))
    return g * torch.where(norm == 0, 0.0, input * input.abs() ** (ord - 2) / norm ** (ord - 1))


def reduced_count(input, dim):
    """How many elements each mean averages, read from `input` at run time."""
    if dim is None:
        return input.numel()
    count = 1
    for d in reduced_dims(input, dim):
        count = count * input.size(d)
    return count
