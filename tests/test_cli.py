"""The calculator, `python -m fxgrad derive`: seed 000's expressions, symbolic shapes, a function
in a file, and hostile expressions refused before anything of them runs."""

import re
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import fxgrad
from fxgrad.__main__ import main
from fxgrad.cli import expression_function, torch_function
from checks import autograd_grads, random_grad_outputs


def _shapes(argv):
    return dict(arg.split("=", 1) for arg in argv if "=" in arg and not arg.startswith("--"))


def _run(argv, capsys):
    rc = main(["derive", *argv])
    out, err = capsys.readouterr()
    return rc, out, err


def _printed_gradients(code, inputs, grad_outputs):
    namespace = {"torch": torch}
    exec(code, namespace)
    return namespace["forward"](None, *inputs, *grad_outputs)


# Seed 000's functions, in the expression language; `--f f=silu` binds its f.
SEED_EXPRESSIONS = [
    ("f(f(f((f(X @ A) + X) @ B) @ C) @ D)", ["X=1,d", "A=d,d", "B=d,D", "C=D,D", "D=D,d"], {"f": "silu"}),
    ("softmax(((X @ Q) @ (X @ K).mT) * M, -1) @ (X @ V)", ["Q=D,D", "K=D,D", "V=D,D", "X=N,H,S,D", "M=N,H,S,S"], {}),
    ("softmax((Q @ K.mT) * M, dim=-1) @ V", ["Q=N,H,S,D", "K=N,H,S,D", "V=N,H,S,D", "M=N,H,S,S"], {}),
    ("(Q @ K.T) @ (V * W)", ["Q=S,d", "K=S,d", "V=S,D", "W=S,D"], {}),
    ("sum(tanh(X @ W).exp() ** 2 / 3 - X[:, 0:1])", ["X=S,d", "W=d,d"], {}),
]


@pytest.mark.parametrize("expression, shapes, functions", SEED_EXPRESSIONS, ids=lambda p: str(p)[:30])
def test_seed_expressions_print_shaped_code_that_computes_autograds_gradients(expression, shapes, functions, capsys):
    flags = [arg for name, fn in functions.items() for arg in ("--f", f"{name}={fn}")]
    rc, out, err = _run([expression, *shapes, *flags], capsys)
    assert rc == 0, err
    specs = _shapes(shapes)
    signature = out.splitlines()[0]
    for name, dims in specs.items():
        assert f'{name}: "{dims.replace(",", "×")}"' in signature, out
    assert all(re.search(r"  # [\w×()*+]+(;|$)", line) for line in out.splitlines()[1:-1]), out
    inputs = fxgrad.shaped(**specs)
    fn = expression_function(expression, list(specs), {name: torch_function(f) for name, f in functions.items()})
    grad_outputs = random_grad_outputs(fn, inputs)
    for printed, expected in zip(_printed_gradients(out, inputs, grad_outputs), autograd_grads(fn, inputs, grad_outputs)):
        torch.testing.assert_close(printed, expected, rtol=1e-9, atol=1e-10)


def test_a_function_in_a_file_is_derived_with_its_shapes(tmp_path, capsys):
    path = tmp_path / "layer.py"
    path.write_text(textwrap.dedent("""\
        import torch

        def layer(x, w, b=None, *, scale=2.0):
            h = torch.tanh(x @ w)
            return (h * scale).sum()
    """))
    rc, out, err = _run([f"{path}:layer", "x=B,d", "w=d,D"], capsys)
    assert rc == 0, err
    assert 'def forward(self, x: "B×d", w: "d×D", grad_out: "scalar"):' in out
    assert "# from layer line 4: h = torch.tanh(x @ w)" in out and re.search(r"h = .*# B×D", out)


@pytest.mark.parametrize("argv, match", [
    (["missing.py:f", "x=1"], "no such file"),
    (["{path}:nothing", "x=1"], "defines no function `nothing`"),
    (["{path}:CONSTANT", "x=1"], "`CONSTANT` is a int"),
    (["{path}:g", "x=1"], "give the shape of y"),
    (["{path}:g", "x=1", "y=1", "z=1"], "no parameter z"),
    (["{path}:g", "x=1", "y=1", "--f", "f=silu"], "--f binds names in an expression"),
    (["{broken}:f", "x=1"], "fails on import: ZeroDivisionError"),
])
def test_a_file_target_that_cannot_be_derived_is_an_error_without_traceback(argv, match, tmp_path, capsys):
    path, broken = tmp_path / "fns.py", tmp_path / "broken.py"
    path.write_text("CONSTANT = 3\n\ndef g(x, y):\n    return x * y\n")
    broken.write_text("1 / 0\n")
    rc, out, err = _run([a.format(path=path, broken=broken) for a in argv], capsys)
    assert rc == 1 and not out and re.search(match, err) and "Traceback" not in err


# Expressions that would do something if evaluated: each writes the marker file, reads outside
# the whitelist, or computes without end. Every one is refused, and the marker never appears.
HOSTILE = [
    "__import__('os').system('touch {mark}')",
    "open('{mark}', 'w')",
    "exec(\"open('{mark}', 'w')\")",
    "eval(\"open('{mark}', 'w')\")",
    "(lambda: open('{mark}', 'w'))()",
    "[open('{mark}', 'w') for _ in X]",
    "X if open('{mark}', 'w') else X",
    "(Y := open('{mark}', 'w'))",
    "f\"{{open('{mark}', 'w')}}\"",
    "X[open('{mark}', 'w')]",
    "tanh(X, out=open('{mark}', 'w'))",
    "X.__class__",
    "X.mT.__dict__",
    "X.T._base",
    "tanh.__globals__",
    "getattr(X, '__class__')",
    "X.numpy()",
    "X.register_hook(print)",
    "torch.load('{mark}')",
    "print(X)",
    "X; open('{mark}', 'w')",
    "2 ** 10 ** 10 ** 10",
    "X ** (9 ** 9 ** 9)",
    "X(1)",
    "tanh(X)(1)",
    "softmax(X, dim='x')",
    "{{**X}}",
    "X[1.5]",
    "X < 1",
    "X // 2",
    "__builtins__",
    "tanh",
    " + ".join(["X"] * 1000),  # deeper than Python's recursion limit
    "X + " + "-" * 2000 + "X",
    "(" * 300 + "X" + ")" * 300,
    " + ".join(["X"] * 1400),  # longer than the calculator reads
]


@pytest.mark.parametrize("expression", HOSTILE, ids=lambda e: e[:40])
def test_hostile_expressions_are_refused_without_running_anything(expression, tmp_path, capsys):
    mark = tmp_path / "ran"
    rc, out, err = _run([expression.format(mark=mark), "X=S,d"], capsys)
    assert rc == 1 and not out and "InputError" in err and "Traceback" not in err, err
    assert not mark.exists()


@pytest.mark.parametrize("flags, match", [
    (["--f", "f=os.system"], "no torch function fxgrad supports"),
    (["--f", "f=torch.load"], "no torch function fxgrad supports"),
    (["--f", "f=eval"], "no torch function fxgrad supports"),
    (["--f", "f=__import__"], "no torch function fxgrad supports"),
    (["--f", "__import__=tanh"], "bind a name to a torch function"),
    (["--f", "f"], "bind a name to a torch function"),
    (["__builtins__=S,d"], "NAME=DIMS"),
    (["if=S,d"], "NAME=DIMS"),
    (["X=S,d", "W=100000,100000"], "at most"),
])
def test_hostile_bindings_and_shapes_are_refused(flags, match, capsys):
    rc, out, err = _run(["f(X)" if "--f" in flags else "tanh(X)", "X=S,d", *flags], capsys)
    assert rc == 1 and re.search(match, err) and "Traceback" not in err, err


def test_errors_of_the_expression_itself_name_the_cause(capsys):
    rc, _, err = _run(["X @ A", "X=1,d", "A=D,d"], capsys)
    assert rc == 1 and "TraceError" in err and "X @ A" in err
    rc, _, err = _run(["X @ Y", "X=1,d"], capsys)
    assert rc == 1 and "`Y` is no input (give its shape: Y=dims)" in err
    rc, _, err = _run(["X @", "X=1,d"], capsys)
    assert rc == 1 and "is not an expression" in err


@pytest.mark.parametrize("form", ["math", "latex"])
def test_math_and_latex_print_the_math_where_the_backward_has_it(form, capsys):
    rc, out, err = _run(["tanh(X @ W)", "X=S,d", "W=d,D", f"--{form}"], capsys)
    if hasattr(fxgrad.Backward, form):
        assert rc == 0 and out.strip(), err
    else:
        assert rc == 1 and f"Backward.{form}()" in err and "Traceback" not in err


def test_help_exits_zero_and_lists_the_commands():
    result = subprocess.run([sys.executable, "-m", "fxgrad", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and all(command in result.stdout for command in ("derive", "ops", "coverage"))
    result = subprocess.run([sys.executable, "-m", "fxgrad", "derive", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "--f NAME=FUNCTION" in result.stdout and "--math" in result.stdout
    result = subprocess.run([sys.executable, "-m", "fxgrad", "derive", "X @ Q", "X=1,d"], capture_output=True, text=True)
    assert result.returncode == 1 and "Traceback" not in result.stderr and "`Q` is no input" in result.stderr


def test_readme_shows_what_the_calculator_prints(capsys):
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    learning = readme[readme.index("## Learning"):]
    command, printed = re.search(r"```\n\$ python -m fxgrad (derive .*?)\n(.*?)```", learning, re.DOTALL).groups()
    assert main(shlex.split(command)) == 0
    assert capsys.readouterr().out.strip() == printed.strip()
