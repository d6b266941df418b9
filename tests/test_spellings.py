"""Spellings that carry no gradient or are another op's: derived under every tracer, as autograd."""

import pytest
import torch
import torch.nn.functional as F

import fxgrad
from checks import assert_matches_autograd
from fxgrad.trace import TRACERS

X = torch.randn(3, 4, dtype=torch.float64)


@pytest.mark.parametrize("tracer", TRACERS)
@pytest.mark.parametrize("fn", [
    lambda x: x[[0, 2]],
    lambda x: x[:, [1, 0]],
    lambda x: x[..., [0]],
    lambda x: x[[0, 2], 1:],
    lambda x: x[[[0, 1], [2, 2]], :],  # nested lists: a 2-D tensor of indices
], ids=["[list]", "[:, list]", "[..., list]", "[list, slice]", "[nested lists, slice]"])
def test_list_of_ints_indexes_as_a_tensor_of_indices(fn, tracer):
    assert_matches_autograd(fn, fxgrad.derive(fn, (X,), tracer=tracer), (X,))


def test_list_of_lists_alone_is_refused():
    # torch reads x[[[0, 1], [2, 2]]] as x[[0, 1], [2, 2]], and warns that it will change
    with pytest.raises(fxgrad.UnsupportedArgumentError, match="list of lists"):
        fxgrad.derive(lambda x: x[[[0, 1], [2, 2]]], (X,), tracer="fx")


def test_list_of_bools_is_a_mask_and_refused():
    with pytest.raises(fxgrad.UnsupportedArgumentError, match="boolean mask"):
        fxgrad.derive(lambda x: x[[True, False, True]], (X,), tracer="fx")


@pytest.mark.parametrize("tracer", TRACERS)
@pytest.mark.parametrize("fn", [
    lambda x: F.mse_loss(x, torch.zeros_like(x)),
    lambda d: F.binary_cross_entropy_with_logits(d, torch.ones_like(d)),  # a GAN's targets
    lambda x: x * torch.full_like(x, 2.0),
    lambda x: x * torch.empty_like(x).fill_(2.0),
    lambda x: x + x.new_zeros(x.shape),
    lambda x: x * x.new_ones(3, 4),
    lambda x: x * x.new_full((3, 4), 3.0),
    lambda x: x * x.new_ones(size=(3, 4)) + x.new_full(size=(4,), fill_value=0.5),
], ids=["zeros_like", "ones_like", "full_like", "empty_like fill_", "new_zeros", "new_ones", "new_full", "keywords"])
def test_new_tensors_like_a_value_carry_no_gradient(fn, tracer):
    assert_matches_autograd(fn, fxgrad.derive(fn, (X,), tracer=tracer), (X,))


def test_filling_with_a_tensor_value_is_differentiated_with_respect_to_it():
    # autograd differentiates `x.fill_(v)` with respect to a tensor v: v copied into every element
    from checks import assert_matches_autograd

    def f(x, v):
        return x * torch.empty_like(x).fill_(v)

    inputs = (X, torch.tensor(2.0, dtype=torch.float64))
    assert_matches_autograd(f, fxgrad.derive(f, inputs, tracer="export"), inputs)


A, V, W = torch.randn(2, 3, dtype=torch.float64), torch.randn(3, dtype=torch.float64), torch.randn(3, dtype=torch.float64)


@pytest.mark.parametrize("tracer", TRACERS)
@pytest.mark.parametrize("fn, inputs", [
    (torch.dot, (V, W)), (lambda a, b: a.dot(b), (V, W)), (lambda a, b: torch.ops.aten.dot(a, b), (V, W)),
    (torch.mv, (A, V)), (lambda a, v: a.mv(v), (A, V)), (lambda a, v: torch.ops.aten.mv(a, v), (A, V)),
], ids=["torch.dot", "Tensor.dot", "aten.dot", "torch.mv", "Tensor.mv", "aten.mv"])
def test_dot_and_mv_in_every_spelling(fn, inputs, tracer):
    assert_matches_autograd(fn, fxgrad.derive(fn, inputs, tracer=tracer), inputs)


def test_dot_of_matrices_is_refused_as_torch_refuses_it():
    with pytest.raises(fxgrad.UnsupportedArgumentError, match="dot of 2-D and 2-D"):
        fxgrad.derive(torch.dot, (A, A), tracer="fx")
