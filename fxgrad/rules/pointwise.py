"""Elementwise arithmetic, functions and activations.

Arguments may be Python numbers (`2 * x`, `x ** 2`), or sizes read at run time; the gradient
computed for them is discarded by the engine, so most formulas need no special case for it.
"""

import math

import torch
import torch.nn.functional as F

from ..canon.pointwise import SELU_ALPHA, SELU_SCALE
from ..graph import is_tensor, value
from . import NotDifferentiable, rule


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


@rule(F.silu, in_float32=True)
def silu(g, input):
    # d x·σ(x) = σ(x) + x·σ(x)·(1 - σ(x)) = σ(x)·(1 + x·(1 - σ(x))); from the input alone, so
    # that a training step keeps the input only, as torch's silu_backward does
    sigmoid = torch.sigmoid(input)
    return g * sigmoid * (1 + input * (1 - sigmoid))


@rule(F.gelu, in_float32=True)
def gelu(g, input, approximate):
    if approximate == "tanh":
        # gelu(x) ≈ x/2 · (1 + tanh(u)), u = √(2/π)·(x + 0.044715·x³)
        inner = math.sqrt(2 / math.pi) * (input + 0.044715 * input * input * input)
        tanh_inner = torch.tanh(inner)
        d_inner = math.sqrt(2 / math.pi) * (1 + 3 * 0.044715 * input * input)
        return g * (0.5 * (1 + tanh_inner) + 0.5 * input * (1 - tanh_inner * tanh_inner) * d_inner)
    # gelu(x) = x·Φ(x): d = Φ(x) + x·φ(x), with Φ the normal CDF (ndtr) and φ(x) = e^(-x²/2)/√(2π);
    # eight elementwise ops, each a pass over the tensor in eager mode
    cdf = torch.special.ndtr(input)
    x_pdf = input * torch.exp(input * input * -0.5) * (1 / math.sqrt(2 * math.pi))
    return g * (cdf + x_pdf)


@rule(torch.erf, in_float32=True)
def erf(g, input):
    # d erf(x) = 2/√π · exp(-x²)
    return g * (2 / math.sqrt(math.pi)) * torch.exp(-input * input)


@rule(torch.sin)
def sin(g, input):
    return g * torch.cos(input)


@rule(torch.cos)
def cos(g, input):
    return -g * torch.sin(input)


@rule(torch.log1p)
def log1p(g, input):
    return g / (1 + input)


@rule(torch.expm1)
def expm1(g, input, *, out):
    # d (eˣ - 1) = eˣ = out + 1
    return g * (out + 1)


@rule(torch.tan)
def tan(g, input, *, out):
    return g * (1 + out * out)


@rule(torch.asin, in_float32=True)
def asin(g, input):
    # 1/√(1 - x²): inf at ±1 and nan beyond, as torch's autograd
    return g * torch.rsqrt(1 - input * input)


@rule(torch.acos, in_float32=True)
def acos(g, input):
    return -g * torch.rsqrt(1 - input * input)


@rule(torch.atan, in_float32=True)
def atan(g, input):
    return g / (1 + input * input)


@rule(torch.sinh)
def sinh(g, input):
    return g * torch.cosh(input)


@rule(torch.cosh)
def cosh(g, input):
    return g * torch.sinh(input)


@rule(torch.asinh, in_float32=True)
def asinh(g, input):
    return g * torch.rsqrt(input * input + 1)


@rule(torch.acosh, in_float32=True)
def acosh(g, input):
    # 1/√(x² - 1): inf at 1 and nan below, as torch's autograd
    return g * torch.rsqrt(input * input - 1)


@rule(torch.atanh, in_float32=True)
def atanh(g, input):
    return g / (1 - input * input)


@rule(torch.log2)
def log2(g, input):
    return g / (input * math.log(2))


@rule(torch.log10)
def log10(g, input):
    return g / (input * math.log(10))


@rule(torch.special.ndtr, in_float32=True)
def ndtr(g, input):
    # d Φ(x) = φ(x) = e^(-x²/2)/√(2π)
    return g * torch.exp(input * input * -0.5) * (1 / math.sqrt(2 * math.pi))


@rule(torch.xlogy)
def xlogy(g, input, other):
    # as torch's autograd: d/dx = log y, 0 where x = 0 (whatever y); d/dy = x/y, NaN at x = y = 0
    grad_input = g * torch.xlogy(input != 0, other) if is_tensor(input) else None
    return grad_input, g * input / other


@rule(torch.atan2, in_float32=True)
def atan2(g, input, other):
    # d atan2(a, b) = (b, -a)/(a² + b²), and 0 at (0, 0), as torch's autograd takes it
    squares = input * input + other * other
    reciprocal = torch.where(squares == 0, 0.0, 1 / squares)
    return g * other * reciprocal, g * -input * reciprocal


@rule(torch.fmod)
def fmod(g, input, other):
    # fmod(a, b) = a - trunc(a/b)·b, with trunc(a/b) flat between its jumps
    return g, -g * torch.div(input, other, rounding_mode="trunc") if is_tensor(other) else None


@rule(torch.remainder)
def remainder(g, input, other):
    # remainder(a, b) = a - floor(a/b)·b; torch's autograd has no derivative for a number's
    # remainder by a tensor (`2 % x`)
    if not is_tensor(input):
        return None, NotDifferentiable("divisor, where the dividend is a number")
    return g, -g * torch.div(input, other, rounding_mode="floor") if is_tensor(other) else None


@rule(torch.sign, torch.floor, torch.ceil, torch.trunc, torch.round)
def piecewise_constant(g, input, *options):
    return None  # flat between the jumps; torch takes 0 at the jumps too


@rule(F.softplus, in_float32=True)
def softplus(g, input, beta, threshold):
    # d log(1 + e^(βx))/β = σ(βx); where βx > threshold softplus is x itself, so g passes as is
    scaled = input * beta
    return torch.where(scaled > threshold, g, g * torch.sigmoid(scaled))


@rule(F.leaky_relu)
def leaky_relu(g, input, negative_slope):
    # the slope at x = 0 is the negative one, as torch's leaky_relu_backward takes it
    return torch.where(input > 0, g, g * negative_slope)


def _elu(g, input, alpha, scale, input_scale):
    # elu(x) = scale · (x if x > 0 else alpha · (e^(input_scale·x) - 1)); at x = 0 the left slope, as torch
    return torch.where(input <= 0, g * (scale * alpha * input_scale) * torch.exp(input * input_scale), g * scale)


@rule(F.elu, in_float32=True)
def elu(g, input, alpha):
    return _elu(g, input, alpha, 1, 1)


@rule(F.celu, in_float32=True)
def celu(g, input, alpha):
    # celu is elu with input_scale = 1/alpha, which torch's backward takes from alpha rounded to float32
    return _elu(g, input, alpha, 1, 1 / torch.tensor(alpha, dtype=torch.float32).item())


@rule(F.selu, in_float32=True)
def selu(g, input):
    return _elu(g, input, SELU_ALPHA, SELU_SCALE, 1)


@rule(F.hardtanh)
def hardtanh(g, input, min_val, max_val):
    # 1 strictly inside the bounds, 0 on them and outside, as torch's hardtanh_backward
    return torch.where((input > min_val) & (input < max_val), g, 0.0)


@rule(F.hardswish)
def hardswish(g, input):
    # x·relu6(x + 3)/6: x/3 + 1/2 strictly inside (-3, 3), 0 below, 1 from 3 on, as torch's autograd
    return torch.where(input <= -3, 0.0, torch.where(input < 3, g * (input / 3 + 0.5), g))


# torch's hardsigmoid_backward multiplies by 1/6 rounded to float32, in every dtype
_ONE_SIXTH_IN_FLOAT32 = torch.tensor(1 / 6, dtype=torch.float32).item()


@rule(F.hardsigmoid)
def hardsigmoid(g, input):
    # relu6(x + 3)/6: 1/6 strictly inside (-3, 3)
    return torch.where((input > -3) & (input < 3), g * _ONE_SIXTH_IN_FLOAT32, 0.0)


@rule(torch.softmax, in_float32=True)
def softmax(g, input, dim, *, out):
    # Jacobian-vector product: y ⊙ (g - Σ g⊙y), never the S×S Jacobian diag(y) - y yᵀ
    return out * (g - (g * out).sum(dim, keepdim=True))


@rule(torch.log_softmax, in_float32=True)
def log_softmax(g, input, dim, *, out):
    return g - torch.exp(out) * g.sum(dim, keepdim=True)
