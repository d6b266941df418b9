"""`python -m fxgrad derive`: the gradient calculator.

    python -m fxgrad derive "f(f(f((f(X @ A) + X) @ B) @ C) @ D)" X=1,d A=d,d B=d,D C=D,D D=D,d --f f=silu
    python -m fxgrad derive path/to/file.py:fn X=S,d W=d,D

prints the derived backward with every shape in the symbols given (`fxgrad.shaped`), or as math
with `--math` / `--latex`. An expression is torch syntax, read with `ast` and checked against a
whitelist before anything runs: names of the inputs given and of the functions fxgrad supports
(`tanh`, `softmax`, `sum`, ...; `--f name=function` binds another name to one), the operators
`@ * + - / **`, the attributes and methods fxgrad supports on tensors (`.mT`, `.T`, `.sum(-1)`),
numbers, and indexing by numbers and slices. Anything else (an import, a dunder, a lambda, a
comprehension, a string) is refused with a message; nothing of it is run.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import inspect
import keyword
import linecache
import math
import operator
import re
import sys
from pathlib import Path
from typing import Any, Callable

import torch

from .api import derive
from .canon import supported_ops
from .errors import FxgradError, InputError
from .shaped import shaped, shapes

# The tensors the calculator makes stay small: a literal size in a shape is taken as given.
_MOST_ELEMENTS = 1 << 22
# Where a bare function name is looked for, in order (`silu` is `torch.nn.functional.silu`).
_NAMESPACES = ("torch.", "torch.nn.functional.", "torch.special.", "torch.linalg.")
_OPERATORS = (ast.MatMult, ast.Mult, ast.Add, ast.Sub, ast.Div, ast.Pow)
_LONGEST_EXPRESSION = 4000
_TOO_DEEP = "the expression is nested too deeply for the calculator to read"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m fxgrad derive", description=__doc__.strip(),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("target", help='a torch expression ("tanh(X @ W)") or path/to/file.py:function')
    parser.add_argument("shapes", nargs="*", metavar="NAME=DIMS",
                        help="each input's dims, comma-separated symbols or sizes: X=1,d W=d,D (a scalar: b=)")
    parser.add_argument("--f", dest="functions", action="append", default=[], metavar="NAME=FUNCTION",
                        help="bind a name in the expression to a torch function: --f f=silu, --f g=torch.tanh")
    shown = parser.add_mutually_exclusive_group()
    shown.add_argument("--math", action="store_true", help="print the gradients as Unicode math")
    shown.add_argument("--latex", action="store_true", help="print the gradients as LaTeX")
    args = parser.parse_args(argv)
    try:
        specs = dict(_shape(text) for text in args.shapes)
        fn, inputs, kwargs, provenance = _target(args.target, specs, args.functions)
        bwd = derive(fn, inputs, kwargs, provenance=provenance)
        print(_shown(bwd, "math" if args.math else "latex" if args.latex else None))
    except FxgradError as error:
        print(f"fxgrad derive: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    return 0


def _shown(bwd: Any, form: str | None) -> str:
    if form is None:
        return bwd.code.strip()
    render = getattr(bwd, form, None)
    if not callable(render):
        raise InputError(f"--{form} prints Backward.{form}(), which this version of fxgrad does not have; "
                              "without it the calculator prints the code")
    return str(render())


def _shape(text: str) -> tuple[str, str]:
    name, equals, dims = text.partition("=")
    if not equals or not _is_plain_name(name):
        raise InputError(f"`{text}`: give each input's shape as NAME=DIMS, such as X=1,d")
    return name, dims


def _is_plain_name(name: str) -> bool:
    return name.isidentifier() and not keyword.iskeyword(name) and not name.startswith("_")


def _target(target: str, specs: dict[str, str], functions: list[str]) -> tuple[Callable, tuple, dict, bool]:
    """The function to derive, its example inputs and keywords, and whether to print provenance
    (a file's lines; an expression is one line)."""
    found = re.fullmatch(r"(.+\.py):(\w+)", target)
    if found:
        if functions:
            raise InputError("--f binds names in an expression; a function in a file names its own")
        fn = _from_file(Path(found[1]), found[2])
        inputs, kwargs = _arguments(fn, specs)
        return fn, inputs, kwargs, True
    fn = expression_function(target, list(specs), dict(_binding(text) for text in functions))
    return fn, _tensors(specs), {}, False


def _tensors(specs: dict[str, str]) -> tuple[torch.Tensor, ...]:
    if not specs:
        raise InputError("give each input's shape: NAME=DIMS, such as X=1,d")
    for name, (shape, _) in shapes(**specs).items():
        if math.prod(shape) > _MOST_ELEMENTS:
            raise InputError(f"{name}={specs[name]} has {math.prod(shape)} elements; the calculator's "
                                  f"example tensors hold at most {_MOST_ELEMENTS}: use symbols or smaller sizes")
    return shaped(**specs)


def _from_file(path: Path, name: str) -> Callable:
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(path.stem, module)
    try:
        spec.loader.exec_module(module)
    except Exception as error:  # the user's file fails on import: say so, as Python would
        raise InputError(f"{path} fails on import: {type(error).__name__}: {error}") from error
    fn = getattr(module, name, None)
    if not inspect.isfunction(fn):
        raise InputError(f"{path} defines no function `{name}`"
                              + ("" if fn is None else f" (`{name}` is a {type(fn).__name__})"))
    return fn


def _arguments(fn: Callable, specs: dict[str, str]) -> tuple[tuple, dict]:
    """The example tensors as `fn` takes them: by position, then by keyword past a parameter
    left at its default."""
    parameters = inspect.signature(fn).parameters
    unknown = [name for name in specs if name not in parameters]
    missing = [name for name, p in parameters.items() if p.default is p.empty and name not in specs
               and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    if unknown or missing:
        raise InputError(f"`{fn.__name__}{inspect.signature(fn)}`: "
                              + "; ".join([f"it has no parameter {', '.join(unknown)}"] * bool(unknown)
                                          + [f"give the shape of {', '.join(missing)}"] * bool(missing)))
    ordered = [name for name in parameters if name in specs]
    tensors = dict(zip(ordered, _tensors({name: specs[name] for name in ordered})))
    positional = []
    for name, p in parameters.items():
        if name not in tensors or p.kind is p.KEYWORD_ONLY:
            break
        positional.append(tensors.pop(name))
    return tuple(positional), tensors


def _binding(text: str) -> tuple[str, Callable]:
    name, equals, function = text.partition("=")
    if not equals or not _is_plain_name(name):
        raise InputError(f"--f {text}: bind a name to a torch function, such as --f f=silu")
    resolved = torch_function(function)
    if resolved is None:
        raise InputError(f"--f {text}: `{function}` is no torch function fxgrad supports "
                              "(fxgrad.supported_ops() lists them)")
    return name, resolved


def torch_function(spelling: str) -> Callable | None:
    """The torch function fxgrad supports that `spelling` names (`silu`, `F.silu`,
    `torch.nn.functional.silu`), or None."""
    if not re.fullmatch(r"[A-Za-z]\w*(\.[A-Za-z]\w*)*", spelling):
        return None
    spelling = re.sub(r"^(F|nn\.functional)\.", "torch.nn.functional.", spelling)
    candidates = [spelling] if spelling.startswith("torch.") else [prefix + spelling for prefix in _NAMESPACES]
    supported = set(supported_ops())
    for candidate in candidates:
        if candidate in supported:
            return operator.attrgetter(candidate[len("torch."):])(torch)
    return None


def expression_function(text: str, inputs: list[str], functions: dict[str, Callable]) -> Callable:
    """A function of `inputs` returning the expression, built from its syntax tree once every
    node of it is found in the whitelist (`_Checker`)."""
    if len(text) > _LONGEST_EXPRESSION:
        raise InputError(f"the expression is {len(text)} characters long; the calculator reads at most {_LONGEST_EXPRESSION}")
    try:
        tree = ast.parse(text.strip(), mode="eval")
        names = _Checker(text, inputs, functions).check(tree.body)
    except SyntaxError as error:
        raise InputError(f"`{_quoted(text)}` is not an expression: {error.msg}") from None
    except RecursionError:
        raise InputError(_TOO_DEEP) from None
    bound = {name: functions.get(name) or torch_function(name) for name in names if name not in inputs}
    source = f"def expression({', '.join(inputs)}):\n    return {text.strip()}\n"
    filename = "<expression>"
    linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
    module = ast.parse(f"def expression({', '.join(inputs)}):\n    return 0\n")  # the inputs are plain names
    module.body[0].body[0].value = ast.increment_lineno(tree.body, 1)
    namespace = {"__builtins__": {}, **bound}
    try:
        exec(compile(module, filename, "exec"), namespace)  # the checked tree: a def, nothing runs yet
    except RecursionError:
        raise InputError(_TOO_DEEP) from None
    return namespace["expression"]


def _quoted(text: str, longest: int = 80) -> str:
    return text if len(text) <= longest else f"{text[:longest - 3]}..."


class _Checker:
    """Walks an expression's syntax tree, refusing every node outside the whitelist."""

    def __init__(self, text: str, inputs: list[str], functions: dict[str, Callable]):
        self.text, self.inputs, self.functions = text, inputs, functions
        self.names: set[str] = set()

    def refuse(self, node: ast.AST, why: str) -> InputError:
        return InputError(f"`{_quoted(ast.get_source_segment(self.text.strip(), node) or self.text)}`: {why}")

    def check(self, node: ast.AST) -> set[str]:
        self.value(node)
        return self.names

    def value(self, node: ast.AST) -> None:
        """A tensor (or number) valued expression."""
        if isinstance(node, ast.Name):
            if node.id not in self.inputs:
                raise self.refuse(node, f"`{node.id}` is no input (give its shape: {node.id}=dims)"
                                  if _is_plain_name(node.id) and not self._function(node.id)
                                  else f"`{node.id}` is a function: call it")
            self.names.add(node.id)
        elif isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
                raise self.refuse(node, "the only constants are numbers")
        elif isinstance(node, ast.BinOp):
            if not isinstance(node.op, _OPERATORS):
                raise self.refuse(node, "the operators are @ * + - / **")
            if isinstance(node.left, ast.Constant) and isinstance(node.right, ast.Constant):
                raise self.refuse(node, "arithmetic of numbers alone: write the number")
            self.value(node.left)
            self.value(node.right)
        elif isinstance(node, ast.UnaryOp):
            if not isinstance(node.op, (ast.USub, ast.UAdd)):
                raise self.refuse(node, "the unary operators are - and +")
            self.value(node.operand)
        elif isinstance(node, ast.Attribute):
            self.attribute(node)
            self.value(node.value)
        elif isinstance(node, ast.Call):
            self.call(node)
        elif isinstance(node, ast.Subscript):
            self.value(node.value)
            for index in node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]:
                self.index(index)
        else:
            raise self.refuse(node, f"{type(node).__name__.lower()} is not part of the expression language "
                              "(inputs, numbers, @ * + - / **, calls of torch functions, .mT, .T, indexing)")

    def attribute(self, node: ast.Attribute) -> None:
        if not _is_plain_name(node.attr) or f"Tensor.{node.attr}" not in supported_ops():
            raise self.refuse(node, f"`.{node.attr}` is no tensor attribute or method fxgrad supports")
        if isinstance(node.value, ast.Name) and node.value.id not in self.inputs:
            raise self.refuse(node, "attributes are read of tensors only")

    def call(self, node: ast.Call) -> None:
        if isinstance(node.func, ast.Name):
            if node.func.id in self.inputs or not self._function(node.func.id):
                raise self.refuse(node.func, f"`{node.func.id}` is no torch function fxgrad supports "
                                  "(bind a name with --f name=function)")
            self.names.add(node.func.id)
        elif isinstance(node.func, ast.Attribute):
            self.attribute(node.func)
            self.value(node.func.value)
        else:
            raise self.refuse(node, "only functions and tensor methods are called")
        for arg in node.args:
            if isinstance(arg, (ast.List, ast.Tuple)):  # torch.cat([a, b])
                for element in arg.elts:
                    self.value(element)
            else:
                self.value(arg)
        for keyword in node.keywords:
            if keyword.arg is None or not _is_plain_name(keyword.arg):
                raise self.refuse(node, "keyword arguments are given by name")
            if not (isinstance(keyword.value, ast.Constant) and isinstance(keyword.value.value, bool)):
                self.value(keyword.value)

    def index(self, node: ast.AST) -> None:
        if isinstance(node, ast.Slice):
            for part in (node.lower, node.upper, node.step):
                if part is not None:
                    self.integer(part)
        elif isinstance(node, ast.Constant) and (node.value is None or node.value is Ellipsis):
            pass
        else:
            self.integer(node)

    def integer(self, node: ast.AST) -> None:
        number = node.operand if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) else node
        if not (isinstance(number, ast.Constant) and type(number.value) is int):
            raise self.refuse(node, "an index is a whole number, a slice of them, None or ...")

    def _function(self, name: str) -> bool:
        return name in self.functions or (_is_plain_name(name) and torch_function(name) is not None)
