"""The argument and output forms real code has: defaults, keywords, constants, containers of
tensors in, dicts, namedtuples and dataclasses out; under every tracer, against autograd in
float64."""

import collections
import dataclasses
import pickle
from typing import Optional

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import fxgrad

TRACERS = ["fx", "export", "aten", "auto"]


def randn(*shape):
    return torch.randn(*shape, dtype=torch.float64)


def leaves(value):
    """The tensors of a value, in the order fxgrad takes them (None skipped)."""
    if isinstance(value, torch.Tensor):
        return [value]
    if dataclasses.is_dataclass(value):
        value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in leaves(v)]
    return []


def rebuilt(value, tensors):
    """`value` with its tensors replaced by `tensors`, in order."""
    tensors = iter(tensors)

    def replace(v):
        if isinstance(v, torch.Tensor):
            return next(tensors)
        if isinstance(v, dict):
            return {k: replace(x) for k, x in v.items()}
        if isinstance(v, (tuple, list)):
            return type(v)(replace(x) for x in v)
        return v
    return replace(value)


def check(fn, args, kwargs=None, tracer="auto", seed=0):
    """Derive `fn(*args, **kwargs)` and compare the backward, called by the convention
    `bwd(*args, *kwargs.values(), *grad_outputs)`, with autograd; return the backward."""
    kwargs = kwargs or {}
    bwd = fxgrad.derive(fn, args, kwargs, tracer=tracer)
    tensors = leaves((args, kwargs))
    parameters = list(fn.parameters()) if isinstance(fn, nn.Module) else []
    copies = [t.detach().clone().requires_grad_(t.is_floating_point()) for t in tensors]
    new_args, new_kwargs = rebuilt((args, kwargs), copies)
    outputs = leaves(fn(*new_args, **new_kwargs))
    g = torch.Generator().manual_seed(seed)
    grads = [torch.randn(out.shape, generator=g, dtype=out.dtype) for out in outputs]
    wanted = [c for c in copies if c.requires_grad] + parameters
    expected = torch.autograd.grad(outputs, wanted, grads, allow_unused=True)
    derived = bwd(*args, *kwargs.values(), *grads)
    derived = [d for d, c in zip(derived, copies) if c.requires_grad] + list(derived[len(copies):])
    assert len(derived) == len(expected)
    for d, e in zip(derived, expected):
        torch.testing.assert_close(d, torch.zeros_like(d) if e is None else e, rtol=1e-9, atol=1e-10)
    return bwd


# ---------------------------------------------------------------------------------------------
# Default arguments


class Attention(nn.Module):
    """A timm-style block: `forward(x, attn_mask=None, is_causal=False)`."""

    def __init__(self):
        super().__init__()
        self.qkv = nn.Linear(4, 12).double()

    def forward(self, x, attn_mask=None, is_causal=False):
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, is_causal=is_causal)


def scaled(x, scale=2.0, bias=None):
    return (x * scale).tanh() if bias is None else (x * scale + bias).tanh()


@pytest.mark.parametrize("tracer", TRACERS)
def test_a_modules_default_arguments_are_bound(tracer):
    bwd = check(Attention(), (randn(2, 3, 4),), tracer=tracer)
    assert bwd.grad_names == ["grad_x", "grad_qkv.weight", "grad_qkv.bias"]


def test_auto_keeps_sizes_generic_for_default_arguments():
    bwd = fxgrad.derive(Attention(), (randn(2, 3, 4),))
    assert bwd.guards.fixed_sizes is None  # fx traced it: no fall back to export
    x = randn(5, 3, 4)
    assert bwd(x, randn(5, 3, 4))[0].shape == x.shape


@pytest.mark.parametrize("tracer", TRACERS)
def test_a_functions_default_arguments_are_bound(tracer):
    check(scaled, (randn(3),), tracer=tracer)


# ---------------------------------------------------------------------------------------------
# Keyword arguments


class Embedded(nn.Module):
    """An HF-style model: `forward(input_ids=None, inputs_embeds=None, scale=1.0)`."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(10, 4).double()
        self.head = nn.Linear(4, 3).double()

    def forward(self, input_ids=None, inputs_embeds=None, scale=1.0):
        if inputs_embeds is None:
            inputs_embeds = self.embed(input_ids)
        return self.head(inputs_embeds * scale)


@pytest.mark.parametrize("tracer", TRACERS)
def test_keyword_arguments_name_the_backwards_inputs(tracer):
    bwd = check(Embedded(), (), {"inputs_embeds": randn(2, 4), "scale": 0.5}, tracer=tracer)
    assert bwd.grad_names[0] == "grad_inputs_embeds"
    assert [form.name for form in bwd.guards.arguments] == ["inputs_embeds", "scale"]
    assert "def forward(self, inputs_embeds, grad_out)" in bwd.code


@pytest.mark.parametrize("tracer", TRACERS)
def test_keywords_and_positions_together(tracer):
    check(lambda x, w, *, shift: (x @ w + shift).sin(), (randn(2, 3),), {"w": randn(3, 2), "shift": 1.5},
          tracer=tracer)


def test_function_takes_keywords():
    model = Embedded()
    f = fxgrad.function(model, (), {"inputs_embeds": randn(2, 4)})
    e = randn(2, 4).requires_grad_()
    f(inputs_embeds=e).sum().backward()
    expected = e.detach().clone().requires_grad_()
    grad_weight = model.head.weight.grad.clone()
    model.zero_grad()
    model(inputs_embeds=expected).sum().backward()
    torch.testing.assert_close(e.grad, expected.grad)
    torch.testing.assert_close(grad_weight, model.head.weight.grad)


def test_function_takes_a_positional_argument_by_keyword():
    f = fxgrad.function(lambda x, y: (x * y).sum(), (randn(3), randn(3)))
    x, y = randn(3).requires_grad_(), randn(3)
    f(x, y=y).backward()
    torch.testing.assert_close(x.grad, y)


# ---------------------------------------------------------------------------------------------
# Constants: numbers, bools, strings, None


def options(x, p: float, square: bool, reduction: str, mask):
    y = x ** 2 if square else x
    y = y * p if mask is None else y * mask
    return F.mse_loss(y, torch.zeros_like(y), reduction=reduction)


@pytest.mark.parametrize("tracer", TRACERS)
def test_constants_are_constants_of_the_trace(tracer):
    check(options, (randn(3), 0.5, True, "sum", None), tracer=tracer)


def test_a_backward_refuses_another_constant_naming_the_argument():
    bwd = fxgrad.derive(options, (randn(3), 0.5, True, "sum", None))
    with pytest.raises(fxgrad.ShapeError, match=r"derived for `square` == True, a constant of the trace; called "
                                                r"with False"):
        bwd(randn(3), 0.5, False, "sum", None, randn(()))
    with pytest.raises(fxgrad.ShapeError, match="`reduction` == 'sum'"):
        bwd(randn(3), 0.5, True, "mean", None, randn(()))
    with pytest.raises(fxgrad.ShapeError, match=r"`mask` == None, a constant of the trace; called with a tensor of "
                                                r"shape \(3,\)"):
        bwd(randn(3), 0.5, True, "sum", randn(3), randn(()))


def test_a_pickled_backward_keeps_its_arguments_guards():
    bwd = pickle.loads(pickle.dumps(fxgrad.derive(options, (randn(3), 0.5, True, "sum", None))))
    x = randn(3)
    torch.testing.assert_close(bwd(x, 0.5, True, "sum", None, torch.tensor(1.0, dtype=torch.float64))[0], x ** 3)
    with pytest.raises(fxgrad.ShapeError, match="`p` == 0.5"):
        bwd(x, 0.25, True, "sum", None, randn(()))


def test_function_derives_per_constant():
    f = fxgrad.function(options, (randn(3), 0.5, True, "sum", None))
    for p, square, reduction in [(0.5, True, "sum"), (2.0, True, "sum"), (0.5, False, "mean")]:
        x = randn(3).requires_grad_()
        f(x, p, square, reduction, None).backward()
        expected = x.detach().clone().requires_grad_()
        options(expected, p, square, reduction, None).backward()
        torch.testing.assert_close(x.grad, expected.grad)


# ---------------------------------------------------------------------------------------------
# Containers in


def of_a_list(xs, pair, batch):
    return xs[0] * xs[1] + pair[0].sum() - batch["a"] @ batch["b"]


@pytest.mark.parametrize("tracer", TRACERS)
def test_lists_tuples_and_dicts_of_tensors_in(tracer):
    bwd = check(of_a_list, ([randn(2, 2), randn(2, 2)], (randn(3), 4), {"a": randn(2, 3), "b": randn(3, 2)}),
                tracer=tracer)
    assert bwd.grad_names == ["grad_xs_0", "grad_xs_1", "grad_pair_0", "grad_batch_a", "grad_batch_b"]


def test_a_backward_refuses_another_form_of_a_container():
    args = ([randn(2, 2), randn(2, 2)], (randn(3), 4), {"a": randn(2, 3), "b": randn(3, 2)})
    bwd = fxgrad.derive(of_a_list, args)
    with pytest.raises(fxgrad.InputError, match="derived for `xs` of the form"):
        bwd([randn(2, 2)], *args[1:], randn(2, 2))
    with pytest.raises(fxgrad.ShapeError, match=r"`pair`\[1\] == 4"):
        bwd(args[0], (randn(3), 5), args[2], randn(2, 2))


# ---------------------------------------------------------------------------------------------
# Structures out


Pair = collections.namedtuple("Pair", ["loss", "logits"])


@dataclasses.dataclass
class Output:
    logits: torch.Tensor
    loss: Optional[torch.Tensor] = None
    hidden: Optional[torch.Tensor] = None


class Classifier(nn.Module):
    """Returns `Output(logits, loss)` (a loss among the outputs), or its dict or namedtuple."""

    def __init__(self, returns):
        super().__init__()
        self.fc = nn.Linear(3, 4).double()
        self.returns = returns

    def forward(self, x, labels=None):
        logits = self.fc(x)
        loss = None if labels is None else F.cross_entropy(logits, labels)
        if self.returns == "dict":
            return {"logits": logits, "loss": loss}
        if self.returns == "namedtuple":
            return Pair(loss, logits)
        return Output(logits, loss)


@pytest.mark.parametrize("tracer", TRACERS)
@pytest.mark.parametrize("returns", ["dict", "namedtuple", "dataclass"])
def test_structured_outputs_name_their_gradients(returns, tracer):
    model = Classifier(returns)
    bwd = check(model, (randn(5, 3), torch.tensor([0, 1, 2, 3, 0])), tracer=tracer)
    names = {spec.name for spec in bwd.guards.grad_outputs}
    assert names == {"grad_logits", "grad_loss"}


@pytest.mark.parametrize("tracer", TRACERS)
def test_outputs_that_are_none_are_skipped(tracer):
    bwd = check(Classifier("dataclass"), (randn(5, 3),), tracer=tracer)
    assert [spec.name for spec in bwd.guards.grad_outputs] == ["grad_logits"]


@pytest.mark.parametrize("returns", ["dict", "namedtuple", "dataclass"])
def test_function_returns_what_fn_returns(returns):
    model = Classifier(returns)
    f = fxgrad.function(model, (randn(5, 3), torch.tensor([0, 1, 2, 3, 0])))
    x, labels = randn(5, 3).requires_grad_(), torch.tensor([1, 1, 2, 0, 3])
    out = f(x, labels)
    expected = model(x.detach().clone(), labels)
    assert type(out) is type(expected)
    loss = out["loss"] if returns == "dict" else out.loss
    expected_loss = expected["loss"] if returns == "dict" else expected.loss
    torch.testing.assert_close(loss, expected_loss)
    loss.backward()
    reference = x.detach().clone().requires_grad_()
    model.zero_grad()
    (model(reference, labels)["loss"] if returns == "dict" else model(reference, labels).loss).backward()
    torch.testing.assert_close(x.grad, reference.grad)


def test_function_returns_none_where_fn_does():
    model = Classifier("dataclass")
    out = fxgrad.function(model, (randn(5, 3),))(randn(5, 3))
    assert isinstance(out, Output) and out.loss is None and out.logits.shape == (5, 4)


# ---------------------------------------------------------------------------------------------
# Tracing leaves nothing on the user's module


class MakesATensor(nn.Module):
    """fx keeps `torch.tensor([...])` as a `_tensor_constant0` attribute of the module it traces;
    the branch on a size then stops fx, and "auto" falls back to export."""

    def forward(self, x):
        y = x * torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
        if x.shape[0] > 1:
            return y.sin()
        return y


@pytest.mark.parametrize("tracer", ["auto", "fx"])
def test_no_tensor_constant_is_left_on_the_module(tracer):
    model = MakesATensor()
    if tracer == "fx":
        with pytest.raises(fxgrad.TraceError):
            fxgrad.derive(model, (randn(2, 3),), tracer="fx")
    else:
        check(model, (randn(2, 3),))
    assert not [name for name in vars(model) if name.startswith("_tensor_constant")]


def test_a_module_with_hooks_called_with_keywords_is_refused():
    model = Embedded()
    model.register_forward_hook(lambda module, args, out: out * 2)
    with pytest.raises(fxgrad.TraceError, match="forward hooks"):
        fxgrad.derive(model, (), {"inputs_embeds": randn(2, 4)})
