"""Cumulative sums and products: each input element reaches every later output."""

import torch

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
