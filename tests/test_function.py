"""fxgrad.function: the derived backward as the autograd node of an ordinary training step."""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import fxgrad
from examples.seeds import EXAMPLES, example_inputs


def as_tuple(x):
    return x if isinstance(x, tuple) else (x,)


@pytest.mark.parametrize("name", EXAMPLES)
def test_forward_and_backward_match_autograd(name):
    fn, inputs = EXAMPLES[name], example_inputs(name)
    f = fxgrad.function(fn, inputs)
    derived = [x.clone().requires_grad_() for x in inputs]
    eager = [x.clone().requires_grad_() for x in inputs]
    outputs, expected = as_tuple(f(*derived)), as_tuple(fn(*eager))
    for out, want in zip(outputs, expected):
        torch.testing.assert_close(out, want)
    grads = [torch.randn_like(out) for out in outputs]
    for got, want in zip(torch.autograd.grad(outputs, derived, grads), torch.autograd.grad(expected, eager, grads)):
        torch.testing.assert_close(got, want)


def test_backward_reads_saved_values_and_never_reruns_the_forward():
    f = fxgrad.function(EXAMPLES["attn"], example_inputs("attn"))
    parts, _, _ = f.partition_for((True, True, True))
    backward_ops = {node.target for node in parts.backward.graph.nodes if node.op == "call_function"}
    assert torch.tanh not in backward_ops  # `a` is saved, not recomputed
    saved = [node.name for node in parts.backward.graph.nodes if node.op == "placeholder"]
    assert saved == ["q", "k", "v", "a", "grad_o", "grad_a"]


def test_only_the_gradients_asked_for_are_computed_and_saved_for():
    model = nn.Linear(3, 2).double()
    x = torch.randn(4, 3, dtype=torch.float64)
    f = fxgrad.function(model, (x,))
    f(x).sum().backward()  # x does not require grad: the weight need not be saved for it
    parts, _, _ = f.partition_for((False, True, True))
    saved = [node.name for node in parts.backward.graph.nodes if node.op == "placeholder"]
    assert saved == ["input_1", "grad_out"] and model.weight.grad is not None


def test_outputs_are_not_kept_alive_by_their_backward():
    import gc
    import weakref

    f = fxgrad.function(lambda x: x.exp(), (torch.randn(3),))
    gc.disable()
    try:
        y = f(torch.randn(3, requires_grad=True))
        alive = weakref.ref(y)
        del y
        assert alive() is None
    finally:
        gc.enable()


def test_a_tuple_of_one_stays_a_tuple():
    f = fxgrad.function(lambda x: (x.exp(),), (torch.randn(3),))
    assert isinstance(f(torch.randn(3, requires_grad=True)), tuple)


def test_training_loop_with_a_module_matches_eager_training():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1)).double()
    reference = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1)).double()
    reference.load_state_dict(model.state_dict())
    x, y = torch.randn(16, 4, dtype=torch.float64), torch.randn(16, 1, dtype=torch.float64)
    f = fxgrad.function(model, (x,))
    for module, forward in ((model, f), (reference, reference)):
        optimizer = torch.optim.SGD(module.parameters(), lr=0.1)
        for _ in range(5):
            optimizer.zero_grad()
            loss = F.mse_loss(forward(x), y)
            loss.backward()
            optimizer.step()
    for p, q in zip(model.parameters(), reference.parameters()):
        torch.testing.assert_close(p, q)


def test_under_no_grad_no_graph_is_recorded():
    fn, inputs = EXAMPLES["silu_mlp"], example_inputs("silu_mlp")
    f = fxgrad.function(fn, inputs)
    leaves = [x.clone().requires_grad_() for x in inputs]
    with torch.no_grad():
        out = f(*leaves)
    assert out.grad_fn is None and not out.requires_grad


def test_only_some_inputs_require_grad():
    fn, inputs = EXAMPLES["linear_mse"], example_inputs("linear_mse")
    f = fxgrad.function(fn, inputs)
    X, W, b, Y = inputs
    W = W.clone().requires_grad_()
    f(X, W, b, Y).backward()
    expected = W.detach().clone().requires_grad_()
    fn(X, expected, b, Y).backward()
    torch.testing.assert_close(W.grad, expected.grad)


def test_compiled_forward_and_backward_have_no_graph_breaks():
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    fn, inputs = EXAMPLES["attn"], example_inputs("attn")
    f = fxgrad.function(fn, inputs, compile=True)
    leaves = [x.clone().requires_grad_() for x in inputs]
    eager = [x.clone().requires_grad_() for x in inputs]
    o, a = f(*leaves)
    (o.sum() + a.sum()).backward()
    o, a = fn(*eager)
    (o.sum() + a.sum()).backward()
    assert not counters["graph_break"]
    assert counters["stats"]["unique_graphs"] == 2  # one forward, one backward
    for got, want in zip(leaves, eager):
        torch.testing.assert_close(got.grad, want.grad)


def test_derived_backward_compiles_and_exports():
    from checks import assert_matches_autograd

    fn, inputs = EXAMPLES["silu_mlp"], example_inputs("silu_mlp")
    compiled = fxgrad.derive(fn, inputs, compile=True)
    assert_matches_autograd(fn, compiled, inputs)
    grad_out = torch.randn(2, 4, dtype=torch.float64)
    exported = torch.export.export(fxgrad.derive(fn, inputs), (*inputs, grad_out))
    for got, want in zip(exported.module()(*inputs, grad_out), fxgrad.derive(fn, inputs)(*inputs, grad_out)):
        torch.testing.assert_close(got, want)


def test_results_keep_the_structure_fn_returns_whatever_the_tracer():
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3)).eval()  # fx cannot trace BatchNorm's checks
    x = torch.randn(5, 4)
    assert isinstance(fxgrad.function(model, (x,))(x), torch.Tensor)
    values, indices = fxgrad.function(lambda x: x.max(1), (x,))(x.requires_grad_())
    assert values.shape == indices.shape == (5,)


def test_tracers_that_leave_autocast_out_are_refused_under_it():
    x = torch.randn(5, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16), pytest.raises(fxgrad.TraceError, match="tracer='aten'"):
        fxgrad.derive(lambda x: x @ x.mT, (x,), tracer="fx")
