"""Bad input and unsupported code fail with a clear `FxgradError`."""

import inspect

import pytest
import torch

import fxgrad
from fxgrad import FxgradError, UnsupportedOpError


def spectrum(x):
    y = x * 2
    z = torch.fft.fft(y)
    return z


def magnitude(x):
    return torch.fft.fft(x).real


def line_of(fn, text):
    source, first = inspect.getsourcelines(fn)
    return first + next(i for i, line in enumerate(source) if text in line)


def test_unsupported_op_names_op_line_and_supported_list():
    with pytest.raises(UnsupportedOpError) as info:
        fxgrad.derive(spectrum, (torch.randn(4),))
    message = str(info.value)
    assert info.value.op == "torch.fft.fft"
    assert f"spectrum line {line_of(spectrum, 'fft')}" in message
    assert "z = torch.fft.fft(y)" in message
    assert "fxgrad.supported_ops()" in message and "torch.matmul" in info.value.supported
    assert isinstance(info.value, FxgradError)


def test_unsupported_op_met_first_on_the_backward_path_is_named():
    with pytest.raises(UnsupportedOpError, match=r"Tensor\.real.*magnitude line"):
        fxgrad.derive(magnitude, (torch.randn(4),))


@pytest.mark.parametrize("fn", [lambda x: x.max(1)[0], lambda x: x.max(1).values], ids=["[0]", ".values"])
def test_unsupported_op_returning_a_tuple_is_named(fn):
    with pytest.raises(UnsupportedOpError) as info:
        fxgrad.derive(fn, (torch.randn(3, 4),))
    assert info.value.op == "Tensor.max"


def test_unsupported_op_off_the_gradient_path_is_fine():
    def f(x, y):
        return x * torch.cumsum(y, 0).detach()

    x, y = torch.randn(3), torch.randn(3)
    grad_x, grad_y = fxgrad.derive(f, (x, y))(x, y, torch.ones(3))
    torch.testing.assert_close(grad_x, torch.cumsum(y, 0))
    assert torch.equal(grad_y, torch.zeros(3))


def test_complex_values_are_refused_not_dropped():
    with pytest.raises(UnsupportedOpError, match="complex"):
        fxgrad.derive(lambda x: torch.fft.fft(x).abs(), (torch.randn(4),))


def test_unsupported_argument_names_the_line():
    def f(x):
        return torch.div(x, 2, rounding_mode="floor")

    with pytest.raises(FxgradError, match=r"rounding_mode.*f line"):
        fxgrad.derive(f, (torch.randn(3),))


def test_untraceable_function():
    def f(x):
        if x.sum() > 0:  # data-dependent control flow
            return x
        return -x

    with pytest.raises(fxgrad.TraceError, match="could not trace `.*f`"):
        fxgrad.derive(f, (torch.randn(3),))


@pytest.mark.parametrize(
    "example_inputs, message",
    [
        (torch.randn(3), "must be a tuple of tensors"),
        ((torch.randn(3), 2.0), r"example_inputs\[1\] is a float"),
        ((torch.randn(3),), "takes 2 arguments"),
    ],
)
def test_bad_example_inputs(example_inputs, message):
    with pytest.raises(FxgradError, match=message):
        fxgrad.derive(lambda x, y: x * y, example_inputs)


@pytest.mark.parametrize("wrt", [(2,), (-3,), ("x",)])
def test_wrt_out_of_range(wrt):
    with pytest.raises(fxgrad.InputError, match="wrt names .* values to differentiate"):
        fxgrad.derive(lambda x, y: x * y, (torch.randn(3), torch.randn(3)), wrt=wrt)


def test_non_tensor_output():
    with pytest.raises(FxgradError, match="must return a tensor or a tuple of tensors"):
        fxgrad.derive(lambda x: (x * 2, x.shape[0]), (torch.randn(3),))
