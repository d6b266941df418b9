"""Rewriting a traced graph into canonical ops, refusing what cannot be derived faithfully."""

from __future__ import annotations

import builtins
import operator
from typing import Any, Callable

import torch
import torch.fx as fx
import torch.nn.functional as F
from torch.fx.node import map_aggregate

from ..errors import FxgradError, MutationError, RandomnessError, source_location
from ..graph import GraphBuilder, nodes_after, value
from .registry import LOWERINGS, aten, op_name


def canonicalize(traced: fx.GraphModule, bindings: dict[fx.Node, Any], builder: GraphBuilder,
                 owners: list[torch.nn.Module]) -> Any:
    """Append the body of `traced` to the builder's graph in canonical ops.

    `bindings` gives the value standing for each placeholder of `traced`, and for each get_attr
    node that reads a parameter; other get_attr nodes read from the first of `owners` that has
    the attribute. Returns the outputs, with the structure the traced function returns (a Proxy
    or a tuple of them).
    Nodes with no lowering are copied as they are: fine for values that carry no gradient
    (`x.shape`, `x > 0`); the reverse pass refuses them if a gradient must flow through them.
    """
    env: dict[fx.Node, Any] = dict(bindings)
    graph = builder.graph
    for node in traced.graph.nodes:
        if node in env or _is_check(node):
            continue
        args, kwargs = map_aggregate((node.args, node.kwargs), lambda a: env[a] if isinstance(a, fx.Node) else a)
        if node.op == "output":
            return args[0]
        last_before = graph._root.prev  # the new nodes are the ones appended after this
        try:
            result = _lower(node, _functional_target(node, kwargs, env), args, kwargs, owners, builder)
        except FxgradError as error:
            raise type(error)(f"{error}, at {source_location(node)}") from None
        created = nodes_after(last_before)
        for new_node in created:
            new_node.stack_trace = node.stack_trace
        # The node standing for the traced value keeps the traced name (when it is a new node:
        # a lowering may also return an existing one, as `x.t()` does for a vector).
        if created and isinstance(result, fx.Proxy) and result.node is created[-1]:
            result.node._rename(node.name)
        env[node] = result
    raise AssertionError("a traced graph always ends with an output node")


def _lower(node: fx.Node, target: Any, args: tuple, kwargs: dict, owners: list[torch.nn.Module],
           builder: GraphBuilder) -> Any:
    if node.op == "get_attr":  # a buffer or a constant
        read = operator.attrgetter(node.target)
        owner = next(owner for owner in owners if _has_attribute(owner, node.target))
        return builder.attribute(node.target, read(owner))
    lowering = LOWERINGS.get(target)
    if lowering is not None:
        if node.op == "call_function" and node.target is builtins.getattr:
            result = lowering(args[0])
        else:
            result = lowering(*args, **kwargs)
        if result is not NotImplemented:  # a lowering may leave a spelling it does not own
            return result
    result = builder.create_proxy(node.op, _torch_level(node.target), args, kwargs, name=node.name)
    result.node.meta["fxgrad_source_target"] = traced_target(node)
    return result


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


# Nodes a tracer adds to check its inputs or sizes: they compute nothing the backward uses.
_CHECKS = {torch.ops.aten._assert_tensor_metadata, torch.ops.aten._assert_scalar, torch.ops.aten._assert_async,
           torch.ops.aten.sym_constrain_range_for_size, torch._assert}


def _is_check(node: fx.Node) -> bool:
    return node.op == "call_function" and traced_target(node) in _CHECKS


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


def _functional_target(node: fx.Node, kwargs: dict, env: dict[fx.Node, Any]) -> Any:
    """The key `node` is lowered by: its traced target, or the out-of-place twin of an in-place
    op (`add` for `add_`) that changes a value nothing else reads, where the two agree.
    Refuses random ops, and in-place ops that would make a derived value differ from torch's."""
    target = traced_target(node)
    name = op_name(target)
    random = target in _RANDOM or (  # (dropout's lowering tells when it draws numbers)
        isinstance(node.target, torch._ops.OpOverload) and torch.Tag.nondeterministic_seeded in node.target.tags
        and target not in LOWERINGS
    )
    if random:
        refuse_randomness(name)
    twin = _out_of_place_twin(node, target)
    in_place = twin is not None
    changed = node.args[0] if node.args else None
    while isinstance(changed, fx.Node) and len(changed.users) == 1 and _shares_memory(changed, env):
        changed = changed.args[0]  # changing a view or alias (`x.t()`, `x.contiguous()`) changes its tensor
    fresh = (isinstance(changed, fx.Node) and changed.op not in ("placeholder", "get_attr")
             and len(changed.users) == 1)
    if kwargs.get("out") is not None or target is operator.setitem or ((in_place or kwargs.get("inplace") is True)
                                                                        and not fresh):
        raise MutationError(
            f"`{name}` changes a tensor in place; fxgrad derives functions whose inputs and values do not "
            "change (write `y = x + 1` rather than `x.add_(1)`, `F.relu(x)` rather than `F.relu(x, inplace=True)`)"
        )
    return twin if in_place else target


def _out_of_place_twin(node: fx.Node, target: Any) -> Any:
    """For an in-place op, the key of its out-of-place twin (`Tensor.add` for `Tensor.add_`,
    `torch.relu` for `torch.relu_`, `aten.add` for `aten.add_`; itself where none is known);
    None for an op that changes nothing."""
    if isinstance(node.target, torch._ops.OpOverload):
        return getattr(aten, target.__name__.rstrip("_")) if node.target._schema.is_mutable else None
    name = target if isinstance(target, str) else getattr(target, "__name__", "")
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
