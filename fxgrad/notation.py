"""A derived backward as math: `bwd.math()` in Unicode, `bwd.latex()` in LaTeX.

The notation is the one people derive gradients in by hand: `∂L/∂q = (∂L/∂x) k`, `⊙` for an
elementwise product, juxtaposition for a matrix product, `ᵀ`, `σ`, `rowsum` for a sum over the
last dim (softmax's Jacobian-vector product reads `S ⊙ (∂L/∂S − rowsum(∂L/∂S ⊙ S))`, no diag).
The user's names stand for the inputs and the forward values they named; other values used more
than once, or whose gradient is written, are named once, `T₁ = …`, as matrixcalculus.org does;
the rest is written inside the expression that uses it. An accumulated gradient is written as
its steps: `∂L/∂a ← ∂L/∂a + (∂L/∂o) vᵀ`.

It reads the graph and its nodes' meta and changes nothing. A forward value is written as the
canonical op it is (`node.meta["fxgrad_op"]`, `["fxgrad_args"]`), so that the values the
backward does not recompute (pruned from its graph) are written too; a backward node as the op
it runs. An op without a notation of its own is written as a function, `op(a, b)`.
"""

from __future__ import annotations

import html as html_text
import math
import operator
from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.fx as fx
import torch.nn.functional as F
from torch.fx.node import map_aggregate

from .canon import op_name
from .graph import FORWARD, GRADIENT_OF, USER_NAMED, Recorded

# Precedence of what an expression is, higher binding tighter.
_SUM, _PRODUCT, _UNARY, _POSTFIX, _ATOM = 1, 2, 3, 4, 5
_COMPARE = 0
# Ops written inside one another at most this deep; a deeper value is named.
_DEEPEST = 24

# One key per op, whatever the spelling: `a @ b`, `torch.matmul(a, b)` and the canonical op alike.
_KEYS: dict[Any, str] = {
    operator.add: "add", torch.add: "add", operator.sub: "sub", torch.sub: "sub",
    operator.mul: "mul", torch.mul: "mul", operator.truediv: "div", torch.div: "div",
    operator.neg: "neg", torch.neg: "neg", operator.matmul: "matmul", torch.matmul: "matmul",
    operator.pow: "pow", torch.pow: "pow", operator.getitem: "getitem",
    operator.gt: "gt", operator.lt: "lt", operator.ge: "ge", operator.le: "le", operator.eq: "eq",
    operator.ne: "ne", operator.and_: "and", operator.or_: "or", operator.invert: "not",
    torch.Tensor.logical_not: "not", torch.transpose: "transpose", torch.sigmoid: "sigmoid",
    F.softmax: "softmax", torch.softmax: "softmax",
}

_SUPERSCRIPTS = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")
_SUBSCRIPTS = str.maketrans("0123456789-", "₀₁₂₃₄₅₆₇₈₉₋")

# Functions LaTeX has an operator for; others are written \mathrm{name}.
_LATEX_FUNCTIONS = {"sin", "cos", "tan", "sinh", "cosh", "tanh", "exp", "log", "arcsin", "arccos", "arctan"}
_LATEX_ESCAPES = {c: "\\" + c for c in "_%#&${}"} | {c: "-" for c in "^~\\"}
_ARC = {"asin": "arcsin", "acos": "arccos", "atan": "arctan"}
# Ops that change only a value's layout or dtype, not its elements: the math is the value itself.
_SAME_VALUE = {"to", "float", "double", "half", "long", "detach", "contiguous", "clone", "expand", "expand_as",
               "unsqueeze", "type_as"}


class Unicode:
    """How each piece is written in Unicode text."""

    minus, times_scalar, hadamard, transpose, arrow, negation, ellipsis = "−", "·", " ⊙ ", "ᵀ", "←", "¬", "…"
    opening, closing = "(", ")"
    compare = {"gt": " > ", "lt": " < ", "ge": " ≥ ", "le": " ≤ ", "eq": " = ", "ne": " ≠ ", "and": " ∧ ", "or": " ∨ "}

    def name(self, name: str) -> str:
        return name

    def bracket(self, rendered: tuple[str, int], at_least: int) -> str:
        """An expression as an operand of an operation binding `at_least` this tightly."""
        text, precedence = rendered
        return text if precedence >= at_least else self.opening + text + self.closing

    def indexed(self, base: str, i: int) -> str:
        return f"{base}{str(i).translate(_SUBSCRIPTS)}"

    def gradient(self, of: str, long: bool) -> str:
        return f"∂L/∂{of}" if long else f"∂{of}"

    def gradient_precedence(self, long: bool) -> int:
        return _SUM if long else _ATOM  # (∂L/∂x) k: the fraction is bracketed in a product

    def function(self, name: str, args: list[str]) -> str:
        name = {"sigmoid": "σ"}.get(name, name)
        return f"{name}({', '.join(args)})"

    def power(self, base: str, exponent: Any) -> str:
        if isinstance(exponent, int) and not isinstance(exponent, bool):
            return base + str(exponent).translate(_SUPERSCRIPTS)
        return f"{base}^({exponent})"

    def sqrt(self, operand: str) -> str:
        return f"√{operand}"

    def fraction(self, numerator: tuple[str, int], denominator: tuple[str, int]) -> tuple[str, int]:
        return f"{self.bracket(numerator, _PRODUCT)} / {self.bracket(denominator, _UNARY)}", _PRODUCT

    def matmul(self, left: str, right: str) -> str:
        return f"{left} {right}"

    def abs(self, operand: str) -> str:
        return f"|{operand}|"

    def reduction(self, name: str, dims: str | None, operand: str) -> str:
        if dims is None:
            return f"{name}({operand})"
        return f"{name}{dims.translate(_SUBSCRIPTS)}({operand})"

    def number(self, x: Any) -> str:
        text = _number(x)
        return text.replace("-", self.minus) if text.startswith("-") else text

    def negated(self, operand: str) -> str:
        return f"{self.minus}{operand}"

    def lines(self, equations: list[tuple[str, str, str]]) -> str:
        return "\n".join(f"{lhs} {arrow} {rhs}" for lhs, arrow, rhs in equations)


class Latex(Unicode):
    """How each piece is written in LaTeX (math mode)."""

    minus, times_scalar, hadamard, transpose, arrow, negation, ellipsis = (
        "-", " \\cdot ", " \\odot ", "^{\\top}", "\\leftarrow", "\\neg ", "\\ldots")
    opening, closing = "\\left(", "\\right)"
    compare = {"gt": " > ", "lt": " < ", "ge": " \\geq ", "le": " \\leq ", "eq": " = ", "ne": " \\neq ",
               "and": " \\wedge ", "or": " \\vee "}

    def name(self, name: str) -> str:
        if len(name) == 1 and name.isalpha():
            return name
        return "\\mathrm{" + "".join(_LATEX_ESCAPES.get(c, c) for c in name) + "}"

    def indexed(self, base: str, i: int) -> str:
        return f"{base}_{{{i}}}"

    def gradient(self, of: str, long: bool) -> str:
        return f"\\frac{{\\partial L}}{{\\partial {of}}}" if long else f"\\partial {of}"

    def gradient_precedence(self, long: bool) -> int:
        return _POSTFIX  # a fraction is an operand as it is, but bracketed to be transposed

    def function(self, name: str, args: list[str]) -> str:
        name = _ARC.get(name, name)
        if name == "sigmoid":
            head = "\\sigma"
        elif name in _LATEX_FUNCTIONS:
            head = f"\\{name}"
        else:
            head = self.name(name) if len(name) > 1 else name
        return f"{head}\\left({', '.join(args)}\\right)"

    def power(self, base: str, exponent: Any) -> str:
        return f"{{{base}}}^{{{exponent}}}"

    def sqrt(self, operand: str) -> str:
        return f"\\sqrt{{{operand}}}"

    def fraction(self, numerator: tuple[str, int], denominator: tuple[str, int]) -> tuple[str, int]:
        return f"\\frac{{{numerator[0]}}}{{{denominator[0]}}}", _ATOM

    def matmul(self, left: str, right: str) -> str:
        return f"{left} \\, {right}"

    def abs(self, operand: str) -> str:
        return f"\\left|{operand}\\right|"

    def number(self, x: Any) -> str:
        return _number(x).replace("∞", "\\infty")

    def reduction(self, name: str, dims: str | None, operand: str) -> str:
        head = "\\sum" if name == "Σ" else self.name(name)
        return f"{head}{'' if dims is None else '_{' + dims + '}'}\\left({operand}\\right)"

    def lines(self, equations: list[tuple[str, str, str]]) -> str:
        body = " \\\\\n".join(f"{lhs} &{'=' if arrow == '=' else arrow} {rhs}" for lhs, arrow, rhs in equations)
        return "\\begin{aligned}\n" + body + "\n\\end{aligned}"


def _number(x: Any) -> str:
    if isinstance(x, float):
        if math.isinf(x):
            return "∞" if x > 0 else "-∞"
        if x.is_integer() and abs(x) < 1e15:
            return str(int(x))
        return f"{x:.6g}"
    return str(x)


@dataclass
class Equation:
    """`lhs = rhs` (or `lhs ← rhs`, a step of summing a gradient) for the value of `node`."""

    node: fx.Node
    lhs: str
    arrow: str
    rhs: str


class Notation:
    """Writes the nodes of a derived graph as math, in `style`; `long` gradients are written
    `∂L/∂x`, short ones `∂x`."""

    def __init__(self, graph: fx.Graph, grad_names: list[str], style: Unicode, long: bool = True):
        self.graph, self.style, self.long = graph, style, long
        self.nodes = list(graph.nodes)
        self.live = set(self.nodes)
        self.by_name = {node.name: node for node in self.nodes}
        self.symbols: dict[Any, str] = {}  # a named value's symbol, by node
        self.steps: set[fx.Node] = set()  # the gradients written as a step of a sum: `∂a ← ∂a + …`
        self._count = 0
        self.returned = self._returned(grad_names)
        self._name_values()
        self.order = postorder([*self.nodes, *self.symbols], self.arguments)
        self._name_deep_nesting()
        self.position = {node: i for i, node in enumerate(self.order)}

    # -- names --------------------------------------------------------------------------------

    def _returned(self, grad_names: list[str]) -> list[tuple[str, Any]]:
        output = next(node for node in self.nodes if node.op == "output")
        results = output.args[0] if isinstance(output.args[0], (tuple, list)) else (output.args[0],)
        return [(name[len("grad_"):], node) for name, node in zip(grad_names, results[-len(grad_names):])
                if node is not None] if grad_names else []

    def gradient_of(self, node: fx.Node) -> Any:
        """The value `node` is the gradient of. A copy of a backward (deepcopy, pickle) points
        to values of the graph it was copied from, or to their `Recorded` names: those are
        this graph's nodes of the same name, where it has them."""
        return self.resolve(node.meta.get(GRADIENT_OF))

    def resolve(self, ref: Any) -> Any:
        if not isinstance(ref, (fx.Node, Recorded)) or ref in self.live:
            return ref
        return self.by_name.get(ref.name, ref)

    def returned_symbol(self, name: str, node: Any) -> str:
        """`∂L/∂x` for a returned gradient: of the input or parameter as the math names it (the
        graph's name for it), else as `grad_names` does."""
        of = self.gradient_of(node) if isinstance(node, fx.Node) else None
        if isinstance(of, fx.Node) and of.op in ("placeholder", "get_attr"):
            return self.style.gradient(self.symbol_of(of), self.long)
        return self.style.gradient(self.style.name(name), self.long)

    def _fresh(self) -> str:
        self._count += 1
        return self.style.indexed("T", self._count)

    def _name_values(self) -> None:
        gradients_of = [self.gradient_of(node) for node in self.nodes if node.meta.get(GRADIENT_OF) is not None]
        for node in self.forward_definitions(gradients_of):
            self.symbols[node] = self.style.name(node.name) if node.meta.get(USER_NAMED) else self._fresh()
        returned = {}
        for name, node in self.returned:
            returned.setdefault(node, self.returned_symbol(name, node))
        written = {}  # the gradient symbols given so far, to the node that holds each
        for node in self.nodes:
            of = self.gradient_of(node)
            if node.op == "placeholder" and of is not None:  # an incoming gradient, written as ∂L/∂<output>
                written[self.style.gradient(self.symbol_of(of), self.long)] = node
            if node.op in ("output", "placeholder", "get_attr") or node in self.symbols:
                continue  # (an incoming gradient returned as it is gets an equation of its own)
            symbol = returned.get(node)
            if symbol is None and of is not None:
                symbol = self.style.gradient(self.symbol_of(of), self.long)
            if symbol is not None and symbol in written:
                previous = written[symbol]
                is_step = (_key(node) == "add" and node.args and node.args[0] is previous
                           and len(previous.users) == 1)
                if is_step:
                    self.steps.add(node)
                else:
                    symbol = None
            if symbol is None and len(node.users) > 1:
                symbol = self._fresh()
            if symbol is not None:
                self.symbols[node] = symbol
                written[symbol] = node
        self.gradient_symbols = set(written)

    def forward_definitions(self, gradients_of: list[Any]) -> list[fx.Node]:
        """The forward values written as equations of their own, in the forward's order: those
        the user named, used more than once, or whose gradient is written (`∂L/∂T₁` needs T₁)."""
        wanted = {of for of in gradients_of if isinstance(of, fx.Node) and _is_computed(of)}
        for node in self.nodes:
            if node.meta.get(FORWARD) and _is_computed(node) and (node.meta.get(USER_NAMED) or len(node.users) > 1):
                wanted.add(node)
        return [node for node in postorder([*self.nodes, *wanted], self.arguments) if node in wanted]

    def arguments(self, node: fx.Node) -> list[fx.Node]:
        """The nodes `node` is computed from, as it is written (a forward value: its canonical op's)."""
        return [arg for arg in map(self.resolve, nodes_in(computed(node, self.live)[1])) if isinstance(arg, fx.Node)]

    def _name_deep_nesting(self) -> None:
        """Name a value whose expression would nest deeper than `_DEEPEST` (a chain of ops on one
        line, none named): the text stays readable, and writing it recursion-safe."""
        depth: dict[fx.Node, int] = {}
        for node in self.order:
            d = 0
            if node not in self.symbols and _is_computed(node):
                d = 1 + max((depth.get(arg, 0) for arg in self.arguments(node)), default=0)
                if d > _DEEPEST:
                    self.symbols[node], d = self._fresh(), 0
            depth[node] = d

    def symbol_of(self, node: Any) -> str:
        """The symbol of a forward value: its name, or the one given here."""
        if node in self.symbols:
            return self.symbols[node]
        if isinstance(node, fx.Node) and node.op == "get_attr":
            return self.style.name(node.target)
        return self.style.name(getattr(node, "name", str(node)))

    # -- equations ----------------------------------------------------------------------------

    def equations(self) -> list[Equation]:
        """The forward values named, then the gradients in the order they are computed."""
        forward = sorted((node for node in self.symbols if node.meta.get(FORWARD) and _is_computed(node)),
                         key=self.position.__getitem__)
        backward = [node for node in self.nodes if node in self.symbols and node not in forward
                    and node.op not in ("placeholder", "get_attr")]
        found = [self.equation(node) for node in forward + backward]
        for name, node in self.returned:  # a gradient that is another value (`∂L/∂x = ∂L/∂out`), or zero
            symbol = self.returned_symbol(name, node)
            if self.symbols.get(node) != symbol:
                found.append(Equation(node, symbol, "=", self.render(node)[0]))
        return found

    def equation(self, node: fx.Node) -> Equation:
        return Equation(node, self.symbols[node], self.style.arrow if node in self.steps else "=",
                        self.expression(node)[0])

    def text(self) -> str:
        return self.style.lines([(e.lhs, e.arrow, e.rhs) for e in self.equations()])

    # -- expressions --------------------------------------------------------------------------

    def render(self, arg: Any) -> tuple[str, int]:
        """An argument: a named value by its symbol, another node by its expression."""
        style, arg = self.style, self.resolve(arg)
        if isinstance(arg, fx.Node):
            if arg in self.symbols:
                return self.symbols[arg], self._precedence_of_symbol(arg)
            if arg.op == "placeholder":
                of = self.gradient_of(arg)
                if of is not None:  # an incoming gradient
                    return style.gradient(self.symbol_of(of), self.long), style.gradient_precedence(self.long)
                return style.name(arg.name), _ATOM
            if arg.op == "get_attr":
                return style.name(arg.target), _ATOM
            return self.expression(arg)
        if isinstance(arg, bool) or arg is None:
            return str(arg), _ATOM
        if isinstance(arg, (int, float)):
            return style.number(arg), _UNARY if arg < 0 else _ATOM
        if isinstance(arg, (tuple, list)):
            return f"({', '.join(self.render(a)[0] for a in arg)})", _ATOM
        if isinstance(arg, torch.dtype):
            return style.name(str(arg).removeprefix("torch.")), _ATOM
        if isinstance(arg, slice):
            return ":".join("" if p is None else self.render(p)[0] for p in (arg.start, arg.stop)), _ATOM
        return style.name(str(arg)), _ATOM

    def _precedence_of_symbol(self, node: fx.Node) -> int:
        return self.style.gradient_precedence(self.long) if self.symbols[node] in self.gradient_symbols else _ATOM

    def operand(self, arg: Any, at_least: int) -> str:
        return self.style.bracket(self.render(arg), at_least)

    def expression(self, node: fx.Node) -> tuple[str, int]:
        """What `node` computes, with the precedence of its outermost operation."""
        key, args, kwargs = computed(node, self.live)
        if key is None:
            return self.style.name(node.name), _ATOM
        write = _WRITERS.get(key)
        if write is not None:
            try:
                written = write(self, args, kwargs)
            except (IndexError, TypeError, ValueError):  # a call of another form: written as a function
                written = None
            if written is not None:
                return written
        if key in _SAME_VALUE and args:
            return self.render(args[0])
        return self.function(key, args, kwargs)

    def function(self, key: str, args: tuple, kwargs: dict) -> tuple[str, int]:
        """The notation of last resort: `name(a, b, k=v)`."""
        parts = [self.render(a)[0] for a in args] + [f"{k}={self.render(v)[0]}" for k, v in kwargs.items()]
        return self.style.function(key, parts), _ATOM


def postorder(roots: list[fx.Node], children: Callable[[fx.Node], list[fx.Node]]) -> list[fx.Node]:
    """Every node reachable from `roots` through `children`, each after its children; without
    recursion, since graphs may be deep."""
    order, seen = [], set()
    for root in roots:
        if root in seen:
            continue
        seen.add(root)
        stack = [(root, iter(children(root)))]
        while stack:
            node, pending = stack[-1]
            child = next((c for c in pending if c not in seen), None)
            if child is None:
                stack.pop()
                order.append(node)
            else:
                seen.add(child)
                stack.append((child, iter(children(child))))
    return order


def _is_computed(node: Any) -> bool:
    return isinstance(node, fx.Node) and node.op in ("call_function", "call_method")


def nodes_in(args: Any) -> list[fx.Node]:
    """The nodes among `args`, into lists, tuples and dicts."""
    found: list[fx.Node] = []
    map_aggregate(args, lambda a: found.append(a) if isinstance(a, fx.Node) else None)
    return found


def _key(node: fx.Node) -> str:
    return _target_key(node.op, node.target, node.args)


def _target_key(kind: str, target: Any, args: tuple) -> str:
    if kind == "call_method":
        return target
    if target is getattr:
        return str(args[1])
    if target in _KEYS:
        return _KEYS[target]
    return op_name(target).rsplit(".", 1)[-1]


def computed(node: fx.Node, live: set) -> tuple[str | None, tuple, dict]:
    """(op key, arguments, keywords) of what `node` computes: for a forward value, its canonical
    op (whether or not the backward recomputes it); else the op its node runs (key None: a node
    pruned from `live`, known by its name only)."""
    if node.meta.get(FORWARD) and "fxgrad_op" in node.meta:
        op, args = node.meta["fxgrad_op"], node.meta["fxgrad_args"]
        return _target_key("call_function", op, args), tuple(args), {}
    if node not in live and node.op not in ("placeholder", "get_attr"):
        return None, (), {}  # a value of another graph, known by name only
    args = node.args[:1] if node.target is getattr else node.args
    return _key(node), tuple(args), dict(node.kwargs)


# ---------------------------------------------------------------------------------------------
# The ops with a notation of their own. Each writer returns (text, precedence), or None to be
# written as a function.


def _is_scalar(arg: Any) -> bool:
    if isinstance(arg, fx.Node):
        val = arg.meta.get("val")
        return not isinstance(val, torch.Tensor) or val.ndim == 0
    return isinstance(arg, (int, float))


def _add(n: Notation, args, kwargs):
    if len(args) != 2 or kwargs:
        return None
    left, right = args
    if isinstance(right, (int, float)) and not isinstance(right, bool) and right < 0:
        return f"{n.operand(left, _SUM)} {n.style.minus} {n.style.number(-right)}", _SUM
    return f"{n.operand(left, _SUM)} + {n.operand(right, _SUM)}", _SUM


def _sub(n: Notation, args, kwargs):
    if len(args) != 2 or kwargs:
        return None
    return f"{n.operand(args[0], _SUM)} {n.style.minus} {n.operand(args[1], _SUM + 1)}", _SUM


def _mul(n: Notation, args, kwargs):
    if len(args) != 2 or kwargs:
        return None
    left, right = args
    if left is right and isinstance(left, fx.Node):  # a ⊙ a
        return n.style.power(n.operand(left, _ATOM), 2), _POSTFIX
    if _is_scalar(right) and not _is_scalar(left) and isinstance(right, (int, float)):
        left, right = right, left  # 2·a rather than a·2
    symbol = n.style.times_scalar if _is_scalar(left) or _is_scalar(right) else n.style.hadamard
    return f"{n.operand(left, _PRODUCT)}{symbol}{n.operand(right, _PRODUCT + 1)}", _PRODUCT


def _div(n: Notation, args, kwargs):
    if len(args) != 2 or kwargs:
        return None
    return n.style.fraction(n.render(args[0]), n.render(args[1]))


def _neg(n: Notation, args, kwargs):
    return n.style.negated(n.operand(args[0], _UNARY)), _UNARY


def _matmul(n: Notation, args, kwargs):
    return n.style.matmul(n.operand(args[0], _PRODUCT), n.operand(args[1], _PRODUCT + 1)), _PRODUCT


def _pow(n: Notation, args, kwargs):
    base, exponent = args
    if exponent == 0.5:
        return n.style.sqrt(n.operand(base, _ATOM)), _ATOM
    if isinstance(exponent, float) and exponent.is_integer():
        exponent = int(exponent)
    return n.style.power(n.operand(base, _ATOM), exponent if isinstance(exponent, (int, float))
                         else n.render(exponent)[0]), _POSTFIX


def _transposed(n: Notation, operand: Any):
    return n.operand(operand, _ATOM) + n.style.transpose, _POSTFIX


def _transpose(n: Notation, args, kwargs):
    if len(args) != 3 or not isinstance(args[0], fx.Node) or not isinstance(args[0].meta.get("val"), torch.Tensor):
        return None
    ndim = args[0].meta["val"].ndim
    if ndim >= 2 and {args[1] % ndim, args[2] % ndim} == {ndim - 2, ndim - 1}:
        return _transposed(n, args[0])
    return None


def _compare(key: str):
    def write(n: Notation, args, kwargs):
        if len(args) != 2 or kwargs:
            return None
        return f"{n.operand(args[0], _SUM)}{n.style.compare[key]}{n.operand(args[1], _SUM)}", _COMPARE

    return write


def _not(n: Notation, args, kwargs):
    return f"{n.style.negation}{n.operand(args[0], _ATOM)}", _UNARY


def _reduction(name: str, last: str):
    """`Σ(x)` over everything, `rowsum(x)` over the last dim, `Σ₀(x)` over others."""

    def write(n: Notation, args, kwargs):
        if not args or not isinstance(args[0], fx.Node):
            return None
        dim = kwargs.get("dim", args[1] if len(args) > 1 else None)
        val = args[0].meta.get("val")
        if dim is None:
            return n.style.reduction(name, None, n.render(args[0])[0]), _ATOM
        dims = dim if isinstance(dim, (tuple, list)) else (dim,)
        if not all(isinstance(d, int) for d in dims) or not isinstance(val, torch.Tensor):
            return None
        ndim = max(val.ndim, 1)
        if len(dims) == 1 and dims[0] % ndim == ndim - 1 and ndim > 1:
            return n.style.reduction(last, None, n.render(args[0])[0]), _ATOM
        return n.style.reduction(name, ",".join(str(d) for d in dims), n.render(args[0])[0]), _ATOM

    return write


def _softmax(name: str):
    def write(n: Notation, args, kwargs):
        dim = kwargs.get("dim", args[1] if len(args) > 1 else None)
        val = args[0].meta.get("val") if isinstance(args[0], fx.Node) else None
        if isinstance(dim, int) and isinstance(val, torch.Tensor) and dim % max(val.ndim, 1) == max(val.ndim, 1) - 1:
            return n.style.function(name, [n.render(args[0])[0]]), _ATOM  # along rows, as it is written by hand
        return None

    return write


def _sqrt(n: Notation, args, kwargs):
    return n.style.sqrt(n.operand(args[0], _ATOM)), _ATOM


def _rsqrt(n: Notation, args, kwargs):
    return n.style.fraction(("1", _ATOM), (n.style.sqrt(n.operand(args[0], _ATOM)), _ATOM))


def _abs(n: Notation, args, kwargs):
    return n.style.abs(n.render(args[0])[0]), _ATOM


def _filled(fill: str):
    def write(n: Notation, args, kwargs):
        return fill, _ATOM

    return write


def _full_like(n: Notation, args, kwargs):
    return n.render(args[1]) if len(args) > 1 else None


def _getitem(n: Notation, args, kwargs):
    index = args[1]
    parts = index if isinstance(index, tuple) else (index,)
    text = ", ".join(n.style.ellipsis if p is Ellipsis else n.render(p)[0] for p in parts)
    return f"{n.operand(args[0], _ATOM)}[{text}]", _ATOM


_WRITERS: dict[str, Callable] = {
    "add": _add, "sub": _sub, "mul": _mul, "div": _div, "neg": _neg, "matmul": _matmul, "pow": _pow,
    "mT": lambda n, args, kwargs: _transposed(n, args[0]),
    "T": lambda n, args, kwargs: _transposed(n, args[0]),
    "t": lambda n, args, kwargs: _transposed(n, args[0]),
    "transpose": _transpose,
    **{key: _compare(key) for key in ("gt", "lt", "ge", "le", "eq", "ne", "and", "or")},
    "not": _not, "logical_not": _not,
    "sum": _reduction("Σ", "rowsum"), "mean": _reduction("mean", "rowmean"),
    "softmax": _softmax("softmax"), "log_softmax": _softmax("log_softmax"),
    "sqrt": _sqrt, "rsqrt": _rsqrt, "abs": _abs, "square": lambda n, args, kwargs: _mul(n, (args[0], args[0]), {}),
    "zeros_like": _filled("0"), "ones_like": _filled("1"), "full_like": _full_like,
    "getitem": _getitem,
}


def math_text(graph: fx.Graph, grad_names: list[str]) -> str:
    """The gradients of a derived graph in Unicode math, one equation a line."""
    return Notation(graph, grad_names, Unicode()).text()


def latex_text(graph: fx.Graph, grad_names: list[str]) -> str:
    """The gradients of a derived graph in LaTeX: an `aligned` block, one equation a row."""
    return Notation(graph, grad_names, Latex()).text()


def html(code: str, latex: str) -> str:
    """A backward as a notebook shows it: its code, highlighted (with pygments, where it is
    installed), above its math (for MathJax)."""
    try:
        from pygments import highlight
        from pygments.formatters import HtmlFormatter
        from pygments.lexers import PythonLexer
    except ImportError:
        shown = f"<pre><code>{html_text.escape(code)}</code></pre>"
    else:
        shown = highlight(code, PythonLexer(), HtmlFormatter(noclasses=True))
    return f"<div>{shown}<div>$${html_text.escape(latex)}$$</div></div>"
