"""The state a function reads besides its arguments: a module's parameters and buffers, read by
name when the backward runs; tensors and modules a function closes over, differentiated like a
module's parameters; parameters shared under two names, one gradient."""

import copy
import functools
import pickle
import sys
import types

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import fxgrad
from fxgrad.api import derive_graph

TRACERS = ["fx", "export", "aten", "auto"]


@pytest.fixture(params=TRACERS)
def tracer(request, monkeypatch):
    """Each tracer, for `fxgrad.derive` (passed) and for `fxgrad.function` (made its default)."""
    function_module = sys.modules["fxgrad.function"]
    monkeypatch.setattr(function_module, "derive_graph", functools.partial(derive_graph, tracer=request.param))
    return request.param


def double(*shape):
    return torch.randn(*shape, dtype=torch.float64)


def expected_grads(fn, inputs, state, grad_outputs):
    """torch.autograd's gradients of the inputs, then of the tensors of `state`."""
    leaves = [x.detach().clone().requires_grad_() for x in inputs]
    outputs = fn(*leaves)
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    return torch.autograd.grad(outputs, leaves + list(state), grad_outputs, allow_unused=True, materialize_grads=True)


def assert_derive_matches(fn, inputs, state, tracer):
    bwd = fxgrad.derive(fn, inputs, tracer=tracer)
    outputs = fn(*inputs)
    grad_outputs = tuple(torch.randn_like(out) for out in (outputs if isinstance(outputs, tuple) else (outputs,)))
    derived = bwd(*inputs, *grad_outputs)
    expected = expected_grads(fn, inputs, state, grad_outputs)
    assert len(derived) == len(expected)
    for d, e in zip(derived, expected):
        torch.testing.assert_close(d, e, rtol=1e-9, atol=1e-10)
    return bwd


def assert_function_matches(fn, inputs, state, loss=lambda out: (out * out).sum(), f=None):
    """`fxgrad.function(fn)`'s (or `f`'s) outputs are `fn`'s, its `.grad` on every tensor of `state` autograd's."""
    f = fxgrad.function(fn, inputs) if f is None else f
    for t in state:
        t.grad = None
    out = f(*inputs)
    loss(out).backward()
    derived = [t.grad for t in state]
    for t in state:
        t.grad = None
    expected = fn(*inputs)
    torch.testing.assert_close(out, expected, rtol=1e-9, atol=1e-10)
    loss(expected).backward()
    for t, d in zip(state, derived):
        assert d is not None
        torch.testing.assert_close(d, t.grad, rtol=1e-9, atol=1e-10)
    return f


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)
        self.register_buffer("shift", torch.randn(3))

    def forward(self, x):
        return torch.tanh(self.fc(x) + self.shift)


# --- parameters and buffers reassigned after derive ------------------------------------------


def reassign_weight(m):
    m.fc.weight = nn.Parameter(double(3, 4))


def load_state_dict_assign(m):
    m.load_state_dict({"fc.weight": double(3, 4), "fc.bias": double(3), "shift": double(3)}, assign=True)


def reassign_buffer(m):
    m.shift = double(3)


def register_buffer_again(m):
    m.register_buffer("shift", double(3))


def change_in_place(m):
    with torch.no_grad():
        m.fc.weight.mul_(2)
        m.shift.add_(1)


CHANGES = [reassign_weight, load_state_dict_assign, reassign_buffer, register_buffer_again, change_in_place]


@pytest.mark.parametrize("change", CHANGES)
def test_derived_backward_reads_parameters_and_buffers_by_name(change, tracer):
    torch.manual_seed(0)
    m, x = Net().double(), double(5, 4)
    bwd = fxgrad.derive(m, (x,), tracer=tracer)
    change(m)
    g = double(5, 3)
    for d, e in zip(bwd(x, g), expected_grads(m, (x,), list(m.parameters()), (g,))):
        torch.testing.assert_close(d, e, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("change", CHANGES)
def test_function_reads_parameters_and_buffers_by_name(change, tracer):
    torch.manual_seed(0)
    m, x = Net().double(), double(5, 4)
    f = fxgrad.function(m, (x,))
    f(x).sum().backward()
    change(m)
    m.zero_grad(set_to_none=True)
    out = f(x)
    torch.testing.assert_close(out, m(x))
    (out * out).sum().backward()
    derived = [p.grad for p in m.parameters()]
    m.zero_grad(set_to_none=True)
    (m(x) * m(x)).sum().backward()
    for d, p in zip(derived, m.parameters()):
        torch.testing.assert_close(d, p.grad, rtol=1e-9, atol=1e-10)


def test_a_first_call_at_new_sizes_reads_parameters_by_name(tracer):
    m, x = Net().double(), double(5, 4)
    bwd = fxgrad.derive(m, (x,), tracer=tracer)
    reassign_weight(m)
    x, g = double(7, 4), double(7, 3)  # at new sizes the call is checked node by node first
    if tracer in ("export", "aten"):  # their sizes are constants of the graph
        with pytest.raises(fxgrad.ShapeError):
            bwd(x, g)
        return
    for d, e in zip(bwd(x, g), expected_grads(m, (x,), list(m.parameters()), (g,))):
        torch.testing.assert_close(d, e, rtol=1e-9, atol=1e-10)


def test_the_derived_backward_compiled_reads_parameters_by_name():
    m, x = Net().double(), double(5, 4)
    bwd = fxgrad.derive(m, (x,), compile=True)
    reassign_weight(m)
    g = double(5, 3)
    for d, e in zip(bwd(x, g), expected_grads(m, (x,), list(m.parameters()), (g,))):
        torch.testing.assert_close(d, e, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("change, message", [
    (lambda m: setattr(m.fc, "weight", nn.Parameter(double(3, 5))), r"`fc.weight` is now a torch.float64 tensor of shape \(3, 5\)"),
    (lambda m: setattr(m.fc, "weight", nn.Parameter(torch.randn(3, 4))), r"`fc.weight` is now a torch.float32 tensor"),
    (lambda m: setattr(m, "shift", double(5, 3)), r"`shift` is now a torch.float64 tensor of shape \(5, 3\)"),
    (lambda m: setattr(m, "shift", None), r"`shift` is now a NoneType, not a tensor"),
])
def test_a_replaced_parameter_that_does_not_fit_is_refused(change, message, tracer):
    m, x = Net().double(), double(5, 4)
    bwd = fxgrad.derive(m, (x,), tracer=tracer)
    f = fxgrad.function(m, (x,))
    f(x)  # derived for the module as it is now
    change(m)
    with pytest.raises(fxgrad.ParameterError, match=message):
        bwd(x, double(5, 3))
    with pytest.raises(fxgrad.ParameterError, match=message):
        f(x)


def test_a_replaced_submodule_is_refused_by_derive_and_derived_again_by_function(tracer):
    m, x = Net().double(), double(5, 4)
    bwd = fxgrad.derive(m, (x,), tracer=tracer)
    f = fxgrad.function(m, (x,))
    f(x)
    m.fc = nn.Linear(4, 3).double()
    with pytest.raises(fxgrad.ParameterError, match=r"`fc.weight` is read through `fc`, which was replaced"):
        bwd(x, double(5, 3))
    assert_function_matches(m, (x,), list(m.parameters()), f=f)


# --- tensors and modules a function closes over ----------------------------------------------

W = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
SHIFT = torch.randn(4, dtype=torch.float64)  # a constant: does not require grad
layer = nn.Linear(4, 2).double()


def uses_globals(x):
    return torch.tanh(layer(x @ W + SHIFT))


def test_a_global_tensor_and_module_are_differentiated(tracer):
    x = double(5, 3)
    bwd = assert_derive_matches(uses_globals, (x,), [W, layer.weight, layer.bias], tracer)
    assert bwd.grad_names == ["grad_x", "grad_W", "grad_layer.weight", "grad_layer.bias"]
    assert_function_matches(uses_globals, (x,), [W, layer.weight, layer.bias])


def test_closure_cells_and_defaults_are_differentiated(tracer):
    V = double(4, 4).requires_grad_()
    m = nn.Linear(4, 2).double()

    def f(x, b=W):
        return m(torch.sin(x @ b) @ V)

    x = double(5, 3)
    bwd = assert_derive_matches(f, (x,), [V, W, m.weight, m.bias], tracer)
    # `named_parameters()` order of the stand-in module: the tensors, then the modules' parameters
    assert bwd.grad_names == ["grad_x", "grad_V", "grad_b", "grad_m.weight", "grad_m.bias"]
    assert_function_matches(f, (x,), [V, W, m.weight, m.bias])


def test_a_captured_module_gets_gradients_in_a_training_loop(tracer):
    torch.manual_seed(0)
    m, reference = nn.Linear(4, 3).double(), nn.Linear(4, 3).double()
    reference.load_state_dict(m.state_dict())
    x, t = double(8, 4), torch.randint(0, 3, (8,))
    f = fxgrad.function(lambda x, t: F.cross_entropy(m(x), t), (x, t))
    for module, forward in ((m, f), (reference, lambda x, t: F.cross_entropy(reference(x), t))):
        optimizer = torch.optim.SGD(module.parameters(), lr=0.5)
        for _ in range(3):
            optimizer.zero_grad()
            forward(x, t).backward()
            optimizer.step()
    for p, q in zip(m.parameters(), reference.parameters()):
        torch.testing.assert_close(p, q)


def test_captured_tensors_that_do_not_require_grad_stay_constants_read_live(tracer):
    x = double(5, 3)
    bwd = fxgrad.derive(uses_globals, (x,), tracer=tracer)
    assert "grad_SHIFT" not in bwd.grad_names
    old = SHIFT.clone()
    try:
        with torch.no_grad():
            SHIFT.mul_(3)
        g = double(5, 2)
        for d, e in zip(bwd(x, g), expected_grads(uses_globals, (x,), [W, layer.weight, layer.bias], (g,))):
            torch.testing.assert_close(d, e, rtol=1e-9, atol=1e-10)
    finally:
        with torch.no_grad():
            SHIFT.copy_(old)


def test_a_reassigned_captured_tensor_is_read_by_name():
    V = double(3, 4).requires_grad_()

    def f(x):
        return (x @ V).exp()

    x = double(2, 3)
    bwd = fxgrad.derive(f, (x,))
    V = double(3, 4).requires_grad_()  # noqa: F841 (the closure cell now holds another tensor)
    g = double(2, 4)
    for d, e in zip(bwd(x, g), expected_grads(f, (x,), [f.__closure__[0].cell_contents], (g,))):
        torch.testing.assert_close(d, e, rtol=1e-9, atol=1e-10)
    V = double(4, 4).requires_grad_()  # noqa: F841
    with pytest.raises(fxgrad.ParameterError, match=r"`V` is now a torch.float64 tensor of shape \(4, 4\)"):
        bwd(x, g)


PARAMS = [torch.randn(3, 3, dtype=torch.float64, requires_grad=True)]


def reads_a_list(x):
    return x @ PARAMS[0]


def helper(x):
    return x @ W


class Holder:
    def __init__(self):
        self.weight = torch.randn(3, 3, dtype=torch.float64, requires_grad=True)


holder = Holder()


def reads_an_object_attribute(x):
    return x @ holder.weight


class Outer:
    def __init__(self):
        self.inner = holder


outer = Outer()


def reads_a_nested_attribute(x):
    return x @ outer.inner.weight


def calls_a_helper(x):
    return helper(x).sum()


class ReadsAGlobal(nn.Module):
    def forward(self, x):
        return x @ W


class ReadsItsOwnParameterThroughAGlobal(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 3, bias=False)

    def forward(self, x):
        return self.fc(x) @ OWN_WEIGHT


reads_its_own = ReadsItsOwnParameterThroughAGlobal().double()
OWN_WEIGHT = reads_its_own.fc.weight


@pytest.mark.parametrize("fn, message", [
    (reads_a_list, "`reads_a_list` reads `PARAMS`, a list holding tensors that require grad"),
    (calls_a_helper, "`calls_a_helper` calls `helper`, which reads `W`"),
    (reads_an_object_attribute, "`reads_an_object_attribute` reads `holder`, a Holder holding tensors that require grad"),
    (ReadsAGlobal(), r"`ReadsAGlobal.forward` reads `W`, which holds tensors that require grad, from outside"),
    (reads_its_own, r"`ReadsItsOwnParameterThroughAGlobal.forward` reads `OWN_WEIGHT`"),
    (nn.Linear(3, 3).double().forward, r"`Linear.forward` holds tensors that require grad"),
    (functools.partial(torch.matmul, other=W.detach()[:, :3].clone().requires_grad_()),
     r"`partial` holds tensors that require grad"),
])
def test_tensors_that_require_grad_but_cannot_be_named_are_refused(fn, message, tracer):
    x = double(2, 3)
    with pytest.raises(fxgrad.ParameterError, match=message):
        fxgrad.derive(fn, (x,), tracer=tracer)
    with pytest.raises(fxgrad.ParameterError, match=message):
        fxgrad.function(fn, (x,))(x)


# --- parameters shared under two names ---------------------------------------------------------


def tied():
    m = nn.Sequential(nn.Linear(4, 4, bias=False), nn.Linear(4, 4, bias=False)).double()
    m[1].weight = m[0].weight
    return m


def test_a_tied_parameter_gets_the_gradient_of_every_use(tracer):
    m, x = tied(), double(3, 4)
    bwd = assert_derive_matches(m, (x,), [m[0].weight], tracer)
    assert bwd.grad_names == ["grad_input", "grad_0.weight"]
    assert_function_matches(m, (x,), [m[0].weight])


def test_a_captured_tensor_that_is_a_parameter_of_a_captured_module_is_one_parameter(tracer):
    lin = nn.Linear(4, 4, bias=False).double()
    weight = lin.weight

    def f(x):
        return lin(x) @ weight

    x = double(3, 4)
    bwd = assert_derive_matches(f, (x,), [weight], tracer)
    assert bwd.grad_names == ["grad_x", "grad_lin.weight"]
    assert_function_matches(f, (x,), [weight])



@pytest.mark.parametrize("tracer", ["fx", "aten"])  # export copies such a tensor into a constant
def test_a_traced_constant_that_requires_grad_is_refused(tracer):
    with pytest.raises(fxgrad.ParameterError, match=r"reads a tensor that requires grad \(of shape \(3, 3\)\)"):
        fxgrad.derive(reads_a_nested_attribute, (double(2, 3),), tracer=tracer)


COMPLEX = torch.randn(3, 3, dtype=torch.complex128, requires_grad=True)


def reads_a_complex_tensor(x):
    return (x.to(COMPLEX.dtype) @ COMPLEX).real.sum()


def test_a_captured_complex_tensor_that_requires_grad_is_refused_not_a_constant(tracer):
    with pytest.raises(fxgrad.InputError, match="COMPLEX is complex"):
        fxgrad.derive(reads_a_complex_tensor, (double(2, 3),), tracer=tracer)


# --- the rest of a module's state: a guard, as torch.compile guards a module's attributes -------


class Scaled(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc, self.act, self.scale = nn.Linear(4, 3), nn.Tanh(), 2.0

    def forward(self, x):
        return self.act(self.fc(x)) * self.scale


def replace_a_submodule_without_parameters(m):
    m.act = nn.Sigmoid()


def change_an_attribute(m):
    m.scale = 3.0


def add_a_forward_hook(m):
    m.register_forward_hook(lambda module, args, out: out * out)


def add_a_forward_pre_hook_to_a_submodule(m):
    m.fc.register_forward_pre_hook(lambda module, args: (args[0] * 2,))


@pytest.mark.parametrize("change, message", [
    (replace_a_submodule_without_parameters, r"`act` is another module now \(a Sigmoid\)"),
    (change_an_attribute, r"`scale` changed from 2.0 to 3.0"),
    (add_a_forward_hook, r"the hooks of the module changed"),
    (add_a_forward_pre_hook_to_a_submodule, r"the hooks of `fc` changed"),
])
def test_a_change_of_a_modules_other_state_is_refused_by_derive_and_derived_again_by_function(change, message, tracer):
    torch.manual_seed(0)
    m, x = Scaled().double(), double(5, 4)
    bwd = fxgrad.derive(m, (x,), tracer=tracer)
    f = fxgrad.function(m, (x,))
    f(x)
    change(m)
    with pytest.raises(fxgrad.ParameterError, match=message + ".*derive it again"):
        bwd(x, double(5, 3))
    assert_function_matches(m, (x,), list(m.parameters()), f=f)
    assert_derive_matches(m, (x,), list(m.parameters()), tracer)  # derived again, it holds


def test_a_global_module_hook_added_after_is_refused_by_derive(tracer):
    m, x = Scaled().double(), double(5, 4)
    bwd = fxgrad.derive(m, (x,), tracer=tracer)
    handle = torch.nn.modules.module.register_module_forward_hook(lambda module, args, out: out)
    try:
        with pytest.raises(fxgrad.ParameterError, match="the global module hooks changed"):
            bwd(x, double(5, 3))
    finally:
        handle.remove()
    bwd(x, double(5, 3))


def test_dropout_p_changed_after_is_refused(tracer):
    m, x = nn.Sequential(nn.Linear(4, 3), nn.Dropout(0.0)).double(), double(5, 4)
    bwd = fxgrad.derive(m, (x,), tracer=tracer)
    f = fxgrad.function(m, (x,))
    f(x)
    m[1].p = 0.5
    with pytest.raises(fxgrad.ParameterError, match=r"`1.p` changed from 0.0 to 0.5"):
        bwd(x, double(5, 3))
    with pytest.raises(fxgrad.RandomnessError):  # derived again: dropout now draws random numbers
        f(x)


def test_a_backward_hook_added_after_is_refused(tracer):
    m, x = Scaled().double(), double(5, 4)
    bwd = fxgrad.derive(m, (x,), tracer=tracer)
    f = fxgrad.function(m, (x,))
    f(x)
    m.fc.register_full_backward_hook(lambda module, grad_input, grad_output: None)
    with pytest.raises(fxgrad.ParameterError, match=r"the hooks of `fc` changed"):
        bwd(x, double(5, 3))
    with pytest.raises(fxgrad.TraceError, match="backward hook"):
        f(x)


def test_untying_tied_parameters_is_refused_by_derive_and_derived_again_by_function(tracer):
    m, x = tied(), double(3, 4)
    bwd = fxgrad.derive(m, (x,), tracer=tracer)
    f = fxgrad.function(m, (x,))
    f(x)
    m[1].weight = nn.Parameter(double(4, 4))
    with pytest.raises(fxgrad.ParameterError, match="which names share one tensor changed"):
        bwd(x, double(3, 4))
    assert_function_matches(m, (x,), list(m.parameters()), f=f)
    assert [p.grad is not None for p in (m[0].weight, m[1].weight)]


class ByMode(nn.Module):
    """Reads its train/eval mode as a plain Python bool, which every tracer follows."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return torch.tanh(self.fc(x)) if self.training else torch.sin(self.fc(x))


by_mode = ByMode().double()


def runs_a_global_module_in_nested_code(x):
    return sum(by_mode(c) for c in [x]).sum()


def runs_a_default_module(x, m=by_mode):
    return m(x).sum()


@pytest.mark.parametrize("fn", [runs_a_global_module_in_nested_code, runs_a_default_module])
def test_the_mode_of_a_module_held_as_a_default_or_used_in_nested_code_is_a_guard(fn, tracer):
    by_mode.train()
    try:
        x = double(5, 4)
        bwd = fxgrad.derive(fn, (x,), tracer=tracer)
        f = fxgrad.function(fn, (x,))
        f(x)
        by_mode.eval()
        with pytest.raises(fxgrad.ParameterError, match=r"`.*` was in training mode and is now in eval mode"):
            bwd(x, torch.ones((), dtype=torch.float64))
        assert_function_matches(fn, (x,), list(by_mode.parameters()), loss=lambda out: out, f=f)
    finally:
        by_mode.train()


@pytest.mark.parametrize("held, message", [
    (lambda: nn.Linear(4, 2).double(), r"reads `mymod.held`, a Linear, through the Python module `mymod`"),
    (lambda: double(4, 2).requires_grad_(), r"reads `mymod.held`, a Tensor, through the Python module `mymod`"),
])
def test_state_read_through_a_python_module_is_refused_not_made_a_constant(held, message, tracer):
    mymod = types.ModuleType("mymod")
    mymod.held = held()
    call = "mymod.held(x)" if isinstance(mymod.held, nn.Module) else "x @ mymod.held"
    fn = eval(f"lambda x: ({call}).sum()", {"mymod": mymod})
    x = double(3, 4)
    with pytest.raises(fxgrad.ParameterError, match=message):
        fxgrad.derive(fn, (x,), tracer=tracer)
    with pytest.raises(fxgrad.ParameterError, match=message):
        fxgrad.function(fn, (x,))(x)


def test_a_copy_of_a_backward_holds_the_state_as_it_was_when_copied(tracer):
    torch.manual_seed(0)
    m, x, g = Net().double(), double(5, 4), double(5, 3)
    bwd = fxgrad.derive(m, (x,), tracer=tracer)
    bwd(x, g)
    reassign_weight(m)  # after the last call: the copies must not hold the values that call read
    copies = [copy.deepcopy(bwd), pickle.loads(pickle.dumps(bwd))]
    as_copied = copy.deepcopy(m)
    reassign_weight(m)
    for copied in copies:
        for d, e in zip(copied(x, g), expected_grads(as_copied, (x,), list(as_copied.parameters()), (g,))):
            torch.testing.assert_close(d, e, rtol=1e-9, atol=1e-10)
    for d, e in zip(bwd(x, g), expected_grads(m, (x,), list(m.parameters()), (g,))):  # the original reads live
        torch.testing.assert_close(d, e, rtol=1e-9, atol=1e-10)
    m.fc.weight = nn.Parameter(double(3, 5))
    with pytest.raises(fxgrad.ParameterError, match=r"`fc.weight` is now a torch.float64 tensor of shape \(3, 5\)"):
        copy.deepcopy(bwd)
    with pytest.raises(fxgrad.ParameterError, match=r"`fc.weight` is now a torch.float64 tensor of shape \(3, 5\)"):
        pickle.dumps(bwd)


def test_a_captured_tensor_that_starts_requiring_grad_is_differentiated(tracer):
    W = double(4, 2)

    def fn(x):
        return (x @ W).exp().sum()

    x = double(3, 4)
    bwd = fxgrad.derive(fn, (x,), tracer=tracer)
    assert bwd.grad_names == ["grad_x"]
    f = fxgrad.function(fn, (x,))
    f(x.requires_grad_())  # a partition for x alone, which would serve the next call
    W.requires_grad_(True)
    with pytest.raises(fxgrad.ParameterError, match="whether `W` is a module or a tensor that requires grad changed"):
        bwd(x, torch.ones((), dtype=torch.float64))
    assert_function_matches(fn, (x,), [x, W], loss=lambda out: out, f=f)
    x.requires_grad_(False)
    assert_function_matches(fn, (x,), [W], loss=lambda out: out, f=f)


@pytest.mark.parametrize("name", ["training", "modules", "forward", "type", "float", "T_destination", "dump_patches",
                                  "_parameters"])
def test_a_captured_name_that_a_module_has_is_differentiated_under_that_name(name, tracer):
    V, lin = double(4, 3).requires_grad_(), nn.Linear(3, 2).double()
    fn = eval(f"lambda x: lin(x @ {name}).sum()", {name: V, "lin": lin})
    x = double(5, 4)
    bwd = assert_derive_matches(fn, (x,), [V, lin.weight, lin.bias], tracer)
    assert bwd.grad_names == ["grad_x", f"grad_{name}", "grad_lin.weight", "grad_lin.bias"]
    assert_function_matches(fn, (x,), [V, lin.weight, lin.bias], loss=lambda out: out)
    module_named = eval(f"lambda x: {name}(x).sum()", {name: lin})
    bwd = assert_derive_matches(module_named, (double(5, 3),), [lin.weight, lin.bias], tracer)
    assert bwd.grad_names == ["grad_x", f"grad_{name}.weight", f"grad_{name}.bias"]


class _NamedLikeTheBackward(torch.nn.Module):
    """A submodule and a parameter under names a Backward has for itself (`math()`, `graph`)."""

    def __init__(self):
        super().__init__()
        self.math = torch.nn.Linear(3, 3, dtype=torch.float64)
        self.graph = torch.nn.Parameter(torch.randn(3, dtype=torch.float64))

    def forward(self, x):
        return (torch.tanh(self.math(x)) * self.graph).sum()


def test_parameters_named_like_the_backwards_attributes_are_read_as_themselves():
    model, x = _NamedLikeTheBackward(), torch.randn(2, 3, dtype=torch.float64)
    bwd = fxgrad.derive(model, (x,))
    assert bwd.grad_names == ["grad_x", "grad_graph", "grad_math.weight", "grad_math.bias"]
    assert callable(bwd.math) and "self.math_.weight" in bwd.code
    for _ in range(2):  # read by name when the backward runs: a change in place is seen
        leaves = [x.clone().requires_grad_(), *model.parameters()]
        expected = torch.autograd.grad(model.forward.__func__(model, leaves[0]), leaves)
        for derived, autograd in zip(bwd(x, torch.tensor(1.0, dtype=torch.float64)), expected):
            torch.testing.assert_close(derived, autograd, rtol=1e-9, atol=1e-10)
        with torch.no_grad():
            model.math.weight.add_(1)
    latex = torch.randn(3, dtype=torch.float64, requires_grad=True)

    def captured(x):
        return (x * latex).sum()

    bwd = fxgrad.derive(captured, (x[0],))
    assert bwd.grad_names == ["grad_x", "grad_latex"] and callable(bwd.latex)
    torch.testing.assert_close(bwd(x[0], torch.tensor(1.0, dtype=torch.float64))[1], x[0])
