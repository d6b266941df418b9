"""Rewriting a traced graph into canonical ops, refusing what cannot be derived faithfully."""

from __future__ import annotations

import builtins
import operator
from typing import Any, Callable

import torch
import torch.fx as fx
import torch.nn.functional as F
import torch.utils._pytree as pytree
from torch.fx.node import map_aggregate
from torch.fx.operator_schemas import normalize_function

from ..decompose import STUCK_ON, aten_graph, decompose, wants_decomposition
from ..errors import (FxgradError, MutationError, RandomnessError, SizeOptionError, TraceError,
                      UnsupportedArgumentError, source_location)
from ..graph import EvaluationError, GraphBuilder, nodes_after, value
from .indexing import written_back
from .norms import running_statistics
from .registry import LOWERINGS, aten, emit, op_name


# Marks a traced node recorded while grad mode was off (`torch.no_grad()`, `inference_mode()`,
# `set_grad_enabled(False)`), in `node.meta["custom"]`, which fx's tracers copy from their
# current annotations: its value is a constant, as autograd treats it.
GRAD_DISABLED = "fxgrad_grad_disabled"

# Marks a node make_fx recorded while `torch.autograd.grad(..., create_graph=True)` ran the
# backward inside the function. make_fx records autograd's detaches of the outputs it saves for
# the backward, when it saves one (in the forward) and reads it back (in that region): no stop
# of the gradient (autograd differentiates the backward through the saved values), so they are
# lowered as the value itself.
IN_AUTOGRAD_GRAD = "fxgrad_in_autograd_grad"


def canonicalize(traced: fx.GraphModule, bindings: dict[fx.Node, Any], builder: GraphBuilder,
                 owners: list[torch.nn.Module], grad_enabled: bool = True) -> Any:
    """Append the body of `traced` to the builder's graph in canonical ops.

    `bindings` gives the value standing for each placeholder of `traced`, and for each get_attr
    node that reads a parameter; other get_attr nodes read from the first of `owners` that has
    the attribute. Returns the outputs, with the structure the traced function returns (a Proxy
    or a tuple of them).
    A node with no lowering that carries a gradient is lowered through torch's decomposition of
    it (`decompose`). Other nodes with none are copied as they are: fine for values that carry no
    gradient (`x.shape`, `x > 0`); the reverse pass refuses them if a gradient must flow through them.
    A node computed with grad mode off (`grad_enabled` False, or marked GRAD_DISABLED) reads its
    tensor arguments detached, so no gradient flows through it. A node of constants only is
    computed here, and an option a lowering refuses is taken as it is where no gradient flows.
    """
    env: dict[fx.Node, Any] = dict(bindings)
    graph = builder.graph
    for node in traced.graph.nodes:
        if node in env or _is_check(node):
            continue
        if _is_submodule(traced, node):  # a region's graph, which the node running it reads
            env[node] = traced.get_submodule(node.target)
            continue
        args, kwargs = _arguments(node, env)
        if node.target is not _SET_GRAD_ENABLED and _reads_no_input(node, args, kwargs):
            env[node] = _computed(node, args, kwargs)  # a constant, computed here as fx computes it
            continue
        args, kwargs = map_aggregate((args, kwargs), lambda a: _as_constant(a, node, builder))
        if node.op == "output":
            return args[0]
        if node.target is _SET_GRAD_ENABLED:  # export: a region run with grad mode set
            enabled, region, *operands = args
            inputs = [n for n in region.graph.nodes if n.op == "placeholder"]
            env[node] = canonicalize(region, dict(zip(inputs, operands)), builder, owners, enabled)
            continue
        if _reads_saved_value(node):
            env[node] = args[0]
            continue
        last_before = graph._root.prev  # the new nodes are the ones appended after this
        changed = None
        try:
            without_grad = not grad_enabled or _computed_without_grad(node)
            if without_grad:
                args, kwargs = map_aggregate((args, kwargs), _detached)
            target, changed, (aliases, views, written_to) = _functional_target(node, kwargs, env, owners)
            if changed is not None and without_grad and grad_enabled and not _computed_without_grad(changed):
                raise MutationError(f"`{op_name(traced_target(node))}` changes in place, with grad mode off, a value "
                                    "computed with it on, which autograd differentiates as if unchanged")
            before = env.get(changed)
            env[node] = _append(node, target, args, kwargs, owners, builder, last_before)
            if changed is not None:
                _check_same_kind(node, env[changed], env[node])
                if isinstance(before, fx.Proxy) and (changed.op in ("get_attr", "placeholder")
                                                     or any(before is new for new in builder.state_updates.values())):
                    builder.update_state(before, env[node])  # a running statistic (others are refused)
                new = env[node]
                while True:
                    for alias in aliases:  # later reads of the changed tensor see its new value
                        env[alias] = new
                    for view in views:  # and so do its views, made again from it
                        env[view] = _append(view, traced_target(view), *_arguments(view, env), owners, builder,
                                            graph._root.prev)
                    if written_to is None:
                        break
                    # a change of a slice or select of a tensor read afterwards: that tensor with the
                    # view's elements replaced, as functionalisation writes it back to its base
                    last_before = graph._root.prev
                    new = written_back(before, env[written_to], new)
                    if new is None:
                        raise _refusal(op_name(traced_target(node)), _read_afterwards(written_to))
                    for new_node in nodes_after(last_before):
                        new_node.stack_trace = node.stack_trace
                    changed, before = written_to, env[written_to]
                    aliases, views, written_to = _check_change(node, op_name(traced_target(node)), changed, env,
                                                               owners)
        except UnsupportedArgumentError as error:
            if changed is not None or builder.carries_input_gradient((args, kwargs)):
                raise type(error)(f"{error}, at {source_location(node)}") from None
            # an option fxgrad does not differentiate, on values no gradient flows through
            for new_node in reversed(nodes_after(last_before)):
                graph.erase_node(new_node)
            env[node] = _copied(node, args, kwargs, builder)
        except FxgradError as error:
            raise type(error)(f"{error}, at {source_location(node)}") from None
        except EvaluationError as error:  # a torch op failing on the example values: the function fails there
            raise TraceError(f"the function fails on its example inputs at {source_location(node)}: {error}") from error
    raise AssertionError("a traced graph always ends with an output node")


def _computed_without_grad(node: fx.Node) -> bool:
    return bool(node.meta.get("custom", {}).get(GRAD_DISABLED))


def _reads_saved_value(node: fx.Node) -> bool:
    """Whether `node` is autograd's detach of a saved output: read back in a differentiable
    backward, or saved for one only (a detach the user writes is read by their own ops)."""
    def reading(n: fx.Node) -> bool:
        return n.target is aten.detach.default and bool(n.meta.get("custom", {}).get(IN_AUTOGRAD_GRAD))

    return reading(node) or (node.target is aten.detach.default and bool(node.users)
                             and all(reading(user) for user in node.users))


def _arguments(node: fx.Node, env: dict[fx.Node, Any]) -> tuple[tuple, dict]:
    return map_aggregate((node.args, node.kwargs), lambda a: env[a] if isinstance(a, fx.Node) else a)


_SET_GRAD_ENABLED = torch.ops.higher_order.wrap_with_set_grad_enabled


def _is_submodule(traced: fx.GraphModule, node: fx.Node) -> bool:
    return node.op == "get_attr" and isinstance(getattr(traced, node.target, None), torch.nn.Module)


def _detached(argument: Any) -> Any:
    if isinstance(argument, fx.Proxy) and isinstance(value(argument), torch.Tensor):
        return emit(torch.detach, argument)
    return argument


def _append(node: fx.Node, target: Any, args: tuple, kwargs: dict, owners: list[torch.nn.Module],
            builder: GraphBuilder, last_before: fx.Node) -> Any:
    """Lower `node` and give the nodes appended after `last_before` its source and its name."""
    try:
        result = _lower(node, target, args, kwargs, owners, builder)
    except fx.proxy.TraceError:  # an option the lowering must read, which fx recorded as a size
        raise SizeOptionError(
            f"{op_name(target)} is given an option computed from a tensor's size (`x.shape[-1] // 2`), which "
            f"the fx tracer records rather than computes, at {source_location(node)}: write it as a number, or "
            "derive with tracer='export', which computes sizes") from None
    created = nodes_after(last_before)
    for new_node in created:
        new_node.stack_trace = node.stack_trace
    # The node standing for the traced value keeps the traced name (when it is a new node:
    # a lowering may also return an existing one, as `x.t()` does for a vector).
    if created and isinstance(result, fx.Proxy) and result.node is created[-1]:
        result.node._rename(_value_name(node.name))
    return result


def _value_name(name: str) -> str:
    """A traced node's name for its value: what an ATen backward op (`tanh_backward`, recorded by
    a function that differentiates itself) computes is a gradient, `tanh_grad`, of tanh's input,
    not a call of a backward kernel, which the derived code does not make."""
    return name.replace("backward", "grad")


def _lower(node: fx.Node, target: Any, args: tuple, kwargs: dict, owners: list[torch.nn.Module],
           builder: GraphBuilder) -> Any:
    if node.op == "get_attr":  # a buffer or a constant
        updated = builder.updated_state(node.target)
        if updated is not None:  # read again after the function changed it (a module run twice)
            return updated
        read = operator.attrgetter(node.target)
        owner = next(owner for owner in owners if _has_attribute(owner, node.target))
        return builder.attribute(node.target, read(owner))
    if target in _TRACED_THROUGH:
        return _through_aten_graph(node, args, kwargs, owners, builder)
    lowering = LOWERINGS.get(target)
    if lowering is not None:
        if node.op == "call_function" and node.target is builtins.getattr:
            result = lowering(args[0])
        else:
            result = lowering(*args, **kwargs)
        if result is not NotImplemented:  # a lowering may leave a spelling it does not own
            return result
    stuck = None
    if wants_decomposition(target, node, args, kwargs, builder):
        result, stuck = decompose(target, node, args, kwargs, builder,
                                  lambda graph_module, bindings: canonicalize(graph_module, bindings, builder, owners))
        if result is not None:
            return result
    result = _copied(node, args, kwargs, builder)
    if stuck is not None:
        result.node.meta[STUCK_ON] = stuck
    return result


def _copied(node: fx.Node, args: tuple, kwargs: dict, builder: GraphBuilder) -> fx.Proxy:
    """`node` copied as it is, spelled at torch level where torch has its name."""
    result = builder.create_proxy(node.op, _torch_level(node.target), args, kwargs, name=node.name)
    result.node.meta["fxgrad_source_target"] = traced_target(node)
    return result


def _reads_no_input(node: fx.Node, args: tuple, kwargs: dict) -> bool:
    """Whether `node` computes a constant: an op (not drawing random numbers) of no traced value
    but dtypes, which a derived graph fixes (`torch.zeros(4, 4)` under export, with the changes
    made to it in place, `m[:2] = 1`; `torch.arange(6.)[mask]`), or export's copy of a tensor
    literal (`torch.tensor(1.)`, a constant of its own)."""
    target = traced_target(node)
    if node.op not in ("call_function", "call_method") or _is_random(node, target):
        return False
    if isinstance(node.target, torch._ops.OpOverload) and not node.target._schema.returns:
        return False  # a check (`_linalg_check_errors` of an info the lowering drops), no value
    return not any(isinstance(leaf, fx.Proxy) and not isinstance(value(leaf), torch.dtype)
                   and not (target is aten.lift_fresh_copy and leaf.node.op == "get_attr")
                   for leaf in pytree.tree_leaves((args, kwargs)))


def _computed(node: fx.Node, args: tuple, kwargs: dict) -> Any:
    """`node` run on the values of its arguments, which hold no gradient."""
    args, kwargs = map_aggregate((args, kwargs), value)
    with torch.no_grad():
        if node.op == "call_method":
            return getattr(args[0], node.target)(*args[1:], **kwargs)
        return node.target(*args, **kwargs)


def _as_constant(argument: Any, node: fx.Node, builder: GraphBuilder) -> Any:
    """A constant tensor, where a traced value reads it, as an attribute of the graph: a copy, since
    the function may change the constant in place afterwards."""
    if not isinstance(argument, torch.Tensor):
        return argument
    name = f"_constant_{_value_name(node.name)}"  # named after the value reading it
    while name in builder.attributes:
        name += "_"
    return builder.attribute(name, argument.clone())


# ATen ops lowered through the graph of ATen ops make_fx records for them (as the "aten" tracer
# does): torch's recurrent layers, whose cells are matmuls and pointwise ops.
_TRACED_THROUGH = {aten.lstm, aten.gru, aten.rnn_tanh, aten.rnn_relu}


def _through_aten_graph(node: fx.Node, args: tuple, kwargs: dict, owners: list[torch.nn.Module],
                        builder: GraphBuilder) -> Any:
    graph_module, proxies, _ = aten_graph(node.target, args, kwargs)
    placeholders = [n for n in graph_module.graph.nodes if n.op == "placeholder"]
    return canonicalize(graph_module, dict(zip(placeholders, proxies)), builder, owners)


def _has_attribute(owner: torch.nn.Module, target: str) -> bool:
    try:
        operator.attrgetter(target)(owner)
        return True
    except AttributeError:
        return False


def _torch_level(target: Any) -> Any:
    """`torch.gt` for `aten.gt.Scalar`: the spelling generated code prints for an ATen op copied
    as it is, where torch has one of that name."""
    if isinstance(target, torch._ops.OpOverload):
        return getattr(torch, target.overloadpacket.__name__, target)
    return target


# Nodes a tracer adds to check its inputs or sizes, and `y.retain_grad()` (which keeps a
# non-leaf's `.grad` in eager autograd): they compute nothing the backward uses.
_CHECKS = {torch.ops.aten._assert_tensor_metadata, torch.ops.aten._assert_scalar, torch.ops.aten._assert_async,
           torch.ops.aten.sym_constrain_range_for_size, torch._assert, "Tensor.retain_grad"}


def _is_check(node: fx.Node) -> bool:
    return node.op in ("call_function", "call_method") and traced_target(node) in _CHECKS


# Torch functions and Tensor methods that draw random numbers.
RANDOM_FUNCTIONS = {torch.rand, torch.randn, torch.randint, torch.rand_like, torch.randn_like, torch.randint_like,
                    torch.randperm, torch.bernoulli, torch.multinomial, torch.normal, torch.poisson}
_RANDOM = RANDOM_FUNCTIONS | {f"Tensor.{name}" for name in (
    "bernoulli", "bernoulli_", "uniform_", "normal_", "random_", "exponential_", "geometric_", "cauchy_",
    "log_normal_", "multinomial")}


def refuse_randomness(name: str) -> None:
    raise RandomnessError(
        f"`{name}` draws random numbers; the backward recomputes the forward, which would draw other "
        "ones, so fxgrad refuses rather than derive a wrong gradient (pass the random tensor as an input, "
        "or use dropout with p=0 or in eval mode)"
    )


def _functional_target(node: fx.Node, kwargs: dict, env: dict[fx.Node, Any],
                       owners: list[torch.nn.Module]) -> tuple[Any, Any, tuple[list[fx.Node], list[fx.Node]]]:
    """The key `node` is lowered by, the traced value it changes in place (None if none), and
    the traced values that are that tensor and the views made from it, to be given its new
    value and to be made again from it (see `_check_change`).

    An in-place op (`y.add_(x)`, `y += x`, `inplace=True`) is lowered as its out-of-place twin
    (`add` for `add_`), and the changed value then stands for the result, as torch's
    functionalisation does: later reads of `y`, of an alias that is `y` itself, or of a view
    made from `y` (`y[0]`, `y.t()`) see the new value. A change of a slice or select of a tensor
    read afterwards (`y[..., 1:].copy_(x)`, as export records `y[..., 1:] = x`) is written back
    to it, as functionalisation does: the third of the traced values returned is that tensor.
    Refused where a value would differ from torch's: a change of an input, parameter or buffer
    (the caller would observe it; batch norm's running statistics aside, which no gradient
    reads), a change through another view whose base is read afterwards, and `out=`. Random
    ops are refused too."""
    target = traced_target(node)
    name = op_name(target)
    if _is_random(node, target):
        refuse_randomness(name)
    if kwargs.get("out") is not None:
        raise MutationError(
            f"`{name}` changes a tensor in place; fxgrad derives functions whose inputs and values do not "
            "change (write `y = x + 1` rather than `x.add_(1)`, `torch.where(mask, v, y)` rather than `y[mask] = v`)"
        )
    twin = _out_of_place_twin(node, target, env)
    if twin is None and kwargs.get("inplace") is not True:
        return target, None, ([], [], None)
    target = target if twin is None else twin
    changed = node.args[0] if node.args else None
    if not _is_tensor_node(changed, env):  # (a number changed "in place" is a new number)
        return target, None, ([], [], None)
    return target, changed, _check_change(node, name, changed, env, owners)


def _is_random(node: fx.Node, target: Any) -> bool:
    if target in _RANDOM:
        return True
    if not isinstance(node.target, torch._ops.OpOverload) or torch.Tag.nondeterministic_seeded not in node.target.tags:
        return False
    if target in _TRACED_THROUGH:  # recurrent layers draw numbers for dropout between layers only
        arguments = normalize_function(node.target, node.args, node.kwargs, normalize_to_only_use_kwargs=True).kwargs
        return arguments["dropout"] > 0 and arguments["train"]
    # (dropout's lowering tells when it draws numbers; `dropout_` is lowered as dropout)
    return target not in LOWERINGS and getattr(aten, target.__name__.rstrip("_"), None) not in LOWERINGS


_ITEM_ASSIGNMENTS = {operator.setitem, "Tensor.__setitem__"}


# Python's augmented assignments (`y += x`), in place on a tensor, and their out-of-place twins.
_AUGMENTED = {operator.iadd: operator.add, operator.isub: operator.sub, operator.imul: operator.mul,
              operator.itruediv: operator.truediv, operator.ifloordiv: operator.floordiv,
              operator.imod: operator.mod, operator.ipow: operator.pow, operator.imatmul: operator.matmul,
              operator.iand: operator.and_, operator.ior: operator.or_, operator.ixor: operator.xor,
              operator.ilshift: operator.lshift, operator.irshift: operator.rshift}


def _is_tensor_node(argument: Any, env: dict[fx.Node, Any]) -> bool:
    return isinstance(argument, fx.Node) and isinstance(value(env.get(argument)), torch.Tensor)


def _check_change(node: fx.Node, name: str, changed: Any, env: dict[fx.Node, Any],
                  owners: list[torch.nn.Module]) -> tuple[list[fx.Node], list[fx.Node], fx.Node | None]:
    """The traced values that are the tensor `changed` itself (`y`, `y.contiguous()`), and those
    that are views made from it, that `node` changes in place, and the tensor `changed` is a
    view of where that one is read afterwards (None if it is not); refuses the change unless,
    derived out of place (and written back to that tensor), every value agrees with torch's.

    Which values share elements is read from the example values, where a copy that a lowering
    writes as the value itself (`y.clone()`) shares them too: it keeps the old value, as in torch."""
    changed_value = value(env[changed])
    # (a view op in place changes what its tensor shows, not the elements its views share)
    only_metadata = _changes_only_metadata(node)
    # (env holds the nodes in graph order; only what is made from a copy, `y = x.clone()`, can be
    # a view of it, though the copy's example value may be its argument's)
    candidates = list(env)
    if _is_copy(changed, env):  # only what is made from the copy itself
        candidates = [other for other in candidates[candidates.index(changed):] if _made_from(other, changed)]
    sharing = [other for other in candidates if isinstance(other, fx.Node) and (
        other is changed or (not _is_copy(other, env) and _overlap(value(env[other]), changed_value)))]
    # The tensor itself: linked to it by ops lowered as their argument (`y.float()` of a float
    # tensor; `y` and the value of `y += x`, once derived), either way.
    aliases, linked, grew = {changed}, set(sharing), True
    while grew:
        grew = False
        for other in sharing:
            base = other.args[0] if other.args else None
            if (base in linked and (other in aliases) != (base in aliases) and env[other] is env[base]
                    and _shares_memory(other, env)):
                aliases |= {other, base}
                grew = True
    views = set()
    for other in sharing:  # (env holds the nodes in graph order: a view comes after its base)
        if other not in aliases and other.args and other.args[0] in aliases | views and _shares_memory(other, env):
            views.add(other)
    # Nodes before `node` are in env already (checks aside); every other user comes after it.
    read_later = [other for other in sharing if other is not changed and any(
        user is not node and user not in env and not _is_check(user) for user in other.users)]
    not_made_again = [other for other in read_later if other not in aliases | views]
    state = [other for other in sharing if other.op in ("placeholder", "get_attr")]
    if state and not {_state_memory(other, env, owners) for other in state} <= running_statistics(owners[0]):
        problem = "an input, parameter or buffer, which the caller would see changed"
    elif not_made_again and not only_metadata:
        base = changed.args[0] if changed.args else None
        if not (_is_tensor_node(base, env) and _shares_memory(changed, env)):
            problem = _read_afterwards(not_made_again[0])
        else:  # written back to its base, which its own check then decides about
            return ([other for other in sharing if other in aliases], [other for other in sharing if other in views],
                    base)
    else:
        if only_metadata:
            return [changed], [], None
        return [other for other in sharing if other in aliases], [other for other in sharing if other in views], None
    raise _refusal(name, problem)


def _read_afterwards(other: fx.Node) -> str:
    return f"a tensor that `{other.name}`, read afterwards, shares memory with"


def _refusal(name: str, problem: str) -> MutationError:
    return MutationError(
        f"`{name}` changes in place {problem}; fxgrad derives functions whose inputs do not change and whose "
        "views see the values they were made from (write `y = x + 1` rather than `x.add_(1)`, "
        "`F.relu(x)` rather than `F.relu(x, inplace=True)`)"
    )


def _state_memory(node: fx.Node, env: dict[fx.Node, Any], owners: list[torch.nn.Module]) -> int | None:
    """Where an input's, parameter's or buffer's elements live: for a buffer, its owner's, even
    after the function changed it (batch norm run twice updates its statistics twice)."""
    if node.op == "get_attr":
        owner = next((owner for owner in owners if _has_attribute(owner, node.target)), None)
        if owner is not None:
            return _memory(operator.attrgetter(node.target)(owner))
    return _memory(value(env[node]))


def _made_from(node: Any, base: fx.Node) -> bool:
    """Whether `node` is `base` or made from it through first arguments (`base[0].t()`)."""
    while isinstance(node, fx.Node):
        if node is base:
            return True
        node = node.args[0] if node.args else None
    return False


def _memory(example: Any) -> int | None:
    """Where a tensor's elements live (its storage), to tell views and aliases of one tensor."""
    if isinstance(example, torch.Tensor) and example.device.type != "meta" and example.untyped_storage().nbytes():
        return example.untyped_storage().data_ptr()
    return None


def _is_copy(node: fx.Node, env: dict[fx.Node, Any]) -> bool:
    """Whether `node` copies its argument (`clone`, or `contiguous` of a non-contiguous tensor),
    which lowerings may write as the argument itself, since the two are equal."""
    target = traced_target(node)
    if target in (torch.clone, "Tensor.clone", aten.clone, aten._to_copy):
        return True
    argument = value(env.get(node.args[0])) if node.args and isinstance(node.args[0], fx.Node) else None
    return target in ("Tensor.contiguous", aten.contiguous) and not (
        isinstance(argument, torch.Tensor) and argument.is_contiguous())


def _overlap(a: Any, b: torch.Tensor) -> bool:
    """Whether tensor `a` has an element in `b`'s memory (a chunk of a tensor has none in the
    other chunks)."""
    if _memory(a) is None or _memory(a) != _memory(b):
        return False
    if a.dtype != b.dtype:  # (elements of other sizes: taken to overlap)
        return True
    return bool((_elements(a) & _elements(b)).any())


def _elements(t: torch.Tensor) -> torch.Tensor:
    """Which elements of its storage `t` covers, as a mask of the storage."""
    mask = torch.zeros(t.untyped_storage().nbytes() // t.element_size(), dtype=torch.bool)
    mask.as_strided(t.shape, t.stride(), t.storage_offset()).fill_(True)
    return mask


def _check_same_kind(node: fx.Node, changed: Any, result: Any) -> None:
    """An in-place op keeps its tensor's shape and dtype (`y *= x` with a float64 `x` leaves a
    float32 `y` float32) where the out-of-place twin may promote or broadcast: refuse that."""
    before, after = value(changed), value(result)
    if after.dtype != before.dtype or (after.shape != before.shape and not _changes_only_metadata(node)):
        raise MutationError(
            f"`{op_name(traced_target(node))}` changes a {before.dtype} tensor of shape {tuple(before.shape)} in place "
            f"to a value computed as {after.dtype} of shape {tuple(after.shape)}; write it out of place with an "
            "explicit conversion"
        )


def _changes_only_metadata(node: fx.Node) -> bool:
    """Whether `node` is an in-place view op (`t_`, `squeeze_`, `transpose_`: tagged
    `inplace_view`), which changes the shape its tensor shows and no element."""
    if isinstance(node.target, torch._ops.OpOverload):
        return torch.Tag.inplace_view in node.target.tags
    packet = getattr(aten, op_name(traced_target(node)).rsplit(".", 1)[-1], None)
    return isinstance(packet, torch._ops.OpOverloadPacket) and any(
        torch.Tag.inplace_view in getattr(packet, overload).tags for overload in packet.overloads())


def _out_of_place_twin(node: fx.Node, target: Any, env: dict[fx.Node, Any]) -> Any:
    """For an in-place op, the key of its out-of-place twin (`Tensor.add` for `Tensor.add_`,
    `torch.relu` for `torch.relu_`, `aten.add` for `aten.add_`, `operator.add` for `y += x` on a
    tensor; itself where none is known); None for an op that changes nothing."""
    if target in _ITEM_ASSIGNMENTS:  # lowered as the value the tensor then has
        return operator.setitem
    if target in _AUGMENTED:  # in place on a tensor; on a number (a size), a new number
        return _AUGMENTED[target] if node.args and _is_tensor_node(node.args[0], env) else None
    if isinstance(node.target, torch._ops.OpOverload):
        schema = node.target._schema
        if not schema.is_mutable:
            return None
        first = schema.arguments[0].alias_info
        if (first is None or not first.is_write) and target in LOWERINGS:
            return None  # it writes other arguments, which its lowering records (batch norm's running statistics)
        return getattr(aten, target.__name__.rstrip("_"))
    name = target if isinstance(target, str) else getattr(target, "__name__", "")
    if getattr(operator, name, None) is target:  # `operator.and_` is `a & b`, not in place
        return None
    if not name.endswith("_") or name.endswith("__"):
        return None
    if isinstance(target, str):
        return target[:-1]
    for namespace in (torch, F):
        if getattr(namespace, name, None) is target and hasattr(namespace, name[:-1]):
            return getattr(namespace, name[:-1])
    return target


def _shares_memory(node: fx.Node, env: dict[fx.Node, Any]) -> bool:
    """Whether `node`'s value shares its first argument's memory: an ATen view op, or, as the
    example run shows, a view (`x.t()`, `x[0]`) or the argument itself (`x.contiguous()`,
    `x.float()` of a float tensor)."""
    if isinstance(node.target, torch._ops.OpOverload):
        schema = node.target._schema
        return not schema.is_mutable and bool(schema.returns) and schema.returns[0].alias_info is not None
    argument = node.args[0] if node.args else None
    if not isinstance(argument, fx.Node):
        return False
    example, base = value(env.get(node)), value(env.get(argument))
    if not isinstance(example, torch.Tensor) or not isinstance(base, torch.Tensor):
        return False
    return example._is_view() or example.untyped_storage().data_ptr() == base.untyped_storage().data_ptr()


def traced_target(node: fx.Node) -> Callable | str:
    """The key a traced node is looked up by in LOWERINGS: the function, `"Tensor.<name>"` for a
    method or attribute, the overload packet (`aten.add`) for an ATen overload."""
    if node.op == "call_method":
        return f"Tensor.{node.target}"
    if node.op == "call_function" and node.target is builtins.getattr and isinstance(node.args[1], str):
        return f"Tensor.{node.args[1]}"
    if isinstance(node.target, torch._ops.OpOverload):
        return node.target.overloadpacket
    return node.target
