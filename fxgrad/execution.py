"""Execution passes: the graphs `fxgrad.function` runs, rewritten to spend less time and memory.

`derive`'s printout is the math, written to be read. A training step runs the same graph with
changes that compute the same values, as torch's own kernels compute them: only where values
live and how many kernels run change:

- `fuse_linear` writes `x @ w.mT + b` as `F.linear(x, w, b)`, one addmm, as torch's linear runs.

- `reinplace` writes an elementwise op into one of its operands where that operand is a fresh
  intermediate (made by an op that allocates, viewed by nothing) read by nothing after it:
  `a * b` becomes `a.mul_(b)`, `torch.sigmoid(a)` becomes `a.sigmoid_()`. torch's own pass
  (`torch.fx.passes.reinplace`) works on functionalised ATen graphs with fake-tensor metadata;
  these graphs are torch-level, so the pass is written for them, in the order the code runs.
- `ExecutionCodeGen` prints the graph as `ReadableCodeGen` does, and deletes each variable after
  the statement that reads it last, in the order the printed code runs (a value written inside
  the expression of its user is evaluated there, not at its place in the graph), so that its
  memory goes back to the allocator at once, as eager autograd frees its intermediates. A value
  is never written inside an expression across an in-place op, so that every read of an
  operand that is overwritten runs before the write.

Both keep the graph an ordinary GraphModule: `fxgrad.function(...).partition_for(...)` shows
the code that runs. A backward differentiated in turn (`create_graph`), and `compile=True`,
whose compiler plans memory itself, use the functional graphs.
"""

from __future__ import annotations

import operator
from typing import Any, Callable

import torch
import torch.fx as fx
import torch.nn.functional as F
from torch.fx.graph import PythonCode

from .canon.pieces import item
from .canon.registry import OPS
from .emit import ReadableCodeGen, _lay_out, _Printer
from .graph import remove_dead_code

# Elementwise ops and the in-place method each is written as, on its first operand.
_IN_PLACE_BINARY = {operator.add: "add_", operator.sub: "sub_", operator.mul: "mul_",
                    operator.truediv: "div_", torch.add: "add_", torch.sub: "sub_",
                    torch.mul: "mul_", torch.div: "div_"}
_COMMUTATIVE = {operator.add, operator.mul, torch.add, torch.mul}
_IN_PLACE_UNARY = {torch.sigmoid: "sigmoid_", torch.tanh: "tanh_", torch.exp: "exp_", torch.erf: "erf_",
                   torch.sqrt: "sqrt_", torch.rsqrt: "rsqrt_", torch.neg: "neg_", operator.neg: "neg_",
                   torch.reciprocal: "reciprocal_"}
# Ops whose result is a new tensor, never a view of an argument: a value they make may be
# overwritten once nothing reads it any more.
_ALLOCATING = set(_IN_PLACE_BINARY) | set(_IN_PLACE_UNARY) | {
    operator.matmul, torch.matmul, operator.pow, torch.pow, torch.special.ndtr,
    torch.nn.functional.silu, torch.nn.functional.gelu, torch.nn.functional.linear, torch.addmm,
    torch.zeros_like, torch.ones_like, torch.full_like,
}
# Tensor methods written in place on the tensor they are called on (cross-entropy's one-hot
# gradient, `softmax.scatter_add(...)`), and the methods whose result is a new tensor.
_IN_PLACE_METHOD = {"scatter_add": "scatter_add_"}
_IN_PLACE_METHODS = set(_IN_PLACE_BINARY.values()) | set(_IN_PLACE_UNARY.values()) | set(_IN_PLACE_METHOD.values())
_ALLOCATING_METHODS = _IN_PLACE_METHODS | set(_IN_PLACE_METHOD) | {"softmax", "log_softmax"}


def prepare(module: fx.GraphModule, boxed: bool = False) -> fx.GraphModule:
    """A copy of `module` that computes the same values with the execution passes applied.
    `boxed`: it takes its arguments in one list, which it empties, so that it holds the only
    reference to each and frees it after its last use (a backward's saved values)."""
    graph = _copied(module.graph)
    fuse_linear(graph)
    reinplace(graph)
    graph.set_codegen(ExecutionCodeGen(boxed))
    prepared = fx.GraphModule(module, graph, class_name=type(module).__name__)
    prepared.meta.update(module.meta)
    for hook in module._forward_pre_hooks.values():  # reading its state by name on each call (`read_live`)
        prepared.register_forward_pre_hook(hook)
    return prepared


def fuse_linear(graph: fx.Graph) -> None:
    """`x @ w.mT + b` as `F.linear(x, w, b)`, where nothing else reads the product: one addmm,
    the bias added inside the product, as torch's linear computes it."""
    for node in list(graph.nodes):
        if not (_calls(node, operator.add, torch.add) and len(node.args) == 2 and not node.kwargs):
            continue
        for product, bias in (node.args, node.args[::-1]):
            if not (_calls(product, operator.matmul, torch.matmul) and len(product.users) == 1
                    and isinstance(bias, fx.Node)):
                continue
            input, transposed = product.args
            if not (isinstance(transposed, fx.Node) and transposed.op == "call_function"
                    and transposed.target is getattr and transposed.args[1] == "mT"):
                continue
            weight = transposed.args[0]
            w, b, x, out = (value.meta.get("val") for value in (weight, bias, input, node))
            if (all(isinstance(t, torch.Tensor) for t in (w, b, x, out)) and w.ndim == 2 and b.shape == w.shape[:1]
                    and len({t.dtype for t in (w, b, x, out)}) == 1 and len({t.device for t in (w, b, x)}) == 1):
                node.target, node.args = F.linear, (input, weight, bias)
                break
    remove_dead_code(graph)


def _calls(node: Any, *targets: Callable) -> bool:
    return isinstance(node, fx.Node) and node.op == "call_function" and node.target in targets


def _copied(graph: fx.Graph) -> fx.Graph:
    copied = fx.Graph()
    output = copied.graph_copy(graph, {})
    copied.output(output)
    return copied


# Views that may stand for their base: a view of a fresh tensor read by nothing else is fresh.
_VIEWS = {"flatten", "view", "view_as", "reshape"}


def _allocates(node: fx.Node) -> bool:
    """Whether `node`'s value is a fresh tensor: made by an op that allocates, or a view of one
    that nothing else reads (`torch.zeros_like(x).flatten(-2)`)."""
    if node.op == "call_method" and node.target in _VIEWS:
        base = node.args[0]
        return isinstance(base, fx.Node) and len(base.users) == 1 and _allocates(base)
    if node.op == "call_method":
        return node.target in _ALLOCATING_METHODS
    return node.op == "call_function" and node.target in _ALLOCATING


def _overwritable(operand: Any, node: fx.Node, position: dict[fx.Node, int]) -> bool:
    """Whether `node`'s result may be written into `operand`: a fresh tensor of the result's
    shape, dtype and strides, which nothing views and nothing reads after `node`."""
    if not (isinstance(operand, fx.Node) and _allocates(operand)):
        return False
    before, after = operand.meta.get("val"), node.meta.get("val")
    if not (isinstance(before, torch.Tensor) and isinstance(after, torch.Tensor)):
        return False
    if (before.shape, before.dtype, before.device, before.stride()) != (after.shape, after.dtype, after.device, after.stride()):
        return False
    users = list(operand.users)
    return (all(user is node or _allocates(user) for user in users)
            and max(position[user] for user in users) == position[node])


def reinplace(graph: fx.Graph) -> None:
    """Write elementwise ops into a fresh operand at its last use (see the module's docstring)."""
    position = {node: i for i, node in enumerate(graph.nodes)}
    for node in list(graph.nodes):
        if node.op == "call_method" and node.target in _IN_PLACE_METHOD and not node.kwargs:
            if _overwritable(node.args[0], node, position):
                node.target = _IN_PLACE_METHOD[node.target]
            continue
        if node.op != "call_function" or node.kwargs:
            continue
        if node.target in _IN_PLACE_UNARY and len(node.args) == 1:
            into, other = node.args[0], ()
        elif node.target in _IN_PLACE_BINARY and len(node.args) == 2:
            first, second = node.args
            if _overwritable(first, node, position):
                into, other = first, (second,)
            elif node.target in _COMMUTATIVE and _overwritable(second, node, position):
                into, other = second, (first,)
            else:
                continue
        else:
            continue
        if not _overwritable(into, node, position):
            continue
        # the node itself becomes the in-place call: its name, its users and its place stay
        node.op, node.target = "call_method", _IN_PLACE_UNARY.get(node.target) or _IN_PLACE_BINARY[node.target]
        node.args = (into, *other)


class ExecutionCodeGen(ReadableCodeGen):
    """Prints a graph as `ReadableCodeGen` does, freeing each variable after its last use."""

    def __init__(self, boxed: bool = False):
        super().__init__(provenance=False)
        self.boxed = boxed

    def _gen_python_code(self, nodes, root_module: str, namespace, **_: Any) -> PythonCode:
        nodes = list(nodes)
        printer = _Printer(namespace, root_module)
        printer.may_nest = _not_across_writes(nodes)
        parameters, statements, returned = _lay_out(nodes, printer)
        # where each variable is read last, in the order the statements run
        last_read: dict[str, int] = {}
        for i, (node, _) in enumerate(statements):
            for name in _variables_read(node, printer):
                last_read[name] = i
        output = next(node for node in nodes if node.op == "output")
        kept = set(_variables_read(output, printer))
        assigned = [printer.names[node] for node, _ in statements]
        freed: dict[int, list[str]] = {}
        for name, i in last_read.items():
            # a gradient summed in steps reuses its variable: the step that reads it assigns it again
            if name not in kept and assigned[i] != name and not any(a == name for a in assigned[i + 1:]):
                freed.setdefault(i, []).append(name)
        body = []
        if self.boxed:  # the only references to the arguments are the variables: each is freed as the rest
            boxed = printer.namespace.create_name("args", None)
            body += [f"{', '.join(parameters)}{',' if len(parameters) == 1 else ''} = {boxed}", f"{boxed}.clear()"]
            parameters = [boxed]
        for i, (node, text) in enumerate(statements):
            body.append(text)
            if i in freed:
                body.append(f"del {', '.join(sorted(freed[i]))}")
        body.append(f"return {returned}")
        code = "\n".join(f"    {line}" for line in body)
        src = f"\n\n\ndef forward(self, {', '.join(parameters)}):\n{code}\n    "
        return PythonCode(src, printer.globals, None)


def _variables_read(node: fx.Node, printer: _Printer) -> list[str]:
    """The variables a statement's text reads: its arguments', looking into the values written
    inside it."""
    names = []
    for arg in node.all_input_nodes:
        if arg in printer.nested:
            names += _variables_read(arg, printer)
        elif arg in printer.names:
            names.append(printer.names[arg])
    return names


def _not_across_writes(nodes: list[fx.Node]):
    """Nesting allowed only where no in-place op runs between a value and its user."""
    writes, count = {}, 0
    for node in nodes:
        writes[node] = count
        count += node.op == "call_method" and node.target in _IN_PLACE_METHODS

    def may_nest(node: fx.Node, user: fx.Node) -> bool:
        # the user itself may write (its operands are read first); nothing in between may
        between = writes[user] - writes[node] - (node.op == "call_method" and node.target in _IN_PLACE_METHODS)
        return between == 0

    return may_nest


# Canonical ops cheap enough to run again in the backward rather than keep their results
# between forward and backward: elementwise ops, normalisations and views.
_RECOMPUTABLE_AREAS = ("fxgrad.canon.pointwise", "fxgrad.canon.shape")
_RECOMPUTABLE = {torch.where, torch.clamp, torch.maximum, torch.minimum, torch.masked_fill,
                 F.layer_norm, F.rms_norm, F.group_norm, torch.transpose, torch.permute, item,
                 torch.split, torch.chunk, torch.unbind}


def _recomputable(node: fx.Node) -> bool:
    op = node.meta.get("fxgrad_op")
    return op is not None and (op in _RECOMPUTABLE or OPS[op].__module__ in _RECOMPUTABLE_AREAS)


def _holds_tensors(val: Any) -> bool:
    return isinstance(val, (tuple, list)) and any(isinstance(v, torch.Tensor) for v in val)


def _bytes(node: fx.Node) -> int:
    val = node.meta.get("val")
    return val.numel() * val.element_size() if isinstance(val, torch.Tensor) else 0


def recomputed(saved_for: Callable[[set], list[fx.Node]], kept: set[fx.Node], memory_budget: float) -> set[fx.Node]:
    """The forward values to compute again in the backward instead of saving them, so that the
    bytes saved are at most `memory_budget` times those saved with nothing recomputed (as far as
    recomputing cheap ops gets there). `saved_for(recomputed)` is what the forward saves then;
    `kept` are the values held anyway (the inputs and parameters), which cost nothing to save.
    Greedy: the value whose recomputation saves the most bytes first, as long as one saves any."""
    chosen: set[fx.Node] = set()

    def cost(recomputing: set) -> int | None:
        """The bytes saved, or None where a value holding several results (`native_layer_norm`'s
        tuple) would be saved whole, which only its tensors may be: autograd keeps those."""
        saved = saved_for(recomputing)
        if any(_holds_tensors(node.meta.get("val")) for node in saved):
            return None
        return sum(_bytes(node) for node in saved if node not in kept)

    def with_unsaved_inputs(node: fx.Node, saved: set) -> set:
        """`node`, and the cheap values it is computed from that are not saved either (silu(x)
        for silu(x) + h): recomputed with it."""
        inputs = [arg for arg in node.all_input_nodes
                  if arg not in saved and arg not in kept and arg not in chosen and _recomputable(arg)]
        return {node}.union(*(with_unsaved_inputs(arg, saved) for arg in inputs))

    now = cost(chosen)
    target = memory_budget * now
    while now > target:
        saved = saved_for(chosen)
        candidates = [with_unsaved_inputs(node, set(saved)) for node in saved
                      if node not in kept and _recomputable(node)]
        costs = [(c, i) for i, more in enumerate(candidates) if (c := cost(chosen | more)) is not None]
        best = min(costs, default=None)
        if best is None or best[0] >= now:
            break
        now = best[0]
        chosen |= candidates[best[1]]
    return chosen
