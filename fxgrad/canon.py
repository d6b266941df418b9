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

from .errors import FxgradError, source_location
from .graph import GraphBuilder, node_of, nodes_after, value

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


# ---------------------------------------------------------------------------------------------
# Rewriting a traced graph.


def canonicalize(traced: fx.GraphModule, inputs: list[fx.Proxy], builder: GraphBuilder) -> Any:
    """Append the body of `traced` to the builder's graph in canonical ops.

    `inputs` are the Proxies standing for the traced graph's placeholders. Returns the outputs,
    with the structure the traced function returns (a Proxy or a tuple of them).
    Nodes with no lowering are copied as they are: fine for values that carry no gradient
    (`x.shape`, `x > 0`); the reverse pass refuses them if a gradient must flow through them.
    """
    placeholders = [node for node in traced.graph.nodes if node.op == "placeholder"]
    env: dict[fx.Node, Any] = dict(zip(placeholders, inputs))
    graph = builder.graph
    for node in traced.graph.nodes:
        if node.op == "placeholder":
            continue
        args, kwargs = map_aggregate((node.args, node.kwargs), lambda a: env[a] if isinstance(a, fx.Node) else a)
        if node.op == "output":
            return args[0]
        last_before = graph._root.prev  # the new nodes are the ones appended after this
        lowering = LOWERINGS.get(traced_target(node))
        try:
            if lowering is None:
                result = builder.create_proxy(node.op, node.target, args, kwargs, name=node.name)
                result.node.meta["fxgrad_source_target"] = traced_target(node)
            elif node.op == "call_function" and node.target is builtins.getattr:
                result = lowering(args[0])
            else:
                result = lowering(*args, **kwargs)
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


def traced_target(node: fx.Node) -> Callable | str:
    """The key a traced node is looked up by in LOWERINGS."""
    if node.op == "call_method":
        return f"Tensor.{node.target}"
    if node.op == "call_function" and node.target is builtins.getattr and isinstance(node.args[1], str):
        return f"Tensor.{node.args[1]}"
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
