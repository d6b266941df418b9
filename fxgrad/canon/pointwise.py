"""Elementwise arithmetic, functions and activations, and softmax."""

import operator
from typing import Callable

import torch
import torch.nn.functional as F

from ..graph import value
from .conversion import convert
from .registry import aten, call, define, emit, lowers, lowers_directly, static_dim, unsupported_argument

define({
    torch.add: lambda input, other: input + other,
    torch.sub: lambda input, other: input - other,
    torch.mul: lambda input, other: input * other,
    torch.div: lambda input, other: input / other,
    torch.neg: lambda input: -input,
    torch.pow: lambda input, exponent: input**exponent,
    torch.exp: lambda input: torch.exp(input),
    torch.log: lambda input: torch.log(input),
    torch.sqrt: lambda input: torch.sqrt(input),
    torch.rsqrt: lambda input: torch.rsqrt(input),
    torch.abs: lambda input: torch.abs(input),
    torch.tanh: lambda input: torch.tanh(input),
    torch.sigmoid: lambda input: torch.sigmoid(input),
    torch.relu: lambda input: torch.relu(input),
    F.silu: lambda input: call(F.silu, input),
    F.gelu: lambda input, approximate: F.gelu(input, approximate=approximate),
    torch.erf: lambda input: torch.erf(input),
    torch.sin: lambda input: torch.sin(input),
    torch.cos: lambda input: torch.cos(input),
    torch.log1p: lambda input: torch.log1p(input),
    torch.expm1: lambda input: torch.expm1(input),
    torch.tan: lambda input: torch.tan(input),
    torch.asin: lambda input: torch.asin(input),
    torch.acos: lambda input: torch.acos(input),
    torch.atan: lambda input: torch.atan(input),
    torch.sinh: lambda input: torch.sinh(input),
    torch.cosh: lambda input: torch.cosh(input),
    torch.asinh: lambda input: torch.asinh(input),
    torch.acosh: lambda input: torch.acosh(input),
    torch.atanh: lambda input: torch.atanh(input),
    torch.log2: lambda input: torch.log2(input),
    torch.log10: lambda input: torch.log10(input),
    torch.special.ndtr: lambda input: torch.special.ndtr(input),
    torch.atan2: lambda input, other: torch.atan2(input, other),
    torch.xlogy: lambda input, other: torch.xlogy(input, other),  # x·log y, 0 where x = 0
    torch.fmod: lambda input, other: torch.fmod(input, other),
    torch.remainder: lambda input, other: input % other,
    # piecewise constant: their gradient is zero
    torch.sign: lambda input: torch.sign(input),
    torch.floor: lambda input: torch.floor(input),
    torch.ceil: lambda input: torch.ceil(input),
    torch.trunc: lambda input: torch.trunc(input),
    torch.round: lambda input, decimals: (torch.round(input) if decimals == 0
                                          else call(torch.round, input, decimals=decimals)),
    F.softplus: lambda input, beta, threshold: call(F.softplus, input, beta=beta, threshold=threshold),
    F.leaky_relu: lambda input, negative_slope: call(F.leaky_relu, input, negative_slope),
    F.elu: lambda input, alpha: call(F.elu, input, alpha),
    F.celu: lambda input, alpha: call(F.celu, input, alpha),
    F.selu: lambda input: call(F.selu, input),
    F.hardtanh: lambda input, min_val, max_val: (call(F.relu6, input) if (min_val, max_val) == (0, 6)
                                                 else call(F.hardtanh, input, min_val, max_val)),
    F.hardswish: lambda input: call(F.hardswish, input),
    F.hardsigmoid: lambda input: call(F.hardsigmoid, input),
    torch.softmax: lambda input, dim: input.softmax(dim),
    torch.log_softmax: lambda input, dim: input.log_softmax(dim),
})


@lowers(torch.add, operator.add, "Tensor.add", aten.add)
def _add(input, other, *, alpha=1):
    return emit(torch.add, input, other if alpha == 1 else emit(torch.mul, other, alpha))


@lowers(torch.sub, torch.subtract, operator.sub, "Tensor.sub", "Tensor.subtract", aten.sub, aten.subtract)
def _sub(input, other, *, alpha=1):
    return emit(torch.sub, input, other if alpha == 1 else emit(torch.mul, other, alpha))


@lowers(torch.rsub, aten.rsub)
def _rsub(input, other, *, alpha=1):
    return _sub(other, input, alpha=alpha)


@lowers(torch.reciprocal, "Tensor.reciprocal", aten.reciprocal)
def _reciprocal(input):
    return emit(torch.div, 1, input)


@lowers(torch.div, torch.divide, torch.true_divide, operator.truediv, "Tensor.div", "Tensor.divide",
        "Tensor.true_divide", aten.div, aten.divide, aten.true_divide)
def _div(input, other, *, rounding_mode=None):
    if rounding_mode is not None:
        unsupported_argument(f"div(rounding_mode={rounding_mode!r}) (piecewise constant: its gradient is zero)")
    return emit(torch.div, input, other)


@lowers(torch.square, "Tensor.square", aten.square)
def _square(input):
    return emit(torch.pow, input, 2)


lowers_directly(torch.mul, torch.mul, torch.multiply, operator.mul, "Tensor.mul", "Tensor.multiply", aten.mul,
                aten.multiply)
lowers_directly(torch.neg, torch.neg, torch.negative, operator.neg, "Tensor.neg", "Tensor.negative", aten.neg,
                aten.negative)
lowers_directly(torch.pow, torch.pow, operator.pow, "Tensor.pow", aten.pow)
lowers_directly(torch.exp, torch.exp, "Tensor.exp", aten.exp)
lowers_directly(torch.log, torch.log, "Tensor.log", aten.log)
lowers_directly(torch.sqrt, torch.sqrt, "Tensor.sqrt", aten.sqrt)
lowers_directly(torch.rsqrt, torch.rsqrt, "Tensor.rsqrt", aten.rsqrt)
lowers_directly(torch.abs, torch.abs, torch.absolute, operator.abs, "Tensor.abs", "Tensor.absolute", aten.abs,
                aten.absolute)
lowers_directly(torch.tanh, torch.tanh, "Tensor.tanh", aten.tanh)
lowers_directly(torch.sigmoid, torch.sigmoid, "Tensor.sigmoid", aten.sigmoid)
lowers_directly(torch.relu, torch.relu, "Tensor.relu", aten.relu)
lowers_directly(torch.erf, torch.erf, "Tensor.erf", torch.special.erf, aten.erf, aten.special_erf)
lowers_directly(torch.sin, torch.sin, "Tensor.sin", aten.sin)
lowers_directly(torch.cos, torch.cos, "Tensor.cos", aten.cos)
lowers_directly(torch.log1p, torch.log1p, "Tensor.log1p", torch.special.log1p, aten.log1p, aten.special_log1p)
lowers_directly(torch.expm1, torch.expm1, "Tensor.expm1", torch.special.expm1, aten.expm1, aten.special_expm1)
lowers_directly(torch.tan, torch.tan, "Tensor.tan", aten.tan)
lowers_directly(torch.asin, torch.asin, torch.arcsin, "Tensor.asin", "Tensor.arcsin", aten.asin, aten.arcsin)
lowers_directly(torch.acos, torch.acos, torch.arccos, "Tensor.acos", "Tensor.arccos", aten.acos, aten.arccos)
lowers_directly(torch.atan, torch.atan, torch.arctan, "Tensor.atan", "Tensor.arctan", aten.atan, aten.arctan)
lowers_directly(torch.sinh, torch.sinh, "Tensor.sinh", aten.sinh)
lowers_directly(torch.cosh, torch.cosh, "Tensor.cosh", aten.cosh)
lowers_directly(torch.asinh, torch.asinh, torch.arcsinh, "Tensor.asinh", "Tensor.arcsinh", aten.asinh, aten.arcsinh)
lowers_directly(torch.acosh, torch.acosh, torch.arccosh, "Tensor.acosh", "Tensor.arccosh", aten.acosh, aten.arccosh)
lowers_directly(torch.atanh, torch.atanh, torch.arctanh, "Tensor.atanh", "Tensor.arctanh", aten.atanh, aten.arctanh)
lowers_directly(torch.log2, torch.log2, "Tensor.log2", aten.log2)
lowers_directly(torch.log10, torch.log10, "Tensor.log10", aten.log10)
lowers_directly(torch.special.ndtr, torch.special.ndtr, aten.special_ndtr)
lowers_directly(torch.atan2, torch.atan2, torch.arctan2, "Tensor.atan2", "Tensor.arctan2", aten.atan2, aten.arctan2)
lowers_directly(torch.xlogy, torch.xlogy, "Tensor.xlogy", aten.xlogy)
lowers_directly(torch.fmod, torch.fmod, "Tensor.fmod", aten.fmod)
lowers_directly(torch.remainder, torch.remainder, operator.mod, "Tensor.remainder", aten.remainder)
lowers_directly(torch.sign, torch.sign, "Tensor.sign", torch.sgn, "Tensor.sgn", aten.sign, aten.sgn)
lowers_directly(torch.floor, torch.floor, "Tensor.floor", aten.floor)
lowers_directly(torch.ceil, torch.ceil, "Tensor.ceil", aten.ceil)
lowers_directly(torch.trunc, torch.trunc, "Tensor.trunc", torch.fix, "Tensor.fix", aten.trunc, aten.fix)


@lowers(torch.round, "Tensor.round", aten.round)
def _round(input, *, decimals=0):
    return emit(torch.round, input, decimals)


@lowers(F.relu)
def _relu(input, inplace=False):
    return emit(torch.relu, input)


@lowers(F.silu, aten.silu)
def _silu(input, inplace=False):
    return emit(F.silu, input)


@lowers(F.gelu, aten.gelu)
def _gelu(input, approximate="none"):
    if approximate not in ("none", "tanh"):
        unsupported_argument(f"gelu(approximate={approximate!r})")
    return emit(F.gelu, input, approximate)


@lowers(F.softplus, aten.softplus)
def _softplus(input, beta=1, threshold=20):
    return emit(F.softplus, input, beta, threshold)


@lowers(F.leaky_relu, aten.leaky_relu)
def _leaky_relu(input, negative_slope=0.01, inplace=False):
    return emit(F.leaky_relu, input, negative_slope)


@lowers(F.elu)
def _elu(input, alpha=1.0, inplace=False):
    return emit(F.elu, input, alpha)


@lowers(F.celu, torch.celu, aten.celu)
def _celu(input, alpha=1.0, inplace=False):
    return emit(F.celu, input, alpha)


@lowers(F.selu, torch.selu, aten.selu)
def _selu(input, inplace=False):
    return emit(F.selu, input)


# The constants of SELU, as torch defines them (make_fx records selu as aten.elu with these)
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


@lowers(aten.elu)
def _aten_elu(input, alpha=1, scale=1, input_scale=1):
    if (alpha, scale, input_scale) == (SELU_ALPHA, SELU_SCALE, 1):
        return emit(F.selu, input)
    if (scale, input_scale) != (1, 1):
        unsupported_argument("elu with a scale or input_scale other than those of F.elu and F.selu")
    return emit(F.elu, input, alpha)


@lowers(F.hardtanh, aten.hardtanh)
def _hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False):
    return emit(F.hardtanh, input, min_val, max_val)


@lowers(F.relu6, aten.relu6)
def _relu6(input, inplace=False):
    return emit(F.hardtanh, input, 0, 6)


@lowers(F.hardswish, aten.hardswish)
def _hardswish(input, inplace=False):
    return emit(F.hardswish, input)


@lowers(F.hardsigmoid, aten.hardsigmoid)
def _hardsigmoid(input, inplace=False):
    return emit(F.hardsigmoid, input)


def _softmax_lowering(op: Callable) -> Callable:
    def lowering(input, dim=None, _stacklevel=3, dtype=None):
        if dim is None:
            unsupported_argument(f"{op.__name__} without `dim` (its implicit dim is deprecated)")
        # dtype=: the input cast to it first, as torch computes it
        return emit(op, convert(input, value(dtype)), static_dim(dim))

    return lowering


def _aten_softmax_lowering(op: Callable) -> Callable:
    def lowering(input, dim, dtype_or_half_to_float=None):
        # softmax.int takes a dtype; _softmax a half_to_float flag, a float16 input computed and
        # returned in float32
        dtype = torch.float32 if dtype_or_half_to_float is True else dtype_or_half_to_float or None
        return emit(op, convert(input, dtype), static_dim(dim))

    return lowering


lowers(torch.softmax, F.softmax, "Tensor.softmax")(_softmax_lowering(torch.softmax))
lowers(torch.log_softmax, F.log_softmax, "Tensor.log_softmax")(_softmax_lowering(torch.log_softmax))
lowers(aten.softmax, aten._softmax)(_aten_softmax_lowering(torch.softmax))
lowers(aten.log_softmax, aten._log_softmax)(_aten_softmax_lowering(torch.log_softmax))


# lerp, addcmul and addcdiv: written out of their parts, lerp an op of its own (its kernel picks
# one of two formulas by the weight, for accuracy)
define({
    # weight: a tensor or a number
    torch.lerp: lambda input, end, weight: torch.lerp(input, end, weight),
})

lowers_directly(torch.lerp, torch.lerp, "Tensor.lerp", aten.lerp)


def _add_scaled(input, term, value):
    return emit(torch.add, input, term if value == 1 else emit(torch.mul, term, value))


@lowers(torch.addcmul, "Tensor.addcmul", aten.addcmul)
def _addcmul(input, tensor1, tensor2, *, value=1):
    return _add_scaled(input, emit(torch.mul, tensor1, tensor2), value)


@lowers(torch.addcdiv, "Tensor.addcdiv", aten.addcdiv)
def _addcdiv(input, tensor1, tensor2, *, value=1):
    return _add_scaled(input, emit(torch.div, tensor1, tensor2), value)
