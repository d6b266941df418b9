"""Cumulative sums and products: each input element reaches every later output."""

import torch

from ..graph import value
from . import rule


def _reversed_cumsum(x, dim):
    """Σ over the elements at and after each one along `dim`."""
    return x.flip(dim).cumsum(dim).flip(dim)


@rule(torch.cumsum, math="y = cumsum(x): ∂x = reversed cumsum(∂y)")
def cumsum(g, input, dim):
    return _reversed_cumsum(g, dim)


@rule(torch.cumprod, math="y = cumprod(x): ∂x = reversed cumsum(∂y ⊙ y) / x, zeros of x taken apart")
def cumprod(g, input, dim, *, out):
    # ∂out_j/∂x_k = Π_{i ≤ j, i ≠ k} x_i for j ≥ k, that is out_j / x_k where x_k ≠ 0. At the
    # first zero along dim the products leave that zero out (a cumprod with it replaced by 1);
    # after it, every product holds it, so the gradient there is 0.
    zero = input == 0
    first_zero = zero & (zero.cumsum(dim) == 1)
    without_it = torch.where(first_zero, 1.0, input).cumprod(dim)
    return torch.where(first_zero, _reversed_cumsum(g * without_it, dim),
                       torch.where(zero, 0.0, _reversed_cumsum(g * out, dim) / input))


@rule(torch.logcumsumexp, in_float32=True,
      math="y = log Σ_{j≤i} eˣʲ: ∂xⱼ = Σ_{i≥j} ∂yᵢ e^{xⱼ − yᵢ}")
def logcumsumexp(g, input, dim, *, out):
    # dℓ/dx_k = Σ_{j ≥ k} g_j·exp(x_k - out_j), summed in log space as torch does, the positive
    # and the negative g apart (the log of 0 is the dtype's lowest number)
    if value(input).ndim == 0:
        return g
    lowest = torch.finfo(value(input).dtype).min
    log_g = g.abs().log()
    positive = torch.where(g > 0, log_g, lowest)
    negative = torch.where(g < 0, log_g, lowest)
    return ((_reversed_logcumsumexp(positive - out, dim) + input).exp()
            - (_reversed_logcumsumexp(negative - out, dim) + input).exp())


def _reversed_logcumsumexp(x, dim):
    return x.flip(dim).logcumsumexp(dim).flip(dim)
