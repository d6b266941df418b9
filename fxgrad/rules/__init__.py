"""The closed-form backward of every canonical op (see `fxgrad.canon.OPS`).

A rule is a plain function of the incoming gradient `g` and the op's canonical arguments
(fx Proxies for tensors, Python values for the rest), and, if it asks for it, the keyword
`out`: the forward result, reused rather than recomputed. Calling it with Proxies *emits* the
backward nodes, so a rule reads like the math:

    @rule(torch.tanh)
    def tanh(g, input, *, out):
        return g * (1 - out * out)          # d tanh(x) = 1 - tanh(x)²

It returns one gradient per tensor argument, in order (a bare value for a single argument;
trailing non-tensor arguments need no entry), `None` where the gradient is zero or undefined.
It never handles broadcasting, accumulation or missing gradients: the engine does. For an
argument torch does not differentiate (a loss's class weights) it returns `NotDifferentiable`.
"""

from __future__ import annotations

import inspect
from typing import Callable

RULES: dict[Callable, Callable] = {}
WANTS_OUT: set[Callable] = set()


class NotDifferentiable:
    """A rule's answer for an argument torch refuses to differentiate (a loss's class weights,
    batch norm's running statistics): a gradient path through it is refused, not taken as zero."""

    def __init__(self, argument: str):
        self.argument = argument


def rule(*ops: Callable):
    """Register the decorated function as the backward rule of the canonical `ops`."""

    def register(backward: Callable) -> Callable:
        wants_out = "out" in inspect.signature(backward).parameters
        for op in ops:
            if op in RULES:
                raise AssertionError(f"{op} has two rules")
            RULES[op] = backward
            if wants_out:
                WANTS_OUT.add(op)
        return backward

    return register


from . import (  # noqa: E402,F401  (registers the rules)
    choice,
    contractions,
    conversion,
    cumulative,
    embedding,
    indexing,
    linalg,
    losses,
    norms,
    pieces,
    pointwise,
    reduction,
    selection,
    shape,
)
