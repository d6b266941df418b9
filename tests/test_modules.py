"""nn.Modules: gradients of the inputs and then of the parameters, through every tracer."""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import fxgrad
from fxgrad.trace import TRACERS


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 8)
        self.fc2 = nn.Linear(8, 3)

    def forward(self, x):
        h = F.gelu(self.fc1(x))
        return self.fc2(h)


class AttentionBlock(nn.Module):
    """Multi-head self-attention with a residual connection, no LayerNorm."""

    def __init__(self, dim=8, heads=2):
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)
        self.register_buffer("scale", torch.tensor((dim // heads) ** -0.5))

    def split_heads(self, x):
        B, T, C = x.shape
        return x.reshape(B, T, self.heads, C // self.heads).transpose(1, 2)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.split_heads(self.q(x)), self.split_heads(self.k(x)), self.split_heads(self.v(x))
        att = (q @ k.transpose(-2, -1) * self.scale).softmax(dim=-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, C)
        return x + self.proj(y)


def sequential():
    return nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Dropout(0.0), nn.Linear(6, 2), nn.Tanh())


def autograd_grads(module, inputs, grad_output):
    leaves = [x.detach().clone().requires_grad_() for x in inputs]
    params = [p for _, p in module.named_parameters()]
    return torch.autograd.grad(module(*leaves), leaves + params, grad_output)


MODULES = {
    "mlp": (MLP, lambda: (torch.randn(5, 4, dtype=torch.float64),)),
    "sequential": (sequential, lambda: (torch.randn(5, 4, dtype=torch.float64),)),
}


@pytest.mark.parametrize("tracer", TRACERS)
@pytest.mark.parametrize("name", MODULES)
def test_module_gradients_match_autograd(name, tracer):
    make_module, make_inputs = MODULES[name]
    module = make_module().double()
    inputs = make_inputs()
    bwd = fxgrad.derive(module, inputs, tracer=tracer)
    assert bwd.grad_names == ["grad_input" if name == "sequential" else "grad_x"] + [
        f"grad_{n}" for n, _ in module.named_parameters()]
    grad_output = torch.randn(module(*inputs).shape, dtype=torch.float64)
    for derived, expected in zip(bwd(*inputs, grad_output), autograd_grads(module, inputs, grad_output)):
        torch.testing.assert_close(derived, expected)


def test_attention_block_needs_export_and_matches_autograd():
    module = AttentionBlock().double()
    x = torch.randn(2, 5, 8, dtype=torch.float64)
    bwd = fxgrad.derive(module, (x,))  # `B, T, C = x.shape` and tuple indexing: fx cannot, export can
    grad_output = torch.randn(2, 5, 8, dtype=torch.float64)
    for derived, expected in zip(bwd(x, grad_output), autograd_grads(module, (x,), grad_output)):
        torch.testing.assert_close(derived, expected)
    assert "scale" not in bwd.grad_names  # a buffer is a constant


def test_parameters_are_read_when_called():
    module = MLP().double()
    x = torch.randn(5, 4, dtype=torch.float64)
    bwd = fxgrad.derive(module, (x,))
    with torch.no_grad():
        module.fc2.weight.mul_(3)
    grad_output = torch.randn(5, 3, dtype=torch.float64)
    for derived, expected in zip(bwd(x, grad_output), autograd_grads(module, (x,), grad_output)):
        torch.testing.assert_close(derived, expected)


def test_frozen_parameters_get_none_and_wrt_selects():
    module = MLP().double()
    module.fc1.weight.requires_grad_(False)
    x = torch.randn(5, 4, dtype=torch.float64)
    grads = fxgrad.derive(module, (x,))(x, torch.ones(5, 3, dtype=torch.float64))
    assert grads[1] is None and grads[2] is not None
    only_fc2_bias = fxgrad.derive(module, (x,), wrt=[4])(x, torch.ones(5, 3, dtype=torch.float64))
    assert [g is not None for g in only_fc2_bias] == [False, False, False, False, True]
    torch.testing.assert_close(only_fc2_bias[4], torch.full((3,), 5.0, dtype=torch.float64))


def test_dropout_in_training_is_refused_and_in_eval_is_identity():
    module = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5)).double()
    x = torch.randn(3, 4, dtype=torch.float64)
    with pytest.raises(fxgrad.RandomnessError, match="dropout"):
        fxgrad.derive(module, (x,))
    module.eval()
    grads = fxgrad.derive(module, (x,))(x, torch.ones(3, 4, dtype=torch.float64))
    torch.testing.assert_close(grads[0], module[0].weight.sum(0).expand(3, 4))


@pytest.mark.parametrize("tracer", ["export", "aten", "auto"])
@pytest.mark.parametrize("make_module, shape", [
    (lambda: nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3), nn.Tanh()), (4, 3)),
    (lambda: nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3), nn.Tanh()), (2, 2, 5, 5)),
], ids=["BatchNorm1d", "BatchNorm2d"])
def test_batch_norm_in_training_matches_autograd_and_leaves_the_running_statistics(make_module, shape, tracer):
    module = make_module().double()
    x = torch.randn(shape, dtype=torch.float64)
    before = {name: t.clone() for name, t in module.state_dict().items()}
    bwd = fxgrad.derive(module, (x,), tracer=tracer)
    for name, t in module.state_dict().items():  # deriving changes none of them
        assert torch.equal(t, before[name]), name
    grad_output = torch.randn(module(x).shape, dtype=torch.float64)  # (updates the running statistics)
    expected = autograd_grads(module, (x,), grad_output)
    after_forward = {name: t.clone() for name, t in module.state_dict().items()}
    assert not torch.equal(after_forward["1.running_mean"], before["1.running_mean"])
    derived = bwd(x, grad_output)
    for name, t in module.state_dict().items():  # the backward changes none of them
        assert torch.equal(t, after_forward[name]), name
    for d, e in zip(derived, expected):
        torch.testing.assert_close(d, e)


class SelfAttention(nn.Module):
    def __init__(self, batch_first):
        super().__init__()
        self.attention = nn.MultiheadAttention(8, 2, batch_first=batch_first)

    def forward(self, x):
        return self.attention(x, x, x)  # (the output, and the weights averaged over the heads)


def encoder_layer(norm_first, batch_first):
    return nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, norm_first=norm_first, batch_first=batch_first)


def decoder_layer(norm_first, batch_first):
    return nn.TransformerDecoderLayer(8, 2, 16, dropout=0.0, norm_first=norm_first, batch_first=batch_first)


# torch's attention modules, as transformer code builds them: (B, T, C) batch first, else (T, B, C)
@pytest.mark.parametrize("batch_first", [True, False], ids=["batch_first", "sequence_first"])
@pytest.mark.parametrize("make_module, sequences", [
    (SelfAttention, 1),
    (lambda batch_first: encoder_layer(False, batch_first), 1),
    (lambda batch_first: encoder_layer(True, batch_first), 1),
    (lambda batch_first: decoder_layer(False, batch_first), 2),
    (lambda batch_first: decoder_layer(True, batch_first), 2),
], ids=["MultiheadAttention", "TransformerEncoderLayer", "TransformerEncoderLayer norm_first",
        "TransformerDecoderLayer", "TransformerDecoderLayer norm_first"])
def test_torch_attention_modules_match_autograd(make_module, sequences, batch_first):
    torch.manual_seed(0)
    module = make_module(batch_first).double().eval()
    shapes = [(2, 5, 8), (2, 7, 8)][:sequences]  # a decoder's target and memory
    for seed in (0, 1):
        g = torch.Generator().manual_seed(seed)
        inputs = tuple(torch.randn(s if batch_first else (s[1], s[0], s[2]), generator=g, dtype=torch.float64)
                       for s in shapes)
        if seed == 0:
            bwd = fxgrad.derive(module, inputs)
        outputs = [out for out in torch.utils._pytree.tree_leaves(module(*inputs)) if out is not None]
        grad_outputs = [torch.randn(out.shape, generator=g, dtype=torch.float64) for out in outputs]
        leaves = [x.detach().clone().requires_grad_() for x in inputs]
        expected = torch.autograd.grad(
            [out for out in torch.utils._pytree.tree_leaves(module(*leaves)) if out is not None],
            leaves + list(module.parameters()), grad_outputs)
        for name, derived, e in zip(bwd.grad_names, bwd(*inputs, *grad_outputs), expected):
            torch.testing.assert_close(derived, e, rtol=1e-9, atol=1e-10, msg=lambda m: f"{name}: {m}")


def test_batch_norm_is_beyond_fx_which_reads_its_input_checks_as_control_flow():
    with pytest.raises(fxgrad.TraceError, match="fx could not trace"):
        fxgrad.derive(nn.BatchNorm1d(3), (torch.randn(4, 3),), tracer="fx")


def with_hook(register):
    module = MLP().double()
    register(module)
    return module


ROOT_HOOKS = {
    "forward hook": lambda m: m.register_forward_hook(lambda module, args, out: out * 2),
    "forward pre-hook": lambda m: m.register_forward_pre_hook(lambda module, args: (args[0].sin(),)),
    "forward hook with kwargs": lambda m: m.register_forward_hook(
        lambda module, args, kwargs, out: out.tanh(), with_kwargs=True),
    "forward pre-hook with kwargs": lambda m: m.register_forward_pre_hook(
        lambda module, args, kwargs: ((args[0] * 3,), kwargs), with_kwargs=True),
    "hook reading a parameter": lambda m: m.register_forward_hook(lambda module, args, out: out * module.fc2.bias),
}


@pytest.mark.parametrize("tracer", ["fx", "export", "aten", "auto"])
@pytest.mark.parametrize("hook", ROOT_HOOKS)
def test_the_root_modules_forward_hooks_are_honoured(hook, tracer):
    module = with_hook(ROOT_HOOKS[hook])
    x = torch.randn(5, 4, dtype=torch.float64)
    bwd = fxgrad.derive(module, (x,), tracer=tracer)
    assert bwd.grad_names == ["grad_x"] + [f"grad_{n}" for n, _ in module.named_parameters()]
    grad_output = torch.randn(module(x).shape, dtype=torch.float64)
    for derived, expected in zip(bwd(x, grad_output), autograd_grads(module, (x,), grad_output)):
        torch.testing.assert_close(derived, expected)


class Recurrent(nn.Module):
    """A recurrent layer's outputs and final states, from a given initial state or from zeros."""

    def __init__(self, rnn, initial_state=False):
        super().__init__()
        self.rnn, self.initial_state = rnn, initial_state

    def forward(self, x, h0):
        out, state = self.rnn(x, (h0, h0.cos()) if isinstance(self.rnn, nn.LSTM) else h0) if self.initial_state \
            else self.rnn(x)
        return (out, *state) if isinstance(state, tuple) else (out, state)


RECURRENT = {
    "LSTM 2 layers batch first": lambda: nn.LSTM(3, 4, num_layers=2, batch_first=True),
    "LSTM bidirectional": lambda: nn.LSTM(3, 4, bidirectional=True),
    "LSTM projections": lambda: nn.LSTM(3, 4, proj_size=2),
    "GRU 2 layers": lambda: nn.GRU(3, 4, num_layers=2),
    "RNN tanh": lambda: nn.RNN(3, 4),
    "RNN relu no bias": lambda: nn.RNN(3, 4, nonlinearity="relu", bias=False),
    "LSTM dropout in eval": lambda: nn.LSTM(3, 4, num_layers=2, dropout=0.5).eval(),
    "LSTM 2 layers bidirectional": lambda: nn.LSTM(3, 4, num_layers=2, bidirectional=True),
    "GRU bidirectional batch first": lambda: nn.GRU(3, 4, batch_first=True, bidirectional=True),
    "RNN 2 layers bidirectional batch first": lambda: nn.RNN(3, 4, num_layers=2, batch_first=True,
                                                             bidirectional=True),
}


@pytest.mark.parametrize("tracer", ["export", "aten", "auto"])
@pytest.mark.parametrize("initial_state", [False, True], ids=["zeros", "initial state"])
@pytest.mark.parametrize("name", RECURRENT)
def test_recurrent_layers_match_autograd(name, initial_state, tracer):
    torch.manual_seed(0)
    rnn = RECURRENT[name]().double()
    module = Recurrent(rnn, initial_state)
    x = torch.randn(5, 2, 3, dtype=torch.float64)
    layers = rnn.num_layers * (2 if rnn.bidirectional else 1)
    batch = x.shape[0] if rnn.batch_first else x.shape[1]
    h0 = torch.randn(layers, batch, getattr(rnn, "proj_size", 0) or rnn.hidden_size, dtype=torch.float64)
    if isinstance(rnn, nn.LSTM) and rnn.proj_size and initial_state:
        pytest.skip("an LSTM with projections takes cells of another size than its outputs")
    bwd = fxgrad.derive(module, (x, h0), tracer=tracer)
    leaves = [x.clone().requires_grad_(), h0.clone().requires_grad_()]
    outputs = module(*leaves)
    grad_outputs = [torch.randn_like(out) for out in outputs]
    expected = torch.autograd.grad(outputs, leaves + list(module.parameters()), grad_outputs, allow_unused=True,
                                   materialize_grads=True)
    for derived, e in zip(bwd(x, h0, *grad_outputs), expected):
        torch.testing.assert_close(derived, e)


@pytest.mark.parametrize("tracer", ["export", "aten", "auto"])
def test_recurrent_dropout_in_training_is_refused(tracer):
    module = Recurrent(nn.LSTM(3, 4, num_layers=2, dropout=0.5))
    with pytest.raises(fxgrad.RandomnessError):
        fxgrad.derive(module, (torch.randn(5, 2, 3), torch.randn(2, 2, 4)), tracer=tracer)


def test_recurrent_layers_are_beyond_fx_which_reads_their_checks_as_control_flow():
    with pytest.raises(fxgrad.TraceError, match="fx could not trace"):
        fxgrad.derive(Recurrent(nn.GRU(3, 4)), (torch.randn(5, 2, 3), torch.randn(1, 2, 4)), tracer="fx")


@pytest.mark.parametrize("tracer", TRACERS)
def test_in_place_dropout_in_eval_mode_is_the_identity(tracer):
    # export records `aten.dropout_`, lowered as dropout, which in eval mode draws nothing
    model = nn.Sequential(nn.Linear(3, 4), nn.Dropout(inplace=True), nn.Tanh()).double().eval()
    x = torch.randn(2, 3, dtype=torch.float64)
    bwd = fxgrad.derive(model, (x,), tracer=tracer)
    grad_output = torch.randn(2, 4, dtype=torch.float64)
    for derived, expected in zip(bwd(x, grad_output), autograd_grads(model, (x,), grad_output)):
        torch.testing.assert_close(derived, expected)
    with pytest.raises(fxgrad.RandomnessError):
        fxgrad.derive(model.train(), (x,), tracer=tracer)
