"""Matrix products and dimension permutations."""

import torch

from ..graph import value
from . import rule


@rule(torch.matmul, math="y = a b: ∂a = ∂y bᵀ, ∂b = aᵀ ∂y")
def matmul(g, input, other):
    # Operands are matrices or batches of them (1-D ones were promoted by canon); batch dims
    # that broadcasting added are summed away by the engine.
    if value(other).ndim == 2 and value(input).ndim > 2:
        # one matrix for a whole batch (a linear layer): Σ_b x_bᵀ g_b is one product, with the
        # batch folded into rows, rather than a batch of products summed
        return g @ other.mT, input.flatten(0, -2).mT @ g.flatten(0, -2)
    return g @ other.mT, input.mT @ g


@rule(torch.transpose, math="y = xᵀ: ∂x = ∂yᵀ")
def transpose(g, input, dim0, dim1):
    return g.transpose(dim0, dim1)


@rule(torch.permute, math="y = permute(x, p): ∂x = permute(∂y, p⁻¹)")
def permute(g, input, dims):
    ndim = len(dims)
    inverse = sorted(range(ndim), key=lambda i: dims[i] % ndim)
    return g.permute(*inverse) if ndim else g
