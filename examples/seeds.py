"""The functions fxgrad grew from, derived and checked against torch.autograd.

    python examples/seeds.py

prints the backward fxgrad derives for each, then checks it against torch.autograd.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def attn(q, k, v):
    """The PyTorch autograd onboarding lab."""
    x = torch.matmul(q, k.transpose(0, 1))
    a = torch.tanh(x)
    o = torch.matmul(a, v)
    return o, a


def silu_mlp(X, A, B, C, D):
    """A residual SiLU MLP: f(f(f((f(X@A)+X)@B)@C)@D) with f = SiLU."""
    f = F.silu
    return f(f(f((f(X @ A) + X) @ B) @ C) @ D)


def masked_softmax_attention(Q, K, V, M):
    """Softmax attention with a multiplicative mask: softmax((Q@Kᵀ)⊙M) @ V."""
    return F.softmax((Q @ K.mT) * M, dim=-1) @ V


def linear_mse(X, W, b, Y):
    """A linear layer with mean-squared-error loss."""
    out = X @ W + b
    loss = (out - Y).square().mean()
    return loss


def example_inputs(name: str, scale: int = 1, seed: int = 0, dtype=torch.float64) -> tuple[torch.Tensor, ...]:
    """Inputs for the named example; `scale` multiplies every size that is not a broadcast 1."""
    g = torch.Generator().manual_seed(seed)
    d, D, S, n = 4 * scale, 6 * scale, 5 * scale, 3 * scale

    def randn(*shape):
        return torch.randn(*shape, generator=g, dtype=dtype)

    if name == "attn":
        return randn(2 * scale, 3 * scale), randn(2 * scale, 3 * scale), randn(2 * scale, 4 * scale)
    if name == "silu_mlp":
        return randn(2 * scale, d), randn(d, d), randn(d, D), randn(D, D), randn(D, d)
    if name == "masked_softmax_attention":
        return randn(1, 2, S, n), randn(1, 2, S, n), randn(1, 2, S, n), randn(1, 2, S, S)
    if name == "linear_mse":
        return randn(S, n), randn(n, 1), randn(()), randn(S, 1)
    raise KeyError(name)


EXAMPLES = {fn.__name__: fn for fn in (attn, silu_mlp, masked_softmax_attention, linear_mse)}


def main() -> None:
    import fxgrad

    for name, fn in EXAMPLES.items():
        inputs = example_inputs(name)
        bwd = fxgrad.derive(fn, inputs)
        print(f"# ---- {name}: {fn.__doc__.strip()}")
        print(bwd.code.strip(), end="\n\n")

        outputs = fn(*inputs)
        outputs = outputs if isinstance(outputs, tuple) else (outputs,)
        grad_outputs = [torch.randn_like(out) for out in outputs]
        leaves = [x.clone().requires_grad_() for x in inputs]
        expected = torch.autograd.grad(fn(*leaves), leaves, grad_outputs)
        derived = bwd(*inputs, *grad_outputs)
        ok = all(torch.allclose(e, d) for e, d in zip(expected, derived))
        print(f"# matches torch.autograd: {ok}\n")
        if not ok:
            raise SystemExit(f"{name}: the derived backward disagrees with torch.autograd")


if __name__ == "__main__":
    main()
