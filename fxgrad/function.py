"""`fxgrad.function`: a function run forward, with its derived backward as its autograd node.

The joint graph `derive_graph(..., with_outputs=True)` computes the outputs and the gradients
from the inputs. `partition` cuts it in two: a forward that computes the outputs and the values
the backward reads (the *saved* values), and a backward that computes the gradients from the
saved values and the incoming gradients. The backward never re-runs the forward, except under
`create_graph`, where its gradients are differentiated in turn and must depend on the inputs.
"""

from __future__ import annotations

import copy
import operator
from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple, Sequence

import torch
import torch.fx as fx

from .api import Derivation, derive_graph
from .arguments import Call, Structure, bind
from .emit import ReadableCodeGen
from .errors import InputError
from .execution import prepare, recomputed
from .graph import FORWARD, remove_dead_code
from .guards import holds_at
from .kernels import KERNELS
from .state import Source, find_state, read_live
from .trace import _name, autocast_state


@dataclass
class Partition:
    forward: fx.GraphModule  # (*inputs, *parameters) -> (*outputs, *saved)
    backward: fx.GraphModule  # (*saved, *grad_outputs) -> gradients of (*inputs, *parameters)
    n_outputs: int
    n_saved: int
    structure: Structure  # what `fn` returns, its output tensors taken out
    # the buffers the forward updates (batch norm's running statistics), whose new values it
    # returns after the outputs: (*outputs, *new values, *saved)
    state: list[str] = field(default_factory=list)
    # for each gradient the backward returns, the incoming gradients it is computed from: with
    # none of those given (outputs the loss does not use), it is None, as autograd leaves it
    reached_from: list[frozenset[int]] = field(default_factory=list)
    generic: bool = False  # whether its sizes are read at run time, so that it may hold at other sizes
    holds: dict = field(default_factory=dict)  # argument sizes checked, to whether it holds at them
    # which of the saved values are tensors (the rest are sizes and numbers), and which outputs
    # are tensors that carry no gradient (integer, boolean)
    saved_tensors: list[int] = field(default_factory=list)
    non_differentiable: list[int] = field(default_factory=list)

    def holds_at(self, args: Sequence[torch.Tensor]) -> bool:
        """Whether this partition is right for arguments of these sizes (checked once per sizes)."""
        sizes = tuple(tuple(x.shape) for x in args)
        if sizes not in self.holds:
            self.holds[sizes] = self.generic and holds_at(self.forward, self.backward, self.n_outputs, len(self.state), args)
        return self.holds[sizes]


def partition(derivation: Derivation, memory_budget: float = 1.0) -> Partition:
    """Cut a joint graph (returning `fn`'s outputs, then the gradients) into forward and backward.
    With `memory_budget` < 1, cheap forward values are computed again in the backward instead of
    saved (`execution.recomputed`), until the bytes saved are that fraction of all of them."""
    graph = derivation.graph
    n_outputs = len(derivation.output_shapes)
    placeholders = [node for node in graph.nodes if node.op == "placeholder"]
    inputs, grad_outputs = placeholders[: len(derivation.input_shapes)], placeholders[len(derivation.input_shapes):]
    parameters = [node for node in graph.nodes if node.op == "get_attr" and node.target in derivation.parameters]
    output = next(node for node in graph.nodes if node.op == "output")
    n_state = len(derivation.state)
    outputs, gradients = output.args[0][:n_outputs + n_state], output.args[0][n_outputs + n_state:]

    forward_values = set(inputs) | set(parameters)
    for node in graph.nodes:
        # a backward's read of a forward value's size is made in the forward: the size is kept,
        # not the tensor; and its read of one of a forward op's results (a max pool's indices):
        # that tensor is kept, not the tuple, which autograd would not see
        if (node.meta.get(FORWARD) or (_reads_size(node) and all(a in forward_values for a in node.all_input_nodes))
                or (node.op == "call_function" and node.target is operator.getitem and node.args[0] in forward_values)):
            forward_values.add(node)

    def in_forward(node: fx.Node) -> bool:
        return node in forward_values

    computed = [node for node in graph.nodes
                if node.op in ("call_function", "call_method", "get_attr") and node not in parameters]

    def saved_for(recomputing: set) -> list[fx.Node]:
        """The forward values a backward node reads, or a forward value the backward computes again."""
        return [node for node in inputs + parameters + computed
                if in_forward(node) and node not in recomputing
                and any((not in_forward(user) or user in recomputing) and user is not output for user in node.users)]

    in_backward = recomputed(saved_for, set(inputs) | set(parameters), memory_budget) if memory_budget < 1 else set()
    saved = saved_for(in_backward)

    forward_graph, env = fx.Graph(), {}
    for node in inputs + parameters:  # a parameter is an argument of the forward: autograd sees it
        env[node] = forward_graph.placeholder(node.name)
        env[node].meta = dict(node.meta)
    for node in computed:
        if in_forward(node):
            env[node] = forward_graph.node_copy(node, env.__getitem__)
    forward_graph.output(tuple(env[n] if isinstance(n, fx.Node) else n for n in (*outputs, *saved)))

    backward_graph, env = fx.Graph(), {}
    for node in saved + grad_outputs:
        env[node] = backward_graph.placeholder(node.name)
        env[node].meta = dict(node.meta)
    for node in computed:
        # the backward's own nodes, the forward values it computes again, and constants: read again
        if not in_forward(node) or node in in_backward or (node.op == "get_attr" and node not in saved):
            env[node] = backward_graph.node_copy(node, env.__getitem__)
    backward_graph.output(tuple(env[n] if isinstance(n, fx.Node) else n for n in gradients))
    _just_before_use([env[node] for node in computed if node in in_backward], backward_graph)

    for part in (forward_graph, backward_graph):
        remove_dead_code(part)
        part.set_codegen(ReadableCodeGen(provenance=False))
    reached_from = _incoming_gradients_used(backward_graph, len(grad_outputs))
    forward = fx.GraphModule(derivation.attributes, forward_graph, class_name="Forward")
    backward = fx.GraphModule(derivation.attributes, backward_graph, class_name="Backward")
    read_live(forward, derivation.sources)
    read_live(backward, derivation.sources)
    returned = [node.meta.get("val") if isinstance(node, fx.Node) else node for node in outputs[:n_outputs]]
    return Partition(forward, backward, n_outputs, len(saved), derivation.structure, derivation.state,
                     reached_from=reached_from,
                     saved_tensors=[i for i, node in enumerate(saved) if isinstance(node.meta.get("val"), torch.Tensor)],
                     non_differentiable=[i for i, val in enumerate(returned) if isinstance(val, torch.Tensor)
                                         and not (val.is_floating_point() or val.is_complex())])


def _just_before_use(recomputed: list[fx.Node], graph: fx.Graph) -> None:
    """Move the values the backward computes again to just before their first reader, so that
    each is held as briefly as when it is computed in the backward proper."""
    for node in reversed(recomputed):  # its recomputed readers have moved already
        position = {other: i for i, other in enumerate(graph.nodes)}
        min(node.users, key=position.__getitem__).prepend(node)


def _incoming_gradients_used(backward: fx.Graph, n_grad_outputs: int) -> list[frozenset[int]]:
    """For each value the backward returns, which incoming gradients (its last placeholders)
    it is computed from."""
    placeholders = [node for node in backward.nodes if node.op == "placeholder"]
    first = len(placeholders) - n_grad_outputs
    uses: dict[fx.Node, frozenset[int]] = {node: frozenset({i - first}) if i >= first else frozenset()
                                           for i, node in enumerate(placeholders)}
    for node in backward.nodes:
        if node.op not in ("placeholder", "output"):
            uses[node] = frozenset().union(*(uses[arg] for arg in node.all_input_nodes))
    output = next(node for node in backward.nodes if node.op == "output")
    return [uses[g] if isinstance(g, fx.Node) else frozenset() for g in output.args[0]]


def _reads_size(node: fx.Node) -> bool:
    """`x.shape`, `x.size(d)`, `x.numel()`, `x.dim()`: values that depend only on sizes."""
    if node.op == "call_method":
        return node.target in ("size", "numel", "dim")
    return node.op == "call_function" and node.target is getattr and node.args[1] in ("shape", "ndim")


class Key(NamedTuple):
    """What a partition is derived for, besides `fn`: calls with one key share a partition, and a
    call with a new key derives its own (as torch.compile recompiles when a guard fails). Each
    field is one set of guards, read from the call by `function`'s `key`."""

    needs_grad: tuple[bool, ...]  # which of (*inputs, *parameters) autograd asks gradients for
    training: tuple[bool, ...]  # the `training` flag of each module `fn` runs (`State.fingerprint`)
    state: tuple  # the rest of the state's fingerprint: the modules, their attributes and hooks, ties
    autocast: tuple[tuple[str, torch.dtype], ...]  # (device type, dtype) where autocast is on (`autocast_state`)
    layout: tuple[tuple, ...]  # each argument's dtype, rank and size-1 dims (`layout`): what its rules branch on
    # the call's form (how its arguments hold tensors) and its constants, by value: both are the
    # trace's; numbered by `function` (`Call.form`), so that a key hashes one number for them
    form: int
    # whether the backward runs ATen's backward kernels (`fxgrad.kernels`), as a training step
    # does, or the rules alone, which autograd can differentiate in turn (create_graph: torch
    # defines no derivative of some kernels, `silu_backward`) and a compiler fuses itself
    kernels: bool
    # the arguments' sizes, for a partition whose tracer fixed them (export, make_fx), else None:
    # one derived with sizes read at run time serves every call of its layout that it holds for
    sizes: tuple[tuple[int, ...], ...] | None


def layout(args: Sequence[torch.Tensor]) -> tuple[tuple, ...]:
    return tuple((x.dtype, x.dim(), tuple(d for d, size in enumerate(x.shape) if size == 1)) for x in args)


def function(fn: Callable, example_inputs: Sequence[Any], kwargs: dict[str, Any] | None = None, *,
             compile: bool = False, memory_budget: float = 1.0) -> Callable:
    """`fn` as a function whose autograd backward is its derived backward.

    Calling the result runs the forward part of `fn`'s joint graph, records one autograd node,
    and saves the values the backward reads; `.backward()` then runs the derived backward. For
    an `nn.Module`, its parameters get gradients too. Only the gradients autograd asks for are
    derived, computed and saved for. A partition is derived on first use for each `Key`: the
    pattern of inputs requiring grad, the modules' train/eval modes and the rest of their state
    (attributes, hooks, tied parameters), the autocast state, the form of the call and its
    constants (`f(x, is_causal=True)` derives its own). The result is called as `fn` is, with
    keywords, containers of tensors and constants, and returns what `fn` returns (a dict, a
    namedtuple, a dataclass, ..., its tensors the derived function's).
    A backward with `create_graph=True` is itself differentiable (gradient penalties,
    Hessian-vector products). `compile=True` passes both parts through
    `torch.compile(fullgraph=True)`; otherwise they run with the execution passes
    (`fxgrad.execution`: in place where a value is read no more, each value freed after its last
    use). `memory_budget` < 1 trades time for memory: cheap elementwise, normalisation and view
    values are computed again in the backward instead of saved, until the bytes saved are about
    that fraction of those saved at 1 (0: as few as recomputing cheap ops gets to).

    Example:
        >>> import torch, fxgrad
        >>> f = fxgrad.function(lambda x, w: torch.tanh(x @ w).sum(), (torch.randn(4, 3), torch.randn(3, 2)))
        >>> w = torch.randn(3, 2, requires_grad=True)
        >>> f(torch.randn(4, 3), w).backward()
        >>> w.grad.shape
        torch.Size([3, 2])
    """
    if isinstance(memory_budget, bool) or not isinstance(memory_budget, (int, float)) or not 0 <= memory_budget <= 1:
        raise InputError(f"memory_budget must be a number from 0 to 1 (the fraction of the bytes to save), "
                         f"not {memory_budget!r}")
    example = bind(fn, example_inputs, kwargs)
    state = find_state(fn, example.n_positional)
    now = state.fingerprint()  # the state's fingerprint, taken at each call
    # a module's parameters and the tensors `fn` closes over, read by name on each call: found
    # again for a new fingerprint, where a captured tensor may have started requiring grad
    sources: dict[tuple, list[Source]] = {now.beyond_modes: state.parameter_sources()}

    def parameter_values() -> list[torch.Tensor]:
        nonlocal now
        now = state.fingerprint()
        if now.beyond_modes not in sources:
            sources[now.beyond_modes] = find_state(fn, example.n_positional).parameter_sources()
        return [parameter.read() for parameter in sources[now.beyond_modes]]

    partitions: dict[Key, tuple[Partition, Callable, Callable]] = {}

    forms: dict[tuple, int] = {}  # each form of call seen, numbered: a key holds the number

    def form_of(call: Call) -> int:
        if call.form is None:
            form = (call.spec, tuple(torch.Tensor if isinstance(leaf, torch.Tensor) else leaf for leaf in call.leaves))
            call.form = forms.setdefault(form, len(forms))
        return call.form

    def key(call: Call, needs_grad: Sequence[bool], args: Sequence[torch.Tensor]) -> Key:
        return Key(tuple(needs_grad), now.training, now.beyond_modes, autocast_state(args), layout(args),
                   form_of(call), not compile, None)

    def partition_of(call: Call, key: Key, args: Sequence[torch.Tensor]) -> tuple[Partition, Callable, Callable]:
        """The partition for a call: the one of its layout if it holds at the call's sizes, else
        the one derived at these sizes."""
        generic = partitions.get(key)
        if generic is not None and generic[0].holds_at(args):
            return generic
        at_sizes = key._replace(sizes=tuple(tuple(x.shape) for x in args))
        if at_sizes not in partitions:
            wrt = [i for i, needed in enumerate(key.needs_grad) if needed]
            inputs, keywords = call.rebuild([x.detach() for x in args[:len(call.tensors)]])
            # traced under the caller's autocast, which the graph then holds as casts (see `trace`)
            derivation = derive_graph(fn, inputs, kwargs=keywords, wrt=wrt, with_outputs=True,
                                      kernels=KERNELS if key.kernels else None)
            parts = partition(derivation, memory_budget)
            parts.generic = derivation.guards.fixed_sizes is None
            parts.holds[at_sizes.sizes] = True
            if compile:  # the compiler reinplaces and plans memory itself, from the functional graphs
                forward, compiled = torch.compile(parts.forward, fullgraph=True), torch.compile(parts.backward, fullgraph=True)
                backward = lambda args: compiled(*args)  # noqa: E731 (takes its arguments as one list too)
            else:
                forward, backward = prepare(parts.forward), prepare(parts.backward, boxed=True)
            # the first partition of a layout with sizes read at run time serves its other sizes
            partitions[key if generic is None and parts.generic else at_sizes] = parts, forward, backward
            return parts, forward, backward
        return partitions[at_sizes]

    def partition_for(needs_grad: tuple[bool, ...]) -> tuple[Partition, Callable, Callable]:
        args = (*example.tensors, *parameter_values())
        return partition_of(example, key(example, needs_grad, args), args)

    class Derived(torch.autograd.Function):
        @staticmethod
        def forward(ctx, call: Call, *args: torch.Tensor):
            ctx.call, ctx.key = call, key(call, ctx.needs_input_grad[1:], args)
            parts, forward, backward = partition_of(call, ctx.key, args)
            call.outputs = parts.structure  # what the call returns
            with torch._C._DisableAutocast():  # the graph holds autocast's casts: run it as recorded
                results = forward(*args)
            n_returned = parts.n_outputs + len(parts.state)
            outputs, saved = results[: parts.n_outputs], results[n_returned:]
            if parts.state:
                _write_state(forward, parts.state, results[parts.n_outputs:n_returned])
            # tensors go through save_for_backward (autograd checks they are not changed after,
            # and keeps no cycle through ctx); sizes and other numbers are kept as they are
            ctx.parts, ctx.backward_module, ctx.n_returned = parts, backward, n_returned
            ctx.save_for_backward(*(saved[i] for i in parts.saved_tensors))
            ctx.saved_values = [None if isinstance(value, torch.Tensor) else value for value in saved]
            # the arguments, for a backward that is differentiated in turn (create_graph); kept as
            # they are, so that changing one after the forward fails only such a backward
            ctx.args, ctx.versions = args, [arg._version for arg in args]
            ctx.parameters = sources[now.beyond_modes]
            if parts.non_differentiable:
                ctx.mark_non_differentiable(*(outputs[i] for i in parts.non_differentiable))
            # an output the loss does not use gets no gradient (None), as in autograd
            ctx.set_materialize_grads(False)
            ctx.outputs_like = [(out.shape, out.dtype, out.device) for out in outputs]
            ctx.reached_from = parts.reached_from
            return tuple(outputs)

        @staticmethod
        def backward(ctx, *grad_outputs: torch.Tensor | None):
            given = {i for i, grad in enumerate(grad_outputs) if grad is not None}
            grad_outputs = [torch.zeros(shape, dtype=dtype, device=device) if grad is None else grad
                            for grad, (shape, dtype, device) in zip(grad_outputs, ctx.outputs_like)]
            with torch._C._DisableAutocast():
                if torch.is_grad_enabled():  # create_graph: these gradients are differentiated in turn
                    # functional, of the rules alone: autograd records each op on its own values
                    parts = partition_of(ctx.call, ctx.key._replace(kernels=False), ctx.args)[0]
                    grads = parts.backward(*_saved_values_recorded(ctx, parts), *grad_outputs)
                else:
                    # the backward holds the only references to the saved values, and frees each
                    # after its last use, as autograd frees a node's saved values once it has run
                    args = _saved_values(ctx) + grad_outputs
                    ctx.maybe_clear_saved_tensors()
                    del grad_outputs
                    grads = ctx.backward_module(args)
            # (none for the call)
            return (None, *(grad if given & reached else None for grad, reached in zip(grads, ctx.reached_from)))

    def derived(*args: Any, **kwargs: Any):
        call = _check_call(fn, example, args, kwargs)
        outputs = Derived.apply(call, *call.tensors, *parameter_values())
        return call.outputs.rebuild(outputs)  # what `fn` returns: a tuple, a dict, a dataclass, ...

    derived.partition_for = partition_for
    return derived


def _saved_values(ctx) -> list:
    """The values the forward saved: its tensors from autograd, the rest as kept."""
    saved = list(ctx.saved_values)
    for position, tensor in zip(ctx.parts.saved_tensors, ctx.saved_tensors):
        saved[position] = tensor
    return saved


def _saved_values_recorded(ctx, parts: Partition) -> list:
    """The values `parts`' forward saves, computed again from the arguments, with autograd
    recording: a backward under create_graph must be differentiable with respect to the inputs
    and parameters, which the values saved by the forward (computed without recording) are not."""
    names = ctx.call.names + [parameter.name for parameter in ctx.parameters]
    for name, arg, version in zip(names, ctx.args, ctx.versions):
        if arg._version != version:
            raise InputError(
                f"`{name}` was changed in place after the forward; a backward with "
                "create_graph=True differentiates the forward again from its arguments, which no longer hold "
                "the values it was called with"
            )
    with torch._C._DisableAutocast():
        return list(parts.forward(*ctx.args)[ctx.n_returned:])


def _write_state(forward: Callable, state: list[str], values: Sequence[torch.Tensor]) -> None:
    """Write the new values of the buffers the forward updates (batch norm's running statistics
    in training) into them, in place, as the function does when run eagerly: the buffers the
    forward that ran has just read by name."""
    with torch.no_grad():
        for target, new in zip(state, values):
            operator.attrgetter(target)(forward).copy_(new)


def _check_call(fn: Callable, example: Call, args: tuple, kwargs: dict) -> Call:
    """The call taken apart; refused if `fn` cannot take it, or where it gives something other
    than a tensor for an argument the example gave one for. (Other forms, constants, dtypes,
    ranks and sizes derive a partition of their own.)"""
    if (example.plain and not kwargs and len(args) == example.n_positional
            and all(isinstance(arg, torch.Tensor) and not arg.is_nested for arg in args)):
        # the example's form, tensors by position: taken apart as the example was, without
        # reading `fn`'s signature again (the hot path of a training loop)
        call = copy.copy(example)  # (its form too)
        call.tensors, call.leaves, call.outputs = list(args), list(args), None
        return call
    expected = f"`{_name(fn)}` takes its arguments as derived ({', '.join(f'{form.name}: {form.kind()}' for form in example.arguments)})"
    try:
        call = bind(fn, args, kwargs)
    except InputError as error:
        raise InputError(f"{expected}; {error}") from None
    tensors = {form.name for form in example.arguments if form.is_tensor}
    for form in call.arguments:
        if form.name in tensors and not form.is_tensor:
            raise InputError(f"{expected}; `{form.name}` is {form.kind()}, not a tensor")
    return call
