"""Losses beyond the op-case table: the nn modules, under every tracer, and the refusals."""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import fxgrad
from checks import assert_matches_autograd
from fxgrad.trace import TRACERS


def double(*shape, seed=0):
    return torch.randn(*shape, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))


LOSS_MODULES = {
    "KLDivLoss batchmean": (nn.KLDivLoss(reduction="batchmean"), lambda: (double(3, 4).log_softmax(-1),
                                                                          double(3, 4, seed=1).softmax(-1))),
    "HuberLoss": (nn.HuberLoss(delta=0.5), lambda: (double(3, 4), double(3, 4, seed=1))),
    "SmoothL1Loss": (nn.SmoothL1Loss(beta=0.5, reduction="sum"), lambda: (double(3, 4), double(3, 4, seed=1))),
    "BCELoss weight": (nn.BCELoss(weight=torch.linspace(0.5, 1.5, 4, dtype=torch.float64)),
                       lambda: (double(3, 4).sigmoid(), double(3, 4, seed=1).sigmoid())),
    "BCEWithLogitsLoss": (nn.BCEWithLogitsLoss(pos_weight=torch.full((4,), 2.0, dtype=torch.float64)),
                          lambda: (double(3, 4), double(3, 4, seed=1).sigmoid())),
    "CosineEmbeddingLoss": (nn.CosineEmbeddingLoss(margin=0.1), lambda: (double(3, 4), double(3, 4, seed=1),
                                                                           torch.tensor([1, -1, 1]))),
    "TripletMarginLoss": (nn.TripletMarginLoss(), lambda: (double(3, 4), double(3, 4, seed=1), double(3, 4, seed=2))),
    "PoissonNLLLoss full": (nn.PoissonNLLLoss(full=True), lambda: (double(3, 4), double(3, 4, seed=1).abs() * 3)),
    "MarginRankingLoss": (nn.MarginRankingLoss(0.1), lambda: (double(4), double(4, seed=1),
                                                              torch.tensor([1.0, -1.0, 1.0, -1.0], dtype=torch.float64))),
    "HingeEmbeddingLoss": (nn.HingeEmbeddingLoss(), lambda: (double(3, 4), double(3, 4, seed=1).sign())),
    "SoftMarginLoss": (nn.SoftMarginLoss(), lambda: (double(3, 4), double(3, 4, seed=1).sign())),
    "MultiLabelSoftMarginLoss": (nn.MultiLabelSoftMarginLoss(), lambda: (double(3, 4), (double(3, 4, seed=1) > 0).double())),
    "MultiMarginLoss": (nn.MultiMarginLoss(p=2), lambda: (double(3, 4), torch.tensor([0, 3, 1]))),
    "GaussianNLLLoss full": (nn.GaussianNLLLoss(full=True), lambda: (double(3, 4), double(3, 4, seed=1),
                                                                       double(3, 4, seed=2).exp())),
    "NLLLoss weight ignore_index": (nn.NLLLoss(torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64), ignore_index=1),
                                    lambda: (double(5, 3).log_softmax(1), torch.tensor([0, 1, 2, 1, 0]))),
    "CrossEntropyLoss probabilities label_smoothing": (nn.CrossEntropyLoss(label_smoothing=0.2),
                                                       lambda: (double(5, 3), double(5, 3, seed=1).softmax(1))),
}


@pytest.mark.parametrize("tracer", TRACERS)
@pytest.mark.parametrize("name", LOSS_MODULES)
def test_loss_modules_match_autograd(name, tracer):
    # targets that torch does not differentiate are constants here (wrt: the first input)
    module, inputs = LOSS_MODULES[name][0], LOSS_MODULES[name][1]()
    fn = lambda x, *rest: module(x, *rest)  # noqa: E731
    bwd = fxgrad.derive(fn, inputs, wrt=0, tracer=tracer)
    grad_output = torch.randn(())
    x = inputs[0].clone().requires_grad_()
    expected, = torch.autograd.grad(module(x, *inputs[1:]), x, grad_output.double())
    torch.testing.assert_close(bwd(*inputs, grad_output.double())[0], expected)


@pytest.mark.parametrize("tracer", TRACERS)
def test_gaussian_nll_loss_checks_its_variance_without_stopping_the_trace(tracer):
    fn = lambda x, y, var: F.gaussian_nll_loss(x, y, var, eps=1e-2)  # noqa: E731  (some clamped)
    inputs = (double(3, 4), double(3, 4, seed=1), double(3, 4, seed=2).abs() * 0.05)
    bwd = fxgrad.derive(fn, inputs, tracer=tracer)
    assert_matches_autograd(fn, bwd, inputs)


def test_a_loss_weight_torch_does_not_differentiate_is_refused():
    x, y, w = double(3, 4).sigmoid(), double(3, 4, seed=1).sigmoid(), double(3, 4, seed=2).abs()
    with pytest.raises(fxgrad.UnsupportedOpError, match="binary_cross_entropy"):
        fxgrad.derive(lambda x, y, w: F.binary_cross_entropy(x, y, weight=w), (x, y, w))
    with pytest.raises(fxgrad.UnsupportedOpError, match="soft_margin_loss"):
        fxgrad.derive(F.soft_margin_loss, (x, y))


@pytest.mark.parametrize("tracer", TRACERS)
def test_ctc_loss_is_refused_naming_its_data_dependent_sizes(tracer):
    def fn(logits):
        return F.ctc_loss(logits.log_softmax(2), torch.tensor([[1, 2], [1, 1]]), torch.tensor([5, 5]),
                          torch.tensor([2, 2]))

    with pytest.raises(fxgrad.UnsupportedArgumentError, match="ctc_loss.*target lengths.*fn line"):
        fxgrad.derive(fn, (double(5, 2, 4),), tracer=tracer)


def test_ctc_loss_of_values_without_gradient_is_computed():
    def fn(x, logits):
        return x * F.ctc_loss(logits.detach().log_softmax(2), torch.tensor([[1, 2], [1, 1]]), torch.tensor([5, 5]),
                              torch.tensor([2, 2]))

    inputs = (double(3), double(5, 2, 4))
    bwd = fxgrad.derive(fn, inputs, tracer="fx")
    assert_matches_autograd(fn, bwd, inputs)
