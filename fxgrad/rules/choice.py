"""Ops that choose each element from one of their operands: the gradient goes where the
element came from."""

import torch

from . import rule


@rule(torch.maximum, math="y = max(a, b): ∂a = ∂y where a > b, ∂b = ∂y where b > a, ∂y/2 each at a tie")
def maximum(g, input, other):
    # at a tie each operand gets half, as torch does
    shared = torch.where(input == other, g / 2, g)
    return torch.where(input < other, 0.0, shared), torch.where(input > other, 0.0, shared)


@rule(torch.minimum, math="y = min(a, b): ∂a = ∂y where a < b, ∂b = ∂y where b < a, ∂y/2 each at a tie")
def minimum(g, input, other):
    shared = torch.where(input == other, g / 2, g)
    return torch.where(input > other, 0.0, shared), torch.where(input < other, 0.0, shared)


@rule(torch.clamp,
      math=("y = clamp(x, lo, hi): ∂x = ∂y where lo ≤ x ≤ hi, ∂lo = ∂y where x < lo, ∂hi = ∂y where x > hi"))
def clamp(g, input, min, max):
    # the input's where it lies within the bounds, ends included; a bound's where it is the one
    # taken (max wins where the bounds cross), as torch's clamp_backward
    if max is None:
        return torch.where(input >= min, g, 0.0), torch.where(input < min, g, 0.0), None
    if min is None:
        return torch.where(input <= max, g, 0.0), None, torch.where(input > max, g, 0.0)
    return (torch.where((input >= min) & (input <= max), g, 0.0),
            torch.where((input < min) & (min < max), g, 0.0),
            torch.where((input > max) | (max < min), g, 0.0))


@rule(torch.where, math="y = where(c, a, b): ∂a = where(c, ∂y, 0), ∂b = where(c, 0, ∂y)")
def where(g, condition, input, other):
    return None, torch.where(condition, g, 0.0), torch.where(condition, 0.0, g)


@rule(torch.masked_fill, math="y = masked_fill(x, m, v): ∂x = where(m, 0, ∂y), ∂v = Σ where(m, ∂y, 0)")
def masked_fill(g, input, mask, value):
    return torch.where(mask, 0.0, g), None, torch.where(mask, g, 0.0)


@rule(torch.tril, math="y = tril(x): ∂x = tril(∂y)")
def tril(g, input, diagonal):
    return g.tril(diagonal)


@rule(torch.triu, math="y = triu(x): ∂x = triu(∂y)")
def triu(g, input, diagonal):
    return g.triu(diagonal)
