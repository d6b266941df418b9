"""Shared checks: a derived backward against torch.autograd."""

from __future__ import annotations

import torch

import fxgrad


def as_tuple(outputs):
    return outputs if isinstance(outputs, tuple) else (outputs,)


def random_grad_outputs(fn, inputs, seed: int = 1) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    return tuple(
        torch.randn(out.shape, generator=g, dtype=out.dtype) if out.is_floating_point() else torch.zeros_like(out)
        for out in as_tuple(fn(*inputs))
    )


def autograd_grads(fn, inputs, grad_outputs) -> list[torch.Tensor | None]:
    """torch.autograd's gradient of every floating input (zeros where unused), None for the rest."""
    leaves = [x.detach().clone().requires_grad_(x.is_floating_point()) for x in inputs]
    outputs = as_tuple(fn(*leaves))
    pairs = [(out, g) for out, g in zip(outputs, grad_outputs) if out.requires_grad]
    differentiable = [x for x in leaves if x.requires_grad]
    grads = iter(torch.autograd.grad(
        [out for out, _ in pairs], differentiable, [g for _, g in pairs], allow_unused=True, materialize_grads=True,
    ) if pairs else [torch.zeros_like(x) for x in differentiable])
    return [next(grads) if x.requires_grad else None for x in leaves]


def step_grads(fn, inputs, seed: int = 0, create_graph: bool = False):
    """The outputs and the gradients of every floating input, for random incoming gradients."""
    leaves = [x.detach().clone().requires_grad_(x.is_floating_point()) for x in inputs]
    outputs = [out for out in as_tuple(fn(*leaves)) if out.requires_grad]
    g = torch.Generator().manual_seed(seed)
    grads = [torch.randn(out.shape, generator=g, dtype=out.dtype) for out in outputs]
    differentiable = [x for x in leaves if x.requires_grad]
    return outputs, torch.autograd.grad(outputs, differentiable, grads, allow_unused=True,
                                        materialize_grads=True, create_graph=create_graph)


def assert_step_matches_autograd(fn, inputs, **options) -> None:
    """`fxgrad.function(fn, inputs, **options)`'s training step against autograd's, twice."""
    derived = fxgrad.function(fn, inputs, **options)
    for seed in (0, 1):  # a second step: nothing the first one wrote in place is read again
        (got_outputs, got), (want_outputs, want) = step_grads(derived, inputs, seed), step_grads(fn, inputs, seed)
        for a, b in zip((*got_outputs, *got), (*want_outputs, *want)):
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10, equal_nan=True)


def assert_matches_autograd(fn, bwd, inputs, seed: int = 1) -> None:
    grad_outputs = random_grad_outputs(fn, inputs, seed)
    derived = bwd(*inputs, *grad_outputs)
    expected = autograd_grads(fn, inputs, grad_outputs)
    assert len(derived) == len(inputs)
    for i, (d, e) in enumerate(zip(derived, expected)):
        if e is None:
            assert d is None, f"input {i}: expected no gradient"
            continue
        assert d is not None, f"input {i}: no gradient returned"
        assert d.shape == e.shape and d.dtype == e.dtype, f"input {i}: {d.shape}/{d.dtype} != {e.shape}/{e.dtype}"
        torch.testing.assert_close(d, e, rtol=1e-9, atol=1e-10, equal_nan=True, msg=lambda m: f"input {i}: {m}")


def with_derived_backward(fn, bwd):
    """`fn` as an autograd.Function whose backward is the derived graph (for gradcheck)."""

    class Derived(torch.autograd.Function):
        @staticmethod
        def forward(ctx, *inputs):
            ctx.save_for_backward(*inputs)
            return tuple(out.clone() for out in as_tuple(fn(*inputs)))

        @staticmethod
        def backward(ctx, *grad_outputs):
            return bwd(*ctx.saved_tensors, *grad_outputs)

    return Derived.apply


FORBIDDEN_IN_CODE = ("autograd", "torch.func", "backward", "aten.", "torch.ops", "functorch")


def assert_closed_form(bwd) -> None:
    """The derived code is ordinary torch: no autograd, no opaque backward kernels, no ATen; and
    its graph is well formed (`derive` does not lint it, to be fast)."""
    bwd.graph.lint()
    code = "\n".join(line for line in bwd.code.splitlines() if not line.strip().startswith("#"))
    for word in FORBIDDEN_IN_CODE:
        assert word not in code, f"`{word}` in the derived code:\n{bwd.code}"
