"""fxgrad.function: the derived backward as the autograd node of an ordinary training step."""

import copy

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


# ---------------------------------------------------------------------------------------------
# Train and eval modes: each derives its own partition


class TrainsOtherwise(nn.Module):
    """A module whose function depends on its mode, as batch norm's and dropout's do."""

    def forward(self, x):
        return torch.tanh(x) * 2 if self.training else torch.sin(x)


def assert_step_matches_eager(f, module, x, eager_module=None):
    """One step of `f` against `module` run eagerly (or its copy `eager_module`, where the step
    changes the module's buffers)."""
    eager_module = module if eager_module is None else eager_module
    derived, eager = x.clone().requires_grad_(), x.clone().requires_grad_()
    out, expected = f(derived), eager_module(eager)
    torch.testing.assert_close(out, expected)
    grad = torch.randn_like(expected)
    got = torch.autograd.grad(out, [derived, *module.parameters()], grad)
    want = torch.autograd.grad(expected, [eager, *eager_module.parameters()], grad)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w)


def test_switching_modes_derives_for_each_and_reuses_what_was_derived(monkeypatch):
    import importlib

    function_module = importlib.import_module("fxgrad.function")  # (the package's `function` is the function)
    derivations = []
    derive_graph = function_module.derive_graph
    monkeypatch.setattr(function_module, "derive_graph", lambda *a, **k: derivations.append(1) or derive_graph(*a, **k))
    model = nn.Sequential(nn.Linear(3, 4), TrainsOtherwise()).double()
    x = torch.randn(5, 3, dtype=torch.float64)
    f = fxgrad.function(model, (x,))
    for mode in (True, False, True, False):
        model.train(mode)
        assert_step_matches_eager(f, model, x)
    assert len(derivations) == 2  # one per mode, each derived once


@pytest.mark.parametrize("norm, shape", [(nn.BatchNorm1d, (6, 3)), (nn.BatchNorm2d, (6, 3, 4, 4))], ids=["1d", "2d"])
def test_batch_norm_follows_the_mode_it_is_called_in_and_updates_its_statistics(norm, shape):
    model = nn.Sequential(nn.Conv2d(3, 3, 1) if len(shape) == 4 else nn.Linear(3, 3), norm(3)).double()
    model[1].running_mean.uniform_(-1, 1)
    model[1].running_var.uniform_(0.5, 2)
    eager = copy.deepcopy(model)
    f = fxgrad.function(model, (torch.randn(*shape, dtype=torch.float64),))
    for mode in (True, True, False, True, False):  # train: the batch's statistics, written into the buffers
        model.train(mode)
        eager.train(mode)
        x = torch.randn(*shape, dtype=torch.float64)
        assert_step_matches_eager(f, model, x, eager)
        for (name, got), want in zip(model.named_buffers(), eager.buffers()):
            torch.testing.assert_close(got, want, msg=name)


def test_dropout_derived_in_eval_is_refused_in_training():
    model = nn.Sequential(nn.Linear(3, 4), nn.Dropout(0.5)).double().eval()
    x = torch.randn(6, 3, dtype=torch.float64)
    f = fxgrad.function(model, (x,))
    assert_step_matches_eager(f, model, x)
    model.train()
    with pytest.raises(fxgrad.RandomnessError, match="dropout with p=0.5 in training mode"):
        f(x.clone().requires_grad_())  # as the eval step: only the mode differs
    model.eval()
    assert_step_matches_eager(f, model, x)


def test_the_mode_of_a_module_closed_over_or_named_as_a_global_counts():
    dropout = nn.Dropout(0.5).eval()
    x = torch.randn(6, 3, dtype=torch.float64)
    closing = fxgrad.function(lambda x: dropout(x).exp(), (x,))
    named = fxgrad.function(_global_dropout_exp, (x,))
    for f in (closing, named):
        torch.testing.assert_close(f(x), x.exp())
    dropout.train(), _GLOBAL_DROPOUT.train()
    try:
        for f in (closing, named):
            with pytest.raises(fxgrad.RandomnessError, match="dropout with p=0.5 in training mode"):
                f(x)
    finally:
        _GLOBAL_DROPOUT.eval()


_GLOBAL_DROPOUT = nn.Dropout(0.5).eval()


def _global_dropout_exp(x):
    return _GLOBAL_DROPOUT(x).exp()


# ---------------------------------------------------------------------------------------------
# Double backward: a backward under create_graph is differentiable


class SiluTanhMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(3, 8), nn.Linear(8, 8), nn.Linear(8, 1)

    def forward(self, x):
        return self.fc3(torch.tanh(self.fc2(F.silu(self.fc1(x)))))


def attention(q, k, v):
    return torch.softmax(q @ k.mT / 2, -1) @ v


def normalised(x, weight, bias):
    return F.layer_norm(x, (4,), weight, bias).sin()


def causal_attention(q, k, v):
    return F.scaled_dot_product_attention(q, k, v, is_causal=True)


def classified(x, w):
    return F.cross_entropy(x @ w, torch.tensor([0, 2, 1, 1]))


def second_order_cases():
    torch.manual_seed(0)
    r = lambda *shape: torch.randn(*shape, dtype=torch.float64)  # noqa: E731
    return {
        "silu_tanh_mlp": (SiluTanhMLP().double(), (r(5, 3),)),
        "attention": (attention, (r(2, 4, 3), r(2, 5, 3), r(2, 5, 2))),
        "layer_norm": (normalised, (r(3, 4), r(4), r(4))),
        "causal_sdpa": (causal_attention, (r(2, 4, 3), r(2, 4, 3), r(2, 4, 2))),
        "cross_entropy": (classified, (r(4, 3), r(3, 3))),
    }


SECOND_ORDER = ["silu_tanh_mlp", "attention", "layer_norm", "causal_sdpa", "cross_entropy"]


def penalty_and_its_gradients(forward, inputs, parameters):
    """A gradient penalty ‖∂(Σ f·c)/∂x‖² and its gradients with respect to everything."""
    leaves = [x.clone().requires_grad_() for x in inputs]
    out = forward(*leaves)
    c = torch.linspace(-1, 1, out.numel(), dtype=out.dtype).reshape(out.shape)
    grads = torch.autograd.grad((out * c).sum(), leaves, create_graph=True)
    penalty = sum((g ** 2).sum() for g in grads)
    return [penalty, *torch.autograd.grad(penalty, leaves + parameters, allow_unused=True, materialize_grads=True)]


@pytest.mark.parametrize("name", SECOND_ORDER)
def test_gradient_penalty_matches_autograd(name):
    fn, inputs = second_order_cases()[name]
    parameters = list(fn.parameters()) if isinstance(fn, nn.Module) else []
    got = penalty_and_its_gradients(fxgrad.function(fn, inputs), inputs, parameters)
    want = penalty_and_its_gradients(fn, inputs, parameters)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-9, atol=1e-10)


def hessian_vector_products(forward, inputs):
    leaves = [x.clone().requires_grad_() for x in inputs]
    grads = torch.autograd.grad(forward(*leaves).sin().sum(), leaves, create_graph=True)
    vs = [torch.cos(torch.arange(x.numel(), dtype=x.dtype)).reshape(x.shape) for x in inputs]
    return torch.autograd.grad(grads, leaves, vs)


@pytest.mark.parametrize("name", SECOND_ORDER)
def test_hessian_vector_product_matches_autograd(name):
    fn, inputs = second_order_cases()[name]
    got = hessian_vector_products(fxgrad.function(fn, inputs), inputs)
    for g, w in zip(got, hessian_vector_products(fn, inputs)):
        torch.testing.assert_close(g, w, rtol=1e-9, atol=1e-10)


def test_third_derivative_matches_autograd():
    def third(forward, x):
        x = x.clone().requires_grad_()
        g, = torch.autograd.grad(forward(x), x, create_graph=True)
        h, = torch.autograd.grad(g.sum(), x, create_graph=True)
        return torch.autograd.grad(h.sum(), x)[0]

    fn = lambda x: F.silu(torch.tanh(x)).sum()  # noqa: E731
    x = torch.randn(4, 3, dtype=torch.float64)
    torch.testing.assert_close(third(fxgrad.function(fn, (x,)), x), third(fn, x), rtol=1e-9, atol=1e-10)


def test_an_input_changed_before_a_double_backward_is_refused():
    x = torch.randn(4, 3, dtype=torch.float64)
    f = fxgrad.function(lambda x: x.exp().sum(), (x,))
    x = x.clone().requires_grad_()
    y = x * 1
    out = f(y)
    torch.testing.assert_close(torch.autograd.grad(out, x, retain_graph=True)[0], x.detach().exp())
    with torch.no_grad():
        y.add_(1)
    with pytest.raises(fxgrad.InputError, match="`x` was changed in place after the forward"):
        torch.autograd.grad(out, x, create_graph=True)


# ---------------------------------------------------------------------------------------------
# Autocast: dtypes and values as eager autocast's


def mixed_precision_step(forward, module, x, y):
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = forward(x)
        loss = F.mse_loss(out.float(), y)
    module.zero_grad()
    loss.backward()
    return out, [p.grad for p in module.parameters()]


def test_autocast_step_matches_eager_autocast_in_dtypes_and_values():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.LayerNorm(16), nn.GELU(), nn.Linear(16, 4))
    x, y = torch.randn(32, 8), torch.randn(32, 4)
    f = fxgrad.function(model, (x,))
    out, grads = mixed_precision_step(f, model, x, y)
    expected, expected_grads = mixed_precision_step(model, model, x, y)
    assert out.dtype == expected.dtype == torch.bfloat16
    torch.testing.assert_close(out, expected, rtol=2e-2, atol=2e-2)
    for got, want in zip(grads, expected_grads):
        assert got.dtype == want.dtype == torch.float32
        torch.testing.assert_close(got, want, rtol=5e-2, atol=2e-2)
    # outside autocast again: the float32 function, derived for that state
    torch.testing.assert_close(f(x), model(x))


def test_a_single_linear_under_autocast_returns_bfloat16_as_eager():
    linear = nn.Linear(4, 3)
    x = torch.randn(5, 4)
    f = fxgrad.function(linear, (x,))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, expected = f(x), linear(x)
    assert out.dtype == expected.dtype == torch.bfloat16
    torch.testing.assert_close(out, expected, rtol=2e-2, atol=2e-2)  # (addmm rounds once, matmul and add twice)


def test_tracers_that_leave_autocast_out_are_refused_under_it():
    x = torch.randn(5, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16), pytest.raises(fxgrad.TraceError, match="tracer='aten'"):
        fxgrad.derive(lambda x: x @ x.mT, (x,), tracer="fx")


# ---------------------------------------------------------------------------------------------
# Calls the derived function does not hold for


@pytest.mark.parametrize("call, message", [
    (lambda f, q, k, v: f(q, k, v=v), r"keyword arguments \(v\)"),
    (lambda f, q, k, v: f(q, k), "given 2 arguments"),
    (lambda f, q, k, v: f(q, k, v, v), "given 4 arguments"),
    (lambda f, q, k, v: f(q, k, 1.0), "`v` is a float, not a tensor"),
    (lambda f, q, k, v: f(q, k, torch.nested.nested_tensor([v, v])), "`v` is a nested tensor"),
])
def test_calls_other_than_derived_are_refused_naming_the_arguments(call, message):
    fn, inputs = EXAMPLES["attn"], example_inputs("attn")
    f = fxgrad.function(fn, inputs)
    with pytest.raises(fxgrad.InputError, match=r"takes the 3 tensors it was derived for, by position \(q, k, v\); .*"
                       + message):
        call(f, *inputs)


# ---------------------------------------------------------------------------------------------
# Other sizes, dtypes and ranks: a partition that holds, or one derived for them


def randn(*shape):
    return torch.randn(*shape, dtype=torch.float64)


def counting_derivations(monkeypatch) -> list:
    derived = []
    original = fxgrad.function.__globals__["derive_graph"]

    def counted(fn, inputs, **options):
        derived.append(tuple(tuple(x.shape) for x in inputs))
        return original(fn, inputs, **options)

    monkeypatch.setitem(fxgrad.function.__globals__, "derive_graph", counted)
    return derived


def gradients_of(f, inputs):
    leaves = [x.detach().clone().requires_grad_() for x in inputs]
    out = f(*leaves)
    out.backward(torch.ones_like(out))
    return [x.grad for x in leaves]


def scaled_rows(x, b):
    return torch.tanh(x * b).sum(0)


def loop_over_rows(x, b):
    total = 0
    for i in range(x.shape[0]):
        total = total + torch.tanh(x[i] * b)
    return total


@pytest.mark.parametrize("fn", [scaled_rows, loop_over_rows], ids=["sizes read at run time", "sizes fixed by export"])
def test_other_sizes_are_right_deriving_only_where_needed(fn, monkeypatch):
    derived = counting_derivations(monkeypatch)
    f = fxgrad.function(fn, (randn(3, 4), randn(4)))
    calls = [(randn(3, 4), randn(4)), (randn(6, 4), randn(4)), (randn(6, 5), randn(5)), (randn(3, 4), randn(4)),
             (randn(6, 4), randn(1))]  # the last: b broadcasts now
    for inputs in calls:
        expected = gradients_of(fn, inputs)
        for got, wanted in zip(gradients_of(f, inputs), expected):
            torch.testing.assert_close(got, wanted)
    if fn is scaled_rows:  # one partition serves all sizes that broadcast alike
        assert derived == [((3, 4), (4,)), ((6, 4), (1,))]
    else:  # export wrote the sizes into the graph: one partition per sizes
        assert derived == [((3, 4), (4,)), ((6, 4), (4,)), ((6, 5), (5,)), ((6, 4), (1,))]


def test_another_dtype_or_rank_derives_its_own_partition():
    fn = lambda x, w: F.layer_norm(x, (4,), w).tanh()  # noqa: E731
    f = fxgrad.function(fn, (randn(3, 4), randn(4)))
    for inputs in [(randn(2, 3, 4), randn(4)), (torch.randn(3, 4), torch.randn(4))]:
        expected = gradients_of(fn, inputs)
        got = gradients_of(f, inputs)
        for g, e in zip(got, expected):
            assert g.dtype == e.dtype and g.shape == e.shape
            torch.testing.assert_close(g, e)


def test_sizes_a_partition_does_not_hold_at_are_checked_once(monkeypatch):
    checks = []
    original = fxgrad.function.__globals__["holds_at"]
    monkeypatch.setitem(fxgrad.function.__globals__, "holds_at", lambda *args: checks.append(1) or original(*args))

    def fn(x):
        a, b = x.chunk(2)
        return (a.sum(0) * b.sum(0)).sum()

    f = fxgrad.function(fn, (randn(6, 4),))
    # chunk(2) of 3 rows: pieces of 2 and 1 rows, which the partition for 6 rows does not hold for
    for inputs in [(randn(6, 4),)] + [(randn(3, 4),)] * 3:
        for got, wanted in zip(gradients_of(f, inputs), gradients_of(fn, inputs)):
            torch.testing.assert_close(got, wanted)
    assert len(checks) == 1


class TwoHeads(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(4, 1), nn.Linear(4, 1)

    def forward(self, x):
        return self.a(x), self.b(x)


def test_what_the_loss_does_not_reach_gets_no_gradient_as_in_autograd():
    model = TwoHeads().double()
    eager = copy.deepcopy(model)
    x, y = randn(3, 4), randn(3, 4)
    f = fxgrad.function(model, (x,))
    for run in (f, eager):
        run(x.clone().requires_grad_())[0].sum().backward()
    for m in (model, eager):
        assert m.b.weight.grad is None and m.b.bias.grad is None  # an optimizer's weight decay skips them
    torch.testing.assert_close(model.a.weight.grad, eager.a.weight.grad)
    unused = fxgrad.function(lambda x, y: x * 2, (x, y))
    xs, ys = x.clone().requires_grad_(), y.clone().requires_grad_()
    unused(xs, ys).sum().backward()
    assert ys.grad is None and torch.equal(xs.grad, torch.full_like(x, 2))


def test_batch_norm_run_twice_in_one_step_updates_its_statistics_twice():
    net = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4)).double()
    eager = copy.deepcopy(net)

    def halves(net):
        return lambda x: net(x[:3]).sum() + net(x[3:]).pow(2).sum()

    f = fxgrad.function(halves(net), (randn(6, 4),))
    for _ in range(2):
        x = randn(6, 4)
        f(x).backward()
        halves(eager)(x).backward()
    for (name, got), want in zip(net.named_buffers(), eager.buffers()):
        torch.testing.assert_close(got, want, msg=name)
    for got, want in zip(net.parameters(), eager.parameters()):
        torch.testing.assert_close(got.grad, want.grad)
