"""The calling contract of `derive`'s result."""

import collections

import pytest
import torch

import fxgrad
from checks import assert_matches_autograd


def randn(*shape):
    return torch.randn(*shape, dtype=torch.float64)


@pytest.mark.parametrize(
    "fn, inputs",
    [
        pytest.param(lambda x, y: (x, x * y), (randn(2, 3), randn(2, 3)), id="output is an input"),
        pytest.param(lambda x, y: (y * y, y), (randn(2, 3), randn(3)), id="input used only as output"),
        pytest.param(lambda x: (x * 2, x > 0), (randn(2, 3),), id="boolean output"),
        pytest.param(lambda x: (x.exp(), x.argmax()), (randn(2, 3),), id="integer output"),
        pytest.param(lambda x, n: x * n, (randn(2, 3), torch.arange(3)), id="integer input"),
        pytest.param(lambda x, y: x * 2, (randn(2, 3), randn(2, 3)), id="input without path"),
        pytest.param(lambda x: (x.tanh(), x.tanh()), (randn(2, 3),), id="same value twice"),
        pytest.param(lambda x: x * (x > 0), (randn(2, 3),), id="mask from a comparison"),
        pytest.param(lambda x, i: x.sum(-1) * x.size(i.ndim) / x.shape[0], (randn(2, 3), torch.tensor(1)),
                     id="sizes read in the function"),
        pytest.param(lambda x: (x.exp(), x.exp()), (randn(2, 3),), id="same node returned twice"),
        pytest.param(lambda x: (x, x), (randn(2, 3),), id="input returned twice"),
        pytest.param(lambda x, grad_x: (x * grad_x, x), (randn(3), randn(3)), id="input named like a gradient"),
        pytest.param(lambda x: (-2.0) ** x, (randn(3),), id="negative base: nan as torch"),
        pytest.param(torch.relu, (torch.tensor([float("nan"), 1.0, -1.0, 0.0], dtype=torch.float64),),
                     id="relu at nan and 0 as torch"),
        pytest.param(lambda x: x.mean(0), (randn(3, 0),), id="mean of empty"),
        pytest.param(lambda x, y: x**y, (torch.rand(3) + 0.5, randn(3)), id="float32 base, float64 exponent"),
        pytest.param(lambda x: torch.var_mean(x, 1), (randn(2, 3),), id="returns an op's two results"),
        pytest.param(lambda x: x.max(1), (randn(2, 3),), id="returns values and indices"),
        pytest.param(lambda x: x.split(1, 1), (randn(2, 3),), id="returns the pieces of a split"),
        pytest.param(lambda x, i: x[:, i] * x[i], (randn(3, 3), torch.tensor([-1, 0, -1])),
                     id="negative tensor indices"),
    ],
)
def test_contract_cases_match_autograd(fn, inputs):
    assert_matches_autograd(fn, fxgrad.derive(fn, inputs), inputs)


def test_returns_a_graph_module_with_one_entry_per_input():
    x, n = randn(2, 3), torch.arange(3)
    bwd = fxgrad.derive(lambda x, n: x * n, (x, n))
    assert isinstance(bwd, torch.fx.GraphModule)
    grad_x, grad_n = bwd(x, n, torch.ones(3, dtype=torch.float64).expand(2, 3))
    assert grad_n is None and torch.equal(grad_x, n.expand(2, 3).double())


def test_input_without_path_gets_zeros():
    x, y = randn(2, 3), randn(4)
    grad_x, grad_y = fxgrad.derive(lambda x, y: x * 2, (x, y))(x, y, torch.ones(2, 3, dtype=torch.float64))
    assert torch.equal(grad_y, torch.zeros(4, dtype=torch.float64))


def test_wrt_selects_inputs():
    x, w = randn(2, 3), randn(3, 4)
    bwd = fxgrad.derive(lambda x, w: x @ w, (x, w), wrt=(1,))
    grad_x, grad_w = bwd(x, w, torch.ones(2, 4, dtype=torch.float64))
    assert grad_x is None
    torch.testing.assert_close(grad_w, x.T @ torch.ones(2, 4, dtype=torch.float64))
    assert "grad_x" not in bwd.code  # nothing computed for inputs outside wrt


def test_builtins_and_defaults_are_traced():
    x = randn(2, 3)
    assert_matches_autograd(torch.tanh, fxgrad.derive(torch.tanh, (x,)), (x,))

    def scaled(x, scale=3.0):
        return x * scale

    assert_matches_autograd(scaled, fxgrad.derive(scaled, (x,)), (x,))


def test_float32_inputs_keep_their_dtype():
    x, b = torch.randn(2, 3), torch.randn(3, dtype=torch.float64)
    grad_x, grad_b = fxgrad.derive(lambda x, b: x + b, (x, b))(x, b, torch.ones(2, 3, dtype=torch.float64))
    assert grad_x.dtype == torch.float32 and grad_b.dtype == torch.float64


ModelOutput = collections.namedtuple("ModelOutput", "loss logits")


def returns_a_namedtuple(x, w):
    scores = x @ w
    return ModelOutput((scores * scores).mean(), scores.tanh())


@pytest.mark.parametrize("tracer", ["fx", "export", "aten"])
def test_a_namedtuple_output_is_its_fields(tracer):
    inputs = (randn(2, 3), randn(3, 4))
    bwd = fxgrad.derive(returns_a_namedtuple, inputs, tracer=tracer)
    assert [spec.name for spec in bwd.guards.grad_outputs] == ["grad_loss", "grad_logits"]
    assert_matches_autograd(returns_a_namedtuple, bwd, inputs)
