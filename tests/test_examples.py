"""The seed examples: derived, checked against autograd on two draws of inputs, gradchecked."""

import pytest
import torch

import fxgrad
from checks import assert_closed_form, assert_matches_autograd, with_derived_backward
from examples.seeds import EXAMPLES, example_inputs, main


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_matches_autograd_on_two_draws(name):
    fn = EXAMPLES[name]
    bwd = fxgrad.derive(fn, example_inputs(name))
    assert_closed_form(bwd)
    assert_matches_autograd(fn, bwd, example_inputs(name, seed=0))
    assert_matches_autograd(fn, bwd, example_inputs(name, seed=1), seed=2)  # a pure function of its inputs


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_gradcheck(name):
    fn = EXAMPLES[name]
    inputs = tuple(x.requires_grad_() for x in example_inputs(name))
    assert torch.autograd.gradcheck(with_derived_backward(fn, fxgrad.derive(fn, inputs)), inputs)


def test_examples_script_runs(capsys):
    main()
    printed = capsys.readouterr().out
    assert printed.count("matches torch.autograd: True") == len(EXAMPLES)


def test_the_learning_walk_through_catches_the_slip_and_passes_the_fix(capsys):
    from examples.learn import main as learn

    wrong, fixed = learn()
    assert wrong.wrong == ["grad_q", "grad_k"] and all(g.wrong_when == ["grad_a"] for g in wrong.gradients[:2])
    assert fixed
    printed = capsys.readouterr().out
    for part in ("# S×S", "∂q = ∂x k                                     S×d", "∂L/∂q = (∂L/∂x) k", "rules/pointwise.py:tanh", "wrong when grad_a ≠ 0", "All gradients agree."):
        assert part in printed
