"""`fxgrad.explain`: a derived backward told step by step, as a derivation by hand goes.

It walks the forward in reverse, from the outputs' gradients to the inputs'. For each statement
of the user's function on the gradient's path: its source line; each canonical op on it, written
as math with its shape; the rule applied (its `math`, and where it lives: `rules/linalg.py:matmul`);
the gradients that rule gives, in the notation of `fxgrad.notation` (`∂q = ∂x k`); a note where
a value is used several times and its gradients add up, or was broadcast and its gradient is
summed back (`shapes.fit_to` marks those sums, `graph.BROADCAST_SUM`); and the lines of the
backward's code the statement produced.

It reads a derived graph and the meta the pipeline leaves on its nodes (which forward node each
backward node was derived from, which value each gradient is of, each forward value's
canonical op and arguments, pruned or not), and changes nothing.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch
import torch.fx as fx

from .emit import _provenance as provenance, printout  # (the `# from` line of the code)
from .errors import InputError, last_frame
from .graph import BROADCAST_SUM, DERIVED_FROM, FORWARD, GRADIENT_OF, carries_gradient
from .notation import Notation, Unicode, postorder
from .rules import MATH, RULES

_TIMES = {2: "twice", 3: "three times"}


def explain(fn: Callable, example_inputs: Sequence[Any], kwargs: dict[str, Any] | None = None,
            **options: Any) -> "Explanation":
    """Derive the backward of `fn` (as `fxgrad.derive`, with the same options) and explain it
    step by step; `print` the result, or show it in a notebook."""
    from .api import derive

    return Explanation(derive(fn, example_inputs, kwargs, **options))


@dataclass
class Op:
    """One canonical op of a statement: its math, its value's shape, the rule applied, and
    the gradients and notes it gives."""

    forward: str
    shape: str
    rule: str
    where: str
    equations: list[tuple[str, str]] = field(default_factory=list)  # (equation, shape)
    notes: list[str] = field(default_factory=list)


@dataclass
class Step:
    """One statement of the user's function, walked back: its ops, last first, and its code."""

    source: str
    ops: list[Op]
    code: list[str]


class Explanation:
    """A derivation step by step: `str()` is the text, `steps` its parts; in a notebook it
    displays as the text."""

    def __init__(self, bwd: fx.GraphModule):
        graph = bwd.graph
        if any(not isinstance(node.meta[DERIVED_FROM], fx.Node) or node.meta[DERIVED_FROM].graph is not graph
               for node in graph.nodes if DERIVED_FROM in node.meta):
            raise InputError("this backward is a copy (pickled or deep-copied), which keeps its code but not the "
                             "forward it was derived from: explain the function, fxgrad.explain(fn, inputs)")
        self.notation = Notation(graph, bwd.grad_names, Unicode(), long=False)
        walk = _Walk(graph, self.notation, [name for name, _ in self.notation.returned])
        self.function = walk.function
        self.outputs, self.inputs = walk.output_symbols, walk.input_symbols
        self.steps = walk.steps()

    def __str__(self) -> str:
        lines = [f"The backward of {self.function}, step by step: from the gradients of its outputs "
                 f"({', '.join('∂' + s for s in self.outputs)}) back to its inputs ({', '.join(self.inputs)}).", ""]
        for step in self.steps:
            lines.append(step.source)
            for op in step.ops:
                lines.append(f"  {op.forward}".ljust(48) + f"  {op.shape}")
                lines.append(f"    rule  {op.rule}   ({op.where})")
                for equation, shape in op.equations:
                    lines.append(f"    {equation}".ljust(48) + f"  {shape}")
                lines.extend(f"    ({note})" for note in op.notes)
            if step.code:
                lines.append("  code:")
                lines.extend(f"    {line}" for line in step.code)
            lines.append("")
        return "\n".join(lines).rstrip() + "\n"

    __repr__ = __str__

    def _repr_html_(self) -> str:
        return f"<pre>{html.escape(str(self))}</pre>"


class _Walk:
    """The forward values on the gradient's path, found from the graph's meta."""

    def __init__(self, graph: fx.Graph, notation: Notation, differentiated: list[str]):
        self.graph, self.notation = graph, notation
        self.symbols = getattr(graph._codegen, "shapes", None)  # the user's symbols (`fxgrad.shaped`), if any
        self.nodes = list(graph.nodes)
        self.outputs = [node.meta[GRADIENT_OF] for node in self.nodes
                        if node.op == "placeholder" and isinstance(node.meta.get(GRADIENT_OF), fx.Node)]
        self.order = postorder(self.outputs, notation.arguments)  # an order that computes them
        self.users: dict[fx.Node, list[fx.Node]] = {}
        for user in self.order:
            for arg in notation.arguments(user):
                self.users.setdefault(arg, []).append(user)
        gradients_of = {node.meta.get(GRADIENT_OF) for node in self.nodes}
        self.leaves = {node for node in self.order if node.op in ("placeholder", "get_attr")
                       and (node in gradients_of or node.name in differentiated or node.target in differentiated)}
        self.on_path = self._on_path()
        self.uses = self._uses()
        frame = next((last_frame(node) for node in self.order if last_frame(node) is not None), None)
        self.function = frame.func if frame is not None else "the function"
        self.output_symbols = [notation.symbol_of(out) for out in self.outputs]
        self.input_symbols = [notation.symbol_of(leaf) for leaf in self.nodes if leaf in self.leaves]

    def _on_path(self) -> set[fx.Node]:
        """The values computed from a differentiated leaf that an output is computed from, on a
        path without `detach()` (a `no_grad` region's values are detached): as `reverse` walks."""
        depends = set(self.leaves)
        for node in self.order:
            if node.meta.get("fxgrad_op") is torch.detach:
                continue
            if carries_gradient(node.meta.get("val")) and any(arg in depends for arg in self.notation.arguments(node)):
                depends.add(node)
        reaches = set(self.outputs)
        for node in reversed(self.order):
            if any(user in reaches for user in self.users.get(node, [])):
                reaches.add(node)
        return {node for node in depends & reaches if node not in self.leaves}

    def _uses(self) -> dict[fx.Node, int]:
        """How many times each value is read on the gradient's path (an output counts once)."""
        uses = {node: sum(1 for user in self.users.get(node, []) if user in self.on_path) for node in self.order}
        for out in self.outputs:
            uses[out] = uses.get(out, 0) + 1
        return uses

    def steps(self) -> list[Step]:
        walked = [node for node in reversed(self.order) if node in self.on_path]
        groups: list[tuple[Any, list[fx.Node]]] = []
        for node in walked:
            key = _statement(node)
            if groups and groups[-1][0] == key:
                groups[-1][1].append(node)
            else:
                groups.append((key, [node]))
        code = printout(self.graph).statements
        return [Step(provenance(nodes[0]) or "(no source line recorded)", [self.op(node) for node in nodes],
                     [text for node, text in code if not node.meta.get(FORWARD)
                      and node.meta.get(DERIVED_FROM) in nodes])
                for _, nodes in groups]

    def shape(self, val: Any) -> str:
        """A value's shape in the user's symbols where the backward prints them (`S×d`), else in numbers."""
        in_symbols = self.symbols(val) if self.symbols is not None else None
        return _shape(val) if in_symbols is None else in_symbols

    def op(self, node: fx.Node) -> Op:
        notation = self.notation
        canonical = node.meta.get("fxgrad_op")
        rule = RULES.get(canonical)
        forward = notation.expression(node)[0]
        if node in notation.symbols:
            forward = f"{notation.symbols[node]} = {forward}"
        op = Op(forward, self.shape(node.meta.get("val")), MATH.get(canonical, "(no math recorded)"), _where(rule))
        derived = [n for n in self.nodes if n.meta.get(DERIVED_FROM) is node and not n.meta.get(FORWARD)]
        for n in derived:
            if n in notation.symbols and n.op not in ("placeholder", "get_attr"):
                equation = notation.equation(n)
                op.equations.append((f"{equation.lhs} {equation.arrow} {equation.rhs}", self.shape(n.meta.get("val"))))
                op.notes.extend(self._accumulation(n))
            if BROADCAST_SUM in n.meta:
                op.notes.append(self._broadcast(n))
        return op

    def _accumulation(self, node: fx.Node) -> list[str]:
        """A note where the gradient of a value read several times is summed."""
        of = node.meta.get(GRADIENT_OF)
        if of is None or self.uses.get(of, 0) < 2 or not _sums(node):
            return []
        times = _TIMES.get(self.uses[of], f"{self.uses[of]} times")
        return [f"{self.notation.symbol_of(of)} is used {times}: the gradients of its uses add up"]

    def _broadcast(self, node: fx.Node) -> str:
        dims = node.meta[BROADCAST_SUM]
        of = node.meta.get(GRADIENT_OF) or next((u.meta.get(GRADIENT_OF) for u in node.users
                                                  if u.meta.get(GRADIENT_OF) is not None), None)
        what = f"{self.notation.symbol_of(of)} was broadcast" if of is not None else "its operand was broadcast"
        return f"summed over dim{'s' if len(dims) > 1 else ''} {', '.join(map(str, dims))}: {what}"


def _sums(node: fx.Node) -> bool:
    return node.op == "call_function" and getattr(node.target, "__name__", "") == "add"


def _statement(node: fx.Node) -> Any:
    frame = last_frame(node)
    return None if frame is None else (frame.file, frame.statement)


def _shape(val: Any) -> str:
    """`2×3` for a tensor's shape, `scalar` for a 0-d one."""
    if isinstance(val, torch.Tensor):
        return "×".join(str(s) for s in val.shape) if val.ndim else "scalar"
    if isinstance(val, (tuple, list)):
        return ", ".join(_shape(v) for v in val)
    return ""


def _where(rule: Callable | None) -> str:
    """`rules/linalg.py:matmul`, where a rule is written."""
    if rule is None:
        return "(no rule)"
    module = rule.__module__.removeprefix("fxgrad.").replace(".", "/")
    return f"{module}.py:{rule.__qualname__}"
