"""`bwd.math()`, `bwd.latex()` and a Backward's notebook display: the gradients in the notation
of a derivation by hand, for every op a backward can contain."""

import copy
import functools
import pickle
import re

import pytest
import torch

import fxgrad
from examples.seeds import EXAMPLES, example_inputs
from op_cases import CASES

# The commands fxgrad's LaTeX uses, all of which matplotlib's mathtext renders too.
LATEX_COMMANDS = {"begin", "end", "frac", "partial", "mathrm", "left", "right", "odot", "cdot", "top", "sum",
                  "sqrt", "leftarrow", "sigma", "geq", "leq", "neq", "wedge", "vee", "neg", "ldots", "infty",
                  "sin", "cos", "tan", "sinh", "cosh", "tanh", "exp", "log", "arcsin", "arccos", "arctan"}


def check_latex(text: str) -> None:
    """Renders: with matplotlib's mathtext row by row where it is installed; else balanced braces
    and \\left/\\right, and known commands only."""
    assert text.startswith("\\begin{aligned}\n") and text.endswith("\n\\end{aligned}"), text
    assert text.isascii(), [c for c in text if not c.isascii()]
    rows = [row.replace("&", "") for row in text.splitlines()[1:-1]]
    rows = [row.removesuffix(" \\\\") for row in rows]
    for row in rows:
        depth = 0
        for c in re.sub(r"\\[{}]", "", row):
            depth += (c == "{") - (c == "}")
            assert depth >= 0, row
        assert depth == 0, row
        assert len(re.findall(r"\\left(?![a-z])", row)) == len(re.findall(r"\\right(?![a-z])", row)), row
        unknown = set(re.findall(r"\\([a-zA-Z]+)", row)) - LATEX_COMMANDS
        assert not unknown, (unknown, row)
    try:
        from io import BytesIO

        from matplotlib import mathtext
    except ImportError:
        return
    for row in rows:
        mathtext.math_to_image(f"${row}$", BytesIO(), format="png")


def test_attn_reads_as_derived_by_hand():
    bwd = fxgrad.derive(EXAMPLES["attn"], example_inputs("attn"))
    assert bwd.math().splitlines() == [
        "x = q kᵀ",
        "a = tanh(x)",
        "o = a v",
        "∂L/∂v = aᵀ (∂L/∂o)",
        "∂L/∂a ← ∂L/∂a + (∂L/∂o) vᵀ",  # a is an output and used by o: the two gradients add up
        "∂L/∂x = (∂L/∂a) ⊙ (1 − a²)",
        "∂L/∂q = (∂L/∂x) k",
        "∂L/∂k = (∂L/∂x)ᵀ q",
    ]


def test_softmax_jvp_is_written_without_diag():
    def f(x):
        return torch.softmax(x, -1)

    text = fxgrad.derive(f, (torch.randn(3, 4),)).math()
    assert "∂L/∂x = out ⊙ (∂L/∂out − rowsum((∂L/∂out) ⊙ out))" in text, text


def test_shared_subexpressions_are_named_once():
    text = fxgrad.derive(EXAMPLES["silu_mlp"], example_inputs("silu_mlp")).math()
    assert "T₈ = σ(T₇)" in text.splitlines()
    assert text.count("σ(T₇)") == 1 and text.count("T₈") == 3  # named once, read twice


def test_scalars_and_elementwise_products():
    def f(x, s):
        return (2 * x * x.exp() * s).sum()

    text = fxgrad.derive(f, (torch.randn(3), torch.randn(()))).math()
    assert "·" in text and "⊙" in text and "Σ" in text, text


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_every_op_prints(case):
    bwd = fxgrad.derive(case.fn, case.inputs())
    assert isinstance(bwd.math(), str) and bwd.math()
    check_latex(bwd.latex())


def test_copies_print_the_same_gradients():
    bwd = fxgrad.derive(EXAMPLES["attn"], example_inputs("attn"))
    gradients = [line for line in bwd.math().splitlines() if line.startswith("∂")]
    for copied in (copy.deepcopy(bwd), pickle.loads(pickle.dumps(bwd))):
        assert [line for line in copied.math().splitlines() if line.startswith("∂")] == gradients
        check_latex(copied.latex())


def test_notebook_display_shows_code_and_math():
    bwd = fxgrad.derive(EXAMPLES["attn"], example_inputs("attn"))
    assert "forward" in bwd._repr_html_() and "\\frac{\\partial L}{\\partial q}" in bwd._repr_html_()
    markdown = bwd._repr_markdown_()
    assert markdown.startswith("```python\ndef forward(self, q, k, v, grad_o, grad_a):") and "$$\n\\begin{aligned}" in markdown
    assert bwd._repr_latex_() == f"$${bwd.latex()}$$"


def test_a_long_chain_on_one_line_prints():
    def f(x):
        return functools.reduce(lambda y, _: y * 1.5 + 1, range(1500), x)

    bwd = fxgrad.derive(f, (torch.randn(3),))
    text = bwd.math()
    assert "T₁ = " in text and text.endswith("∂L/∂x = 1.37053e+264·(∂L/∂out)")  # nested values are named
    check_latex(bwd.latex())
    assert str(bwd.explain()).count("rules/pointwise.py:mul") == 1500


def test_a_module_reads_with_its_parameters_names():
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh())
    bwd = fxgrad.derive(model, (torch.randn(5, 3),))
    lines = bwd.math().splitlines()
    assert "∂L/∂0.bias = Σ₀(∂L/∂T₁)" in lines and "∂L/∂0.weight = (∂L/∂T₁)ᵀ input_1" in lines, lines
    check_latex(bwd.latex())
