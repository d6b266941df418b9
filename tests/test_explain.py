"""`fxgrad.explain` and `bwd.explain()`: the derivation walked back step by step, each rule with
its math and where it lives."""

import copy
import importlib
import pickle

import pytest
import torch

import fxgrad
from examples.seeds import EXAMPLES, example_inputs
from fxgrad.explain import Explanation, _where
from fxgrad.rules import MATH, RULES
from op_cases import CASES


def test_every_rule_has_its_math():
    missing = sorted(str(op) for op in RULES if not MATH.get(op, "").strip())
    assert not missing, f"rules without math=: {missing}"
    for op, math in MATH.items():
        assert ":" in math and "∂" in math, (op, math)  # `y = f(x): ∂x = …`


def test_every_rule_is_found_where_the_explanation_says():
    for backward in set(RULES.values()):
        path, name = _where(backward).split(":")
        module = importlib.import_module("fxgrad." + path.removesuffix(".py").replace("/", "."))
        assert getattr(module, name).__name__ == backward.__name__


def test_attn_walks_back_as_derived_by_hand():
    text = str(fxgrad.explain(EXAMPLES["attn"], example_inputs("attn")))
    for expected in [
        "attn line 18: o = torch.matmul(a, v)",
        "∂a ← ∂a + ∂o vᵀ",
        "(a is used twice: the gradients of its uses add up)",
        "a = tanh(x)",
        "rule  y = tanh(x): ∂x = ∂y ⊙ (1 − y²)   (rules/pointwise.py:tanh)",
        "∂x = ∂a ⊙ (1 − a²)",
        "grad_x = grad_a * (1 - a * a)",
        "x = q kᵀ",
        "∂q = ∂x k",
        "∂k = ∂xᵀ q",
        "(rules/linalg.py:matmul)",
        "(rules/linalg.py:transpose)",
    ]:
        assert expected in text, (expected, text)
    # from the outputs back: the line of o first, that of x last
    assert text.index("line 18") < text.index("line 17") < text.index("line 16")


def test_broadcasting_is_told():
    def f(x, b):
        return torch.tanh(x + b)

    text = str(fxgrad.explain(f, (torch.randn(3, 4), torch.randn(4))))
    assert "summed over dim 0: b was broadcast" in text, text
    text = str(fxgrad.explain(EXAMPLES["linear_mse"], example_inputs("linear_mse")))
    assert "summed over dims 0, 1: b was broadcast" in text, text


def test_fan_out_is_told():
    def f(x):
        y = torch.sin(x)
        return y * torch.exp(y)

    text = str(fxgrad.explain(f, (torch.randn(3),)))
    assert "y is used twice" in text, text


def test_backward_explains_itself_and_displays_in_a_notebook():
    bwd = fxgrad.derive(EXAMPLES["attn"], example_inputs("attn"))
    explanation = bwd.explain()
    assert isinstance(explanation, Explanation) and str(explanation) == str(fxgrad.explain(EXAMPLES["attn"], example_inputs("attn")))
    assert explanation._repr_html_().startswith("<pre>") and "∂q = ∂x k" in explanation._repr_html_()
    assert repr(explanation) == str(explanation)


def test_a_copy_is_refused_clearly():
    bwd = fxgrad.derive(EXAMPLES["attn"], example_inputs("attn"))
    for copied in (copy.deepcopy(bwd), pickle.loads(pickle.dumps(bwd))):
        with pytest.raises(fxgrad.InputError, match="copy .* explain the function"):
            copied.explain()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_every_op_explains(case):
    text = str(fxgrad.derive(case.fn, case.inputs()).explain())
    assert text.startswith("The backward of")


def test_a_no_grad_region_is_off_the_gradients_path():
    def f(x, w):
        with torch.no_grad():
            s = x.abs().max()
        return (x @ w / s).sum()

    text = str(fxgrad.explain(f, (torch.randn(3, 4, dtype=torch.float64), torch.randn(4, 2, dtype=torch.float64))))
    assert "s = x.abs().max()" not in text and "rules/selection.py" not in text and "detach" not in text
    assert "return (x @ w / s).sum()" in text and "∂T₁ = ∂T₂ / s" in text


def test_a_module_without_code_of_the_users_names_no_wrapper_line():
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh()).double()
    bwd = fxgrad.derive(net, (torch.randn(2, 4, dtype=torch.float64),))
    assert "<lambda>" not in bwd.code and "<lambda>" not in str(bwd.explain())
    assert "(no source line recorded)" in str(bwd.explain())
