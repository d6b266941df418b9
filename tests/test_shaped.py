"""Shapes in the user's symbols: `fxgrad.shaped`'s example tensors, `derive(dims=...)`, and the
shape-annotated printout, which runs as it is printed."""

import copy
import os
import pickle
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import fxgrad
from examples.seeds import attn
from checks import assert_matches_autograd, random_grad_outputs


def test_shaped_makes_tensors_in_keyword_order_with_a_prime_size_per_symbol():
    q, k, v = fxgrad.shaped(q="S d", k="S d", v="S D")
    assert (q.shape, k.shape, v.shape) == ((5, 7), (5, 7), (5, 11))
    assert q.dtype == torch.float64 and not torch.equal(q, k)
    x, w = fxgrad.shaped(x="2, n", w="n×m", dtype=torch.float32)
    assert (x.shape, w.shape, w.dtype) == ((2, 5), (5, 7), torch.float32)
    (b,) = fxgrad.shaped(b="")
    assert b.shape == ()
    (x,) = fxgrad.shaped(x="5 S")  # a number in the spec is a size no symbol takes
    assert x.shape == (5, 7)


@pytest.mark.parametrize("call, match", [
    (lambda: fxgrad.shaped(), "one keyword per tensor"),
    (lambda: fxgrad.shaped(q=3), "as a string"),
    (lambda: fxgrad.shaped(q="S -d"), "neither a symbol"),
    (lambda: fxgrad.shaped(q="S __class__"), "neither a symbol"),
    (lambda: fxgrad.shaped(q=" ".join(f"s{i}" for i in range(17))), "at most"),
])
def test_shaped_refuses_what_is_not_a_shape(call, match):
    with pytest.raises(fxgrad.InputError, match=match):
        call()


def test_attn_prints_every_shape_in_the_symbols_and_matches_autograd():
    inputs = fxgrad.shaped(q="S d", k="S d", v="S D")
    bwd = fxgrad.derive(attn, inputs)
    code = bwd.code
    assert 'def forward(self, q: "S×d", k: "S×d", v: "S×D", grad_o: "S×D", grad_a: "S×S"):' in code
    assert re.search(r"x = q @ k\.mT +# S×S\n", code)
    assert re.search(r"grad_k = grad_x\.mT @ q +# S×d\n", code)
    statements = [line for line in code.splitlines()[4:] if "=" in line and not line.strip().startswith("#")]
    assert statements and all(re.search(r"  # [\w×]+(;|$)", line) for line in statements), code
    assert bwd.dims == {"S": 5, "d": 7, "D": 11}
    assert_matches_autograd(attn, bwd, inputs)


def _run_printed(bwd, args):
    """The printed code, executed as text: what it computes."""
    namespace = {"torch": torch}
    exec(bwd.code, namespace)
    return namespace["forward"](None, *args)


@pytest.mark.parametrize("fn, specs", [
    (attn, dict(q="S d", k="S d", v="S D")),
    (lambda x, w: torch.softmax(x.reshape(-1, x.shape[-1]) @ w, -1).sum(), dict(x="B S d", w="d D")),
    (lambda x, y: torch.cat([x, y], 0).tanh(), dict(x="S d", y="D d")),
])
def test_printed_code_with_shapes_runs_and_computes_the_gradients(fn, specs):
    inputs = fxgrad.shaped(**specs)
    bwd = fxgrad.derive(fn, inputs)
    args = (*inputs, *random_grad_outputs(fn, inputs))
    for printed, derived in zip(_run_printed(bwd, args), bwd(*args)):
        torch.testing.assert_close(printed, derived, rtol=0, atol=0)
    assert_matches_autograd(fn, bwd, inputs)


def test_products_and_sums_of_symbols_read_back():
    x, y = fxgrad.shaped(x="S d", y="D d")
    code = fxgrad.derive(lambda x: x.reshape(-1).sin(), (x,)).code
    assert re.search(r"grad_out: \"S\*d\"", code) and "# S*d" in code
    code = fxgrad.derive(lambda x, y: torch.cat([x, y]).sin(), (x, y)).code
    assert "# (S+D)×d" in code


def test_real_tensors_print_their_sizes_named_by_dims_or_as_numbers():
    q, k, v = torch.randn(16, 4, dtype=torch.float64), torch.randn(16, 4, dtype=torch.float64), torch.randn(16, 3)
    named = fxgrad.derive(attn, (q, k, v.double()), dims={"S": 16, "d": 4})
    assert 'q: "S×d"' in named.code and 'v: "S×3"' in named.code and re.search(r"x = q @ k\.mT +# S×S", named.code)
    numbers = fxgrad.derive(attn, (q, k, v.double()), dims={})
    assert 'q: "16×4"' in numbers.code and "# 16×16" in numbers.code
    assert_matches_autograd(attn, named, (q, k, v.double()))


def test_without_symbols_the_printout_has_no_shapes():
    q, k, v = torch.randn(2, 3), torch.randn(2, 3), torch.randn(2, 4)
    code = fxgrad.derive(attn, (q, k, v)).code
    assert "×" not in code and "def forward(self, q, k, v, grad_o, grad_a):" in code


def test_a_product_with_two_readings_prints_as_a_number():
    x = torch.randn(16, 4, dtype=torch.float64)
    code = fxgrad.derive(lambda x: x.reshape(-1).sin(), (x,), dims={"S": 16, "d": 4}).code
    assert 'grad_out: "64"' in code  # S*d and d*d*d both read to 64


def test_a_batch_generic_backward_prints_the_symbol_and_holds_at_other_sizes():
    fn = lambda x, w: torch.tanh(x @ w)  # noqa: E731
    x, w = fxgrad.shaped(x="B S d", w="d D")
    bwd = fxgrad.derive(fn, (x, w), tracer="fx")
    assert 'x: "B×S×d"' in bwd.code and "# B×S×D" in bwd.code
    other = (torch.randn(3, 4, 11, dtype=torch.float64), w)  # B, S = 3, 4; d = 11
    assert_matches_autograd(fn, bwd, other)


@pytest.mark.parametrize("inputs, dims, match", [
    (lambda: fxgrad.shaped(q="S d") + fxgrad.shaped(k="d S"), None, "one fxgrad.shaped call"),
    (lambda: (torch.randn(4, 4),), {"S": 4, "d": 4}, "both 4"),
    (lambda: fxgrad.shaped(q="S d"), {"S": 16}, "S is 16 in dims but 5"),
    (lambda: (torch.randn(4, 4),), {"S": 1}, "at least 2"),
    (lambda: (torch.randn(4, 4),), {"S": "4"}, "at least 2"),
    (lambda: (torch.randn(4, 4),), {"S d": 4}, "not a name"),
])
def test_contradicting_symbols_are_refused(inputs, dims, match):
    with pytest.raises(fxgrad.InputError, match=match):
        fxgrad.derive(lambda *xs: sum(x.sum() for x in xs), inputs(), dims=dims)


def test_copies_keep_the_shapes():
    bwd = fxgrad.derive(attn, fxgrad.shaped(q="S d", k="S d", v="S D"))
    for copied in (copy.deepcopy(bwd), pickle.loads(pickle.dumps(bwd))):
        assert copied.code == bwd.code and copied.dims == bwd.dims


def test_readme_learning_section_prints_what_it_shows(tmp_path):
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    quick_start = re.findall(r"```python\n(.*?)```", readme[readme.index("## Quick start"):], re.DOTALL)[0]
    learning = readme[readme.index("## Learning"):]
    program, printed = re.findall(r"```python\n(.*?)```", learning, re.DOTALL)[:2]
    script = tmp_path / "learning.py"
    script.write_text(quick_start[: quick_start.index("q, k, v = ")] + program)  # attn as the quick start has it
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=True,
                            env={**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)})
    assert result.stdout.strip() == printed.strip()
