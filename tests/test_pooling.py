"""Pooling, padding and resampling beyond the op-case table: spellings one tracer cannot record,
and the options that are refused."""

import pytest
import torch
import torch.nn.functional as F

import fxgrad
from checks import assert_matches_autograd

X = torch.randn(2, 3, 4, 5, dtype=torch.float64)


@pytest.mark.parametrize("tracer", ["fx", "export", "aten"])
def test_circular_padding(tracer):
    # make_fx would record torch's circular padding as copies into an empty tensor: it traces the
    # `torch.cat` of the wrapped slices instead
    fn = lambda x: F.pad(x, (1, 2, 2, 1), mode="circular")  # noqa: E731
    bwd = fxgrad.derive(fn, (X,), tracer=tracer)
    assert_matches_autograd(fn, bwd, (X,))
    if tracer == "fx":  # generic in sizes
        assert_matches_autograd(fn, bwd, (torch.randn(3, 2, 6, 7, dtype=torch.float64),))


def test_nn_conv_transpose_module_and_its_parameters():
    m = torch.nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1, output_padding=1).double()
    bwd = fxgrad.derive(m, (X,))
    g = torch.randn(2, 2, 8, 10, dtype=torch.float64)
    grads = bwd(X, g)
    x = X.clone().requires_grad_()
    expected = torch.autograd.grad(m(x), (x, m.weight, m.bias), g)
    for derived, want in zip(grads, expected):
        torch.testing.assert_close(derived, want)


@pytest.mark.parametrize("fn, match", [
    (lambda x: F.interpolate(x, scale_factor=2, mode="nearest-exact"), "mode='nearest-exact'"),
    (lambda x: F.interpolate(x, scale_factor=1.5), "scale_factor=1.5"),
    (lambda x: F.interpolate(x, scale_factor=2, mode="bilinear", antialias=True), "antialias"),
    (lambda x: F.interpolate(x, scale_factor=2, recompute_scale_factor=True), "recompute_scale_factor"),
    (lambda x: F.pad(x, (1, -1), mode="reflect"), "negative padding"),
    (lambda x: F.conv_transpose2d(x, torch.ones(3, 1, 3, 3, dtype=x.dtype), dilation=2, output_padding=1),
     "output_padding"),
], ids=["nearest-exact", "scale 1.5", "antialias", "recompute_scale_factor", "reflect negative", "output_padding"])
def test_refused_options(fn, match):
    with pytest.raises(fxgrad.UnsupportedArgumentError, match=match):
        fxgrad.derive(fn, (X,))


def test_interpolate_to_another_tensors_size_stays_generic():
    # an FPN's `F.interpolate(a, size=b.shape[2:])`: fx keeps the size a run-time read
    def f(a, b):
        return F.interpolate(a, size=b.shape[2:], mode="bilinear") * b

    bwd = fxgrad.derive(f, (X, torch.randn(2, 3, 9, 7, dtype=torch.float64)), tracer="fx")
    assert_matches_autograd(f, bwd, (torch.randn(2, 3, 6, 8, dtype=torch.float64),
                                     torch.randn(2, 3, 13, 11, dtype=torch.float64)))
