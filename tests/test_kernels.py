"""The training path's ATen backward kernels (`fxgrad.kernels`): every op case a kernel applies
to, as a training step, against torch.autograd in float64; the fallbacks to the rules; and what
the code that runs reads."""

import pytest
import torch
import torch.nn.functional as F

import fxgrad
import fxgrad.kernels as kernels
from checks import assert_step_matches_autograd, autograd_grads, random_grad_outputs
from fxgrad.api import derive_graph
from op_cases import CASES


def _kernel_cases(monkeypatch) -> tuple[dict, set]:
    """The op cases whose derivation applies a kernel (rather than falling back to the rule), and
    the kernels applied."""
    used: set = set()
    for op, backward in list(kernels.KERNELS.items()):
        def recording(*args, _op=op, _backward=backward, **kwargs):
            result = _backward(*args, **kwargs)
            if result is not NotImplemented:
                used.add(_op)
            return result

        monkeypatch.setitem(kernels.KERNELS, op, recording)
    applied, cases = set(), {}
    for case in CASES:
        used.clear()
        derive_graph(case.fn, case.inputs(), with_outputs=True, kernels=kernels.KERNELS)
        if used:
            cases[case.name] = case
            applied |= used
    monkeypatch.undo()
    return cases, applied


def test_every_op_case_a_kernel_applies_to_matches_autograd_as_a_training_step(monkeypatch):
    cases, applied = _kernel_cases(monkeypatch)
    missing = sorted(fxgrad.canon.op_name(op) for op in set(kernels.KERNELS) - applied)
    assert not missing, f"kernels no op case applies: {missing}"
    failures = []
    for name, case in cases.items():
        for seed in (0, 7):
            try:
                assert_step_matches_autograd(case.fn, case.inputs(seed=seed))
            except AssertionError as error:
                failures.append(f"{name} (seed {seed}): {str(error).splitlines()[0]}")
    assert not failures, "\n".join(failures)


def ln_gelu_mlp(x, ln_w, ln_b, w, b):
    return F.gelu(F.linear(F.layer_norm(x, (x.shape[-1],), ln_w, ln_b), w, b)).sum()


def _ln_gelu_inputs(batch=3, channels=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    shapes = [(batch, 5, channels), (channels,), (channels,), (6, channels), (6,)]
    return tuple(torch.randn(shape, generator=g, dtype=torch.float64) for shape in shapes)


def test_the_step_runs_torch_s_kernels_and_saves_layer_norm_s_statistics():
    inputs = _ln_gelu_inputs()
    _, forward, backward = fxgrad.function(ln_gelu_mlp, inputs).partition_for((True,) * 5)
    assert "native_layer_norm(" in forward.code and "mean" in forward.code and "rstd" in forward.code
    assert "native_layer_norm_backward(" in backward.code and "gelu_backward(" in backward.code
    assert ".var(" not in backward.code  # the statistics are saved, not computed again
    # what derive prints is the math
    assert "_backward(" not in fxgrad.derive(ln_gelu_mlp, inputs).code


def test_a_step_with_kernels_serves_other_sizes():
    derived = fxgrad.function(ln_gelu_mlp, _ln_gelu_inputs())
    for inputs in (_ln_gelu_inputs(batch=2, channels=7, seed=1), _ln_gelu_inputs(batch=1, channels=4, seed=2)):
        grad_outputs = random_grad_outputs(ln_gelu_mlp, inputs)
        for got, want in zip(autograd_grads(derived, inputs, grad_outputs),
                             autograd_grads(ln_gelu_mlp, inputs, grad_outputs)):
            torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-10)


def conv_block(x, w, bn_w, bn_b):
    h = F.relu(F.batch_norm(F.conv2d(x, w, padding=1), None, None, bn_w, bn_b, training=True))
    return F.cross_entropy(F.adaptive_avg_pool2d(F.max_pool2d(h, 2), 1).flatten(1), torch.arange(h.shape[0]) % 3)


def test_a_conv_block_s_step_with_kernels_matches_autograd():
    g = torch.Generator().manual_seed(0)
    inputs = tuple(torch.randn(shape, generator=g, dtype=torch.float64)
                   for shape in [(4, 2, 6, 6), (3, 2, 3, 3), (3,), (3,)])
    assert_step_matches_autograd(conv_block, inputs)
    _, _, backward = fxgrad.function(conv_block, inputs).partition_for((True,) * 4)
    for kernel in ("convolution_backward", "native_batch_norm_backward", "threshold_backward",
                   "max_pool2d_with_indices_backward", "_adaptive_avg_pool2d_backward", "nll_loss_backward"):
        assert f"{kernel}(" in backward.code, kernel


@pytest.mark.parametrize("fn", [
    lambda x, t: F.cross_entropy(x, t, label_smoothing=0.1),
    lambda x, t: F.cross_entropy(x.unsqueeze(-1), t.unsqueeze(-1)),
], ids=["label smoothing", "3-D"])
def test_a_use_a_kernel_does_not_cover_takes_the_rule(fn):
    inputs = (torch.randn(4, 3, dtype=torch.float64), torch.tensor([0, 2, 1, 2]))
    assert_step_matches_autograd(fn, inputs)
    _, _, backward = fxgrad.function(fn, inputs).partition_for((True, False))
    assert "nll_loss_backward(" not in backward.code


def test_layer_norm_of_mixed_dtypes_takes_the_rule():
    def f(x, w, b):
        return F.layer_norm(x, (4,), w, b).float().sum()

    inputs = (torch.randn(3, 4).bfloat16(), torch.randn(4), torch.randn(4))
    derived = fxgrad.function(f, inputs)
    _, _, backward = derived.partition_for((True, True, True))
    assert "native_layer_norm_backward(" not in backward.code
    grad_outputs = random_grad_outputs(f, inputs)
    for got, want in zip(autograd_grads(derived, inputs, grad_outputs), autograd_grads(f, inputs, grad_outputs)):
        torch.testing.assert_close(got, want, rtol=2e-2, atol=2e-2)


def test_a_gradient_penalty_through_kernels_without_a_derivative_of_their_own():
    # torch defines no derivative of silu_backward: under create_graph the rules run
    def f(x, w):
        return F.silu(F.layer_norm(x @ w, (4,))).sum()

    inputs = (torch.randn(3, 4, dtype=torch.float64), torch.randn(4, 4, dtype=torch.float64))
    derived = fxgrad.function(f, inputs)

    def penalty(fn):
        x, w = (t.clone().requires_grad_() for t in inputs)
        grad_x, = torch.autograd.grad(fn(x, w), x, create_graph=True)
        return torch.autograd.grad(grad_x.square().sum(), w)

    torch.testing.assert_close(penalty(derived), penalty(f), rtol=1e-9, atol=1e-10)
