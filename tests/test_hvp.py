"""`fxgrad.hvp`: Hessian-vector products, the derived backward derived again, against
torch.autograd.functional.hvp in float64."""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import fxgrad
from checks import assert_closed_form

DOUBLE = torch.float64


def _draw(shapes, seed):
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(shape, generator=g, dtype=DOUBLE) for shape in shapes)


def mlp(x, w1, b1, w2, b2):
    return (torch.tanh(x @ w1 + b1) @ w2 + b2).pow(2).mean()


TARGETS = torch.tensor([0, 2, 1, 1])

FUNCTIONS = [
    ("silu", lambda x: F.silu(x).sum(), [(2, 3)]),
    ("tanh, two inputs", lambda x, y: (torch.tanh(x) * y).sum(), [(2, 3), (3,)]),
    ("softmax", lambda x: (F.softmax(x, -1) ** 2).sum(), [(2, 3)]),
    ("layer norm", lambda x, w, b: F.layer_norm(x, (4,), w, b).pow(3).sum(), [(2, 4), (4,), (4,)]),
    ("MLP with parameters", mlp, [(5, 3), (3, 4), (4,), (4, 2), (2,)]),
]


def assert_hvp_matches_autograd(fn, shapes):
    inputs = _draw(shapes, 0)
    h = fxgrad.hvp(fn, inputs)
    assert_closed_form(h)
    for seed in (1, 2):  # other vectors, and other inputs at the same sizes
        inputs, vectors = _draw(shapes, 10 * seed), _draw(shapes, 10 * seed + 1)
        _, expected = torch.autograd.functional.hvp(fn, inputs, vectors)
        derived = h(*inputs, *vectors)
        assert len(derived) == len(inputs)
        for d, e in zip(derived, expected):
            torch.testing.assert_close(d, e, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("name, fn, shapes", FUNCTIONS, ids=[f[0] for f in FUNCTIONS])
def test_hvp_matches_autograd(name, fn, shapes):
    assert_hvp_matches_autograd(fn, shapes)


def test_hvp_of_cross_entropy_matches_autograd():
    assert_hvp_matches_autograd(lambda x: F.cross_entropy(x, TARGETS), [(4, 3)])


def test_hvp_of_an_integer_input_is_none():
    def f(x, t):
        return (x.tanh() ** 2 * t).sum()

    x, t, v = torch.randn(2, 3, dtype=DOUBLE), torch.tensor([1, 0, 2]), torch.randn(2, 3, dtype=DOUBLE)
    hvp_x, hvp_t = fxgrad.hvp(f, (x, t))(x, t, v, torch.zeros_like(t))
    assert hvp_t is None
    torch.testing.assert_close(hvp_x, torch.autograd.functional.hvp(lambda x: f(x, t), x, v)[1], rtol=1e-9, atol=1e-10)


def test_hvp_reads_as_the_gradient_of_the_gradient():
    h = fxgrad.hvp(lambda x: F.silu(x).sum(), (torch.randn(3, dtype=DOUBLE),))
    assert "def forward(self, x, v_x, grad_sum" in h.code
    assert "# from forward line" in h.code  # each statement under the first backward's line it differentiates


def test_hvp_refuses_a_function_that_is_not_scalar():
    with pytest.raises(fxgrad.OutputError, match="one floating-point scalar"):
        fxgrad.hvp(torch.tanh, (torch.randn(3),))


def test_hvp_refuses_parameters_it_would_leave_out():
    with pytest.raises(fxgrad.InputError, match="pass them as inputs"):
        fxgrad.hvp(lambda x: nn_linear(x).sum(), (torch.randn(2, 3),))


nn_linear = nn.Linear(3, 1)


def test_hvp_checks_its_calls():
    h = fxgrad.hvp(lambda x: (x ** 3).sum(), (torch.randn(3),))
    with pytest.raises(fxgrad.InputError, match="1 inputs and as many vectors"):
        h(torch.randn(3))
    with pytest.raises(fxgrad.ShapeError):
        h(torch.randn(3, 2), torch.randn(3, 2))
