"""Golden files pin the printed backward of the seed examples, its math and its explanation: a
change to a printout is a reviewed change. Regenerate with `FXGRAD_UPDATE_GOLDEN=1 pytest tests/test_golden.py`."""

import os
from pathlib import Path

import pytest

import fxgrad
from examples.seeds import EXAMPLES, example_inputs
from test_notation import check_latex

GOLDEN = Path(__file__).parent / "golden"
PINNED = list(EXAMPLES)


@pytest.mark.parametrize("name", PINNED)
def test_printed_code_is_pinned(name):
    code = fxgrad.derive(EXAMPLES[name], example_inputs(name)).code.strip() + "\n"
    path = GOLDEN / f"{name}.py.txt"
    if os.environ.get("FXGRAD_UPDATE_GOLDEN"):
        path.write_text(code)
    assert path.exists(), f"no golden file {path}; run with FXGRAD_UPDATE_GOLDEN=1 to create it"
    assert code == path.read_text(), f"the printed backward of {name} changed; review and update {path}"


# The same examples as math (Unicode and LaTeX) and as a derivation step by step.
PRINTOUTS = {"math.txt": lambda bwd: bwd.math(), "latex.txt": lambda bwd: bwd.latex(),
             "explain.txt": lambda bwd: str(bwd.explain())}


@pytest.mark.parametrize("kind", list(PRINTOUTS))
@pytest.mark.parametrize("name", PINNED)
def test_math_and_explanation_are_pinned(name, kind):
    text = PRINTOUTS[kind](fxgrad.derive(EXAMPLES[name], example_inputs(name))).strip() + "\n"
    path = GOLDEN / f"{name}.{kind}"
    if os.environ.get("FXGRAD_UPDATE_GOLDEN"):
        path.write_text(text)
    assert path.exists(), f"no golden file {path}; run with FXGRAD_UPDATE_GOLDEN=1 to create it"
    assert text == path.read_text(), f"the {kind} of {name} changed; review and update {path}"
    if kind == "latex.txt":
        check_latex(text.strip())


# The seed examples' shapes as their authors write them.
SYMBOLS = {
    "attn": dict(q="S d", k="S d", v="S D"),
    "silu_mlp": dict(X="1 d", A="d d", B="d D", C="D D", D="D d"),
    "masked_softmax_attention": dict(Q="N H S d", K="N H S d", V="N H S d", M="N H S S"),
    "linear_mse": dict(X="N n", W="n 1", b="", Y="N 1"),
}


@pytest.mark.parametrize("name", PINNED)
def test_printed_code_with_shapes_is_pinned(name):
    code = fxgrad.derive(EXAMPLES[name], fxgrad.shaped(**SYMBOLS[name])).code.strip() + "\n"
    path = GOLDEN / f"{name}.shaped.py.txt"
    if os.environ.get("FXGRAD_UPDATE_GOLDEN"):
        path.write_text(code)
    assert path.exists(), f"no golden file {path}; run with FXGRAD_UPDATE_GOLDEN=1 to create it"
    assert code == path.read_text(), f"the printed backward of {name} with shapes changed; review and update {path}"
