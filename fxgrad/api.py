"""`derive`: the pipeline from a user's function to its backward GraphModule."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch
import torch.fx as fx

from . import emit, simplify as simplifier
from .canon import canonicalize
from .canon import emit as emit_op
from .canon.pieces import item
from .errors import GradOutputError, InputError, OutputError
from .graph import FORWARD, GRADIENT_OF, GraphBuilder, drop_values, is_differentiable, nodes_after, value
from .reverse import reverse
from .trace import trace


class Backward(fx.GraphModule):
    """A derived backward: `bwd(*inputs, *grad_outputs)` returns one gradient per entry of
    `grad_names` (the inputs', then a module's parameters'), `None` where none is taken.

    Calls are checked: the number of arguments, and at the derived sizes the shapes of the
    incoming gradients, so that a mistake reads as a message rather than a deep torch error.
    """

    grad_names: list[str]
    input_shapes: list[torch.Size]
    output_shapes: list[torch.Size]
    output_names: list[str]

    def __call__(self, *args: Any) -> tuple:
        n_inputs, n_outputs = len(self.input_shapes), len(self.output_shapes)
        if len(args) != n_inputs + n_outputs:
            raise GradOutputError(
                f"this backward takes the {n_inputs} inputs and then {n_outputs} incoming gradients "
                f"({', '.join(f'grad_{name}' for name in self.output_names)}), {n_inputs + n_outputs} "
                f"arguments in all; it was given {len(args)}"
            )
        inputs, grad_outputs = args[:n_inputs], args[n_inputs:]
        at_derived_sizes = all(getattr(x, "shape", None) == shape for x, shape in zip(inputs, self.input_shapes))
        for name, grad, shape in zip(self.output_names, grad_outputs, self.output_shapes):
            if not isinstance(grad, torch.Tensor):
                raise GradOutputError(f"the gradient of output `{name}` must be a tensor, not {type(grad).__name__}")
            if at_derived_sizes and grad.shape != shape:
                raise GradOutputError(
                    f"the gradient of output `{name}` has shape {tuple(grad.shape)}; "
                    f"it must have the output's shape, {tuple(shape)}"
                )
        return super().__call__(*args)


def derive(
    fn: Callable,
    example_inputs: Sequence[torch.Tensor],
    *,
    wrt: Sequence[int] | None = None,
    simplify: bool = True,
    provenance: bool = True,
    tracer: str = "auto",
    compile: bool = False,
) -> Backward:
    """Derive the closed-form backward of `fn` as a readable `torch.fx.GraphModule`.

    `fn` is a function or an `nn.Module` that takes tensors and returns a tensor or a tuple of
    tensors. The result is called as `bwd(*inputs, *grad_outputs)` (one incoming gradient per
    output of `fn`) and returns the gradients of the inputs, then, for a module, of its
    parameters in `named_parameters()` order (`bwd.grad_names` lists them): a tensor for each
    floating-point one in `wrt` (indices into that list; default all), `None` for the rest and
    for parameters that do not require grad. It recomputes the forward values it needs, reading
    a module's parameters and buffers as they are when called, and holds no other state.
    It contains only ordinary torch ops.

    `simplify=False` skips the algebraic simplification, to see or measure what it gains;
    `provenance=False` leaves out the comments naming the forward line of each statement;
    `tracer` is "fx", "export", "aten" or "auto" (fx, then export if fx cannot trace);
    `compile=True` returns the backward passed through `torch.compile(fullgraph=True)`.

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
    derivation = derive_graph(fn, example_inputs, wrt=wrt, simplify=simplify, tracer=tracer)
    derivation.graph.set_codegen(emit.ReadableCodeGen(provenance=provenance))
    bwd = Backward(derivation.attributes, derivation.graph, class_name="Backward")
    bwd.grad_names = derivation.grad_names
    bwd.input_shapes = derivation.input_shapes
    bwd.output_shapes = derivation.output_shapes
    bwd.output_names = derivation.output_names
    return torch.compile(bwd, fullgraph=True) if compile else bwd


@dataclass
class Derivation:
    """A derived graph: placeholders for the inputs and one incoming gradient per output; it
    returns `fn`'s outputs first if asked (`with_outputs`), then the gradients."""

    graph: fx.Graph
    attributes: dict[str, Any]  # what its get_attr nodes read: parameters, buffers, constants
    grad_names: list[str]
    input_shapes: list[torch.Size]
    output_shapes: list[torch.Size]
    output_names: list[str]
    parameters: list[str]  # the module's parameters, differentiated after the inputs
    returns_tuple: bool  # whether `fn` returns a tuple (of one or more outputs)


def derive_graph(fn: Callable, example_inputs: Sequence[torch.Tensor], *, wrt: Sequence[int] | None = None,
                 simplify: bool = True, tracer: str = "auto", with_outputs: bool = False) -> Derivation:
    """The pipeline behind `derive`; see there."""
    inputs = _check_inputs(example_inputs)
    traced = trace(fn, inputs, tracer)
    placeholders = [node for node in traced.module.graph.nodes if node.op == "placeholder"]
    parameters = dict(fn.named_parameters()) if isinstance(fn, torch.nn.Module) else {}
    input_placeholders = [node for node in placeholders if node.target not in traced.parameters]
    if len(input_placeholders) != len(inputs):
        raise InputError(
            f"`{getattr(fn, '__name__', type(fn).__name__)}` takes {len(input_placeholders)} arguments "
            f"({', '.join(traced.input_names)}) but {len(inputs)} example inputs were given"
        )
    differentiable = inputs + list(parameters.values())
    grad_names = [f"grad_{name}" for name in traced.input_names] + [f"grad_{name}" for name in parameters]
    wrt = _check_wrt(wrt, differentiable, len(inputs), grad_names)

    graph = fx.Graph()
    builder = GraphBuilder(graph)
    input_proxies = [builder.placeholder(name, x) for name, x in zip(traced.input_names, inputs)]
    first_forward_node = graph._root.prev
    parameter_proxies = {name: builder.attribute(name, p) for name, p in parameters.items()}
    bindings = dict(zip(input_placeholders, input_proxies))
    for node in traced.module.graph.nodes:
        if node.op in ("placeholder", "get_attr") and node.target in traced.parameters:
            bindings[node] = parameter_proxies[traced.parameters[node.target]]
    # Buffers and constants: a module's own, read live, else the tracer's copies.
    owners = [fn, traced.module] if isinstance(fn, torch.nn.Module) else [traced.module]
    outputs = canonicalize(traced.module, bindings, builder, owners)
    outputs = _flat_outputs(outputs)
    _check_outputs(fn, outputs)
    forward = [p.node for p in input_proxies] + nodes_after(first_forward_node)
    # One incoming gradient per output (placed after the inputs), named once the outputs are.
    with graph.inserting_before(first_forward_node.next):
        grad_proxies = [builder.placeholder("grad_out", None) for _ in outputs]
    for node in forward:
        node.meta[FORWARD] = True
    emit.name_forward_values(forward, outputs)
    output_shapes = [value(output).shape for output in outputs]

    # From here on only shapes and dtypes matter: drop the example values.
    drop_values(list(graph.nodes))
    for grad, output in zip(grad_proxies, outputs):
        grad.node.meta["val"] = value(output)
        grad.node._rename(f"grad_{output.node.name}")
        grad.node.target = grad.node.name
        grad.node.meta[GRADIENT_OF] = output.node

    differentiable_proxies = input_proxies + list(parameter_proxies.values())
    differentiated = [differentiable_proxies[i] for i in wrt]
    grads = dict(zip(differentiated, reverse(builder, forward, zip(outputs, grad_proxies), differentiated)))

    results = []
    for proxy in differentiable_proxies:
        if proxy not in grads:
            results.append(None)
        elif grads[proxy] is None:  # no path from this value to an output: its gradient is zero
            results.append(torch.zeros_like(proxy))
        else:
            results.append(grads[proxy])
    returned = (outputs if with_outputs else []) + results
    graph.output(tuple(r.node if isinstance(r, fx.Proxy) else r for r in returned))
    graph.eliminate_dead_code()
    # what each returned value is: an output of fn (None), or the gradient of a value
    gradient_of = [None] * (len(outputs) if with_outputs else 0) + [p.node for p in differentiable_proxies]
    if simplify:
        simplifier.simplify(graph, builder)
        simplifier.finish(graph, gradient_of)
    emit.name_gradients(graph, [None] * (len(gradient_of) - len(grad_names)) + grad_names)
    graph.lint()
    return Derivation(graph, builder.attributes, grad_names, [x.shape for x in inputs], output_shapes,
                      [output.node.name for output in outputs], list(parameters), traced.returns_tuple)


def _check_inputs(example_inputs) -> list[torch.Tensor]:
    if isinstance(example_inputs, torch.Tensor) or not isinstance(example_inputs, (tuple, list)):
        raise InputError(
            "example_inputs must be a tuple of tensors, one per argument of the function "
            f"(got {type(example_inputs).__name__}; for one tensor x, pass (x,))"
        )
    for i, x in enumerate(example_inputs):
        if not isinstance(x, torch.Tensor):
            raise InputError(f"example_inputs[{i}] is a {type(x).__name__}, not a tensor")
    return list(example_inputs)


def _check_wrt(wrt, values: list[torch.Tensor], n_inputs: int, grad_names: list[str]) -> list[int]:
    """The indices of the values to differentiate: by default the floating-point inputs and the
    parameters that require grad; every one named in `wrt` must be floating-point."""
    n = len(values)
    if wrt is None:
        for name, x in zip(grad_names, values):
            if x.is_complex():
                raise InputError(f"{name[5:]} is complex; fxgrad differentiates real floating-point values "
                                 "only (give wrt without it to treat it as a constant)")
        return [i for i, x in enumerate(values) if is_differentiable(x) and (i < n_inputs or x.requires_grad)]
    indices = [wrt] if isinstance(wrt, int) else list(wrt)
    for i in indices:
        if not isinstance(i, int) or isinstance(i, bool) or not -n <= i < n:
            raise InputError(f"wrt names {i!r}, but there are {n} values to differentiate (indices 0..{n - 1}: "
                             f"{', '.join(name[5:] for name in grad_names)})")
        if not is_differentiable(values[i]):
            raise InputError(f"wrt names {grad_names[i][5:]}, a {values[i].dtype} tensor; gradients are "
                             "defined for floating-point values only")
    return sorted({i % n for i in indices})


def _flat_outputs(outputs: Any) -> list:
    """The outputs one by one: a tuple returned, and a value holding several (`x.max(1)`,
    `x.split(2)`) taken apart."""
    flat = []
    for out in outputs if isinstance(outputs, (tuple, list)) else [outputs]:
        if isinstance(out, fx.Proxy) and isinstance(value(out), (tuple, list)):
            flat += [emit_op(item, out, i) for i in range(len(value(out)))]
        else:
            flat.append(out)
    return flat


def _check_outputs(fn: Callable, outputs: list) -> None:
    name = getattr(fn, "__name__", type(fn).__name__)
    if len(outputs) == 1 and outputs[0] is None:
        raise OutputError(f"`{name}` returns nothing; it must return a tensor or a tuple of tensors")
    for i, out in enumerate(outputs):
        if not isinstance(out, fx.Proxy) or not isinstance(value(out), torch.Tensor):
            raise OutputError(
                f"`{name}` must return a tensor or a tuple of tensors; its output {i} is {type(value(out)).__name__}"
            )
