"""Readable output: the user's names, provenance comments, and code printed as a person writes it.

- `name_forward_values` gives forward values the names the user's source assigns them
  (`x = torch.matmul(q, k.transpose(0, 1))` → `x`) and names the outputs after the variables
  the function returns.
- `name_gradients` names each returned gradient `grad_<input>` and each remaining
  gradient statement `grad_<value>`.
- `ReadableCodeGen` prints the graph: single-use intermediates are written inside the
  expression that uses them (`grad_x = grad_a * (1 - a * a)`), an accumulated gradient reuses its
  variable (`grad_a = grad_a + grad_o @ v.mT  # a is used twice: its gradients add up`), and each
  group of statements carries a comment naming the line of the forward it comes from; a
  statement may end in a comment on its shape, a constant or a default it writes. The printed
  code is the code the GraphModule runs.
"""

from __future__ import annotations

import builtins
import keyword
import math
import operator
import re
from fractions import Fraction
from typing import Any, Callable, NamedTuple

import torch
import torch.fx as fx
from torch.fx.graph import PythonCode, _Namespace
from torch.fx.node import map_aggregate

from .canon import op_name
from .errors import last_frame
from .graph import ARGUMENT_NAME, DERIVED_FROM, FORWARD, GRADIENT_OF, USER_NAMED

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
    for node in graph.nodes:
        if _renamable(node) and _value_name(node) != node.name:
            node._rename(_value_name(node))
    returned = set()
    for node, name in zip(output.args[0], grad_names):
        if name is not None and _renamable(node) and node not in returned:
            node._rename("grad_" + _attribute_name(name[len("grad_"):]) if name.startswith("grad_") else name)
            returned.add(node)
    for node in graph.nodes:
        gradient_of = node.meta.get(GRADIENT_OF)
        if gradient_of is not None and node not in returned and _renamable(node):
            if not node.name.startswith(f"grad_{_value_name(gradient_of)}"):
                node._rename(f"grad_{_value_name(gradient_of)}")


def _value_name(node: fx.Node) -> str:
    """A node's name, but for fx's own names of attribute reads: `getattr_5` reading `.mT` is
    `transposed` (a value no longer in the graph keeps its arguments' constants)."""
    if node.target is getattr and re.fullmatch(r"getattr(_\d+)?", node.name) and isinstance(node.args[1], str):
        return {"mT": "transposed", "T": "transposed"}.get(node.args[1], node.args[1])
    return node.name


def _attribute_name(target: str) -> str:
    """A module's attribute as a variable: `layer0_weight` for `0.weight` (a Sequential's),
    `constant` for `_tensor_constant0`."""
    if re.fullmatch(r"_tensor_constant\d+", target):
        return "constant"
    return "_".join(f"layer{part}" if part.isdigit() else part for part in target.split("."))


def _renamable(node: Any) -> bool:
    return isinstance(node, fx.Node) and node.op in ("call_function", "call_method") and not node.meta.get(USER_NAMED)


def op_counts(graph: fx.Graph) -> dict[str, int]:
    """How many ops (call nodes) a derived graph runs: `forward` ones it recomputes and
    `backward` ones it adds; and `backward_statements`, the lines it prints the latter in."""
    calls = [node for node in graph.nodes if node.op in ("call_function", "call_method")]
    forward = sum(1 for node in calls if node.meta.get(FORWARD))
    backward_statements = sum(1 for node, _ in printout(graph).statements if not node.meta.get(FORWARD))
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
    """Prints a derived graph as readable Python; the GraphModule runs what it prints.

    `shapes`, a function of a value (`node.meta["val"]`) giving its shape as text or None
    (`fxgrad.shaped.Dims`), annotates each parameter (`q: "S×d"`) and ends each statement in a
    comment (`# S×S`): a string annotation and a comment change nothing the code runs."""

    def __init__(self, provenance: bool = True, shapes: Callable[[Any], str | None] | None = None):
        super().__init__()
        self.provenance = provenance
        self.shapes = shapes

    def _gen_python_code(self, nodes, root_module: str, namespace, **_: Any) -> PythonCode:
        printer = _Printer(namespace, root_module)
        parameters, statements, returned = _lay_out(list(nodes), printer)
        if self.shapes is not None:
            parameters = [_annotated(name, self.shapes(node.meta.get("val")))
                          for name, node in zip(parameters, (n for n in nodes if n.op == "placeholder"))]
        uses = _uses_summed(list(nodes), printer)
        body, last_source = [], None
        for node, text in statements:
            source = _provenance(node)
            if self.provenance and source is not None and source != last_source:
                body.append(f"# from {source}")
                last_source = source
            shape = self.shapes(node.meta.get("val")) if self.shapes is not None else None
            notes = [shape, uses.get(node), *_constants(text), *_defaults(node, text)]
            body.append(_commented(text, [note for note in notes if note]))
        body.append(f"return {returned}")
        code = "\n".join(f"    {line}" for line in body)
        src = f"\n\n\ndef forward(self, {', '.join(parameters)}):\n{code}\n    "
        return PythonCode(src, printer.globals, None)


class Printout(NamedTuple):
    """A graph as its code prints it, for the readers of the printout (`fxgrad.draw`)."""

    parameters: list[str]
    statements: list[tuple[fx.Node, str]]  # each statement's node and its `name = expression`
    names: dict[fx.Node, str]  # the variable of each parameter and statement
    nested: dict[fx.Node, tuple[str, int]]  # the values written inside their user's expression


def printout(graph: fx.Graph) -> Printout:
    printer = _Printer(_Namespace(), "self")
    parameters, statements, _ = _lay_out(list(graph.nodes), printer)
    return Printout(parameters, statements, printer.names, printer.nested)


def _lay_out(nodes: list[fx.Node], printer: "_Printer") -> tuple[list[str], list[tuple[fx.Node, str]], str]:
    """The parameters, the statements (node, `name = expression`) and the returned expression."""
    printer.namespace.create_name(printer.root_module, None)  # `self` is the module, never a value
    printer.variables = _accumulated_variables(nodes)
    printer.wanted, claimed_first = _display_names(nodes), _returned(nodes)
    for node, name in printer.wanted.items():  # the arguments, parameters and returned gradients first
        if node.op in ("placeholder", "get_attr") or node in claimed_first:
            _reserve(printer.namespace, name, node)
    # a value whose gradient is printed is printed too, so that `grad_<value>` names something shown
    by_name = {node.name: node for node in nodes}
    values = {node: value for node in nodes if (value := _gradient_of(node, by_name)) is not None}
    printer.gradient_of = {node: value for node, value in values.items() if node not in claimed_first}
    with_gradient = set(values.values())
    parameters, statements, returned = [], [], "None"
    for node in nodes:
        if node.op == "placeholder":
            printer.names[node] = printer.namespace.create_name(node.name, node)
            parameters.append(printer.names[node])
        elif node.op == "output":
            returned = printer.render(node.args[0])[0]
        else:
            expression = printer.expression(node)
            if (node not in with_gradient and _nests(node, expression[0])
                    and printer.may_nest(node, next(iter(node.users)))):
                printer.nested[node] = expression
            else:
                printer.name_statement(node)
                statements.append((node, f"{printer.names[node]} = {expression[0]}"))
    return parameters, statements, returned


# ---------------------------------------------------------------------------------------------
# Comments ending a statement: its shape, a gradient summed over several uses, the constants
# the derivation wrote (`0.3989422804014327 = 1/√(2π)`) and the defaults the user never wrote.

# Comments start in this column, or two spaces after a longer statement.
_COMMENT_COLUMN = 40


def _annotated(parameter: str, shape: str | None) -> str:
    return parameter if shape is None else f'{parameter}: "{shape}"'


def _commented(text: str, notes: list[str]) -> str:
    """`x = q @ k.mT                            # S×S`"""
    return f"{text.ljust(_COMMENT_COLUMN - 2)}  # {'; '.join(notes)}" if notes else text


def _uses_summed(nodes: list[fx.Node], printer: "_Printer") -> dict[fx.Node, str]:
    """On the first step of a gradient summed in steps: `a is used twice: its gradients add up`,
    so that `grad_a = grad_a + ...` does not read as an incoming gradient overwritten."""
    first = _summed_in_steps(nodes)
    steps: dict[fx.Node, list[fx.Node]] = {}
    for step, start in first.items():
        steps.setdefault(start, []).append(step)
    by_name = {node.name: node for node in nodes}
    notes = {}
    for start, chain in steps.items():
        value = _gradient_of(start, by_name)
        name = printer.names.get(value) or start.meta[GRADIENT_OF].name
        times = {2: "twice", 3: "three times"}.get(len(chain) + 1, f"{len(chain) + 1} times")
        notes[chain[0]] = f"{name} is used {times}: its gradients add up"
    return notes


# Constants the rules write, by value, and what they are.
_CONSTANTS = {
    1 / math.sqrt(2 * math.pi): "1/√(2π)", math.sqrt(2 / math.pi): "√(2/π)", 1 / math.sqrt(2): "1/√2",
    math.sqrt(2): "√2", 2 / math.sqrt(math.pi): "2/√π", math.pi: "π", math.log(2): "ln 2", math.e: "e",
    0.044715: "the tanh GELU's cubic coefficient", 3 * 0.044715: "3 × 0.044715",
    1.0507009873554805: "SELU's scale", 1.6732632423543772: "SELU's α",
    1.0507009873554805 * 1.6732632423543772: "SELU's scale × α",
    torch.finfo(torch.float64).eps: "float64's machine epsilon", torch.finfo(torch.float32).eps: "float32's machine epsilon",
}
_FLOAT = re.compile(r"(?<![\w.])(\d+\.\d+(?:e[-+]?\d+)?|\d+e[-+]?\d+)")


def _constants(text: str) -> list[str]:
    """What each long constant in a statement is: a known one, or a fraction (`0.1111111111111111 = 1/9`)."""
    notes = []
    for literal in dict.fromkeys(_FLOAT.findall(text)):
        value = float(literal)
        known = _CONSTANTS.get(value)
        if known is None and len(literal.rstrip("0")) > 10:
            fraction = Fraction(value).limit_denominator(1000)
            known = f"{fraction}" if float(fraction) == value and fraction.denominator > 1 else None
        if known is not None:
            notes.append(f"{literal} = {known}")
    return notes


# Defaults torch fills in, which a statement may show though the user's line never wrote them:
# (the literal as printed, the argument that sets it, what it is).
_DEFAULTS = [
    ("-100", "ignore_index", "-100 is the default ignore_index: a target equal to it counts for nothing"),
    ("1e-05", "eps", "1e-05 is the default eps"),
]


def _defaults(node: fx.Node, text: str) -> list[str]:
    frame = last_frame(node.meta.get(DERIVED_FROM, node))
    written = frame.code if frame is not None else ""
    numbers = {float(n) for n in re.findall(r"\d+(?:\.\d*)?(?:e[-+]?\d+)?", written)}
    return [note for literal, argument, note in _DEFAULTS
            if re.search(rf"(?<![\w.]){re.escape(literal)}(?![\w.])", text)
            and argument not in written and abs(float(literal)) not in numbers]


def _summed_in_steps(nodes: list[fx.Node]) -> dict[fx.Node, fx.Node]:
    """A gradient summed in steps (`g = g + c`, each partial read by the next step alone): each
    step, and the partial the sum starts from (an incoming gradient, or a first contribution)."""
    first: dict[fx.Node, fx.Node] = {}
    for node in nodes:
        previous = node.args[0] if node.target is operator.add and node.args else None
        if (isinstance(previous, fx.Node) and len(previous.users) == 1
                and previous.meta.get(GRADIENT_OF) is not None
                and previous.meta.get(GRADIENT_OF) is node.meta.get(GRADIENT_OF)):
            first[node] = first.get(previous, previous)
    return first


def _accumulated_variables(nodes: list[fx.Node]) -> dict[fx.Node, fx.Node]:
    """A gradient summed in steps is printed as one variable: for each step, the node whose name
    it takes (the incoming gradient it starts from, else the finished sum)."""
    first = _summed_in_steps(nodes)
    finished = {start: node for node, start in first.items()}  # the last step of each chain wins
    named_after = {}
    for node, start in first.items():
        named_after[node] = named_after[start] = start if start.op == "placeholder" else finished[start]
    return named_after


def _display_names(nodes: list[fx.Node]) -> dict[fx.Node, str]:
    """The name each node is printed under (made unique as the statements claim them, after the
    inputs', the parameters' and the returned gradients'): an input's as the user spells it
    (`input`, which fx calls `input_1`), a parameter's path (`layer0_weight` for
    `getattr(self, '0').weight`), a gradient's `grad_<the name its value is printed under>`
    (`grad_mu`, where the graph's namespace, which never frees a name, has `grad_mu_1`)."""
    by_name = {node.name: node for node in nodes}
    returned = _returned(nodes)
    names: dict[fx.Node, str] = {}

    def name_of(node: fx.Node) -> str:
        if node not in names:
            names[node] = _display_name(node, node in returned, _gradient_of(node, by_name), name_of)
        return names[node]

    return {node: name_of(node) for node in nodes if node.op != "output"}


def _returned(nodes: list[fx.Node]) -> set[fx.Node]:
    output = next((node for node in nodes if node.op == "output"), None)
    return set(output.all_input_nodes) if output is not None else set()


def _gradient_of(node: fx.Node, by_name: dict[str, fx.Node]) -> fx.Node | None:
    """The value `node` is the gradient of, where it is among the nodes printed (a copied or
    pickled graph's meta holds a `Recorded` stand-in of it, of the same name)."""
    value = node.meta.get(GRADIENT_OF)
    return by_name.get(value.name) if value is not None else None


def _display_name(node: fx.Node, returned: bool, value: fx.Node | None, name_of: Callable[[fx.Node], str]) -> str:
    if node.op == "placeholder":
        return node.meta.get(ARGUMENT_NAME, node.name)
    if node.op == "get_attr":
        return _attribute_name(node.target)
    if value is not None and not returned:  # a returned gradient has the name asked for (`name_gradients`)
        return f"grad_{name_of(value)}"
    if node.target is getattr and not node.meta.get(USER_NAMED):  # numbered as printed: `transposed_1`
        return re.sub(r"_\d+$", "", node.name)
    return node.name


# Builtins the printer writes itself (`float('inf')`, `getattr(self, '0')`): no value may shadow them.
_PRINTED_BUILTINS = {"float", "getattr"}


def _reserve(namespace: _Namespace, name: str, node: fx.Node) -> None:
    """Claim `name` for `node` (made unique). fx's namespace refuses builtins' names, which it
    would then call `input_1`; an input the user called `input` keeps its name, since the code
    calls no builtin but those it prints itself."""
    if (node.op == "placeholder" and name in vars(builtins) and name not in _PRINTED_BUILTINS
            and not keyword.iskeyword(name) and name not in namespace._used_names):
        namespace._used_names.add(name)
        namespace._obj_to_name[node] = name
    else:
        namespace.create_name(name, node)


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
        self.wanted: dict[fx.Node, str] = {}  # see _display_names
        self.gradient_of: dict[fx.Node, fx.Node] = {}  # a gradient statement's value, named as printed
        # whether a value may be written inside its user's expression besides `_nests`'s reasons
        # (the execution printer forbids it across an in-place op)
        self.may_nest = lambda node, user: True

    def name_statement(self, node: fx.Node) -> None:
        """The variable a statement assigns: its own name, or that of the gradient it is a step
        of summing (`grad_a = grad_a + ...`)."""
        named_after = self.variables.get(node, node)
        value = self.gradient_of.get(named_after)
        wanted = f"grad_{self.names[value]}" if value in self.names else self.wanted.get(named_after, named_after.name)
        self.names[node] = self.namespace.create_name(wanted, named_after)

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
        if isinstance(obj, (torch._ops.OpOverloadPacket, torch._ops.OpOverload)):  # the training step's kernels
            qualified = obj._qualified_op_name if isinstance(obj, torch._ops.OpOverloadPacket) else obj.name()
            return self.torch_name("torch.ops." + qualified.replace("::", "."))
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
