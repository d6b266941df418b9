"""Elementwise arithmetic and activations, and softmax."""

import operator
from typing import Callable

import torch
import torch.nn.functional as F

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


def _softmax_lowering(op: Callable) -> Callable:
    def lowering(input, dim=None, _stacklevel=3, dtype=None):
        if dim is None:
            unsupported_argument(f"{op.__name__} without `dim` (its implicit dim is deprecated)")
        if dtype is not None:
            unsupported_argument(f"{op.__name__}(dtype=...)")
        return emit(op, input, static_dim(dim))

    return lowering


def _aten_softmax_lowering(op: Callable) -> Callable:
    def lowering(input, dim, dtype_or_half_to_float=None):
        # softmax.int takes a dtype, _softmax a half_to_float flag: both must be off
        if dtype_or_half_to_float not in (None, False):
            unsupported_argument(f"{op.__name__} to another dtype")
        return emit(op, input, static_dim(dim))

    return lowering


lowers(torch.softmax, F.softmax, "Tensor.softmax")(_softmax_lowering(torch.softmax))
lowers(torch.log_softmax, F.log_softmax, "Tensor.log_softmax")(_softmax_lowering(torch.log_softmax))
lowers(aten.softmax, aten._softmax)(_aten_softmax_lowering(torch.softmax))
lowers(aten.log_softmax, aten._log_softmax)(_aten_softmax_lowering(torch.log_softmax))
