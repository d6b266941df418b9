"""The registries of canonical ops and of lowerings, and the helpers lowerings share."""

from __future__ import annotations

import inspect
import operator
from typing import Any, Callable

import torch
import torch.fx as fx
import torch.nn.functional as F
from torch.fx.node import map_aggregate

from ..errors import UnsupportedArgumentError
from ..graph import node_of, value

aten = torch.ops.aten

# The canonical op set: an op (a torch callable) to its writer, which takes the op's canonical
# arguments and emits exactly one node, spelled as generated code should read.
OPS: dict[Callable, Callable] = {}

# Every traced spelling fxgrad understands, by traced target; Tensor methods and attributes are
# keyed "Tensor.<name>", ATen overloads by their packet (`aten.add`).
LOWERINGS: dict[Callable | str, Callable] = {}

_SIGNATURES: dict[Callable, inspect.Signature] = {}


def define(ops: dict[Callable, Callable]) -> None:
    """Add canonical ops: each op to the writer that spells it."""
    for op, write in ops.items():
        if op in OPS:
            raise AssertionError(f"{op_name(op)} is defined twice")
        OPS[op] = write
        _SIGNATURES[op] = inspect.signature(write)


def emit(op: Callable, *args: Any) -> fx.Proxy:
    """Append canonical `op` applied to `args` (Proxies or constants) and return its Proxy."""
    bound = _SIGNATURES[op].bind(*args)
    result = OPS[op](*bound.args)
    result.node.meta["fxgrad_op"] = op
    result.node.meta["fxgrad_args"] = tuple(map_aggregate(bound.args, node_of))
    return result


def lowers(*targets: Callable | str):
    """Register a lowering for the traced `targets` (functions, operators, "Tensor.<name>").

    A lowering returns the Proxy of the value (a tuple of them for an op with several results,
    such as `aten.native_layer_norm`), or NotImplemented for a use of the spelling it does not
    handle (`operator.getitem` on a tuple of sizes), which is then copied as it is.
    """

    def register(lowering: Callable) -> Callable:
        for target in targets:
            if target in LOWERINGS:
                raise AssertionError(f"{op_name(target)} is lowered twice")
            LOWERINGS[target] = lowering
        return lowering

    return register


def lowers_directly(op: Callable, *targets: Callable | str) -> None:
    """Spellings whose arguments are already the canonical op's arguments."""
    lowers(*targets)(lambda *args: emit(op, *args))


def unsupported_argument(what: str) -> None:
    raise UnsupportedArgumentError(f"{what} is not supported")


def call(fn, *args, **kwargs):
    """`fn(*args, **kwargs)` recorded as written, without the defaults a traced call adds."""
    return args[0].tracer.create_proxy("call_function", fn, args, kwargs)


def options_given(defaults: dict, **options) -> dict:
    """The keyword arguments that differ from their `defaults`, a tuple of one repeated value
    written as that value (`stride=2` for `(2, 2)`)."""
    spelled = {}
    for name, option in options.items():
        if isinstance(option, tuple) and len(set(option)) == 1:
            option = option[0]
        default = defaults[name]
        if isinstance(default, tuple) and len(set(default)) == 1:
            default = default[0]
        if option != default:
            spelled[name] = option
    return spelled


def given(**options):
    """The keyword arguments that are given (not None), for writers: `F.layer_norm(x, (4,), eps=1e-05)`."""
    return {key: option for key, option in options.items() if option is not None}


def splat(method, sizes):
    """`x.reshape(2, 3)` for a tuple of sizes; `x.reshape(())` and `x.reshape(y.shape)` as they are."""
    return method(*sizes) if isinstance(sizes, tuple) and sizes else method(sizes)


def sizes(sizes: tuple) -> Any:
    """Method varargs `x.view(2, 3)`, `x.view((2, 3))` and `x.view(y.shape)` alike: a tuple, or
    the Proxy of a size read at run time."""
    if len(sizes) == 1 and isinstance(sizes[0], (tuple, list, torch.Size, fx.Proxy)):
        sizes = sizes[0]
    return sizes if isinstance(sizes, fx.Proxy) else tuple(sizes)


def is_constant(x: Any, *constants: Any) -> bool:
    """`x in constants` for a Python constant; False for a Proxy, which has no value yet."""
    return not isinstance(x, fx.Proxy) and any(x is c or (c is not None and x == c) for c in constants)


def static_dim(dim: Any) -> Any:
    """A dim argument as a constant. A dim computed in the function (`x.ndim - 1`) depends only
    on ranks, which a derived graph fixes, so its example value holds for every call."""
    if isinstance(dim, (tuple, list)):
        return tuple(static_dim(d) for d in dim)
    return value(dim) if isinstance(dim, fx.Proxy) else dim


def dim_in_range(input, dim) -> int:
    """`dim` as a constant in 0..ndim-1 (0 for a 0-d tensor)."""
    return static_dim(dim) % max(value(input).ndim, 1)


def op_name(op: Callable) -> str:
    """How error messages and reports name a canonical op or a traced target."""
    if isinstance(op, str):
        return op
    if isinstance(op, (torch._ops.OpOverloadPacket, torch._ops.OpOverload)):
        return str(op)  # aten.matmul
    name = getattr(op, "__name__", None)
    if id(op) not in _PUBLIC_NAMES and name and getattr(torch, name, None) is op:
        return f"torch.{name}"  # a private torch function (torch._safe_softmax), which ATen records
    return _PUBLIC_NAMES.get(id(op)) or getattr(op, "__qualname__", repr(op))


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
