"""Functions re-implemented from public model code, each derived and checked against
torch.autograd in float64 on two draws of inputs."""

import pytest
import torch

import fxgrad
from checks import assert_closed_form, assert_matches_autograd

from . import cnns, losses, transformers, vision  # noqa: F401  (register the models)
from .registry import MODELS


@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_matches_autograd_on_two_draws(name):
    model = MODELS[name]
    inputs = model.make_inputs(torch.Generator().manual_seed(0))
    bwd = fxgrad.derive(model.fn, inputs)
    assert_closed_form(bwd)
    assert_matches_autograd(model.fn, bwd, inputs)
    assert_matches_autograd(model.fn, bwd, model.make_inputs(torch.Generator().manual_seed(1)), seed=2)


def test_there_are_at_least_25_models():
    assert len(MODELS) >= 25
