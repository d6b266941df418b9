"""`derive`: the pipeline from a user's function to its backward GraphModule."""

from __future__ import annotations

import copy
import dataclasses
import operator
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch
import torch.fx as fx

from . import emit, notation, simplify as simplifier
from .canon import canonicalize
from .canon import emit as emit_op
from .canon.pieces import item
from .arguments import Structure, bind
from .errors import FxgradError, InputError, OutputError, ParameterError, SizeOptionError, TraceError, described
from .guards import Guards, TensorSpec, cast_gradients, failing_line
from .graph import (FORWARD, GRADIENT_OF, GraphBuilder, drop_values, is_differentiable, nodes_after, portable,
                    read_attributes, remove_dead_code, value, without_gc)
from .reverse import reverse
from .shaped import dims_for
from .state import Source, StateGuard, find_state, read_live, refresh
from .trace import TRACERS, trace


class Backward(fx.GraphModule):
    """A derived backward: `bwd(*inputs, *grad_outputs)` returns one gradient per entry of
    `grad_names` (the inputs', then a module's parameters'), `None` where none is taken.

    Every call is checked against `guards` (`fxgrad.guards`): the number of arguments, each
    one's dtype and rank, and its sizes, so that a call the graph does not hold for raises a
    `ShapeError` or `GradOutputError` rather than return a wrong gradient.
    """

    grad_names: list[str]
    guards: Guards
    compiled: Callable | None = None  # the graph through torch.compile, run once a call is checked
    state_guard: StateGuard | None = None  # the module state it was derived for; None in a copy, which holds its own

    @property
    def dims(self) -> dict[str, int]:
        """The size of each symbol its shapes are printed in (`fxgrad.shaped`, `derive(dims=...)`)."""
        shapes = getattr(self.graph._codegen, "shapes", None)
        return dict(shapes.sizes) if shapes is not None else {}

    def __call__(self, *args: Any, **kwargs: Any) -> tuple:
        if any(isinstance(leaf, fx.Proxy) for leaf in torch.utils._pytree.tree_leaves((args, kwargs))):
            # (fx's symbolic values have no dtype or sizes to check: export and make_fx, which trace
            # on tensors, check the call as it is made)
            raise TraceError("fx cannot trace a call of a derived backward, whose call is checked on its "
                             "arguments' dtypes and sizes")
        args = self.guards.check(args, kwargs)
        self._check_state()
        args = cast_gradients(self.guards, args)
        with torch._C._DisableAutocast():  # the graph holds the casts it was derived with: run it as printed
            return self._run(args)

    def _run(self, args: tuple) -> tuple:
        if self.guards.needs_checked_run(args):
            return self.guards.checked_run(self, args)
        try:
            return (self.compiled or super().__call__)(*args)
        except FxgradError:  # a parameter that no longer fits, refused as the call reads it (`state.py`)
            raise
        except Exception as error:  # a value the function itself fails on (an index out of range, say)
            raise InputError(f"the backward fails on these inputs at {failing_line(self, args)}: "
                             f"{described(error)}") from error

    def _check_state(self) -> None:
        """Read the state as it is now into the graph's attributes, and check it: each tensor
        first (the more precise message), then the rest (`StateGuard`)."""
        if self.state_guard is not None:
            refresh(self)
            self.state_guard.check()

    def draw(self, path: str | None = None):
        """The graph as a picture, one box per printed statement (`fxgrad.draw`); needs
        `pip install fxgrad[draw]`."""
        from .draw import draw

        return draw(self, path)

    def __deepcopy__(self, memo: dict) -> "Backward":
        self._check_state()  # a copy holds the state as it is now: it reads the user's objects no more
        # so the user's objects that the live reading holds are not copied
        memo[id(self.state_guard)], memo[id(self._forward_pre_hooks)] = None, type(self._forward_pre_hooks)()
        copied = super().__deepcopy__(memo)
        copied.grad_names, copied.guards = list(self.grad_names), copy.deepcopy(self.guards, memo)
        copied.compiled = None if self.compiled is None else _compiled(copied)
        return copied

    def __reduce__(self):
        self._check_state()  # pickled with the state as it is now
        # rebuilt from its graph, which carries the readable printer and the values' shapes
        return _rebuild_backward, (read_attributes(self), portable(self.graph),
                                   self.grad_names, self.guards, self.compiled is not None)

    def math(self) -> str:
        """The gradients as Unicode math, as derived by hand: `∂L/∂q = (∂L/∂x) k` (`fxgrad.notation`)."""
        return notation.math_text(self.graph, self.grad_names)

    def latex(self) -> str:
        """The gradients as LaTeX: an `aligned` block, one equation a row."""
        return notation.latex_text(self.graph, self.grad_names)

    def explain(self):
        """The derivation step by step (`fxgrad.explain`)."""
        from .explain import Explanation

        return Explanation(self)

    # In a notebook: the code, highlighted, and the math.
    def _repr_html_(self) -> str:
        return notation.html(self.code.strip(), self.latex())

    def _repr_markdown_(self) -> str:
        return f"```python\n{self.code.strip()}\n```\n\n$$\n{self.latex()}\n$$\n"

    def _repr_latex_(self) -> str:
        return f"$${self.latex()}$$"


_BACKWARD_ATTRIBUTES = frozenset(dir(Backward)) | frozenset(vars(fx.GraphModule(torch.nn.Module(), fx.Graph())))


def _refuse_gradient_hooks(fn: Callable) -> None:
    """A hook on a parameter (`w.register_hook(...)`) changes the gradient autograd gives it, and
    a derived backward returns the gradient itself. (`fxgrad.function` is fine: autograd runs a
    leaf's hooks on the gradient the derived backward returns.)"""
    if isinstance(fn, torch.nn.Module):
        for name, parameter in fn.named_parameters():
            if parameter._backward_hooks:
                raise TraceError(f"`{name}` has a gradient hook, which changes the gradient autograd gives it and "
                                 "which a derived backward does not run: apply it to the derived gradient, or use "
                                 "fxgrad.function, whose parameters' hooks autograd runs")


def _rebuild_backward(attributes: dict, graph: fx.Graph, grad_names: list[str], guards: Guards,
                      compiled: bool) -> Backward:
    bwd = Backward(attributes, graph, class_name="Backward")
    bwd.grad_names, bwd.guards = grad_names, guards
    bwd.compiled = _compiled(bwd) if compiled else None
    return bwd


def _clear_of_backward_attributes(derivation: "Derivation") -> None:
    """A module or tensor read under a name a Backward has for itself (`math`, `graph`, `code`)
    would be read as that attribute: it is kept under its name with `_` appended
    (`self.math_.weight`)."""
    taken = {target.split(".")[0] for target in derivation.attributes}
    renamed: dict[str, str] = {}
    for head in sorted(taken & _BACKWARD_ATTRIBUTES):
        new = head + "_"
        while new in _BACKWARD_ATTRIBUTES or new in taken:
            new += "_"
        renamed[head] = new
        taken.add(new)
    if not renamed:
        return

    def clear(target: str) -> str:
        head, dot, rest = target.partition(".")
        return renamed.get(head, head) + dot + rest

    for node in derivation.graph.nodes:
        if node.op == "get_attr":
            node.target = clear(node.target)
    derivation.attributes = {clear(target): obj for target, obj in derivation.attributes.items()}
    derivation.sources = {clear(target): source for target, source in derivation.sources.items()}


def _compiled(bwd: Backward) -> Callable:
    return torch.compile(fx.GraphModule.__call__.__get__(bwd), fullgraph=True)


def derive(
    fn: Callable,
    example_inputs: Sequence[Any],
    kwargs: dict[str, Any] | None = None,
    *,
    wrt: Sequence[int] | None = None,
    simplify: bool = True,
    provenance: bool = True,
    tracer: str = "auto",
    compile: bool = False,
    dims: dict[str, int] | None = None,
) -> Backward:
    """Derive the closed-form backward of `fn` as a readable `torch.fx.GraphModule`.

    `fn` is a function or an `nn.Module`, called as `fn(*example_inputs, **kwargs)`: its
    arguments are tensors, lists, tuples and dicts of them, and constants (numbers, bools,
    strings, None), and it returns tensors, in a tuple, list, dict, namedtuple or dataclass if
    it likes (None among them is skipped). The result is called as
    `bwd(*example_inputs, *kwargs.values(), *grad_outputs)`: the arguments in the forms derived,
    each constant equal to its example's, then one incoming gradient per output tensor of `fn`
    (`bwd.guards.grad_outputs` names them), and returns the gradients of the inputs' tensors, then, for a module, of its
    parameters in `named_parameters()` order, for a function, of the tensors that require grad
    and the modules' parameters it closes over (`bwd.grad_names` lists them): a tensor for each
    floating-point one in `wrt` (indices into that list; default all), `None` for the rest and
    for parameters that do not require grad. It recomputes the forward values it needs, reading
    parameters, buffers and captured tensors by name as they are when called (one that no
    longer fits raises `ParameterError`), and holds no other state.
    It contains only ordinary torch ops.

    `simplify=False` skips the algebraic simplification, to see or measure what it gains;
    `provenance=False` leaves out the comments naming the forward line of each statement;
    `tracer` is "fx", "export", "aten" or "auto" (fx, then export if fx cannot trace);
    `compile=True` runs the backward's graph through `torch.compile(fullgraph=True)`, its calls
    checked as ever.

    Shapes are printed in the user's symbols where the example tensors come from
    `fxgrad.shaped` or `dims` names sizes (`dims={"S": 16}`; `dims={}` prints the sizes as
    numbers): each parameter annotated (`q: "S×d"`), each statement ending in a comment
    (`# S×S`); `bwd.dims` holds the symbols' sizes.

    Calls are checked against what the graph assumes (`bwd.guards`): each input's dtype and
    rank always; its sizes where the tracer fixed them (export, aten), else that every value
    broadcasts as at derive time (checked once per new set of sizes). A call outside raises
    `ShapeError` or `GradOutputError`.

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
    _refuse_gradient_hooks(fn)
    symbols = dims_for((example_inputs, kwargs), dims)
    derivation = derive_graph(fn, example_inputs, kwargs, wrt=wrt, simplify=simplify, tracer=tracer)
    _clear_of_backward_attributes(derivation)
    derivation.graph.set_codegen(emit.ReadableCodeGen(provenance=provenance, shapes=symbols))
    bwd = Backward(derivation.attributes, derivation.graph, class_name="Backward")
    read_live(bwd, derivation.sources)
    bwd.grad_names, bwd.guards, bwd.state_guard = derivation.grad_names, derivation.guards, derivation.state_guard
    if compile:  # the checks stay outside the compiled graph, which runs once a call passes them
        bwd.compiled = _compiled(bwd)
    return bwd


@dataclass
class Derivation:
    """A derived graph: placeholders for the inputs and one incoming gradient per output; it
    returns `fn`'s outputs first if asked (`with_outputs`), followed by the new values of the
    buffers it updates in place (`state`), then the gradients."""

    graph: fx.Graph
    attributes: dict[str, Any]  # what its get_attr nodes read: parameters, buffers, constants
    sources: dict[str, Source]  # those read by name from the user's objects, by get_attr target
    grad_names: list[str]
    input_shapes: list[torch.Size]
    output_shapes: list[torch.Size]
    output_names: list[str]
    parameters: list[str]  # the module's parameters, differentiated after the inputs
    structure: Structure  # what `fn` returns, its output tensors taken out
    guards: Guards  # what the graph assumes about its calls
    state: list[str] = dataclasses.field(default_factory=list)  # the attributes updated (with_outputs)
    state_guard: StateGuard | None = None  # the fingerprint of the state it is derived for


@without_gc
def derive_graph(fn: Callable, example_inputs: Sequence[Any], kwargs: dict[str, Any] | None = None, *,
                 wrt: Sequence[int] | None = None, simplify: bool = True, tracer: str = "auto",
                 with_outputs: bool = False, kernels: dict | None = None) -> Derivation:
    """The pipeline behind `derive`; see there. `kernels`: ATen's backward ops where a rule
    takes several (`fxgrad.kernels`), for a training step."""
    call = bind(fn, example_inputs, kwargs)
    inputs = call.tensors
    fn_state = find_state(fn, call.n_positional)
    state_guard = StateGuard(fn_state, fn_state.fingerprint())
    traced = trace(call.calling(fn_state.traced()), inputs, tracer)
    placeholders = [node for node in traced.module.graph.nodes if node.op == "placeholder"]
    parameters = fn_state.parameters()
    input_placeholders = [node for node in placeholders if node.target not in traced.parameters]
    differentiable = inputs + list(parameters.values())
    grad_names = ([f"grad_{name}" for name in traced.input_names]
                  + [f"grad_{fn_state.user_name(name)}" for name in parameters])
    wrt = _check_wrt(wrt, differentiable, len(inputs), grad_names)

    graph = fx.Graph()
    builder = GraphBuilder(graph)
    input_proxies = [builder.placeholder(name, x) for name, x in zip(traced.input_names, inputs)]
    first_forward_node = graph._root.prev
    parameter_proxies = {name: builder.attribute(name, p) for name, p in parameters.items()}
    builder.differentiated = {[*input_proxies, *parameter_proxies.values()][i].node for i in wrt}
    bindings = dict(zip(input_placeholders, input_proxies))
    # A parameter or buffer the tracer kept as a constant of its own (make_fx: a module's buffers,
    # the tensors a function closes over) is known by identity, and read by its name.
    parameter_names = {id(p): name for name, p in parameters.items()}
    buffer_names = {id(b): name for name, b in fn_state.module.named_buffers()} if fn_state.module else {}
    for node in traced.module.graph.nodes:
        name = traced.parameters.get(node.target) if node.op in ("placeholder", "get_attr") else None
        if name is None and node.op == "get_attr":
            obj = operator.attrgetter(node.target)(traced.module)
            name = parameter_names.get(id(obj))
            if id(obj) in buffer_names:
                bindings[node] = builder.attribute(buffer_names[id(obj)], obj)
            elif name is None and isinstance(obj, torch.Tensor) and obj.requires_grad:
                raise ParameterError(
                    f"`{getattr(fn, '__name__', type(fn).__name__)}` reads a tensor that requires grad (of shape "
                    f"{tuple(obj.shape)}) by no name fxgrad can differentiate: read it by its own name in the "
                    "function (a global, a closure variable, a default), or pass it as an input"
                )
        if name is not None:
            bindings[node] = parameter_proxies[name]
    # Buffers and constants: a module's own, read live, else the tracer's copies.
    owners = [fn_state.module, traced.module] if fn_state.module is not None else [traced.module]
    try:
        outputs = canonicalize(traced.module, bindings, builder, owners)
    except SizeOptionError as error:
        if tracer != "auto" or traced.tracer != "fx":
            raise
        # the tracers after fx compute sizes: "auto" goes on to them, as it does when fx cannot trace
        for next_tracer in TRACERS[1:]:
            try:
                return derive_graph(fn, example_inputs, kwargs, wrt=wrt, simplify=simplify, tracer=next_tracer,
                                    with_outputs=with_outputs, kernels=kernels)
            except TraceError:
                continue
        raise error
    outputs, fields = _flat_outputs(outputs, call.output_names)
    _check_outputs(fn, outputs)
    forward = [p.node for p in input_proxies] + nodes_after(first_forward_node)
    forward_copy = _copy_computing(graph, outputs)
    # One incoming gradient per output (placed after the inputs), named once the outputs are.
    with graph.inserting_before(first_forward_node.next):
        grad_proxies = [builder.placeholder("grad_out", None) for _ in outputs]
    for node in forward:
        node.meta[FORWARD] = True
    emit.name_forward_values(forward, outputs, fields)
    output_shapes = [value(output).shape for output in outputs]

    # From here on only shapes and dtypes matter: drop the example values.
    drop_values(list(graph.nodes))
    builder.shapes_only = True
    for grad, output in zip(grad_proxies, outputs):
        grad.node.meta["val"] = value(output)
        grad.node._rename(f"grad_{output.node.name}")
        grad.node.target = grad.node.name
        grad.node.meta[GRADIENT_OF] = output.node

    differentiable_proxies = input_proxies + list(parameter_proxies.values())
    differentiated = [differentiable_proxies[i] for i in wrt]
    grads = dict(zip(differentiated, reverse(builder, forward, zip(outputs, grad_proxies), differentiated, kernels)))

    results = []
    for proxy in differentiable_proxies:
        if proxy not in grads:
            results.append(None)
        elif grads[proxy] is None:  # no path from this value to an output: its gradient is zero
            results.append(torch.zeros_like(proxy))
        else:
            results.append(grads[proxy])
    # the function's outputs, then the new values of the buffers it updates (for fxgrad.function)
    state = [(node, new) for node, new in builder.state_updates.items() if node.op == "get_attr"] if with_outputs else []
    returned = (outputs + [new for _, new in state] if with_outputs else []) + results
    graph.output(tuple(r.node if isinstance(r, fx.Proxy) else r for r in returned))
    remove_dead_code(graph)
    # what each returned value is: an output of fn (None), or the gradient of a value
    gradient_of = [None] * (len(outputs) + len(state) if with_outputs else 0) + [p.node for p in differentiable_proxies]
    if simplify:
        simplifier.simplify(graph, builder)
        simplifier.finish(graph, gradient_of)
    emit.name_gradients(graph, [None] * (len(gradient_of) - len(grad_names)) + grad_names)
    output_names = [output.node.name for output in outputs]
    guards = Guards(
        inputs=[TensorSpec(name, x.shape, x.dtype) for name, x in zip(traced.input_names, inputs)],
        grad_outputs=[TensorSpec(f"grad_{name}", value(grad).shape, value(grad).dtype)
                      for name, grad in zip(output_names, grad_proxies)],
        fixed_sizes=traced.fixed_sizes or builder.fixed_sizes,
        forward=None if traced.fixed_sizes or builder.fixed_sizes else (builder.attributes, forward_copy),
        arguments=call.arguments,
    )
    sources = {target: source for target, obj in builder.attributes.items()
               if (source := fn_state.source(target, obj)) is not None}
    # the user's own objects (a captured tensor, not its stand-in), refreshed by name on each call
    attributes = {target: sources[target].read() if target in sources else obj
                  for target, obj in builder.attributes.items()}
    return Derivation(graph, attributes, sources, grad_names, [x.shape for x in inputs], output_shapes,
                      output_names, list(parameters), call.outputs, guards,
                      [node.target for node, _ in state], state_guard)


def _copy_computing(graph: fx.Graph, outputs: list) -> fx.Graph:
    """A copy of the forward built so far in `graph`, returning `outputs`, its values kept as
    shapes only: what a call at new sizes is checked on."""
    copied, env = fx.Graph(), {}
    for node in graph.nodes:
        env[node] = copied.node_copy(node, env.__getitem__)
    copied.output(tuple(env[out.node] if isinstance(out, fx.Proxy) else out for out in outputs))
    remove_dead_code(copied)
    drop_values(list(copied.nodes))
    return copied


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
    if not isinstance(wrt, (int, tuple, list, range)) or isinstance(wrt, bool):
        raise InputError(f"wrt must be an input index or a tuple of them, not {type(wrt).__name__} {wrt!r}")
    indices = [wrt] if isinstance(wrt, int) else list(wrt)
    for i in indices:
        if not isinstance(i, int) or isinstance(i, bool) or not -n <= i < n:
            raise InputError(f"wrt names {i!r}, but there are {n} values to differentiate (indices 0..{n - 1}: "
                             f"{', '.join(name[5:] for name in grad_names)})")
        if not is_differentiable(values[i]):
            raise InputError(f"wrt names {grad_names[i][5:]}, a {values[i].dtype} tensor; gradients are "
                             "defined for floating-point values only")
    return sorted({i % n for i in indices})


def _flat_outputs(outputs: tuple, names: list[str | None]) -> tuple[list, list[str | None]]:
    """The outputs one by one (`Call.calling` returns them flat, each with the key it had in the
    structure `fn` returns), and the name each takes: its key or field. A namedtuple that fx
    records built in the function and a value holding several (`x.max(1)`, `x.split(2)`) are
    taken apart."""
    if len(names) != len(outputs):  # (the function failed before returning; `_check_outputs` says how)
        names = [None] * len(outputs)
    flat, fields = [], []
    for out, name in zip(outputs, names):
        built = _namedtuple_built(out)
        if built is not None:  # (its node, now unused, is dropped with the dead code)
            flat += [out.tracer.proxy(a) if isinstance(a, fx.Node) else a for a in built.args]
            fields += list(built.target._fields)
        elif isinstance(out, fx.Proxy) and isinstance(value(out), (tuple, list)):
            flat += [emit_op(item, out, i) for i in range(len(value(out)))]
            fields += [None] * len(value(out))
        elif isinstance(out, (tuple, list)):  # an op with several results, lowered as its parts
            flat += list(out)
            fields += [None] * len(out)
        else:
            flat.append(out)
            fields.append(name)
    return flat, fields


def _namedtuple_built(outputs: Any) -> fx.Node | None:
    """The node of `Out(loss, logits)` when the function returns a namedtuple it builds (fx and
    make_fx record the constructor as a call), its fields given by position."""
    node = outputs.node if isinstance(outputs, fx.Proxy) else None
    target = getattr(node, "target", None)
    if isinstance(target, type) and issubclass(target, tuple) and hasattr(target, "_fields") and not node.kwargs:
        return node
    return None


def _check_outputs(fn: Callable, outputs: list) -> None:
    name = getattr(fn, "__name__", type(fn).__name__)
    if not outputs:
        raise OutputError(f"`{name}` returns nothing; it must return a tensor or a tuple of tensors")
    for i, out in enumerate(outputs):
        if not isinstance(out, fx.Proxy) or not isinstance(value(out), torch.Tensor):
            raise OutputError(
                f"`{name}` must return a tensor or a tuple of tensors; its output {i} is {type(value(out)).__name__}"
            )
