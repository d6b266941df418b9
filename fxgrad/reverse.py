"""The reverse pass: walk the canonical forward graph backwards, applying each op's rule.

Only this module knows the walk order. It
- keeps one cotangent per forward value, `None` meaning zero (never a zeros tensor);
- fits every contribution to its value's shape (`shapes.fit_to`) and sums fan-out;
- applies a rule only to nodes on a path from a differentiated input to an output.
"""

from __future__ import annotations

from typing import Any, Iterable

import torch
import torch.fx as fx
from torch.fx.node import map_aggregate

from .canon import op_name, supported_ops
from .decompose import STUCK_ON
from .errors import FxgradError, UnsupportedOpError, source_location
from .graph import DERIVED_FROM, GRADIENT_OF, GraphBuilder, carries_gradient, nodes_after, value
from .rules import NotDifferentiable, RULES, WANTS_OUT
from .shapes import fit_to


def reverse(
    builder: GraphBuilder,
    forward: list[fx.Node],
    seeds: Iterable[tuple[fx.Proxy, fx.Proxy]],
    wrt: list[fx.Proxy],
    kernels: dict | None = None,
) -> list[fx.Proxy | None]:
    """Emit the backward of `forward` into the builder's graph.

    `forward` lists the forward nodes in order, `seeds` pairs each output with its incoming
    gradient, `wrt` are the inputs to differentiate. Returns the gradient of each of `wrt`,
    `None` where no gradient reaches it. `kernels` (`fxgrad.kernels.KERNELS`) are tried before
    the rules, for a training step.
    """
    seeds = [(output.node, grad) for output, grad in seeds if isinstance(output, fx.Proxy)]
    depends_on_wrt = _nodes_depending_on(forward, {p.node for p in wrt})
    cotangents: dict[fx.Node, fx.Proxy] = {}

    def accumulate(node: fx.Node, grad: Any) -> None:
        """Add `grad` to the cotangent of `node`. A node holding several values (`x.split(2)`)
        has a tuple of cotangents, one per value, `None` for those no gradient reached."""
        if isinstance(value(node), (tuple, list)):
            previous = cotangents.get(node) or (None,) * len(value(node))
            cotangents[node] = tuple(
                _sum(old, None if new is None else fit_to(new, builder.proxy(node)[i]), node)
                for i, (old, new) in enumerate(zip(previous, grad)))
        else:
            cotangents[node] = _sum(cotangents.get(node), fit_to(grad, builder.proxy(node)), node)

    for output, grad in seeds:
        if output in depends_on_wrt:
            accumulate(output, grad)

    for node in reversed(forward):
        grad = cotangents.get(node)
        if grad is None or node.op in ("placeholder", "get_attr"):  # leaves: inputs, parameters
            continue
        op = _rule_for(node, depends_on_wrt)
        last_before = builder.graph._root.prev
        args = map_aggregate(node.meta["fxgrad_args"], lambda a: builder.proxy(a) if isinstance(a, fx.Node) else a)
        kwargs = {"out": builder.proxy(node)} if op in WANTS_OUT else {}
        try:
            input_grads = NotImplemented
            if kernels is not None and op in kernels:
                input_grads = kernels[op](grad, *args, out=builder.proxy(node))
            if input_grads is NotImplemented:
                input_grads = RULES[op](grad, *args, **kwargs)
        except FxgradError as error:  # a rule refusing a use of its op it does not differentiate
            raise type(error)(f"{error}, at {source_location(node)}") from None
        if not isinstance(input_grads, tuple):
            input_grads = (input_grads,)
        for arg, input_grad in _pairs(node.meta["fxgrad_args"], input_grads):
            if arg in depends_on_wrt:
                if not isinstance(input_grad, NotDifferentiable):
                    accumulate(arg, input_grad)
                else:
                    raise UnsupportedOpError(f"{op_name(op)} with respect to its {input_grad.argument}",
                                             source_location(node), supported_ops())
        for new_node in nodes_after(last_before):
            new_node.meta[DERIVED_FROM] = node

    return [cotangents.get(p.node) for p in wrt]


def _sum(previous: fx.Proxy | None, grad: fx.Proxy | None, node: fx.Node) -> fx.Proxy | None:
    """`previous + grad`, None counting as zero; marks the result a gradient of `node`."""
    if grad is None or previous is None:
        grad = grad if previous is None else previous
    else:
        grad = previous + grad
    if grad is not None and grad.node.op != "placeholder":
        grad.node.meta.setdefault(GRADIENT_OF, node)  # a reused gradient keeps what it was
    return grad


def _pairs(args: Any, grads: Any):
    """(argument node, its gradient) for every node among a rule's arguments, into lists and
    tuples of them (`torch.cat((a, b))`); arguments that got no gradient are left out."""
    for arg, grad in zip(args, grads):
        if grad is None:
            continue
        if isinstance(arg, fx.Node):
            yield arg, grad
        elif isinstance(arg, (list, tuple)):
            yield from _pairs(arg, grad)


def _nodes_depending_on(forward: list[fx.Node], wrt: set[fx.Node]) -> set[fx.Node]:
    """The nodes computed from `wrt` whose values carry a gradient, on a path without `detach()`
    (a detached value itself, whose rule answers no gradient, but not what is computed from it,
    a constant to autograd)."""
    depends = set(wrt)
    for node in forward:
        if carries_gradient(value(node)) and any(arg in depends and arg.meta.get("fxgrad_op") is not torch.detach
                                                 for arg in node.all_input_nodes):
            depends.add(node)
    return depends


def _rule_for(node: fx.Node, depends_on_wrt: set[fx.Node]):
    """The canonical op whose rule applies to `node`; refuses ops without one, and complex values."""
    op = node.meta.get("fxgrad_op")
    if op not in RULES:
        # `x.max(1)[0]`: name the op that made the tuple, not the indexing into it
        source = node.args[0] if node.args else None
        if isinstance(source, fx.Node) and isinstance(value(source), (tuple, list)):
            node = source
        name = op_name(node.meta.get("fxgrad_op") or node.meta.get("fxgrad_source_target") or node.target)
        raise UnsupportedOpError(name, source_location(node), supported_ops(), node.meta.get(STUCK_ON))
    if any(_is_complex(value(arg)) for arg in node.all_input_nodes if arg in depends_on_wrt) or _is_complex(value(node)):
        raise UnsupportedOpError(f"{op_name(op)} on complex tensors", source_location(node), supported_ops())
    return op


def _is_complex(val: Any) -> bool:
    if isinstance(val, (tuple, list)):
        return any(_is_complex(v) for v in val)
    return isinstance(val, torch.Tensor) and val.is_complex()
