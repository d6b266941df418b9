"""Ops that choose each element from one of their operands: the gradient goes where the
element came from."""

import torch

from . import rule


@rule(torch.maximum)
def maximum(g, input, other):
    # at a tie each operand gets half, as torch does
    shared = torch.where(input == other, g / 2, g)
    return torch.where(input < other, 0.0, shared), torch.where(input > other, 0.0, shared)


@rule(torch.minimum)
def minimum(g, input, other):
    shared = torch.where(input == other, g / 2, g)
    return torch.where(input > other, 0.0, shared), torch.where(input < other, 0.0, shared)


@rule(torch.clamp)
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


@rule(torch.where)
def where(g, condition, input, other):
    return None, torch.where(condition, g, 0.0), torch.where(condition, 0.0, g)


@rule(torch.masked_fill)
def masked_fill(g, input, mask, value):
    return torch.where(mask, 0.0, g), None, torch.where(mask, g, 0.0)


@rule(torch.tril)
def tril(g, input, diagonal):
    return g.tril(diagonal)


@rule(torch.triu)
def triu(g, input, diagonal):
    return g.triu(diagonal)
