"""Seed 001's walk-through, end to end: the onboarding lab's `attn`, derived with its shapes,
as math, step by step, and a hand-written backward with the classic slip caught.

    python examples/learn.py
"""

from __future__ import annotations

import torch

import fxgrad
from examples.seeds import attn


def my_attn_backward(q, k, v, grad_o, grad_a):
    """A learner's backward, derived by hand through Jacobians: right but for one thing, `a` is
    also an output, and its own incoming gradient `grad_a` is never added."""
    x = q @ k.T
    a = torch.tanh(x)
    grad_v = a.T @ grad_o
    grad_x = (grad_o @ v.T) * (1 - a ** 2)
    return grad_x @ k, grad_x.T @ q, grad_v


def fixed_attn_backward(q, k, v, grad_o, grad_a):
    a = torch.tanh(q @ k.T)
    grad_x = (grad_a + grad_o @ v.T) * (1 - a ** 2)
    return grad_x @ k, grad_x.T @ q, a.T @ grad_o


def main() -> tuple[fxgrad.CheckResult, fxgrad.CheckResult]:
    q, k, v = fxgrad.shaped(q="S d", k="S d", v="S D")
    bwd = fxgrad.derive(attn, (q, k, v))
    print("# The backward, with shapes\n")
    print(bwd.code)
    print("# As math\n")
    print(bwd.math(), "\n")
    print("# Step by step\n")
    print(bwd.explain(), "\n")
    print("# My backward\n")
    wrong = fxgrad.check(attn, my_attn_backward, (q, k, v))
    print("\n# Fixed\n")
    fixed = fxgrad.check(attn, fixed_attn_backward, (q, k, v))
    return wrong, fixed


if __name__ == "__main__":
    main()
