"""Values computed with grad mode off are constants, as autograd treats them, under every tracer."""

import pytest
import torch

import fxgrad
from checks import assert_matches_autograd

TRACERS = ("fx", "export", "aten", "auto")


def in_no_grad(x):
    with torch.no_grad():
        b = x * 2
    return x * b


def in_set_grad_enabled_false(x):
    with torch.set_grad_enabled(False):
        b = x * 2
    return x * b


def nested(x):
    with torch.no_grad():
        with torch.no_grad():
            b = x * 2
        with torch.enable_grad():  # grad mode back on: c carries its gradient
            c = x.sin()
        d = b * c
    return x * b + c * d


@torch.no_grad()
def doubled(x):
    return x * 2


def calls_a_no_grad_helper(x):
    return x * doubled(x)


class NoGradLayer(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(3, 3)

    def forward(self, x):
        with torch.no_grad():
            target = self.linear(x)  # the parameters read here get no gradient from it
        return (self.linear(x) - target).tanh() + x * target


@pytest.mark.parametrize("tracer", TRACERS)
@pytest.mark.parametrize("fn", [in_no_grad, in_set_grad_enabled_false, nested, calls_a_no_grad_helper])
def test_values_computed_without_grad_are_constants(fn, tracer):
    x = torch.randn(3, dtype=torch.float64)
    assert_matches_autograd(fn, fxgrad.derive(fn, (x,), tracer=tracer), (x,))


@pytest.mark.parametrize("tracer", TRACERS)
def test_a_modules_parameters_read_without_grad_are_constants_there(tracer):
    model = NoGradLayer().double()
    x = torch.randn(2, 3, dtype=torch.float64)
    bwd = fxgrad.derive(model, (x,), tracer=tracer)
    g = torch.randn(2, 3, dtype=torch.float64)
    derived = bwd(x, g)
    leaf = x.clone().requires_grad_()
    expected = torch.autograd.grad(model(leaf), (leaf, *model.parameters()), g)
    for d, e in zip(derived, expected):
        torch.testing.assert_close(d, e, rtol=1e-9, atol=1e-10)


def in_inference_mode(x):
    with torch.inference_mode():
        b = x * 2
    return (x + b).sin()


@pytest.mark.parametrize("tracer", ["fx", "aten", "auto"])
def test_values_computed_in_inference_mode_are_constants(tracer):
    x = torch.randn(3, dtype=torch.float64)
    assert_matches_autograd(in_inference_mode, fxgrad.derive(in_inference_mode, (x,), tracer=tracer), (x,))


def test_export_refuses_inference_mode_which_it_does_not_record():
    with pytest.raises(fxgrad.TraceError, match="inference_mode"):
        fxgrad.derive(in_inference_mode, (torch.randn(3),), tracer="export")


@pytest.mark.parametrize("tracer", TRACERS)
def test_the_callers_grad_mode_does_not_leak_into_the_trace(tracer):
    x = torch.randn(3, dtype=torch.float64)
    with torch.no_grad():
        bwd = fxgrad.derive(in_no_grad, (x,), tracer=tracer)
    assert torch.is_grad_enabled()
    assert_matches_autograd(in_no_grad, bwd, (x,))


def changes_a_value_with_grad_off(x):
    y = x * 3
    with torch.no_grad():
        y.mul_(2)  # autograd differentiates y as 3x, with the value 6x
    return y * x


@pytest.mark.parametrize("tracer", TRACERS)
def test_an_in_place_change_with_grad_off_of_a_value_with_a_gradient_is_refused(tracer):
    with pytest.raises(fxgrad.MutationError, match="in place"):
        fxgrad.derive(changes_a_value_with_grad_off, (torch.randn(3),), tracer=tracer)


def detached_in_place(x, w):
    y = x * w
    y.detach_()
    return (y * x).sum()


@pytest.mark.parametrize("tracer", ["fx", "export"])
def test_detach_in_place_cuts_the_gradient(tracer):
    x, w = torch.randn(3, dtype=torch.float64), torch.randn(3, dtype=torch.float64)
    grad_x, grad_w = fxgrad.derive(detached_in_place, (x, w), tracer=tracer)(x, w, torch.ones((), dtype=torch.float64))
    torch.testing.assert_close(grad_x, x * w)
    assert torch.equal(grad_w, torch.zeros(3, dtype=torch.float64))


def test_make_fx_refuses_detach_in_place():
    x = torch.randn(3, dtype=torch.float64)
    with pytest.raises(fxgrad.TraceError, match="detach_"):
        fxgrad.derive(detached_in_place, (x, x.clone()), tracer="aten")
