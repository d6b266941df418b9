"""Distances: the gradient of ‖x1ᵢ − x2ⱼ‖ₚ goes to both rows along their difference; where the
distance is 0 it is 0, as torch defines it."""

import math

import torch

from . import rule


@rule(torch.cdist, in_float32=True,
      math="D = cdist(x, y): ∂x = Σⱼ ∂D ⊙ sgn(x − yⱼ) |x − yⱼ|ᵖ⁻¹ / Dᵖ⁻¹ (p = 2: (∂D / D) (x − y)), 0 where D = 0")
def cdist(g, x1, x2, p, compute_mode, *, out):
    if p == 0:  # the count of differing coordinates: piecewise constant
        return None, None
    if p == 2:  # ∂d/∂x1ᵢ = (x1ᵢ − x2ⱼ)/d, summed over j as a matrix product: no pairwise differences kept
        ratio = torch.where(out == 0, 0.0, g / out)
        return (x1 * ratio.sum(-1, keepdim=True) - ratio @ x2,
                x2 * ratio.sum(-2).unsqueeze(-1) - ratio.mT @ x1)
    diff = x1.unsqueeze(-2) - x2.unsqueeze(-3)  # (..., P, R, M)
    if p == 1:
        grad_diff = g.unsqueeze(-1) * diff.sign()
    elif p == math.inf:  # to every coordinate whose difference is the largest (each of tied ones, as torch)
        grad_diff = g.unsqueeze(-1) * diff.sign() * (diff.abs() == out.unsqueeze(-1))
    else:  # ∂d/∂diff = sign(diff)·|diff|^(p−1) / d^(p−1); 0 at a zero difference (p < 1 too)
        scale = torch.where(out == 0, 0.0, g / out.pow(p - 1)).unsqueeze(-1)
        grad_diff = torch.where(diff == 0, 0.0, diff.sign() * diff.abs().pow(p - 1)) * scale
    return grad_diff.sum(-2), -grad_diff.sum(-3)
