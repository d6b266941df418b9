"""Elementwise arithmetic and activations.

Arguments may be Python numbers (`2 * x`, `x ** 2`), or sizes read at run time; the gradient
computed for them is discarded by the engine, so most formulas need no special case for it.
"""

import math

import torch
import torch.nn.functional as F

from ..graph import is_tensor, value
from . import rule


@rule(torch.add)
def add(g, input, other):
    return g, g


@rule(torch.sub)
def sub(g, input, other):
    return g, -g


@rule(torch.mul)
def mul(g, input, other):
    return g * other, g * input


@rule(torch.div)
def div(g, input, other, *, out):
    # d(a/b)/db = -a/b² = -out/b
    return g / other, -g * out / other


@rule(torch.neg)
def neg(g, input):
    return -g


@rule(torch.pow)
def pow(g, input, exponent, *, out):
    # d aᵇ/da = b·aᵇ⁻¹, and 0 where b = 0 (even at a = 0, as torch defines it)
    if is_tensor(exponent):
        grad_input = g * torch.where(exponent == 0, 0.0, exponent * input ** (exponent - 1))
    else:
        grad_input = None if value(exponent) == 0 else g * exponent * input ** (exponent - 1)
    if not is_tensor(exponent):
        return grad_input, None
    # d aᵇ/db = aᵇ·log(a), and 0 where a = 0 and b ≥ 0 (the limit, as torch defines it)
    if not is_tensor(input):
        if input == 0:
            return grad_input, g * torch.where(exponent >= 0, 0.0, out * -math.inf)
        return grad_input, g * out * (math.log(input) if input > 0 else math.nan)
    if value(input).dtype != value(out).dtype:  # take the log at the result's precision
        input = input.to(value(out).dtype)
    return grad_input, g * torch.where((input == 0) & (exponent >= 0), 0.0, out * torch.log(input))


@rule(torch.exp)
def exp(g, input, *, out):
    return g * out


@rule(torch.log)
def log(g, input):
    return g / input


@rule(torch.sqrt)
def sqrt(g, input, *, out):
    return g / (2 * out)


@rule(torch.rsqrt)
def rsqrt(g, input, *, out):
    # d x^(-1/2) = -1/2 · x^(-3/2) = -1/2 · out³
    return -0.5 * g * out * out * out


@rule(torch.abs)
def abs(g, input):
    return g * torch.sign(input)


@rule(torch.tanh)
def tanh(g, input, *, out):
    return g * (1 - out * out)


@rule(torch.sigmoid)
def sigmoid(g, input, *, out):
    return g * out * (1 - out)


@rule(torch.relu)
def relu(g, input, *, out):
    # 0 where the output is 0 (at x = 0 too), as torch's threshold_backward does
    return torch.where(out <= 0, 0.0, g)


@rule(F.silu)
def silu(g, input):
    # d x·σ(x) = σ(x) + x·σ(x)·(1 - σ(x)) = σ(x)·(1 + x·(1 - σ(x))); from the input alone, so
    # that a training step keeps the input only, as torch's silu_backward does
    sigmoid = torch.sigmoid(input)
    return g * sigmoid * (1 + input * (1 - sigmoid))


@rule(F.gelu)
def gelu(g, input, approximate):
    if approximate == "tanh":
        # gelu(x) ≈ x/2 · (1 + tanh(u)), u = √(2/π)·(x + 0.044715·x³)
        inner = math.sqrt(2 / math.pi) * (input + 0.044715 * input * input * input)
        tanh_inner = torch.tanh(inner)
        d_inner = math.sqrt(2 / math.pi) * (1 + 3 * 0.044715 * input * input)
        return g * (0.5 * (1 + tanh_inner) + 0.5 * input * (1 - tanh_inner * tanh_inner) * d_inner)
    # gelu(x) = x·Φ(x): d = Φ(x) + x·φ(x)
    cdf = 0.5 * (1 + torch.erf(input / math.sqrt(2)))
    pdf = torch.exp(-0.5 * input * input) / math.sqrt(2 * math.pi)
    return g * (cdf + input * pdf)


@rule(torch.softmax)
def softmax(g, input, dim, *, out):
    # Jacobian-vector product: y ⊙ (g - Σ g⊙y), never the S×S Jacobian diag(y) - y yᵀ
    return out * (g - (g * out).sum(dim, keepdim=True))


@rule(torch.log_softmax)
def log_softmax(g, input, dim, *, out):
    return g - torch.exp(out) * g.sum(dim, keepdim=True)
