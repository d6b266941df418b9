"""`derive`: the pipeline from a user's function to its backward GraphModule."""

from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.fx as fx

from . import emit, simplify as simplifier
from .canon import canonicalize
from .errors import FxgradError
from .graph import FORWARD, GRADIENT_OF, GraphBuilder, is_differentiable, nodes_after, to_meta, value
from .reverse import reverse
from .trace import trace


def derive(
    fn: Callable,
    example_inputs: Sequence[torch.Tensor],
    *,
    wrt: Sequence[int] | None = None,
    simplify: bool = True,
    provenance: bool = True,
) -> fx.GraphModule:
    """Derive the closed-form backward of `fn` as a readable `torch.fx.GraphModule`.

    `fn` takes tensors and returns a tensor or a tuple of tensors. The result is called as
    `bwd(*inputs, *grad_outputs)` (one incoming gradient per output of `fn`) and returns one
    entry per input: its gradient if it is a floating-point input in `wrt` (default: all of
    them), else `None`. It recomputes the forward values it needs, so it holds no state and is
    right for any inputs of the shapes it was derived at. It contains only ordinary torch ops.

    `simplify=False` skips the algebraic simplification, to see or measure what it gains;
    `provenance=False` leaves out the comments naming the forward line of each statement.

    Example:
        >>> import torch, fxgrad
        >>> def f(x, w):
        ...     return torch.tanh(x @ w)
        >>> x, w = torch.randn(4, 3), torch.randn(3, 2)
        >>> bwd = fxgrad.derive(f, (x, w))
        >>> grad_x, grad_w = bwd(x, w, torch.ones(4, 2))
        >>> grad_w.shape
        torch.Size([3, 2])
    """
    inputs = _check_inputs(example_inputs)
    wrt = _check_wrt(wrt, len(inputs))
    traced = trace(fn, len(inputs))
    placeholders = [node for node in traced.graph.nodes if node.op == "placeholder"]
    if len(placeholders) != len(inputs):
        raise FxgradError(
            f"`{getattr(fn, '__name__', fn)}` takes {len(placeholders)} arguments "
            f"({', '.join(p.target for p in placeholders)}) but {len(inputs)} example inputs were given"
        )

    graph = fx.Graph()
    builder = GraphBuilder(graph, traced)
    input_proxies = [builder.placeholder(p.target, x) for p, x in zip(placeholders, inputs)]
    # One incoming gradient per output, named once the outputs have their names.
    grad_proxies = [builder.placeholder("grad_out", None) for _ in _traced_outputs(traced)]
    first_forward_node = graph._root.prev
    outputs = canonicalize(traced, input_proxies, builder)
    outputs = list(outputs) if isinstance(outputs, (tuple, list)) else [outputs]
    _check_outputs(fn, outputs)
    forward = [p.node for p in input_proxies] + nodes_after(first_forward_node)
    for node in forward:
        node.meta[FORWARD] = True
    emit.name_forward_values(forward, outputs)

    # From here on only shapes and dtypes matter: drop the example values.
    for node in graph.nodes:
        node.meta["val"] = to_meta(node.meta["val"])
    for grad, output in zip(grad_proxies, outputs):
        grad.node.meta["val"] = to_meta(value(output))
        grad.node._rename(f"grad_{output.node.name}")
        grad.node.target = grad.node.name
        grad.node.meta[GRADIENT_OF] = output.node

    differentiated = [input_proxies[i] for i in wrt if is_differentiable(inputs[i])]
    grads = dict(zip(differentiated, reverse(builder, forward, zip(outputs, grad_proxies), differentiated)))

    results = []
    for proxy in input_proxies:
        if proxy not in grads:
            results.append(None)
        elif grads[proxy] is None:  # no path from this input to an output: its gradient is zero
            results.append(torch.zeros_like(proxy))
        else:
            results.append(grads[proxy])
    graph.output(tuple(r.node if isinstance(r, fx.Proxy) else r for r in results))
    graph.eliminate_dead_code()
    input_nodes = [p.node for p in input_proxies]
    if simplify:
        simplifier.simplify(graph, builder)
        simplifier.finish(graph, input_nodes)
    emit.name_gradients(graph, input_nodes)
    graph.set_codegen(emit.ReadableCodeGen(provenance=provenance))
    graph.lint()
    return fx.GraphModule(traced, graph, class_name="Backward")


def _check_inputs(example_inputs) -> list[torch.Tensor]:
    if isinstance(example_inputs, torch.Tensor) or not isinstance(example_inputs, (tuple, list)):
        raise FxgradError(
            "example_inputs must be a tuple of tensors, one per argument of the function "
            f"(got {type(example_inputs).__name__}; for one tensor x, pass (x,))"
        )
    for i, x in enumerate(example_inputs):
        if not isinstance(x, torch.Tensor):
            raise FxgradError(f"example_inputs[{i}] is a {type(x).__name__}, not a tensor")
    return list(example_inputs)


def _check_wrt(wrt, n_inputs: int) -> list[int]:
    if wrt is None:
        return list(range(n_inputs))
    indices = [wrt] if isinstance(wrt, int) else list(wrt)
    for i in indices:
        if not isinstance(i, int) or isinstance(i, bool) or not -n_inputs <= i < n_inputs:
            raise FxgradError(f"wrt names input {i!r}, but the function has {n_inputs} inputs (indices 0..{n_inputs - 1})")
    return sorted({i % n_inputs for i in indices})


def _traced_outputs(traced: fx.GraphModule) -> list:
    (output,) = [node for node in traced.graph.nodes if node.op == "output"]
    result = output.args[0]
    return list(result) if isinstance(result, (tuple, list)) else [result]


def _check_outputs(fn: Callable, outputs: list) -> None:
    for i, out in enumerate(outputs):
        if not isinstance(out, fx.Proxy) or not isinstance(value(out), torch.Tensor):
            raise FxgradError(
                f"`{getattr(fn, '__name__', fn)}` must return a tensor or a tuple of tensors; "
                f"its output {i} is {type(value(out)).__name__}"
            )
