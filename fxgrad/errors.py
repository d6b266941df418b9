"""The errors fxgrad raises. Every one is an `FxgradError`, so callers can catch them all."""

from __future__ import annotations

import ast
import linecache
import re
from typing import NamedTuple

import torch.fx as fx


class FxgradError(Exception):
    """Base class of every error fxgrad raises on bad input or unsupported code."""


def described(error: Exception) -> str:
    """`RuntimeError: <the first line of its message>`: a torch error, quoted in one of ours."""
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else ''}"


class TraceError(FxgradError):
    """The function could not be traced into a graph."""


class SizeOptionError(TraceError):
    """An option a lowering reads is, in the fx trace, a size computed when the graph runs: the
    tracers that compute sizes (export, make_fx) can take the function."""


class InputError(FxgradError):
    """The example inputs, or the inputs to differentiate (`wrt`), are not what derive takes."""


class OutputError(FxgradError):
    """The function returns something other than a tensor or a tuple of tensors."""


class ParameterError(FxgradError):
    """A parameter, buffer or captured tensor a derived backward reads was replaced by one it was
    not derived for, or the function reads tensors that require grad where fxgrad cannot name them."""


class GradOutputError(FxgradError):
    """A derived backward was called with arguments of the wrong number or shape."""


class ShapeError(FxgradError):
    """A derived backward was called with an input outside what it was derived for: another
    rank or dtype, or sizes its graph does not hold at (see `fxgrad.guards`)."""


class MutationError(FxgradError):
    """The function changes a tensor in place."""


class RandomnessError(FxgradError):
    """The function draws random numbers, so recomputing its forward would not reproduce it."""


class UnsupportedArgumentError(FxgradError):
    """A supported op is used with an option fxgrad does not differentiate (`div`'s rounding
    mode, a boolean mask as an index, a norm other than the 2-norm)."""


# Ops that have no rule by design, and why.
_NO_RULE_BECAUSE = {
    "aten.as_strided": (
        "as_strided reads the input's memory through strides and an offset: which element of the result is "
        "which element of the input, and how many times it is read, depend on how the input is laid out in "
        "memory, which a traced value does not fix (a view, a transpose, a copy of it all lay it out "
        "differently). Write the view with the ops that say which elements they take (view, reshape, "
        "diagonal, narrow, indexing)."),
}


class UnsupportedOpError(FxgradError):
    """An op on the path from the differentiated inputs to the outputs has no backward rule."""

    def __init__(self, op: str, where: str, supported: list[str], stuck_on: str | None = None):
        self.op = op
        self.where = where
        self.supported = supported
        self.stuck_on = stuck_on  # the op torch's decompositions of `op` stop at, where they were tried
        stuck = f" (torch's decompositions of it stop at `{stuck_on}`, which has none)" if stuck_on else ""
        why = f"{_NO_RULE_BECAUSE[stuck_on or op]}\n" if (stuck_on or op) in _NO_RULE_BECAUSE else ""
        super().__init__(
            f"fxgrad has no backward rule for `{op}`{stuck}, used at {where}.\n{why}"
            f"fxgrad.supported_ops() lists the {len(supported)} spellings it differentiates (and the README, by "
            "op); rewrite the function with those, or detach() the value if it needs no gradient."
        )


# One frame of a formatted stack: its source line is missing for code with no file (`exec`).
_FRAME = re.compile(r'File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<func>\S+)\n(?:[ \t]+(?!File ")(?P<code>\S[^\n]*))?')


class Frame(NamedTuple):
    file: str
    line: int
    func: str
    code: str  # the whole statement on that line, on one line
    assigns: str | None  # the variable the statement assigns (`x` in `x = ...`), if just one
    statement: int  # the line the statement starts on


def last_frame(node: fx.Node) -> Frame | None:
    """The innermost frame of the user's code that recorded `node`, if one was recorded."""
    frames = list(_FRAME.finditer(node.stack_trace or ""))
    if not frames:
        return None
    last = frames[-1]
    file, line = last["file"], int(last["line"])
    statement = _statement_at(file, line)
    line_text = (last["code"] or linecache.getline(file, line)).strip()
    if statement is None:
        return Frame(file, line, last["func"], line_text, None, line)
    code, assigns, start = statement
    if last["func"] == "<lambda>":  # the statement around a lambda is its caller's: quote the line
        return Frame(file, line, last["func"], line_text, None, line)
    return Frame(file, line, last["func"], code, assigns, start)


_LONGEST_QUOTED = 4  # lines of a statement quoted whole; of a longer one, the line itself


class _ParsedFile:
    """A source file's statements, and the statement found at each line asked for."""

    def __init__(self, lines: list[str]):
        self.lines = lines
        tree = ast.parse("".join(lines))
        self.statements = [n for n in ast.walk(tree) if isinstance(n, ast.stmt)]
        self.at_line: dict[int, tuple[str, str | None, int] | None] = {}

    def statement_at(self, line: int) -> tuple[str, str | None, int] | None:
        if line not in self.at_line:
            self.at_line[line] = self._find(line)
        return self.at_line[line]

    def _find(self, line: int) -> tuple[str, str | None, int] | None:
        holding = [n for n in self.statements if n.lineno <= line <= n.end_lineno]
        if not holding:
            return None
        span = min(n.end_lineno - n.lineno for n in holding)
        innermost = [n for n in holding if n.end_lineno - n.lineno == span]
        if len(innermost) > 1:
            return None
        statement = innermost[0]
        if span >= _LONGEST_QUOTED:
            return self.lines[line - 1].strip(), _assigned_name(statement), statement.lineno
        # the statement's text: its lines, cut at its columns (byte offsets in UTF-8)
        source = [text.encode() for text in self.lines[statement.lineno - 1: statement.end_lineno]]
        source[-1] = source[-1][: statement.end_col_offset]
        source[0] = source[0][statement.col_offset:]
        text = " ".join(b"".join(source).decode().split())
        return text, _assigned_name(statement), statement.lineno


_PARSED: dict[str, _ParsedFile] = {}
_UNPARSABLE: set[str] = set()


def _statement_at(file: str, line: int) -> tuple[str, str | None, int] | None:
    """The statement of `file` that holds `line` (its text on one line, the name it assigns, its
    first line), or None if the file cannot be read, or several statements share the line
    (`a = f(x); b = g(a)`)."""
    lines = linecache.getlines(file)
    if not lines:
        return None
    parsed = _PARSED.get(file)
    if parsed is None or parsed.lines is not lines:  # new, or changed since it was read
        if file in _UNPARSABLE:
            return None
        try:
            parsed = _PARSED[file] = _ParsedFile(lines)
        except (SyntaxError, ValueError):
            _UNPARSABLE.add(file)
            return None
    return parsed.statement_at(line)


def _assigned_name(statement: ast.stmt) -> str | None:
    if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
        target = statement.targets[0]
    elif isinstance(statement, ast.AnnAssign):
        target = statement.target
    else:
        return None
    return target.id if isinstance(target, ast.Name) else None


def source_location(node: fx.Node) -> str:
    """Where in the user's source `node` was recorded, e.g. `attn line 3 (lab.py): x = q @ k.mT`."""
    frame = last_frame(node)
    if frame is None:
        return f"graph node `{node.name}` (no source line recorded)"
    return f"{frame.func} line {frame.line} ({frame.file.rsplit('/', 1)[-1]}): {frame.code}"
