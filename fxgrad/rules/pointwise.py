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


@rule(torch.add, math="y = a + b: ∂a = ∂y, ∂b = ∂y")
def add(g, input, other):
    return g, g


@rule(torch.sub, math="y = a − b: ∂a = ∂y, ∂b = −∂y")
def sub(g, input, other):
    return g, -g


@rule(torch.mul, math="y = a ⊙ b: ∂a = ∂y ⊙ b, ∂b = ∂y ⊙ a")
def mul(g, input, other):
    return g * other, g * input


@rule(torch.div, math="y = a / b: ∂a = ∂y / b, ∂b = −∂y ⊙ y / b")
def div(g, input, other, *, out):
    # d(a/b)/db = -a/b² = -out/b
    return g / other, -g * out / other


@rule(torch.neg, math="y = −x: ∂x = −∂y")
def neg(g, input):
    return -g


@rule(torch.pow, math="y = aᵇ: ∂a = ∂y ⊙ b aᵇ⁻¹, ∂b = ∂y ⊙ y log(a)")
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


@rule(torch.exp, math="y = exp(x): ∂x = ∂y ⊙ y")
def exp(g, input, *, out):
    return g * out


@rule(torch.log, math="y = log(x): ∂x = ∂y / x")
def log(g, input):
    return g / input


@rule(torch.sqrt, math="y = √x: ∂x = ∂y / (2 y)")
def sqrt(g, input, *, out):
    return g / (2 * out)


@rule(torch.rsqrt, math="y = 1/√x: ∂x = −½ ∂y ⊙ y³")
def rsqrt(g, input, *, out):
    # d x^(-1/2) = -1/2 · x^(-3/2) = -1/2 · out³
    return -0.5 * g * out * out * out


@rule(torch.abs, math="y = |x|: ∂x = ∂y ⊙ sign(x)")
def abs(g, input):
    return g * torch.sign(input)


@rule(torch.tanh, math="y = tanh(x): ∂x = ∂y ⊙ (1 − y²)")
def tanh(g, input, *, out):
    return g * (1 - out * out)


@rule(torch.sigmoid, math="y = σ(x): ∂x = ∂y ⊙ y ⊙ (1 − y)")
def sigmoid(g, input, *, out):
    return g * out * (1 - out)


@rule(torch.relu, math="y = relu(x): ∂x = ∂y where y > 0, else 0")
def relu(g, input, *, out):
    # 0 where the output is 0 (at x = 0 too), as torch's threshold_backward does
    return torch.where(out <= 0, 0.0, g)


@rule(F.silu, in_float32=True, math="y = x σ(x): ∂x = ∂y ⊙ σ(x) ⊙ (1 + x ⊙ (1 − σ(x)))")
def silu(g, input):
    # d x·σ(x) = σ(x) + x·σ(x)·(1 - σ(x)) = σ(x)·(1 + x·(1 - σ(x))); from the input alone, so
    # that a training step keeps the input only, as torch's silu_backward does
    sigmoid = torch.sigmoid(input)
    return g * sigmoid * (1 + input * (1 - sigmoid))


@rule(F.gelu, in_float32=True, math="y = x Φ(x): ∂x = ∂y ⊙ (Φ(x) + x φ(x)); tanh approximation: its derivative")
def gelu(g, input, approximate):
    if approximate == "tanh":
        # gelu(x) ≈ x/2 · (1 + tanh(u)), u = √(2/π)·(x + 0.044715·x³)
        inner = math.sqrt(2 / math.pi) * (input + 0.044715 * input * input * input)
        tanh_inner = torch.tanh(inner)
        d_inner = math.sqrt(2 / math.pi) * (1 + 3 * 0.044715 * input * input)
        return g * (0.5 * (1 + tanh_inner) + 0.5 * input * (1 - tanh_inner * tanh_inner) * d_inner)
    # gelu(x) = x·Φ(x): d = Φ(x) + x·φ(x), with Φ(x) = (1 + erf(x/√2))/2 the normal CDF and
    # φ(x) = e^(-x²/2)/√(2π); through erf, as torch's kernel, not special.ndtr (a composite of
    # several passes, about 12× exp on CPU)
    cdf = (1 + torch.erf(input * (1 / math.sqrt(2)))) * 0.5
    x_pdf = input * torch.exp(input * input * -0.5) * (1 / math.sqrt(2 * math.pi))
    return g * (cdf + x_pdf)


@rule(torch.erf, in_float32=True, math="y = erf(x): ∂x = ∂y ⊙ 2/√π exp(−x²)")
def erf(g, input):
    # d erf(x) = 2/√π · exp(-x²)
    return g * (2 / math.sqrt(math.pi)) * torch.exp(-input * input)


@rule(torch.sin, math="y = sin(x): ∂x = ∂y ⊙ cos(x)")
def sin(g, input):
    return g * torch.cos(input)


@rule(torch.cos, math="y = cos(x): ∂x = −∂y ⊙ sin(x)")
def cos(g, input):
    return -g * torch.sin(input)


@rule(torch.log1p, math="y = log(1 + x): ∂x = ∂y / (1 + x)")
def log1p(g, input):
    return g / (1 + input)


@rule(torch.expm1, math="y = exp(x) − 1: ∂x = ∂y ⊙ (y + 1)")
def expm1(g, input, *, out):
    # d (eˣ - 1) = eˣ = out + 1
    return g * (out + 1)


@rule(torch.tan, math="y = tan(x): ∂x = ∂y ⊙ (1 + y²)")
def tan(g, input, *, out):
    return g * (1 + out * out)


@rule(torch.asin, in_float32=True, math="y = asin(x): ∂x = ∂y / √(1 − x²)")
def asin(g, input):
    # 1/√(1 - x²): inf at ±1 and nan beyond, as torch's autograd
    return g * torch.rsqrt(1 - input * input)


@rule(torch.acos, in_float32=True, math="y = acos(x): ∂x = −∂y / √(1 − x²)")
def acos(g, input):
    return -g * torch.rsqrt(1 - input * input)


@rule(torch.atan, in_float32=True, math="y = atan(x): ∂x = ∂y / (1 + x²)")
def atan(g, input):
    return g / (1 + input * input)


@rule(torch.sinh, math="y = sinh(x): ∂x = ∂y ⊙ cosh(x)")
def sinh(g, input):
    return g * torch.cosh(input)


@rule(torch.cosh, math="y = cosh(x): ∂x = ∂y ⊙ sinh(x)")
def cosh(g, input):
    return g * torch.sinh(input)


@rule(torch.asinh, in_float32=True, math="y = asinh(x): ∂x = ∂y / √(x² + 1)")
def asinh(g, input):
    return g * torch.rsqrt(input * input + 1)


@rule(torch.acosh, in_float32=True, math="y = acosh(x): ∂x = ∂y / √(x² − 1)")
def acosh(g, input):
    # 1/√(x² - 1): inf at 1 and nan below, as torch's autograd
    return g * torch.rsqrt(input * input - 1)


@rule(torch.atanh, in_float32=True, math="y = atanh(x): ∂x = ∂y / (1 − x²)")
def atanh(g, input):
    return g / (1 - input * input)


@rule(torch.log2, math="y = log₂(x): ∂x = ∂y / (x log 2)")
def log2(g, input):
    return g / (input * math.log(2))


@rule(torch.log10, math="y = log₁₀(x): ∂x = ∂y / (x log 10)")
def log10(g, input):
    return g / (input * math.log(10))


@rule(torch.special.ndtr, in_float32=True, math="y = Φ(x): ∂x = ∂y ⊙ exp(−x²/2)/√(2π)")
def ndtr(g, input):
    # d Φ(x) = φ(x) = e^(-x²/2)/√(2π)
    return g * torch.exp(input * input * -0.5) * (1 / math.sqrt(2 * math.pi))


@rule(torch.xlogy, math="y = x log b: ∂x = ∂y ⊙ log b (0 where x = 0), ∂b = ∂y ⊙ x / b")
def xlogy(g, input, other):
    # as torch's autograd: d/dx = log y, 0 where x = 0 (whatever y); d/dy = x/y, NaN at x = y = 0
    grad_input = g * torch.xlogy(input != 0, other) if is_tensor(input) else None
    return grad_input, g * input / other


@rule(torch.atan2, in_float32=True, math="y = atan2(a, b): ∂a = ∂y ⊙ b/(a² + b²), ∂b = −∂y ⊙ a/(a² + b²)")
def atan2(g, input, other):
    # d atan2(a, b) = (b, -a)/(a² + b²), and 0 at (0, 0), as torch's autograd takes it
    squares = input * input + other * other
    reciprocal = torch.where(squares == 0, 0.0, 1 / squares)
    return g * other * reciprocal, g * -input * reciprocal


@rule(torch.fmod, math="y = a − trunc(a/b) b: ∂a = ∂y, ∂b = −∂y ⊙ trunc(a/b)")
def fmod(g, input, other):
    # fmod(a, b) = a - trunc(a/b)·b, with trunc(a/b) flat between its jumps
    return g, -g * torch.div(input, other, rounding_mode="trunc") if is_tensor(other) else None


@rule(torch.remainder, math="y = a − floor(a/b) b: ∂a = ∂y, ∂b = −∂y ⊙ floor(a/b)")
def remainder(g, input, other):
    # remainder(a, b) = a - floor(a/b)·b; torch's autograd has no derivative for a number's
    # remainder by a tensor (`2 % x`)
    if not is_tensor(input):
        return None, NotDifferentiable("divisor, where the dividend is a number")
    return g, -g * torch.div(input, other, rounding_mode="floor") if is_tensor(other) else None


@rule(torch.sign, torch.floor, torch.ceil, torch.trunc, torch.round,
      math="y = sign, floor, ceil, trunc or round of x: ∂x = 0")
def piecewise_constant(g, input, *options):
    return None  # flat between the jumps; torch takes 0 at the jumps too


@rule(F.softplus, in_float32=True, math="y = log(1 + exp(βx))/β: ∂x = ∂y ⊙ σ(βx), ∂y where βx > threshold")
def softplus(g, input, beta, threshold):
    # d log(1 + e^(βx))/β = σ(βx); where βx > threshold softplus is x itself, so g passes as is
    scaled = input * beta
    return torch.where(scaled > threshold, g, g * torch.sigmoid(scaled))


@rule(F.leaky_relu, math="y = x where x > 0, else αx: ∂x = ∂y where x > 0, else α ∂y")
def leaky_relu(g, input, negative_slope):
    # the slope at x = 0 is the negative one, as torch's leaky_relu_backward takes it
    return torch.where(input > 0, g, g * negative_slope)


def _elu(g, input, alpha, scale, input_scale):
    # elu(x) = scale · (x if x > 0 else alpha · (e^(input_scale·x) - 1)); at x = 0 the left slope, as torch
    return torch.where(input <= 0, g * (scale * alpha * input_scale) * torch.exp(input * input_scale), g * scale)


@rule(F.elu, in_float32=True, math="y = x where x > 0, else α(exp(x) − 1): ∂x = ∂y where x > 0, else ∂y ⊙ α exp(x)")
def elu(g, input, alpha):
    return _elu(g, input, alpha, 1, 1)


@rule(F.celu, in_float32=True, math="y = x where x > 0, else α(exp(x/α) − 1): ∂x = ∂y where x > 0, else ∂y ⊙ exp(x/α)")
def celu(g, input, alpha):
    # celu is elu with input_scale = 1/alpha, which torch's backward takes from alpha rounded to float32
    return _elu(g, input, alpha, 1, 1 / torch.tensor(alpha, dtype=torch.float32).item())


@rule(F.selu, in_float32=True,
      math="y = λ x where x > 0, else λα(exp(x) − 1): ∂x = λ ∂y where x > 0, else ∂y ⊙ λα exp(x)")
def selu(g, input):
    return _elu(g, input, SELU_ALPHA, SELU_SCALE, 1)


@rule(F.hardtanh, math="y = clamp(x, lo, hi): ∂x = ∂y where lo < x < hi, else 0")
def hardtanh(g, input, min_val, max_val):
    # 1 strictly inside the bounds, 0 on them and outside, as torch's hardtanh_backward
    return torch.where((input > min_val) & (input < max_val), g, 0.0)


@rule(F.hardswish, math="y = x relu6(x + 3)/6: ∂x = ∂y ⊙ (x/3 + ½) where −3 < x < 3, ∂y from 3 on, 0 below")
def hardswish(g, input):
    # x·relu6(x + 3)/6: x/3 + 1/2 strictly inside (-3, 3), 0 below, 1 from 3 on, as torch's autograd
    return torch.where(input <= -3, 0.0, torch.where(input < 3, g * (input / 3 + 0.5), g))


# torch's hardsigmoid_backward multiplies by 1/6 rounded to float32, in every dtype
_ONE_SIXTH_IN_FLOAT32 = torch.tensor(1 / 6, dtype=torch.float32).item()


@rule(F.hardsigmoid, math="y = relu6(x + 3)/6: ∂x = ∂y/6 where −3 < x < 3, else 0")
def hardsigmoid(g, input):
    # relu6(x + 3)/6: 1/6 strictly inside (-3, 3)
    return torch.where((input > -3) & (input < 3), g * _ONE_SIXTH_IN_FLOAT32, 0.0)


@rule(torch.softmax, in_float32=True, math="y = softmax(x): ∂x = y ⊙ (∂y − rowsum(∂y ⊙ y))")
def softmax(g, input, dim, *, out):
    # Jacobian-vector product: y ⊙ (g - Σ g⊙y), never the S×S Jacobian diag(y) - y yᵀ
    return out * (g - (g * out).sum(dim, keepdim=True))


@rule(torch.log_softmax, in_float32=True, math="y = log softmax(x): ∂x = ∂y − exp(y) rowsum(∂y)")
def log_softmax(g, input, dim, *, out):
    return g - torch.exp(out) * g.sum(dim, keepdim=True)


@rule(torch.lerp, math="y = a + w ⊙ (b − a): ∂a = ∂y ⊙ (1 − w), ∂b = ∂y ⊙ w, ∂w = ∂y ⊙ (b − a)")
def lerp(g, input, end, weight):
    # input + w·(end - input)
    return g * (1 - weight), g * weight, g * (end - input)
