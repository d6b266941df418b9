"""Torch's own decompositions as the fallback for ops fxgrad has no lowering for.

A traced node with no lowering whose value carries a gradient (`F.hardswish(x)`, `torch.kron(a,
b)`) is run again on its example values under `make_fx`, with the decompositions of
`torch._decomp` (Core ATen's first, then the full table) for every op without a lowering; make_fx
applies them recursively, and the CompositeImplicitAutograd ones of its own. The small ATen graph
it records is then lowered like a traced one, in place of the node, so the rules of the ops it
reaches derive it, and the statements print under the user's line with its name.

make_fx runs on real values, so a size the decomposition reads is a constant of its graph. It is
traced again at other sizes: where the graphs differ (or the op does not run there) the example
sizes are kept as a guard, as for a graph that export wrote its sizes into.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from typing import Any, Callable

import torch
import torch.fx as fx
import torch.utils._pytree as pytree

from .errors import FxgradError, source_location
from .graph import carries_gradient, nodes_after, value
from .substitutes import Substituted

aten = torch.ops.aten

# On a node copied as it is, since no decomposition reaches ops with rules: the op it got stuck
# on, for the reverse pass's refusal.
STUCK_ON = "fxgrad_decomposition_stuck_on"

_decomposing = False  # while a decomposed graph is lowered: make_fx has decomposed all it could


@functools.cache
def decompositions() -> dict:
    """Torch's decompositions of the ATen ops that have no lowering, Core ATen's preferred."""
    from torch._decomp import core_aten_decompositions, decomposition_table

    from .canon import LOWERINGS

    table = {**decomposition_table, **core_aten_decompositions()}
    return {op: decomposition for op, decomposition in table.items()
            if isinstance(op, torch._ops.OpOverload) and op.overloadpacket not in LOWERINGS
            and not _functionalised(op, LOWERINGS)}


def _functionalised(op: torch._ops.OpOverload, lowerings: dict) -> bool:
    """Whether `op` changes a tensor in place and its out-of-place twin has a lowering (`sqrt_`):
    then it is lowered as that twin, where torch's decomposition of it reaches prims."""
    twin = getattr(aten, op.overloadpacket.__name__.rstrip("_"), None)
    return op._schema.is_mutable and twin is not op.overloadpacket and twin in lowerings


def wants_decomposition(target: Any, node: fx.Node, args: tuple, kwargs: dict, builder) -> bool:
    """Whether a node with no lowering, lowered as `target`, is decomposed: where autograd would
    record it, its value carrying a gradient from the arguments that carry one from the inputs
    (`torch.kron(a, b)`; not `x.dim()`, `x > 0` or `torch.empty_like(x)`, which are copied as
    they are; a loss's constant class weights are not differentiated, as torch refuses to)."""
    if _decomposing or not builder.carries_input_gradient((args, kwargs)):
        return False

    def requiring_grad(leaf):
        example = value(leaf)
        if isinstance(example, torch.Tensor):
            return example.detach().requires_grad_(builder.carries_input_gradient(leaf))
        return example

    try:
        with torch.enable_grad():
            result = _callable(target, node)(*pytree.tree_map(requiring_grad, args),
                                             **pytree.tree_map(requiring_grad, kwargs))
    except Exception:  # copied as it is: the graph builder reports what fails
        return False
    return any(isinstance(leaf, torch.Tensor) and leaf.requires_grad for leaf in pytree.tree_leaves(result))


def aten_graph(call: Callable, args: tuple, kwargs: dict,
               table: dict | None = None) -> tuple[fx.GraphModule, list[fx.Proxy], Callable]:
    """The graph of ATen ops make_fx records for `call(*args, **kwargs)` on the example values of
    the tensors among them; those tensors' Proxies, one per placeholder; and the function traced,
    of those tensors."""
    leaves, spec = pytree.tree_flatten((args, kwargs))
    tensors = [i for i, leaf in enumerate(leaves) if isinstance(leaf, fx.Proxy) and isinstance(value(leaf), torch.Tensor)]

    def run(*examples):
        filled = list(map(value, leaves))
        for i, example in zip(tensors, examples):
            filled[i] = example
        run_args, run_kwargs = pytree.tree_unflatten(filled, spec)
        return call(*run_args, **run_kwargs)

    # (copies: make_fx merges arguments that are one tensor object)
    examples = [value(leaves[i]).detach().clone() for i in tensors]
    return _traced(run, examples, table), [leaves[i] for i in tensors], run


def _traced(run: Callable, examples: list[torch.Tensor], table: dict | None) -> fx.GraphModule:
    """make_fx's graph of `run`, on fake tensors: an op whose graph would depend on the example's
    values (a branch on `.item()`) fails to trace, where real values would be written into the
    graph as if they held for every call."""
    from torch.fx.experimental.proxy_tensor import make_fx

    # (an op that fails there is the caller's to report: fake tensors' own log of it is noise)
    fake_tensor_log = logging.getLogger("torch._subclasses.fake_tensor")
    level = fake_tensor_log.level
    fake_tensor_log.setLevel(logging.CRITICAL)
    try:
        with Substituted():
            return make_fx(run, decomposition_table=table, tracing_mode="fake")(*examples)
    finally:
        fake_tensor_log.setLevel(level)


def decompose(target: Any, node: fx.Node, args: tuple, kwargs: dict, builder,
              lower: Callable) -> tuple[Any, str | None]:
    """Lower `node`, as `target`, through torch's decomposition of it: `(result, None)`; or
    `(None, the op it got stuck on)` where the decomposition reaches an op with no lowering that
    carries the gradient, leaving the graph as it was. `lower(graph_module, bindings)` lowers a
    graph."""
    call = _callable(target, node)
    try:
        graph_module, proxies, run = aten_graph(call, args, kwargs, decompositions())
    except FxgradError:  # a substitute's refusal (`substitutes`), which names the reason
        raise
    except Exception:  # an op make_fx cannot run on its own (data-dependent, ...): no further
        return None, _name(node)
    stuck = _stuck_on(graph_module)
    if stuck is not None:
        return None, stuck
    last_before = builder.graph._root.prev
    placeholders = [n for n in graph_module.graph.nodes if n.op == "placeholder"]
    with _lowering_decomposed():
        result = lower(graph_module, dict(zip(placeholders, proxies)))
    created = nodes_after(last_before)
    stuck = _copied_with_gradient(created, {p.node for p in proxies})
    if stuck is not None:
        for new_node in reversed(created):
            builder.graph.erase_node(new_node)
        return None, stuck
    # a number computed at run time (`a.size(0) * 0.1`) is traced as its example value, and so
    # is a size the decomposition reads
    reads_numbers = any(isinstance(leaf, fx.Proxy) and not isinstance(value(leaf), torch.Tensor)
                        for leaf in pytree.tree_leaves((args, kwargs)))
    if reads_numbers or not _same_at_other_sizes(graph_module, run, [value(p) for p in proxies]):
        builder.fixed_sizes = builder.fixed_sizes or (
            f"torch's decomposition of `{_name(node)}` at {source_location(node)} wrote into the graph as constants")
    return result, None


@contextlib.contextmanager
def _lowering_decomposed():
    global _decomposing
    before, _decomposing = _decomposing, True
    try:
        yield
    finally:
        _decomposing = before


def _callable(target: Any, node: fx.Node) -> Callable:
    """What runs `node` as lowered under `target` (an in-place op as its out-of-place twin)."""
    if isinstance(target, str):  # "Tensor.<name>"
        name = target.removeprefix("Tensor.")
        return lambda self, *args, **kwargs: getattr(self, name)(*args, **kwargs)
    if isinstance(node.target, torch._ops.OpOverload) and node.target.overloadpacket is target:
        return node.target
    return target


def _name(node: fx.Node) -> str:
    from .canon import op_name, traced_target

    return op_name(traced_target(node))


def _stuck_on(graph_module: fx.GraphModule) -> str | None:
    """A graph whose lowering would read tensor constants of make_fx's (which it keeps on the
    graph module, not the user's module) is not used."""
    for node in graph_module.graph.nodes:
        if node.op == "get_attr":
            return "a tensor constant"
    return None


def _copied_with_gradient(created: list[fx.Node], inputs: set[fx.Node]) -> str | None:
    """The first op among the `created` nodes that was copied as it is (no lowering) though its
    value carries a gradient from the `inputs`."""
    depends = set(inputs)
    for node in created:
        if carries_gradient(node.meta.get("val")) and any(arg in depends for arg in node.all_input_nodes):
            depends.add(node)
            if "fxgrad_source_target" in node.meta:
                from .canon import op_name

                return op_name(node.meta["fxgrad_source_target"])
    return None


def _same_at_other_sizes(graph_module: fx.GraphModule, run: Callable, examples: list[torch.Tensor]) -> bool:
    """Whether make_fx records the same graph at other sizes (every size but the 1s one more), so
    that no example size is a constant of it."""
    others = [torch.zeros([s if s == 1 else s + 1 for s in x.shape], dtype=x.dtype) for x in examples]
    try:
        other = _traced(run, others, decompositions())
    except Exception:  # the op does not run at those sizes (`torch.cross` wants 3): kept at these
        return False
    return _structure(graph_module.graph) == _structure(other.graph)


def _structure(graph: fx.Graph) -> list:
    names = {node: i for i, node in enumerate(graph.nodes)}
    return [(node.op, str(node.target), pytree.tree_map(lambda a: ("node", names[a]) if isinstance(a, fx.Node) else a,
                                                         (node.args, node.kwargs)))
            for node in graph.nodes]
