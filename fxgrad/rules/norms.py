"""Statistics and normalisations.

Every normalisation standardises its input over some dims, x̂ = (x - mean)·rstd with rstd =
1/√(var + eps), then scales and shifts it; its input gradient is the one of standardising:
rstd·(gx - mean(gx) - x̂·mean(gx·x̂)), gx being the gradient that reaches x̂.
"""

import torch
import torch.nn.functional as F

from ..graph import value
from ..shapes import along_channels, last_dims, unreduce
from . import NotDifferentiable, rule
from .reduction import reduced_count


def _centered(input, dim):
    return input - (input.mean() if dim is None else input.mean(dim, keepdim=True))


@rule(torch.var, in_float32=True, math="y = var(x): ∂x = 2·∂y ⊙ (x − mean(x)) / (N − correction)")
def var(g, input, dim, correction, keepdim):
    # d Σ(x - x̄)²/(N - c) = 2(x - x̄)/(N - c)
    return 2 * unreduce(g, input, dim, keepdim) * _centered(input, dim) / (reduced_count(input, dim) - correction)


@rule(torch.std, in_float32=True, math="y = std(x): ∂x = ∂y ⊙ (x − mean(x)) / ((N − correction) y)")
def std(g, input, dim, correction, keepdim, *, out):
    # d √var = d var / (2·std); 0 where std = 0, as torch defines it
    return var(torch.where(out == 0, 0.0, g / (2 * out)), input, dim, correction, keepdim)


@rule(torch.logsumexp, in_float32=True, math="y = log Σ exp(x): ∂x = ∂y ⊙ exp(x − y)")
def logsumexp(g, input, dim, keepdim, *, out):
    # d log Σ eˣ = eˣ / Σ eˣ = e^(x - out)
    return unreduce(g, input, dim, keepdim) * torch.exp(input - unreduce(out, input, dim, keepdim))


def _standardized(input, dims, eps):
    """(x̂, rstd) over `dims`, with the biased variance."""
    rstd = torch.rsqrt(input.var(dims, correction=0, keepdim=True) + eps)
    return (input - input.mean(dims, keepdim=True)) * rstd, rstd


def _standardized_backward(gx, xhat, rstd, dims):
    # d x̂ = rstd·(gx - mean(gx) - x̂·mean(gx·x̂)) over the standardised dims
    return rstd * (gx - gx.mean(dims, keepdim=True) - xhat * (gx * xhat).mean(dims, keepdim=True))


def _affine_backward(g, xhat, weight, bias, dims):
    """The gradients of weight and bias in x̂·weight + bias, summed over `dims` (None: the engine
    sums the leading dims they were broadcast along)."""
    def summed(grad):
        return grad if dims is None else grad.sum(dims)

    return None if weight is None else summed(g * xhat), None if bias is None else summed(g)


@rule(F.layer_norm, in_float32=True,
      math=("y = x̂ ⊙ w + b, x̂ = (x − mean(x)) r, "
            "r = 1/√(var(x) + ε): ∂x = r ⊙ (∂x̂ − mean(∂x̂) − x̂ ⊙ mean(∂x̂ ⊙ x̂)), ∂x̂ = ∂y ⊙ w, "
            "∂w = Σ ∂y ⊙ x̂, ∂b = Σ ∂y"))
def layer_norm(g, input, normalized_shape, weight, bias, eps):
    dims = last_dims(len(value(normalized_shape)))
    xhat, rstd = _standardized(input, dims, eps)
    grad_input = _standardized_backward(g if weight is None else g * weight, xhat, rstd, dims)
    return grad_input, None, *_affine_backward(g, xhat, weight, bias, None)


@rule(F.rms_norm, in_float32=True,
      math=("y = x̂ ⊙ w, x̂ = x r, r = 1/√(mean(x²) + ε): ∂x = r ⊙ (∂x̂ − x̂ ⊙ mean(∂x̂ ⊙ x̂)), "
            "∂x̂ = ∂y ⊙ w, ∂w = Σ ∂y ⊙ x̂"))
def rms_norm(g, input, normalized_shape, weight, eps):
    # x̂ = x·rrms, rrms = 1/√(mean(x²) + eps): d x̂ = rrms·(gx - x̂·mean(gx·x̂))
    dims = last_dims(len(value(normalized_shape)))
    rrms = torch.rsqrt((input * input).mean(dims, keepdim=True) + eps)
    xhat = input * rrms
    gx = g if weight is None else g * weight
    grad_input = rrms * (gx - xhat * (gx * xhat).mean(dims, keepdim=True))
    return grad_input, None, None if weight is None else g * xhat


def _all_but_channels(input) -> tuple:
    return (0, *range(2, value(input).ndim))


@rule(F.group_norm, in_float32=True,
      math=("layer norm over each group of channels: ∂x = r ⊙ (∂x̂ − mean(∂x̂) − x̂ ⊙ mean(∂x̂ ⊙ x̂)), "
            "∂w = Σ ∂y ⊙ x̂, ∂b = Σ ∂y"))
def group_norm(g, input, num_groups, weight, bias, eps):
    # standardised over each group of channels (and the positions): (N, C, ...) as (N, G, C/G·...)
    groups = input.reshape(input.size(0), num_groups, -1)
    xhat, rstd = _standardized(groups, -1, eps)
    gx = g if weight is None else g * along_channels(weight, input)
    grad_input = _standardized_backward(gx.reshape(groups.shape), xhat, rstd, -1).reshape(input.shape)
    return grad_input, None, *_affine_backward(g, xhat.reshape(input.shape), weight, bias, _all_but_channels(input))


@rule(F.batch_norm, in_float32=True,
      math=("y = x̂ ⊙ w + b over the batch's statistics: ∂x = r ⊙ (∂x̂ − mean(∂x̂) − x̂ ⊙ mean(∂x̂ ⊙ x̂)), "
            "∂w = Σ ∂y ⊙ x̂, ∂b = Σ ∂y; with running statistics ∂x = ∂y ⊙ w r"))
def batch_norm(g, input, running_mean, running_var, weight, bias, eps):
    dims = _all_but_channels(input)
    gx = g if weight is None else g * along_channels(weight, input)
    if running_mean is None:  # standardised by the batch's statistics, per channel
        xhat, rstd = _standardized(input, dims, eps)
        grad_input = _standardized_backward(gx, xhat, rstd, dims)
    else:  # by constants: an affine map
        rstd = torch.rsqrt(along_channels(running_var, input) + eps)
        xhat = (input - along_channels(running_mean, input)) * rstd
        grad_input = gx * rstd
    stats = NotDifferentiable("running_mean"), NotDifferentiable("running_var")
    return grad_input, *stats, *_affine_backward(g, xhat, weight, bias, dims)
