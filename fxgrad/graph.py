"""Building fx graphs whose nodes know their values.

Every node created through a `GraphBuilder` is evaluated as it is made, and its value is kept
in `node.meta["val"]`: a real tensor while the forward graph is traced on the example inputs,
a tensor on the `meta` device once the backward is built. Rules and the engine read shapes
and dtypes from there (`value(x)`) instead of re-running anything, and a rule that produces a
mis-shaped tensor fails at derive time rather than when the user calls the backward.
"""

from __future__ import annotations

import functools
import gc
import operator
from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.fx as fx
import torch.utils._pytree as pytree
from torch.fx.node import _side_effectful_functions, map_aggregate

from .errors import FxgradError, InputError, UnsupportedArgumentError, described


# Keys of node.meta that later stages read.
FORWARD = "fxgrad_forward"  # a value of the forward function, recomputed by the backward
USER_NAMED = "fxgrad_user_named"  # a forward value named by the user's source (`x = ...`)
DERIVED_FROM = "fxgrad_derived_from"  # on a backward node: the forward node whose rule made it
GRADIENT_OF = "fxgrad_gradient_of"  # on a gradient: the forward value it is a gradient of
BROADCAST_SUM = "fxgrad_broadcast_sum"  # on a sum `shapes.fit_to` made: the dims of the gradient it sums
ARGUMENT_NAME = "fxgrad_argument_name"  # on a placeholder: its name as asked for (fx's is `input_1` for `input`)


class EvaluationError(Exception):
    """A torch op failed on the values of its arguments while a node was made: on the example
    inputs, the user's function itself fails there (canonicalize says where)."""

    def __init__(self, error: Exception):
        super().__init__(described(error))


class GraphBuilder(fx.proxy.GraphAppendingTracer):
    """Appends nodes to `graph`, evaluating each on the values of its arguments.

    `attributes` holds what the graph's get_attr nodes read (parameters, constants), by target:
    the root of the GraphModule made from the graph.
    """

    def __init__(self, graph: fx.Graph):
        super().__init__(graph)
        self.attributes: dict[str, Any] = {}
        # the buffers the function changes in place (batch norm's running statistics), by the
        # get_attr node that reads them, and their new values: written back by fxgrad.function
        self.state_updates: dict[fx.Node, fx.Proxy] = {}
        # why lowering wrote example sizes into the graph (a decomposition read them), if it did
        self.fixed_sizes: str | None = None
        # whether the values are shapes only (`drop_values`), as they are once the backward is built
        self.shapes_only = False
        self.differentiated: set[fx.Node] = set()  # the inputs and parameters differentiated (`wrt`)
        self._carries: dict[fx.Node, bool] = {}  # whether a node carries a gradient from those

    def update_state(self, buffer: fx.Proxy, new: fx.Proxy) -> None:
        """Record `new` as the value of a buffer (its get_attr's Proxy, or its last new value)."""
        for node, previous in self.state_updates.items():
            if previous.node is buffer.node:  # a buffer changed again: its new value replaces the last
                self.state_updates[node] = new
                return
        self.state_updates[buffer.node] = new

    def current_state(self, buffer: fx.Proxy) -> fx.Proxy:
        """A buffer's value after the updates recorded so far (a module run twice in one call)."""
        updated = self.updated_state(buffer.node.target) if buffer.node.op == "get_attr" else None
        return buffer if updated is None else updated

    def updated_state(self, target: str) -> fx.Proxy | None:
        """The new value of the buffer read as `target`, if the function changed it so far."""
        return next((new for node, new in self.state_updates.items() if node.target == target), None)

    def create_node(self, kind, target, args, kwargs, name=None, type_expr=None):
        node = super().create_node(kind, target, args, kwargs, name, type_expr)
        if kind != "placeholder":
            with torch._C._DisableAutocast():  # a traced graph holds autocast's casts: run as recorded
                try:
                    node.meta["val"] = evaluate(node, self.attributes, self.shapes_only)
                except FxgradError:
                    raise
                except Exception as error:
                    raise EvaluationError(error) from error
        return node

    def carries_input_gradient(self, arguments: Any) -> bool:
        """Whether a gradient can flow from the differentiated inputs and parameters into any Proxy
        among `arguments`: on a path of values that carry one (not through `detach()`, integer or
        boolean values)."""
        def carries(node: fx.Node) -> bool:
            if node not in self._carries:
                val = node.meta.get("val")
                if node.op in ("placeholder", "get_attr"):
                    self._carries[node] = node in self.differentiated and carries_gradient(val)
                else:
                    self._carries[node] = (carries_gradient(val) and node.meta.get("fxgrad_op") is not torch.detach
                                           and any(carries(arg) for arg in node.all_input_nodes))
            return self._carries[node]

        return any(isinstance(leaf, fx.Proxy) and carries(leaf.node) for leaf in pytree.tree_leaves(arguments))

    def attribute(self, target: str, obj: Any) -> fx.Proxy:
        """A get_attr node reading `obj`, kept under `target` in the attributes."""
        self.attributes[target] = obj
        return self.create_proxy("get_attr", target, (), {})

    def placeholder(self, name: str, val: Any) -> fx.Proxy:
        """A new argument of the graph, named `name` or, if that is taken, `name_1`, ..."""
        if not is_dense(val):
            raise InputError(f"input `{name}` is a {_layout(val)} tensor; fxgrad differentiates dense (strided) tensors")
        proxy = self.create_proxy("placeholder", name, (), {}, name=name)
        proxy.node.target = proxy.node.name  # fx writes the argument from the target: keep them unique
        proxy.node.meta["val"] = val
        if val is not None:  # (an incoming gradient's placeholder is named once the outputs are)
            proxy.node.meta[ARGUMENT_NAME] = name
        return proxy


def evaluate(node: fx.Node, attributes: dict[str, Any], shapes_only: bool = False) -> Any:
    """Run one node on the values its arguments hold in `meta["val"]`; refuses a nested or
    sparse result, which no rule's formula describes. On `shapes_only` values, a linear-algebra
    op that refuses them (a zero-filled stand-in is a singular matrix: `torch.linalg.inv`,
    `solve`, `cholesky` raise) is run on meta tensors of their shapes, its result zero-filled."""
    try:
        val = _run(node, attributes)
    except torch.linalg.LinAlgError:
        if not shapes_only:
            raise
        val = _run(node, attributes, on_meta=True)
        val = map_aggregate(val, lambda t: torch.zeros(t.shape, dtype=t.dtype) if isinstance(t, torch.Tensor) else t)
    if not is_dense(val):
        raise UnsupportedArgumentError(f"a {_layout(val)} tensor as a value is not supported")
    return val


def _run(node: fx.Node, attributes: dict[str, Any], on_meta: bool = False) -> Any:
    args, kwargs = map_aggregate((node.args, node.kwargs), value)
    if on_meta:
        args, kwargs = map_aggregate((args, kwargs), lambda a: a.to("meta") if isinstance(a, torch.Tensor) else a)
    if node.op == "call_function":
        return node.target(*args, **kwargs)
    if node.op == "call_method":
        self, *rest = args
        return getattr(self, node.target)(*rest, **kwargs)
    if node.op == "get_attr":
        val = attributes[node.target]
        return val.detach() if isinstance(val, torch.Tensor) else val
    raise AssertionError(f"cannot evaluate a {node.op} node")


def is_dense(val: Any) -> bool:
    """Whether a value is no tensor, or a dense one: not nested, sparse, or of another layout,
    which the rules' formulas (and shapes) do not describe."""
    return not isinstance(val, torch.Tensor) or (not val.is_nested and val.layout == torch.strided)


def _layout(t: torch.Tensor) -> str:
    return "nested" if t.is_nested else str(t.layout).removeprefix("torch.")


def value(x: Any) -> Any:
    """The value behind a Proxy or Node (its `meta["val"]`); anything else is its own value."""
    if isinstance(x, fx.Proxy):
        x = x.node
    if isinstance(x, fx.Node):
        return x.meta["val"]
    return x


def node_of(x: Any) -> Any:
    """The Node behind a Proxy; anything else unchanged."""
    return x.node if isinstance(x, fx.Proxy) else x


def is_tensor(x: Any) -> bool:
    """Whether a Proxy (or value) stands for a tensor, not a number or a size."""
    return isinstance(value(x), torch.Tensor)


# Up to this many elements in all, shapes are carried by zero-filled CPU tensors: torch's CPU
# kernels run in microseconds on them, where meta tensors go through Python reference kernels.
SMALL_ENOUGH_FOR_ZEROS = 2**20


def drop_values(nodes: list[fx.Node]) -> None:
    """Keep only the shapes and dtypes of the nodes' values (`meta["val"]`), as zero-filled
    tensors while they are small, else on the meta device."""
    tensors = [t for node in nodes for t in _tensors(node.meta.get("val"))]
    small = sum(t.numel() for t in tensors) <= SMALL_ENOUGH_FOR_ZEROS
    for node in nodes:
        node.meta["val"] = map_aggregate(node.meta.get("val"), lambda t: _shape_only(t, small))


def _shape_only(t: Any, small: bool) -> Any:
    if not isinstance(t, torch.Tensor):
        return t
    return torch.zeros(t.shape, dtype=t.dtype) if small else t.to("meta")


def _tensors(val: Any) -> list[torch.Tensor]:
    found = []
    map_aggregate(val, lambda t: found.append(t) if isinstance(t, torch.Tensor) else None)
    return found


def is_differentiable(val: Any) -> bool:
    """Whether fxgrad differentiates with respect to a value: a floating-point tensor."""
    return isinstance(val, torch.Tensor) and val.is_floating_point()


def carries_gradient(val: Any) -> bool:
    """Whether a gradient can flow through a value: a floating-point or complex tensor, or a
    tuple holding one (`x.max(1)`).

    Integer and boolean tensors (indices, masks) carry none. Complex ones do, and fxgrad refuses
    them where they meet a rule rather than drop their gradient silently.
    """
    if isinstance(val, (tuple, list)):
        return any(carries_gradient(v) for v in val)
    return isinstance(val, torch.Tensor) and (val.is_floating_point() or val.is_complex())


@dataclass(frozen=True, eq=False)
class Recorded:
    """A node of the forward as later stages read it from another node's meta (its name and the
    user's frames), standing for it where the graph is copied or pickled without the forward."""

    name: str
    stack_trace: str | None


def portable(graph: fx.Graph) -> fx.Graph:
    """A copy of a derived graph that pickles: the meta that points to other nodes points to
    `Recorded` stand-ins (one per node, so identities hold), and the canonical ops' bookkeeping,
    which only derive reads, is left out."""
    copied, env, recorded = fx.Graph(), {}, {}
    for node in graph.nodes:
        env[node] = new = copied.node_copy(node, env.__getitem__)
        for key in ("fxgrad_op", "fxgrad_args", "fxgrad_source_target"):
            new.meta.pop(key, None)
        for key in (DERIVED_FROM, GRADIENT_OF):
            if isinstance(new.meta.get(key), fx.Node):
                source = new.meta[key]
                new.meta[key] = recorded.setdefault(source, Recorded(source.name, source.stack_trace))
    copied.set_codegen(graph._codegen)
    return copied


def read_attributes(module: fx.GraphModule) -> dict[str, Any]:
    """What the module's get_attr nodes read, by target: the root to rebuild it from."""
    found = {}
    for node in module.graph.nodes:
        if node.op == "get_attr":
            found[node.target] = operator.attrgetter(node.target)(module)
    return found


def nodes_after(node: fx.Node) -> list[fx.Node]:
    """The nodes that follow `node` in its graph, in order."""
    nodes = []
    while node.next.op != "root":
        node = node.next
        nodes.append(node)
    return nodes


def remove_dead_code(graph: fx.Graph) -> None:
    """fx's `eliminate_dead_code` for graphs of canonical ops, which are pure: every node that
    no value depends on goes, but placeholders, the output, in-place methods and the functions fx
    knows to have side effects (`torch._assert`). fx asks each node whether it is impure, which
    reads ATen schemas and costs far more than the walk."""
    for node in reversed(graph.nodes):
        if (not node.users and node.op not in ("placeholder", "output")
                and not (node.op == "call_method" and node.target.endswith("_"))
                and node.target not in _side_effectful_functions):
            graph.erase_node(node)


def without_gc(fn: Callable) -> Callable:
    """`fn` run with Python's cyclic garbage collector paused: building a graph makes many objects
    and no garbage cycles worth collecting midway, and each collection walks all the nodes."""

    @functools.wraps(fn)
    def paused(*args, **kwargs):
        enabled = gc.isenabled()
        gc.disable()
        try:
            return fn(*args, **kwargs)
        finally:
            if enabled:
                gc.enable()

    return paused
