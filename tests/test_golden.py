"""Golden files pin the printed backward of the seed examples: a change to the printout is a
reviewed change. Regenerate with `FXGRAD_UPDATE_GOLDEN=1 pytest tests/test_golden.py`."""

import os
from pathlib import Path

import pytest

import fxgrad
from examples.seeds import EXAMPLES, example_inputs

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
