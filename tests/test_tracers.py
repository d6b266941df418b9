"""The three tracers: each normalises onto the same canonical ops and agrees with autograd."""

import pytest
import torch
import torch.nn.functional as F

import fxgrad
from checks import assert_matches_autograd
from examples.seeds import EXAMPLES, example_inputs
from fxgrad.trace import TRACERS


@pytest.mark.parametrize("tracer", TRACERS)
@pytest.mark.parametrize("name", EXAMPLES)
def test_examples_through_every_tracer(name, tracer):
    fn, inputs = EXAMPLES[name], example_inputs(name)
    bwd = fxgrad.derive(fn, inputs, tracer=tracer)
    assert "torch.ops" not in bwd.code  # torch-level code whichever graph came in
    assert_matches_autograd(fn, bwd, inputs)
    assert_matches_autograd(fn, bwd, example_inputs(name, seed=1), seed=2)


@pytest.mark.parametrize("tracer", TRACERS)
def test_export_and_aten_keep_the_users_names_and_lines(tracer):
    bwd = fxgrad.derive(EXAMPLES["attn"], example_inputs("attn"), tracer=tracer)
    assert "def forward(self, q, k, v, grad_o, grad_a):" in bwd.code
    assert "# from attn line" in bwd.code


@pytest.mark.parametrize("tracer", TRACERS)
def test_one_tensor_passed_as_several_arguments_gets_one_gradient_each(tracer):
    def f(a, b, c):
        return a * b + c.exp()

    x = torch.randn(3, dtype=torch.float64)
    bwd = fxgrad.derive(f, (x, x, x), tracer=tracer)
    grads = bwd(x, x, x, torch.ones(3, dtype=torch.float64))
    assert len(grads) == 3
    torch.testing.assert_close(grads[0], x)
    torch.testing.assert_close(grads[1], x)
    torch.testing.assert_close(grads[2], x.exp())


def keeps_every_logit(x):
    # HF's `slice_logits_to_keep(x, 0)`: `x[:, slice(-0, None)]`, which export records as `aten.alias`
    y = x * 1
    kept = y[:, slice(-0, None)]
    kept.mul_(2)  # written through the alias: `y` sees it
    return kept * x + y


@pytest.mark.parametrize("tracer", TRACERS)
def test_a_slice_keeping_everything_is_derived(tracer):
    x = torch.randn(2, 3, dtype=torch.float64)
    assert_matches_autograd(keeps_every_logit, fxgrad.derive(keeps_every_logit, (x,), tracer=tracer), (x,))


def size_dependent(x):
    if x.shape[0] > 2:  # Python on a size: fx cannot follow it, export can
        return x.tanh()
    return x.sigmoid()


def test_auto_falls_back_to_export_where_fx_cannot_trace():
    x = torch.randn(3, 2, dtype=torch.float64)
    with pytest.raises(fxgrad.TraceError):
        fxgrad.derive(size_dependent, (x,), tracer="fx")
    bwd = fxgrad.derive(size_dependent, (x,))
    assert "tanh" in bwd.code
    assert_matches_autograd(size_dependent, bwd, (x,))


def test_data_dependent_control_flow_is_refused_with_every_reason():
    def f(x):
        if x.sum() > 0:
            return x * 2
        return -x

    with pytest.raises(fxgrad.TraceError, match=r"(?s)no tracer could capture.*- fx:.*- export:"):
        fxgrad.derive(f, (torch.randn(3),))


def test_unknown_tracer():
    with pytest.raises(fxgrad.TraceError, match="tracer must be"):
        fxgrad.derive(torch.tanh, (torch.randn(3),), tracer="jit")


def autocast_inside(x, w):
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = x @ w
    return y.float().tanh().sum()


def test_an_autocast_region_inside_the_function_is_traced_by_make_fx():
    x, w = torch.randn(4, 3), torch.randn(3, 2)
    for tracer in ("fx", "export"):  # neither records autocast's casts: refused rather than derived in float32
        with pytest.raises(fxgrad.TraceError, match="autocast region"):
            fxgrad.derive(autocast_inside, (x, w), tracer=tracer)
    bwd = fxgrad.derive(autocast_inside, (x, w))  # auto: fx, export, then make_fx
    leaves = (x.clone().requires_grad_(), w.clone().requires_grad_())
    expected = torch.autograd.grad(autocast_inside(*leaves), leaves)
    for got, want in zip(bwd(x, w, torch.ones(())), expected):
        assert got.dtype == want.dtype
        torch.testing.assert_close(got, want)


@pytest.mark.parametrize("tracer", ["fx", "export", "aten", "auto"])
def test_backward_hooks_are_refused(tracer):
    model = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Tanh())
    model[0].register_full_backward_hook(lambda module, grad_input, grad_output: (grad_input[0] * 10,))
    with pytest.raises(fxgrad.TraceError, match="`0` has a backward hook"):
        fxgrad.derive(model, (torch.randn(2, 3),), tracer=tracer)


def test_a_tensor_hook_is_refused():
    def f(x):
        y = x * 2
        y.register_hook(lambda g: g * 10)
        return y.sum()

    with pytest.raises(fxgrad.TraceError, match="register_hook"):
        fxgrad.derive(f, (torch.randn(3),))


def test_retain_grad_changes_no_gradient():
    def f(x):
        y = x.exp()
        y.retain_grad()  # (eager needs x to require grad for this)
        return y.sum()

    x = torch.randn(3, dtype=torch.float64)
    (grad,) = fxgrad.derive(f, (x,), tracer="fx")(x, torch.ones((), dtype=torch.float64))
    torch.testing.assert_close(grad, x.exp())


def test_a_function_failing_on_its_example_inputs_is_a_trace_error_at_its_line():
    def f(x, w):
        return x * 2 + w

    with pytest.raises(fxgrad.TraceError, match=r"fails on its example inputs at f line \d+.*must match"):
        fxgrad.derive(f, (torch.randn(4, 5), torch.randn(4)))


def test_a_gradient_hook_on_a_parameter_is_refused_by_derive_and_run_by_function():
    model = torch.nn.Linear(3, 2).double()
    model.weight.register_hook(lambda grad: grad * 2)
    x = torch.randn(4, 3, dtype=torch.float64)
    with pytest.raises(fxgrad.TraceError, match="`weight` has a gradient hook"):
        fxgrad.derive(model, (x,))
    fxgrad.function(model, (x,))(x).sum().backward()
    derived = model.weight.grad.clone()
    model.weight.grad = None
    model(x).sum().backward()
    torch.testing.assert_close(derived, model.weight.grad)


def test_batch_norm_with_a_cumulative_average_is_refused_clearly():
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.BatchNorm1d(4, momentum=None))
    with pytest.raises(fxgrad.TraceError, match="batch norm `1` has momentum=None"):
        fxgrad.derive(model, (torch.randn(6, 4),))
    fxgrad.derive(model.eval(), (torch.randn(6, 4),))  # eval: the running statistics are constants


def _noise_in_a_helper(x):
    return x * torch.rand_like(x)


@pytest.mark.parametrize("tracer", ["export", "aten"])
def test_export_and_make_fx_name_the_line_of_a_helper_a_function_calls(tracer):
    def f(x):
        return _noise_in_a_helper(x * 2).sum()

    with pytest.raises(fxgrad.RandomnessError, match=r"_noise_in_a_helper line \d+ \(test_tracers.py\): return x \* torch"):
        fxgrad.derive(f, (torch.randn(3),), tracer=tracer)


@pytest.mark.parametrize("fn", [
    lambda x: F.max_pool2d(x, x.shape[-2:]),
    lambda x: F.avg_pool2d(x, x.shape[-1] // 2),
    lambda x: F.cross_entropy(x.flatten(1), torch.tensor([0, 3]), ignore_index=x.shape[1] - 1),
], ids=["max_pool2d", "avg_pool2d", "cross_entropy"])
def test_an_option_computed_from_a_size_goes_to_a_tracer_that_computes_sizes(fn):
    x = torch.randn(2, 4, 2, 2, dtype=torch.float64)
    with pytest.raises(fxgrad.TraceError, match="computed from a tensor's size.*tracer='export'"):
        fxgrad.derive(fn, (x,), tracer="fx")
    bwd = fxgrad.derive(fn, (x,))
    assert bwd.guards.fixed_sizes is not None  # (export wrote the sizes in)
    assert_matches_autograd(fn, bwd, (x,))
