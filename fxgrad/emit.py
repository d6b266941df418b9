"""Readable output: the user's names, provenance comments, and code printed as a person writes it.

- `name_forward_values` gives forward values the names the user's source assigns them
  (`x = torch.matmul(q, k.transpose(0, 1))` → `x`) and names the outputs after the variables
  the function returns.
- `name_gradients` names each returned gradient `grad_<input>` and each remaining
  gradient statement `grad_<value>`.
- `ReadableCodeGen` prints the graph: single-use intermediates are written inside the
  expression that uses them (`grad_x = grad_a * (1 - a * a)`), an accumulated gradient reuses its
  variable (`grad_a = grad_a + grad_o @ v.mT`), and each group of statements carries a comment
  naming the line of the forward it comes from. The printed code is the code the GraphModule runs.
"""

from __future__ import annotations

import math
import operator
import re
from typing import Any

import torch
import torch.fx as fx
from torch.fx.graph import PythonCode, _Namespace
from torch.fx.node import map_aggregate

from .canon import op_name
from .errors import last_frame
from .graph import DERIVED_FROM, FORWARD, GRADIENT_OF, USER_NAMED

# Expressions longer than this are given a name of their own rather than nested.
_MAX_NESTED_LENGTH = 48


# ---------------------------------------------------------------------------------------------
# Names.


def name_forward_values(forward: list[fx.Node], outputs: list[Any], fields: list[str | None]) -> None:
    """Rename forward nodes after the variables the user's source assigns them to: the last
    node recorded for a statement `x = ...` is `x`; an output with no such name is named after
    its field (`loss` of a namedtuple), else `out`, `out0`, ..."""
    last_of_statement: dict[tuple, fx.Node] = {}
    for node in forward:
        if node.op != "placeholder" and isinstance(node.meta.get("val"), torch.Tensor):
            frame = last_frame(node)
            if frame is not None and frame.assigns is not None:
                last_of_statement[(frame.file, frame.statement)] = node
    for node in last_of_statement.values():
        node._rename(last_frame(node).assigns)
        node.meta[USER_NAMED] = True
    for out, name, field in zip(outputs, _returned_names(outputs), fields):
        name = field or name
        if isinstance(out, fx.Proxy) and out.node.op != "placeholder" and not out.node.meta.get(USER_NAMED):
            out.node._rename(name)
            out.node.meta[USER_NAMED] = True


def _returned_names(outputs: list[Any]) -> list[str]:
    """Names for the outputs that have none: `out`, or `out0`, `out1`, ... for several."""
    if len(outputs) == 1:
        return ["out"]
    return [f"out{i}" for i in range(len(outputs))]


def name_gradients(graph: fx.Graph, grad_names: list[str | None]) -> None:
    """`grad_names[i]` for the i-th returned value (None: not a gradient); `grad_<value>` for
    other gradient nodes."""
    output = next(node for node in graph.nodes if node.op == "output")
    returned = set()
    for node, name in zip(output.args[0], grad_names):
        if name is not None and _renamable(node) and node not in returned:
            node._rename(name)
            returned.add(node)
    for node in graph.nodes:
        gradient_of = node.meta.get(GRADIENT_OF)
        if gradient_of is not None and node not in returned and _renamable(node):
            if not node.name.startswith(f"grad_{gradient_of.name}"):
                node._rename(f"grad_{gradient_of.name}")


def _renamable(node: Any) -> bool:
    return isinstance(node, fx.Node) and node.op in ("call_function", "call_method") and not node.meta.get(USER_NAMED)


def op_counts(graph: fx.Graph) -> dict[str, int]:
    """How many ops (call nodes) a derived graph runs: `forward` ones it recomputes and
    `backward` ones it adds; and `backward_statements`, the lines it prints the latter in."""
    calls = [node for node in graph.nodes if node.op in ("call_function", "call_method")]
    forward = sum(1 for node in calls if node.meta.get(FORWARD))
    _, statements, _ = _lay_out(list(graph.nodes), _Printer(_Namespace(), "self"))
    backward_statements = sum(1 for node, _ in statements if not node.meta.get(FORWARD))
    return {"forward": forward, "backward": len(calls) - forward, "backward_statements": backward_statements}


# ---------------------------------------------------------------------------------------------
# Printing.

# Python's operator precedence, higher binding tighter.
_COMPARISON = 6
_BINARY = {operator.add: ("+", 12), operator.sub: ("-", 12), operator.mul: ("*", 13),
           operator.truediv: ("/", 13), operator.floordiv: ("//", 13), operator.mod: ("%", 13),
           operator.matmul: ("@", 13), operator.pow: ("**", 15), operator.and_: ("&", 9),
           operator.or_: ("|", 7), operator.xor: ("^", 8), operator.gt: (">", _COMPARISON),
           operator.lt: ("<", _COMPARISON), operator.ge: (">=", _COMPARISON), operator.le: ("<=", _COMPARISON),
           operator.eq: ("==", _COMPARISON), operator.ne: ("!=", _COMPARISON)}
_UNARY = {operator.neg: ("-", 14), operator.invert: ("~", 14)}
_NUMBER = 15.5  # a literal: an atom, except before `.` (`(1).real`)
_ATOM = 16  # names, calls, attributes, subscripts


class ReadableCodeGen(fx.graph.CodeGen):
    """Prints a derived graph as readable Python; the GraphModule runs what it prints."""

    def __init__(self, provenance: bool = True):
        super().__init__()
        self.provenance = provenance

    def _gen_python_code(self, nodes, root_module: str, namespace, **_: Any) -> PythonCode:
        printer = _Printer(namespace, root_module)
        parameters, statements, returned = _lay_out(list(nodes), printer)
        body, last_source = [], None
        for node, text in statements:
            source = _provenance(node)
            if self.provenance and source is not None and source != last_source:
                body.append(f"# from {source}")
                last_source = source
            body.append(text)
        body.append(f"return {returned}")
        code = "\n".join(f"    {line}" for line in body)
        src = f"\n\n\ndef forward(self, {', '.join(parameters)}):\n{code}\n    "
        return PythonCode(src, printer.globals, None)


def _lay_out(nodes: list[fx.Node], printer: "_Printer") -> tuple[list[str], list[tuple[fx.Node, str]], str]:
    """The parameters, the statements (node, `name = expression`) and the returned expression."""
    printer.namespace.create_name(printer.root_module, None)  # `self` is the module, never a value
    for node in nodes:
        printer.namespace.create_name(node.name, node)  # reserve every node's name before globals
    printer.variables = _accumulated_variables(nodes)
    parameters, statements, returned = [], [], "None"
    for node in nodes:
        if node.op == "placeholder":
            printer.names[node] = printer.namespace.create_name(node.name, node)
            parameters.append(printer.names[node])
        elif node.op == "output":
            returned = printer.render(node.args[0])[0]
        else:
            expression = printer.expression(node)
            if _nests(node, expression[0]) and printer.may_nest(node, next(iter(node.users))):
                printer.nested[node] = expression
            else:
                printer.name_statement(node)
                statements.append((node, f"{printer.names[node]} = {expression[0]}"))
    return parameters, statements, returned


def _accumulated_variables(nodes: list[fx.Node]) -> dict[fx.Node, fx.Node]:
    """A gradient summed in steps (`g = g + c`, each partial read by the next step alone) is
    printed as one variable: for each step, the node whose name it takes (the incoming gradient
    it starts from, else the finished sum)."""
    first: dict[fx.Node, fx.Node] = {}
    for node in nodes:
        previous = node.args[0] if node.target is operator.add and node.args else None
        if (isinstance(previous, fx.Node) and len(previous.users) == 1
                and previous.meta.get(GRADIENT_OF) is not None
                and previous.meta.get(GRADIENT_OF) is node.meta.get(GRADIENT_OF)):
            first[node] = first.get(previous, previous)
    finished = {start: node for node, start in first.items()}  # the last step of each chain wins
    named_after = {}
    for node, start in first.items():
        named_after[node] = named_after[start] = start if start.op == "placeholder" else finished[start]
    return named_after


def _nests(node: fx.Node, text: str) -> bool:
    """Whether `node` is written inside its only user's expression instead of as a statement:
    an unnamed intermediate, read once, short enough to read in place."""
    users = list(node.users)
    if len(users) != 1 or users[0].op == "output" or node.meta.get(USER_NAMED) or GRADIENT_OF in node.meta:
        return False
    reads = []
    map_aggregate((users[0].args, users[0].kwargs), lambda a: reads.append(a) if a is node else None)
    return len(reads) == 1 and len(text) <= _MAX_NESTED_LENGTH


def _provenance(node: fx.Node) -> str | None:
    """`attn line 17: x = torch.matmul(q, k.transpose(0, 1))`, the forward line `node` comes from."""
    frame = last_frame(node.meta.get(DERIVED_FROM, node))
    if frame is None:
        return None
    return f"{frame.func} line {frame.line}: {frame.code}" if frame.code else f"{frame.func} line {frame.line}"


class _Printer:
    def __init__(self, namespace, root_module: str):
        self.namespace = namespace
        self.root_module = root_module
        self.names: dict[fx.Node, str] = {}
        self.nested: dict[fx.Node, tuple[str, int]] = {}
        self.globals: dict[str, Any] = {}
        self.variables: dict[fx.Node, fx.Node] = {}  # see _accumulated_variables
        # whether a value may be written inside its user's expression besides `_nests`'s reasons
        # (the execution printer forbids it across an in-place op)
        self.may_nest = lambda node, user: True

    def name_statement(self, node: fx.Node) -> None:
        """The variable a statement assigns: its own name, or that of the gradient it is a step
        of summing (`grad_a = grad_a + ...`)."""
        named_after = self.variables.get(node, node)
        self.names[node] = self.namespace.create_name(named_after.name, named_after)

    def torch_name(self, name: str) -> str:
        """`torch.nn.functional.silu` as the code writes it, `torch` bound in its globals."""
        root = self.namespace.create_name("torch", torch)
        self.globals[root] = torch
        return root + name[len("torch"):]

    def global_name(self, obj: Any) -> str:
        """How the code refers to a function: `torch.tanh`, or a name bound in its globals."""
        name = op_name(obj)
        if name.startswith("torch."):
            return self.torch_name(name)
        key = self.namespace.create_name(getattr(obj, "__name__", "fn"), obj)
        self.globals[key] = obj
        return key

    def render(self, arg: Any) -> tuple[str, int]:
        """An argument as source text, with the precedence of its outermost operator."""
        if isinstance(arg, fx.Node):
            if arg in self.nested:
                return self.nested[arg]
            return self.names[arg], _ATOM
        if isinstance(arg, tuple):
            items = [self.render(a)[0] for a in arg]
            return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})", _ATOM
        if isinstance(arg, list):
            return f"[{', '.join(self.render(a)[0] for a in arg)}]", _ATOM
        if isinstance(arg, slice):
            parts = [self.render(p)[0] if p is not None else "" for p in (arg.start, arg.stop, arg.step)]
            return ":".join(parts[:2] if arg.step is None else parts), _ATOM
        if isinstance(arg, float) and not math.isfinite(arg):
            text = f"float('{'nan' if math.isnan(arg) else 'inf'}')"
            return ("-" + text, _UNARY[operator.neg][1]) if arg < 0 else (text, _ATOM)
        if isinstance(arg, (torch.dtype, torch.device, torch.layout, torch.memory_format)):
            return self.torch_name(f"torch.{arg!r}" if isinstance(arg, torch.device) else str(arg)), _ATOM
        if arg is Ellipsis:
            return "...", _ATOM
        if isinstance(arg, (int, float)) and not isinstance(arg, bool):
            # `-1` binds like a unary minus; `1` is an atom but for `.`: `(1).real`, never `1.real`
            return repr(arg), _UNARY[operator.neg][1] if arg < 0 else _NUMBER
        return repr(arg), _ATOM

    def operand(self, arg: Any, at_least: int) -> str:
        text, precedence = self.render(arg)
        return text if precedence >= at_least else f"({text})"

    def call_arguments(self, args: tuple, kwargs: dict) -> str:
        parts = [self.render(a)[0] for a in args]
        parts += [f"{key}={self.render(v)[0]}" for key, v in kwargs.items()]
        return ", ".join(parts)

    def expression(self, node: fx.Node) -> tuple[str, int]:
        """The right-hand side computing `node`, with its precedence."""
        target, args, kwargs = node.target, node.args, node.kwargs
        if node.op == "get_attr":  # self.fc1.weight; getattr(self, "0").weight in a Sequential
            text = self.root_module
            for part in target.split("."):
                text = f"{text}.{part}" if part.isidentifier() else f"getattr({text}, {part!r})"
            return text, _ATOM
        if node.op == "call_method":
            return f"{self.operand(args[0], _ATOM)}.{target}({self.call_arguments(args[1:], kwargs)})", _ATOM
        if target in _BINARY and not kwargs:
            symbol, precedence = _BINARY[target]
            # a ** b ** c is a ** (b ** c), -a ** b is -(a ** b), a < b < c chains: bracket those
            left_at_least = {operator.pow: _NUMBER}.get(target, precedence + (precedence == _COMPARISON))
            left = self.operand(args[0], left_at_least)
            right = self.operand(args[1], precedence + (target is not operator.pow))
            return f"{left} {symbol} {right}", precedence
        if target in _UNARY and not kwargs:
            symbol, precedence = _UNARY[target]
            return f"{symbol}{self.operand(args[0], precedence)}", precedence
        if target is getattr and isinstance(args[1], str) and re.fullmatch(r"\w+", args[1]):
            return f"{self.operand(args[0], _ATOM)}.{args[1]}", _ATOM
        if target is operator.getitem:
            index = args[1]
            text = ", ".join(self.render(i)[0] for i in index) if isinstance(index, tuple) and index else self.render(index)[0]
            return f"{self.operand(args[0], _ATOM)}[{text}]", _ATOM
        return f"{self.global_name(target)}({self.call_arguments(args, kwargs)})", _ATOM
