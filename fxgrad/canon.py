"""Canonical ops: every spelling of an op a trace can record, lowered onto one small op set.

A traced graph says the same thing many ways: `torch.matmul(a, b)`, `a @ b`, `a.mm(b)`,
`F.linear(x, w)`; `x.t()`, `x.T`, `x.mT`, `x.transpose(0, 1)`. This module rewrites each node
into *canonical ops* (OPS below), so that a backward rule is written once per canonical op and
never sees an alias, a keyword argument or a default.

- A canonical op is identified by a torch callable (`torch.matmul`, `torch.softmax`, ...). Its
  entry in OPS is a function whose parameters are the op's canonical arguments and whose body
  writes the op the way generated code should read (`input @ other`, `input.softmax(dim)`).
- A lowering (LOWERINGS) maps one traced spelling onto canonical ops, in the style of
  `torch._decomp`: a plain function with the spelling's own signature, calling `emit`.

Every canonical node carries its op in `node.meta["fxgrad_op"]` and its bound arguments in
`node.meta["fxgrad_args"]`; the reverse pass reads those two and nothing else.
"""

from __future__ import annotations

import builtins
import inspect
import operator
from typing import Any, Callable

import torch
import torch.fx as fx
import torch.nn.functional as F
from torch.fx.node import map_aggregate

from .errors import FxgradError, MutationError, RandomnessError, source_location
from .graph import GraphBuilder, node_of, nodes_after, value

aten = torch.ops.aten

# ---------------------------------------------------------------------------------------------
# The canonical op set. Each writer takes the op's canonical arguments and emits exactly one node.

OPS: dict[Callable, Callable] = {
    torch.matmul: lambda input, other: input @ other,  # both operands at least 2-D
    torch.transpose: lambda input, dim0, dim1: _write_transpose(input, dim0, dim1),
    torch.permute: lambda input, dims: _splat(input.permute, dims),
    torch.add: lambda input, other: input + other,
    torch.sub: lambda input, other: input - other,
    torch.mul: lambda input, other: input * other,
    torch.div: lambda input, other: input / other,
    torch.neg: lambda input: -input,
    torch.pow: lambda input, exponent: input**exponent,
    torch.exp: lambda input: torch.exp(input),
    torch.log: lambda input: torch.log(input),
    torch.sqrt: lambda input: torch.sqrt(input),
    torch.rsqrt: lambda input: torch.rsqrt(input),
    torch.abs: lambda input: torch.abs(input),
    torch.tanh: lambda input: torch.tanh(input),
    torch.sigmoid: lambda input: torch.sigmoid(input),
    torch.relu: lambda input: torch.relu(input),
    F.silu: lambda input: _call(F.silu, input),
    F.gelu: lambda input, approximate: F.gelu(input, approximate=approximate),
    torch.softmax: lambda input, dim: input.softmax(dim),
    torch.log_softmax: lambda input, dim: input.log_softmax(dim),
    # dim: an int or a tuple of ints, or None for a reduction over every dim (keepdim False)
    torch.sum: lambda input, dim, keepdim: input.sum() if dim is None else input.sum(dim, keepdim=keepdim),
    torch.mean: lambda input, dim, keepdim: input.mean() if dim is None else input.mean(dim, keepdim=keepdim),
    torch.reshape: lambda input, shape: _splat(input.reshape, shape),
    torch.flatten: lambda input, start_dim, end_dim: input.flatten(start_dim, end_dim),
    torch.unsqueeze: lambda input, dim: input.unsqueeze(dim),
    torch.squeeze: lambda input, dim: input.squeeze() if dim is None else input.squeeze(dim),
    torch.Tensor.expand: lambda input, size: _splat(input.expand, size),
    torch.Tensor.expand_as: lambda input, other: input.expand_as(other),
    torch.detach: lambda input: input.detach(),
}


def _call(fn, *args, **kwargs):
    """`fn(*args, **kwargs)` recorded as written, without the defaults a traced call adds."""
    return args[0].tracer.create_proxy("call_function", fn, args, kwargs)


def _splat(method, sizes):
    """`x.reshape(2, 3)` for a tuple of sizes; `x.reshape(())` and `x.reshape(y.shape)` as they are."""
    return method(*sizes) if isinstance(sizes, tuple) and sizes else method(sizes)


def _write_transpose(input, dim0, dim1):
    ndim = value(input).ndim
    if ndim >= 2 and {dim0 % ndim, dim1 % ndim} == {ndim - 2, ndim - 1}:
        return input.mT
    return input.transpose(dim0, dim1)


_SIGNATURES = {op: inspect.signature(write) for op, write in OPS.items()}


def emit(op: Callable, *args: Any) -> fx.Proxy:
    """Append canonical `op` applied to `args` (Proxies or constants) and return its Proxy."""
    bound = _SIGNATURES[op].bind(*args)
    result = OPS[op](*bound.args)
    result.node.meta["fxgrad_op"] = op
    result.node.meta["fxgrad_args"] = tuple(map_aggregate(bound.args, node_of))
    return result


def op_name(op: Callable) -> str:
    """How error messages and reports name a canonical op or a traced target."""
    if isinstance(op, str):
        return op
    if isinstance(op, (torch._ops.OpOverloadPacket, torch._ops.OpOverload)):
        return str(op)  # aten.matmul
    return _PUBLIC_NAMES.get(id(op)) or getattr(op, "__qualname__", repr(op))


# ---------------------------------------------------------------------------------------------
# Lowerings: every traced spelling fxgrad understands. Keys are the traced targets; Tensor
# methods and attributes are keyed as the strings "Tensor.<name>".

LOWERINGS: dict[Callable | str, Callable] = {}


def lowers(*targets: Callable | str):
    """Register a lowering for the traced `targets` (functions, operators, "Tensor.<name>")."""

    def register(lowering: Callable) -> Callable:
        for target in targets:
            if target in LOWERINGS:
                raise AssertionError(f"{op_name(target)} is lowered twice")
            LOWERINGS[target] = lowering
        return lowering

    return register


def _lowers_directly(op: Callable, *targets: Callable | str) -> None:
    """Spellings whose arguments are already the canonical op's arguments."""
    lowers(*targets)(lambda *args: emit(op, *args))


def _unsupported_argument(what: str) -> None:
    raise FxgradError(f"{what} is not supported")


def _sizes(sizes: tuple) -> Any:
    """Method varargs `x.view(2, 3)`, `x.view((2, 3))` and `x.view(y.shape)` alike: a tuple, or
    the Proxy of a size read at run time."""
    if len(sizes) == 1 and isinstance(sizes[0], (tuple, list, torch.Size, fx.Proxy)):
        sizes = sizes[0]
    return sizes if isinstance(sizes, fx.Proxy) else tuple(sizes)


def _dim(dim: Any) -> Any:
    """A dim argument as a constant. A dim computed in the function (`x.ndim - 1`) depends only
    on ranks, which a derived graph fixes, so its example value holds for every call."""
    if isinstance(dim, (tuple, list)):
        return tuple(_dim(d) for d in dim)
    return value(dim) if isinstance(dim, fx.Proxy) else dim


@lowers(torch.matmul, operator.matmul, "Tensor.matmul", torch.mm, "Tensor.mm", torch.bmm, "Tensor.bmm")
def _matmul(input, other):
    # 1-D operands are promoted to matrices here, as torch.matmul does, so that the matmul rule
    # only ever sees matrices and batches of them.
    input_ndim, other_ndim = value(input).ndim, value(other).ndim
    if input_ndim == 1 and other_ndim == 1:
        return emit(torch.sum, emit(torch.mul, input, other), None, False)
    if input_ndim == 1:
        return emit(torch.squeeze, emit(torch.matmul, emit(torch.unsqueeze, input, 0), other), -2)
    if other_ndim == 1:
        return emit(torch.squeeze, emit(torch.matmul, input, emit(torch.unsqueeze, other, -1)), -1)
    return emit(torch.matmul, input, other)


@lowers(F.linear)
def _linear(input, weight, bias=None):
    if value(weight).ndim == 2:
        weight = emit(torch.transpose, weight, 0, 1)
    out = _matmul(input, weight)
    return out if bias is None else emit(torch.add, out, bias)


@lowers(torch.transpose, "Tensor.transpose", torch.swapaxes, "Tensor.swapaxes", torch.swapdims, "Tensor.swapdims")
def _transpose(input, dim0, dim1):
    return emit(torch.transpose, input, _dim(dim0), _dim(dim1))


@lowers(torch.t, "Tensor.t")
def _t(input):
    return input if value(input).ndim < 2 else emit(torch.transpose, input, 0, 1)


@lowers("Tensor.T")
def _T(input):
    ndim = value(input).ndim
    if ndim < 2:
        return input
    return emit(torch.transpose, input, 0, 1) if ndim == 2 else emit(torch.permute, input, tuple(reversed(range(ndim))))


@lowers("Tensor.mT")
def _mT(input):
    return emit(torch.transpose, input, -2, -1)


@lowers(torch.permute)
def _permute(input, dims):
    return emit(torch.permute, input, _dim(tuple(dims)))


@lowers("Tensor.permute")
def _permute_method(input, *dims):
    return emit(torch.permute, input, _dim(_sizes(dims)))


@lowers(torch.add, operator.add, "Tensor.add")
def _add(input, other, *, alpha=1):
    return emit(torch.add, input, other if alpha == 1 else emit(torch.mul, other, alpha))


@lowers(torch.sub, torch.subtract, operator.sub, "Tensor.sub", "Tensor.subtract")
def _sub(input, other, *, alpha=1):
    return emit(torch.sub, input, other if alpha == 1 else emit(torch.mul, other, alpha))


@lowers(torch.reciprocal, "Tensor.reciprocal", aten.reciprocal)
def _reciprocal(input):
    return emit(torch.div, 1, input)


@lowers(torch.rsub)
def _rsub(input, other, *, alpha=1):
    return _sub(other, input, alpha=alpha)


_lowers_directly(torch.mul, torch.mul, torch.multiply, operator.mul, "Tensor.mul", "Tensor.multiply")


@lowers(torch.div, torch.divide, torch.true_divide, operator.truediv, "Tensor.div", "Tensor.divide",
        "Tensor.true_divide")
def _div(input, other, *, rounding_mode=None):
    if rounding_mode is not None:
        _unsupported_argument(f"div(rounding_mode={rounding_mode!r}) (piecewise constant: its gradient is zero)")
    return emit(torch.div, input, other)


_lowers_directly(torch.neg, torch.neg, torch.negative, operator.neg, "Tensor.neg", "Tensor.negative")
_lowers_directly(torch.pow, torch.pow, operator.pow, "Tensor.pow")


@lowers(torch.square, "Tensor.square")
def _square(input):
    return emit(torch.pow, input, 2)


_lowers_directly(torch.exp, torch.exp, "Tensor.exp")
_lowers_directly(torch.log, torch.log, "Tensor.log")
_lowers_directly(torch.sqrt, torch.sqrt, "Tensor.sqrt")
_lowers_directly(torch.rsqrt, torch.rsqrt, "Tensor.rsqrt")
_lowers_directly(torch.abs, torch.abs, torch.absolute, operator.abs, "Tensor.abs", "Tensor.absolute")
_lowers_directly(torch.tanh, torch.tanh, "Tensor.tanh")
_lowers_directly(torch.sigmoid, torch.sigmoid, "Tensor.sigmoid")
_lowers_directly(torch.relu, torch.relu, "Tensor.relu")


@lowers(F.relu)
def _relu(input, inplace=False):
    return emit(torch.relu, input)


@lowers(F.silu)
def _silu(input, inplace=False):
    return emit(F.silu, input)


@lowers(F.gelu)
def _gelu(input, approximate="none"):
    if approximate not in ("none", "tanh"):
        _unsupported_argument(f"gelu(approximate={approximate!r})")
    return emit(F.gelu, input, approximate)


def _softmax_lowering(op: Callable) -> Callable:
    def lowering(input, dim=None, _stacklevel=3, dtype=None):
        if dim is None:
            _unsupported_argument(f"{op.__name__} without `dim` (its implicit dim is deprecated)")
        if dtype is not None:
            _unsupported_argument(f"{op.__name__}(dtype=...)")
        return emit(op, input, _dim(dim))

    return lowering


lowers(torch.softmax, F.softmax, "Tensor.softmax")(_softmax_lowering(torch.softmax))
lowers(torch.log_softmax, F.log_softmax, "Tensor.log_softmax")(_softmax_lowering(torch.log_softmax))


def _reduction_lowering(op: Callable) -> Callable:
    def lowering(input, dim=None, keepdim=False, *, dtype=None):
        if dtype is not None:
            _unsupported_argument(f"{op.__name__}(dtype=...)")
        dim = _dim(dim)
        if dim in (None, ()) and keepdim:
            dim = tuple(range(value(input).ndim))
        elif dim == ():
            dim = None
        return emit(op, input, dim, keepdim if dim is not None else False)

    return lowering


lowers(torch.sum, "Tensor.sum")(_reduction_lowering(torch.sum))
lowers(torch.mean, "Tensor.mean")(_reduction_lowering(torch.mean))


@lowers(torch.reshape)
def _reshape(input, shape):
    return emit(torch.reshape, input, _sizes((shape,)))


@lowers("Tensor.reshape", "Tensor.view")
def _reshape_method(input, *shape):
    if len(shape) == 1 and isinstance(shape[0], torch.dtype):
        _unsupported_argument("view(dtype) (a reinterpretation of the bits, not differentiable)")
    return emit(torch.reshape, input, _sizes(shape))


@lowers(torch.flatten, "Tensor.flatten")
def _flatten(input, start_dim=0, end_dim=-1):
    return emit(torch.flatten, input, _dim(start_dim), _dim(end_dim))


@lowers(torch.unsqueeze, "Tensor.unsqueeze")
def _unsqueeze(input, dim):
    return emit(torch.unsqueeze, input, _dim(dim))


@lowers(torch.squeeze, "Tensor.squeeze")
def _squeeze(input, dim=None):
    return emit(torch.squeeze, input, _dim(dim))


@lowers("Tensor.expand")
def _expand(input, *size):
    return emit(torch.Tensor.expand, input, _sizes(size))


@lowers(torch.broadcast_to)
def _broadcast_to(input, size):
    return emit(torch.Tensor.expand, input, _sizes((size,)))


_lowers_directly(torch.Tensor.expand_as, "Tensor.expand_as")
_lowers_directly(torch.detach, torch.detach, "Tensor.detach")


@lowers(torch.clone, "Tensor.clone", aten.clone, "Tensor.contiguous", aten.contiguous)
def _copy(input, *, memory_format=None):
    # a copy, or a copy in another memory layout, has the values it copies: to a derived
    # function, which never writes to a tensor, it is the value itself
    return input


@lowers(F.dropout, F.dropout1d, F.dropout2d, F.dropout3d, F.alpha_dropout, F.feature_alpha_dropout)
def _dropout(input, p=0.5, training=True, inplace=False):
    if training and p > 0:
        raise RandomnessError(
            f"dropout with p={p} in training mode draws random numbers; the backward recomputes the forward, "
            "which would drop other elements (use p=0 or eval mode, or pass the mask as an input)"
        )
    return input


# ---------------------------------------------------------------------------------------------
# ATen spellings, as torch.export (high-level ATen) and make_fx (low-level ATen) record them.
# Their arguments follow the op schemas (`self` first, `alpha` keyword-only), which the
# lowerings above already take; the ones below differ.

lowers(aten.matmul, aten.mm, aten.bmm, aten.mv, aten.dot)(_matmul)
lowers(aten.linear)(_linear)
lowers(aten.t)(_t)
lowers(aten.numpy_T)(_T)
lowers(aten.mT)(_mT)
lowers(aten.transpose, aten.swapaxes, aten.swapdims)(_transpose)
lowers(aten.permute)(_permute)
lowers(aten.add)(_add)
lowers(aten.sub, aten.subtract)(_sub)
lowers(aten.rsub)(_rsub)
lowers(aten.div, aten.divide, aten.true_divide)(_div)
lowers(aten.square)(_square)
lowers(aten.silu)(_silu)
lowers(aten.gelu)(_gelu)
lowers(aten.sum)(_reduction_lowering(torch.sum))
lowers(aten.mean)(_reduction_lowering(torch.mean))
lowers(aten.view, aten.reshape, aten._unsafe_view)(_reshape)
lowers(aten.flatten)(_flatten)
lowers(aten.unsqueeze)(_unsqueeze)
lowers(aten.squeeze)(_squeeze)
for _op, _packet in [(torch.mul, aten.mul), (torch.mul, aten.multiply), (torch.neg, aten.neg),
                     (torch.neg, aten.negative), (torch.abs, aten.absolute), (torch.Tensor.expand_as, aten.expand_as), (torch.pow, aten.pow), (torch.exp, aten.exp),
                     (torch.log, aten.log), (torch.sqrt, aten.sqrt), (torch.rsqrt, aten.rsqrt), (torch.abs, aten.abs),
                     (torch.tanh, aten.tanh), (torch.sigmoid, aten.sigmoid), (torch.relu, aten.relu),
                     (torch.detach, aten.detach)]:
    _lowers_directly(_op, _packet)


@lowers(aten.addmm)
def _addmm(input, mat1, mat2, *, beta=1, alpha=1):
    product = _matmul(mat1, mat2)
    if alpha != 1:
        product = emit(torch.mul, product, alpha)
    return emit(torch.add, input if beta == 1 else emit(torch.mul, input, beta), product)


def _aten_softmax_lowering(op: Callable) -> Callable:
    def lowering(input, dim, dtype_or_half_to_float=None):
        # softmax.int takes a dtype, _softmax a half_to_float flag: both must be off
        if dtype_or_half_to_float not in (None, False):
            _unsupported_argument(f"{op.__name__} to another dtype")
        return emit(op, input, _dim(dim))

    return lowering


lowers(aten.softmax, aten._softmax)(_aten_softmax_lowering(torch.softmax))
lowers(aten.log_softmax, aten._log_softmax)(_aten_softmax_lowering(torch.log_softmax))


@lowers(aten.expand)
def _aten_expand(input, size, *, implicit=False):
    return emit(torch.Tensor.expand, input, _sizes((size,)))


lowers(aten.broadcast_to)(_broadcast_to)


@lowers(aten.dropout, aten.feature_dropout, aten.alpha_dropout, aten.feature_alpha_dropout)
def _aten_dropout(input, p, train):
    return _dropout(input, p, train)


# ---------------------------------------------------------------------------------------------
# Rewriting a traced graph.


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
            result = _lower(node, _functional_target(node, kwargs), args, kwargs, owners, builder)
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
            return lowering(args[0])
        return lowering(*args, **kwargs)
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


def _functional_target(node: fx.Node, kwargs: dict) -> Any:
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
    in_place = (isinstance(target, str) and target.endswith("_") and not target.endswith("__")) or (
        isinstance(node.target, torch._ops.OpOverload) and node.target._schema.is_mutable
    )
    changed = node.args[0] if node.args else None
    fresh = (isinstance(changed, fx.Node) and changed.op not in ("placeholder", "get_attr")
             and len(changed.users) == 1)
    if kwargs.get("out") is not None or target is operator.setitem or ((in_place or kwargs.get("inplace") is True)
                                                                        and not fresh):
        raise MutationError(
            f"`{name}` changes a tensor in place; fxgrad derives functions whose inputs and values do not "
            "change (write `y = x + 1` rather than `x.add_(1)`, `F.relu(x)` rather than `F.relu(x, inplace=True)`)"
        )
    if not in_place:
        return target
    if isinstance(target, str):
        return target[:-1]
    return getattr(aten, target.__name__.rstrip("_"))


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


def _public_names() -> dict[int, str]:
    """Public names of torch callables by identity (builtins that compare equal can still be
    different functions), the first namespace listed winning; within one, the name the callable
    calls itself."""
    names: dict[int, str] = {}
    for prefix, namespace in [("torch", torch), ("torch.nn.functional", F), ("torch.fft", torch.fft),
                              ("torch.linalg", torch.linalg), ("torch.special", torch.special),
                              ("torch.Tensor", torch.Tensor), ("operator", operator)]:
        found: dict[int, str] = {}
        for name in dir(namespace):
            obj = getattr(namespace, name, None)
            if callable(obj) and not name.startswith("_"):
                if id(obj) not in found or name == getattr(obj, "__name__", None):
                    found[id(obj)] = f"{prefix}.{name}"
        for key, name in found.items():
            names.setdefault(key, name)
    return names


_PUBLIC_NAMES = _public_names()


def supported_ops() -> list[str]:
    """Every traced spelling fxgrad can differentiate, by name."""
    return sorted(op_name(target) for target in LOWERINGS)
