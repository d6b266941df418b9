"""The closed-form backward of every canonical op (see `fxgrad.canon.OPS`).

A rule is a plain function of the incoming gradient `g` and the op's canonical arguments
(fx Proxies for tensors, Python values for the rest), and, if it asks for it, the keyword
`out`: the forward result, reused rather than recomputed. Calling it with Proxies *emits* the
backward nodes, so a rule reads like the math:

    @rule(torch.tanh, math="y = tanh(x): ∂x = ∂y ⊙ (1 − y²)")
    def tanh(g, input, *, out):
        return g * (1 - out * out)

It returns one gradient per tensor argument, in order (a bare value for a single argument;
trailing non-tensor arguments need no entry), `None` where the gradient is zero or undefined.
It never handles broadcasting, accumulation or missing gradients: the engine does. For an
argument torch does not differentiate (a loss's class weights) it returns `NotDifferentiable`.

Each rule states its math beside it (`math=`, in `MATH`): the forward in letters of its own,
`y` for the result, and the gradients, `∂x` of each argument from `∂y`, in the notation of
`fxgrad.notation`. `fxgrad.explain` shows it at each step of a derivation.

A rule registered `in_float32` (reductions, normalisations, softmax, the activations whose
derivative has x², x³ or an exponential) sees float16 and bfloat16 tensors as float32, as torch's
kernels compute them; the engine casts the gradients it returns back to their values' dtypes.
"""

from __future__ import annotations

import functools
import inspect
from typing import Callable

import torch
import torch.fx as fx
from torch.fx.node import map_aggregate

from ..graph import value

RULES: dict[Callable, Callable] = {}
WANTS_OUT: set[Callable] = set()
MATH: dict[Callable, str] = {}  # each rule's math, by canonical op


class NotDifferentiable:
    """A rule's answer for an argument torch refuses to differentiate (a loss's class weights,
    batch norm's running statistics): a gradient path through it is refused, not taken as zero."""

    def __init__(self, argument: str):
        self.argument = argument


# Float16's largest value is 65504 (300² is past it) and bfloat16 keeps 8 bits of mantissa:
# torch's kernels accumulate and compute intermediates of these in float32 (their "opmath" type).
LOW_PRECISION = (torch.float16, torch.bfloat16)


def _in_float32(backward: Callable) -> Callable:
    @functools.wraps(backward)
    def in_float32(*args, **kwargs):
        return backward(*map_aggregate(args, _float32), **map_aggregate(kwargs, _float32))

    return in_float32


def _float32(x):
    if isinstance(x, fx.Proxy) and isinstance(value(x), torch.Tensor) and value(x).dtype in LOW_PRECISION:
        return x.to(torch.float32)
    return x


def rule(*ops: Callable, in_float32: bool = False, math: str | None = None):
    """Register the decorated function as the backward rule of the canonical `ops` (computed in
    float32 for float16 and bfloat16 values if `in_float32`), `math` its formula (every rule has
    one: test_explain checks)."""

    def register(backward: Callable) -> Callable:
        wants_out = "out" in inspect.signature(backward).parameters
        applied = _in_float32(backward) if in_float32 else backward
        for op in ops:
            if op in RULES:
                raise AssertionError(f"{op} has two rules")
            RULES[op] = applied
            if math is not None:
                MATH[op] = math
            if wants_out:
                WANTS_OUT.add(op)
        return backward

    return register


from . import (  # noqa: E402,F401  (registers the rules)
    choice,
    contractions,
    conversion,
    cumulative,
    distances,
    embedding,
    indexing,
    linalg,
    losses,
    norms,
    pieces,
    pointwise,
    pooling,
    reduction,
    selection,
    shape,
    scatter,
)
from . import matrices  # noqa: E402,F401
