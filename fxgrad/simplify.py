"""Algebraic simplification of a derived graph: a table of rewrites run to a fixpoint.

Each entry of REWRITES is a pattern over graph nodes, a replacement and, as its name, the
one-line math it applies (`(xᵀ)ᵀ → x`). `simplify` applies the table until nothing matches,
alternating with common-subexpression and dead-code elimination, in the manner of Tangent's
optimizer.

Zeros are symbolic. A value proven zero (`x - x`, `softmax(x).sum(dim) - 1`) becomes a *zero
node* that runs nothing; zeros propagate through linear ops (`0·x → 0`, `0ᵀ → 0`) and vanish in
sums (`x + 0 → x`). One survives only as a returned gradient, where `finish` writes it as
`torch.zeros_like(input)`. A 0 written in the user's code is a number, not a zero node: torch
multiplies by it, and 0·∞ is NaN. The user's forward values are computed as written: rewrites
that regroup arithmetic or cancel values (`x - x → 0`) apply to the backward's own algebra only.

A replacement may have a smaller shape than the node it replaces (`g·1 → g` with `g` 0-d)
only where every user broadcasts it back to the same result; `_fits` checks that, so a rewrite
never changes what the graph computes.
"""

from __future__ import annotations

import inspect
import math
import numbers
import operator
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
import torch.fx as fx
import torch.nn.functional as F
from torch.fx.node import map_aggregate

from .graph import DERIVED_FROM, FORWARD, GRADIENT_OF, USER_NAMED, GraphBuilder, evaluate, is_tensor, remove_dead_code, value

# ---------------------------------------------------------------------------------------------
# A uniform view of nodes: an op name and positional arguments, whatever the spelling.

_OPERATORS = {operator.add: "add", operator.sub: "sub", operator.mul: "mul", operator.truediv: "div",
              operator.neg: "neg", operator.matmul: "matmul", operator.pow: "pow"}
_FUNCTIONS = {fn: fn.__name__ for fn in (torch.tanh, torch.sigmoid, torch.exp, torch.log, torch.sqrt, torch.rsqrt,
                                          torch.abs, torch.relu, torch.sign, torch.erf, torch.where,
                                          torch.zeros_like, F.silu, F.gelu, F.smooth_l1_loss,
                                          F.binary_cross_entropy_with_logits)}
# Ops whose result has the shape of their (broadcast) operands (the losses: unreduced, as canonical ops are).
_SHAPE_PRESERVING = {"add", "sub", "mul", "div", "neg", "pow", "tanh", "sigmoid", "exp", "log", "sqrt", "rsqrt",
                     "abs", "relu", "sign", "erf", "silu", "gelu", "where", "softmax", "log_softmax", "masked_fill",
                     "smooth_l1_loss", "binary_cross_entropy_with_logits"}
# Argument names of the ops the rewrites look into, to bind keyword arguments and defaults.
_SIGNATURES = {
    name: inspect.signature(stub) for name, stub in {
        "sum": lambda input, dim=None, keepdim=False: None,
        "mean": lambda input, dim=None, keepdim=False: None,
        "softmax": lambda input, dim: None,
        "transpose": lambda input, dim0, dim1: None,
        "expand_as": lambda input, other: None,
        "where": lambda condition, input, other: None,
    }.items()
}


def zero() -> None:
    """The target of a zero node: a value known to be all zeros, that `finish` removes."""
    raise AssertionError("a symbolic zero was left in a derived graph")


def op_of(node: Any) -> str | None:
    """The op a node computes (`"mul"`, `"mT"`, `"sum"`, ...), None for non-nodes."""
    if not isinstance(node, fx.Node):
        return None
    if node.op == "call_method":
        return node.target
    if node.op == "call_function":
        if node.target is zero:
            return "zero"
        if node.target is getattr:
            return node.args[1]
        return _OPERATORS.get(node.target) or _FUNCTIONS.get(node.target)
    return None


def args_of(node: fx.Node) -> tuple | None:
    """A node's arguments, positional, with defaults filled in for the ops in _SIGNATURES."""
    if node.op == "call_function" and node.target is getattr:  # x.mT, x.shape: the attribute is the op
        return (node.args[0],)
    signature = _SIGNATURES.get(op_of(node))
    if signature is None:
        return tuple(node.args)
    try:
        bound = signature.bind(*node.args, **node.kwargs)
    except TypeError:  # another overload (`torch.where(c)`): no pattern here matches it
        return None
    bound.apply_defaults()
    return tuple(bound.args)


# ---------------------------------------------------------------------------------------------
# Patterns.


@dataclass(frozen=True)
class Var:
    """Matches anything (a node or a constant); the same Var twice must match the same thing."""

    name: str


@dataclass(frozen=True)
class Op:
    """Matches a node computing `op` (or any op of a tuple of them) whose arguments match
    `args`, tried in both orders for + and ·; a trailing `...` matches any further arguments."""

    op: str | tuple[str, ...]
    args: tuple

    def __call__(self, *args):  # so that patterns read `mul(X, 1)`
        return Op(self.op, args)


@dataclass(frozen=True)
class _Zero:
    """Matches a zero node, and if `number`, the constant 0 as well.

    A zero that absorbs (`0·x → 0`) must be a zero node: a 0 written in the user's code is a
    number torch multiplies by, and 0·∞, 0·NaN and 0/0 are NaN."""

    number: bool


ZERO, ZERO_NODE = _Zero(number=True), _Zero(number=False)
X, Y, Z, A, B, D, K, C = (Var(name) for name in "xyzabdkc")
_COMMUTATIVE = {"add", "mul"}


def _ops(*names):
    return [Op(name, ()) for name in names]


add, sub, mul, div, neg, matmul, pow_, mT, transpose, sum_, softmax, expand_as, numel, size, shape, where = _ops(
    "add", "sub", "mul", "div", "neg", "matmul", "pow", "mT", "transpose", "sum", "softmax", "expand_as",
    "numel", "size", "shape", "where")


def matches(pattern: Any, target: Any, bindings: dict):
    """Every set of bindings that makes `pattern` match `target`, extending `bindings`."""
    if isinstance(pattern, Var):
        if pattern.name not in bindings:
            yield {**bindings, pattern.name: target}
        elif _same(bindings[pattern.name], target):
            yield bindings
    elif isinstance(pattern, _Zero):
        if op_of(target) == "zero" or (pattern.number and _is_number(target, 0)):
            yield bindings
    elif isinstance(pattern, Op):
        op = op_of(target)
        if op != pattern.op and not (isinstance(pattern.op, tuple) and op in pattern.op):
            return
        args = args_of(target)
        if args is None:
            return
        patterns = pattern.args
        if patterns and patterns[-1] is Ellipsis:
            patterns, args = patterns[:-1], args[:len(patterns) - 1]
        if len(args) != len(patterns):
            return
        for candidate in ([args, args[::-1]] if op in _COMMUTATIVE else [args]):
            yield from _match_all(patterns, candidate, bindings)
    elif _same(pattern, target):
        yield bindings


def _match_all(patterns: tuple, targets: tuple, bindings: dict):
    if not patterns:
        yield bindings
        return
    for found in matches(patterns[0], targets[0], bindings):
        yield from _match_all(patterns[1:], targets[1:], found)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, fx.Node) or isinstance(b, fx.Node):
        return a is b
    return type(a) is type(b) and a == b or (_is_number(a) and _is_number(b) and a == b)


def _is_number(x: Any, equal_to: float | None = None) -> bool:
    is_number = isinstance(x, numbers.Number) and not isinstance(x, bool)
    return is_number and (equal_to is None or x == equal_to)


# ---------------------------------------------------------------------------------------------
# The rewrites. A replacement receives the bindings (Proxies for nodes) and returns a Proxy, a
# number, or ZERO; `when`, if given, receives the same and says whether the rewrite applies.


@dataclass(frozen=True)
class Rewrite:
    math: str
    pattern: Op
    replace: Callable[..., Any]
    when: Callable[..., bool] = field(default=lambda **_: True)
    # Whether it may rewrite a value of the user's forward, which is computed as torch computes it:
    # only rewrites that hold for every value, ∞ and NaN included, and never the ones that make a
    # computed value a zero node (x - x is NaN at ∞), regroup arithmetic (rounding, overflow) or
    # assume finite values (Σ softmax = 1). The backward's own algebra is free to.
    on_forward: bool = True


def _size_one_along(x, dims, ndim: int) -> bool:
    """Whether `x` (broadcast to `ndim` dims) has size 1 along every dim of `dims`."""
    if ndim == 0:  # a reduction of a 0-d value: nothing varies
        return True
    shape = (1,) * (ndim - value(x).ndim) + tuple(value(x).shape)
    return all(shape[d % ndim] == 1 for d in _as_tuple(dims))


def _unexpanded(x):
    """`g` for `g.expand_as(y)` or `g.expand(shape)`: the same values before broadcasting."""
    if op_of(x.node) in ("expand", "expand_as") and isinstance(x.node.args[0], fx.Node):
        return x.tracer.proxy(x.node.args[0])
    return x


def _constant_along(x, dims, ndim: int) -> bool:
    """Whether `x` is the same along `dims`: size 1 there, or an expansion of such a value."""
    return _size_one_along(_unexpanded(x), dims, ndim)


def _as_tuple(dims) -> tuple:
    return tuple(dims) if isinstance(dims, (tuple, list)) else (dims,)


def _last_two(x, dim0, dim1) -> bool:
    ndim = value(x).ndim
    return ndim >= 2 and {dim0 % ndim, dim1 % ndim} == {ndim - 2, ndim - 1}


def _shape_source(x):
    """A value with the shape of `x`, found along a chain of shape-preserving ops, that is kept
    anyway: reading the shape there keeps nothing alive that the backward would otherwise not
    need. None if the values of `x` are needed anyway, or no such value is found."""
    node = x.node
    if _kept_anyway(node):
        return None
    while op_of(node) in _SHAPE_PRESERVING:
        same_shape = [a for a in node.all_input_nodes if isinstance(value(a), torch.Tensor)
                      and value(a).shape == value(node).shape]
        if not same_shape:
            return None
        node, user = same_shape[0], node
        if _kept_anyway(node, apart_from=user):
            return x.tracer.proxy(node)
    return None


def _kept_anyway(node: fx.Node, apart_from: fx.Node | None = None) -> bool:
    """Whether the graph needs `node`'s values (not only its shape) for a user other than `apart_from`."""
    if node.op == "placeholder" or node.meta.get(USER_NAMED, False):
        return True
    return any(user is not apart_from and not _reads_only_shape(user, node) for user in node.users)


def _reads_only_shape(user: fx.Node, node: fx.Node) -> bool:
    if op_of(user) in ("numel", "size", "shape"):
        return True
    return op_of(user) == "expand_as" and user.args[0] is not node


def _has_shape_source(x) -> bool:
    return isinstance(x, fx.Proxy) and _shape_source(x) is not None


# linear ops of one tensor (and maybe some non-tensor arguments)
_LINEAR_UNARY = ("neg", "mT", "transpose", "permute", "reshape", "view", "sum", "mean", "expand", "expand_as",
                 "unsqueeze", "squeeze", "flatten", "to")

REWRITES = [
    # transposes
    Rewrite("(xᵀ)ᵀ → x", mT(mT(X)), lambda x: x),
    Rewrite("xᵀ written with transpose → x.mT", transpose(X, A, B), lambda x, a, b: x.mT,
            when=lambda x, a, b: _last_two(x, a, b)),
    Rewrite("transpose(transpose(x, a, b), a, b) → x", transpose(transpose(X, A, B), A, B), lambda x, a, b: x),
    Rewrite("aᵀ @ bᵀ → (b @ a)ᵀ", matmul(mT(A), mT(B)), lambda a, b: (b @ a).mT),
    Rewrite("(aᵀ @ b)ᵀ → bᵀ @ a", mT(matmul(mT(A), B)), lambda a, b: b.mT @ a),
    Rewrite("(a @ bᵀ)ᵀ → b @ aᵀ", mT(matmul(A, mT(B))), lambda a, b: b @ a.mT),
    # units and signs
    Rewrite("x·1 → x", mul(X, 1), lambda x: x),
    Rewrite("x/1 → x", div(X, 1), lambda x: x),
    Rewrite("x¹ → x", pow_(X, 1), lambda x: x),
    Rewrite("-(-x) → x", neg(neg(X)), lambda x: x),
    Rewrite("x - (-y) → x + y", sub(X, neg(Y)), lambda x, y: x + y),
    Rewrite("x + (-y) → x - y", add(X, neg(Y)), lambda x, y: x - y),
    Rewrite("c₁·(c₂·x) → (c₁c₂)·x", mul(mul(X, C), K), lambda x, c, k: (c * k) * x,
            when=lambda x, c, k: _is_number(c) and _is_number(k), on_forward=False),
    # zeros
    Rewrite("x + 0 → x", add(X, ZERO), lambda x: x),
    Rewrite("x - 0 → x", sub(X, ZERO), lambda x: x),
    Rewrite("0 - x → -x", sub(ZERO, X), lambda x: -x),
    Rewrite("x - x → 0", sub(X, X), lambda x: ZERO, on_forward=False),
    Rewrite("broadcast(x) - x → 0", sub(Op(("expand", "expand_as"), (X, ...)), X), lambda x: ZERO,
            on_forward=False),
    Rewrite("0·x → 0", mul(ZERO_NODE, X), lambda x: ZERO),
    Rewrite("0/x → 0", div(ZERO_NODE, X), lambda x: ZERO),
    Rewrite("0 @ x → 0", matmul(ZERO_NODE, X), lambda x: ZERO),
    Rewrite("x @ 0 → 0", matmul(X, ZERO_NODE), lambda x: ZERO),
    Rewrite("where(c, 0, 0) → 0", where(C, ZERO, ZERO), lambda c: ZERO, on_forward=False),
    Rewrite("f(0) → 0, f linear (-, ᵀ, Σ, reshape, …)", Op(_LINEAR_UNARY, (ZERO_NODE, ...)), lambda: ZERO),
    # reductions
    Rewrite("sum over size-1 dims, keepdim → x", sum_(X, D, True), lambda x, d: x,
            when=lambda x, d: d is not None and _size_one_along(x, d, value(x).ndim)),
    Rewrite("Σ_d c·y → c·Σ_d y, c constant along d", sum_(mul(C, Y), D, True),
            lambda c, y, d: _unexpanded(c) * y.sum(d, keepdim=True),
            when=lambda c, y, d: d is not None and is_tensor(c) and is_tensor(y)  # not a size read at run time
            and value(y).ndim >= value(c).ndim and value(y).ndim > 0  # y has every dim summed over
            and _constant_along(c, d, value(y).ndim) and not _constant_along(y, d, value(y).ndim),
            on_forward=False),
    Rewrite("Σ_d softmax(x, d) → 1", sum_(softmax(X, D), D, K), lambda x, d, k: 1, on_forward=False),
    Rewrite("numel of a 0-d value → 1", numel(X), lambda x: 1, when=lambda x: value(x).ndim == 0),
    # shapes: read from a value computed anyway, so that a value needed only for its shape is not
    Rewrite("y.shape → x.shape, y = f(x) elementwise", shape(Y), lambda y: _shape_source(y).shape,
            when=lambda y: _has_shape_source(y)),
    Rewrite("y.numel() → x.numel(), y = f(x) elementwise", numel(Y), lambda y: _shape_source(y).numel(),
            when=lambda y: _has_shape_source(y)),
    Rewrite("y.size(d) → x.size(d), y = f(x) elementwise", size(Y, D), lambda y, d: _shape_source(y).size(d),
            when=lambda y, d: _has_shape_source(y)),
    Rewrite("g.expand_as(y) → g.expand_as(x), y = f(x) elementwise", expand_as(X, Y),
            lambda x, y: x.expand_as(_shape_source(y)), when=lambda x, y: _has_shape_source(y)),
]


# The rewrites whose pattern can match a node computing each op.
_REWRITES_BY_OP: dict[str, list[Rewrite]] = {}
for _rewrite in REWRITES:
    for _op in (_rewrite.pattern.op if isinstance(_rewrite.pattern.op, tuple) else (_rewrite.pattern.op,)):
        _REWRITES_BY_OP.setdefault(_op, []).append(_rewrite)

# ---------------------------------------------------------------------------------------------
# The driver.


def simplify(graph: fx.Graph, builder: GraphBuilder, applied: list[str] | None = None) -> None:
    """Rewrite `graph` in place to a fixpoint of REWRITES, CSE and DCE.

    The math of each rewrite applied is appended to `applied`, if given.
    """
    changed = True
    while changed:
        changed = _apply_rewrites(graph, builder, applied if applied is not None else [])
        remove_dead_code(graph)  # also the nodes of replacements that did not fit
        changed |= eliminate_common_subexpressions(graph)


def _apply_rewrites(graph: fx.Graph, builder: GraphBuilder, applied: list[str]) -> bool:
    changed = False
    for node in list(graph.nodes):
        if node.graph is not graph or not node.users:  # erased, or dead and about to be
            continue
        for rewrite in _REWRITES_BY_OP.get(op_of(node), ()):
            if node.meta.get(FORWARD) and not rewrite.on_forward:
                continue
            proxies = next((proxies for bindings in matches(rewrite.pattern, node, {})
                            for proxies in [{k: builder.proxy(v) if isinstance(v, fx.Node) else v
                                             for k, v in bindings.items()}]
                            if rewrite.when(**proxies)), None)
            if proxies is None:
                continue
            last_before = node.prev
            with graph.inserting_before(node):
                result = rewrite.replace(**proxies)
                if result is ZERO:  # made directly: the builder would run it
                    result = graph.call_function(zero)
                    result.meta["val"] = node.meta["val"]
                # inside the block: an attribute (`x.mT`) makes its node only when asked for it
                result = result.node if isinstance(result, fx.Proxy) else result
            reshaped = _fits(node, result) if result is not node else None
            if reshaped is not None:
                new_nodes = _nodes_between(last_before, node)
                _inherit_provenance(new_nodes, node)
                name = node.name
                _replace(node, result)
                if reshaped:
                    for user in sorted(set(reshaped), key=_position(graph)):
                        user.meta["val"] = evaluate(user, builder.attributes, builder.shapes_only)
                if node.meta.get(USER_NAMED) and new_nodes and new_nodes[-1] is result:
                    result._rename(name)
                applied.append(rewrite.math)
                changed = True
                break
    return changed


def _position(graph: fx.Graph):
    order = {node: i for i, node in enumerate(graph.nodes)}
    return order.__getitem__


def _nodes_between(first: fx.Node, last: fx.Node) -> list[fx.Node]:
    nodes, node = [], first.next
    while node is not last:
        nodes.append(node)
        node = node.next
    return nodes


def _inherit_provenance(new_nodes: list[fx.Node], replaced: fx.Node) -> None:
    """New nodes stand where `replaced` stood: same source line; the last, same gradient and name."""
    for new in new_nodes:
        new.stack_trace = new.stack_trace or replaced.stack_trace
        for key in (DERIVED_FROM, FORWARD):
            if key in replaced.meta:
                new.meta.setdefault(key, replaced.meta[key])
    if new_nodes:  # the last is the value that replaces it
        for key in (GRADIENT_OF, USER_NAMED):
            if key in replaced.meta:
                new_nodes[-1].meta.setdefault(key, replaced.meta[key])


def _fits(node: fx.Node, replacement: Any) -> list[fx.Node] | None:
    """Whether the graph computes the same with `replacement` in place of `node`.

    A replacement of the same shape and dtype fits. One that differs (a smaller shape, a
    number for a tensor) fits where elementwise arithmetic users take it to the same result,
    maybe a few users up: never larger, never of another dtype. Returns the users whose own
    shape changes on the way (re-evaluated once replaced), or None if it does not fit.
    """
    new, old = value(replacement), node.meta["val"]
    if not isinstance(old, torch.Tensor):  # a size or a count: any number of the same value
        return [] if not isinstance(new, torch.Tensor) and new == old else None
    if isinstance(new, torch.Tensor):
        if new.dtype != old.dtype or not _no_larger(new.shape, old.shape):
            return None
        if new.shape == old.shape:
            return []
    return _absorbed(node, new)


def _no_larger(shape, than) -> bool:
    try:
        return tuple(torch.broadcast_shapes(shape, than)) == tuple(than)
    except RuntimeError:
        return False


# Elementwise arithmetic: broadcasts its operands, so it can absorb a smaller one.
_ARITHMETIC = ("add", "sub", "mul", "div")


def _absorbed(node: fx.Node, new: Any, depth: int = 4) -> list[fx.Node] | None:
    changed = []
    for user in node.users:
        if depth == 0 or op_of(user) not in _ARITHMETIC or not isinstance(user.meta["val"], torch.Tensor):
            return None
        args = map_aggregate(user.args, lambda a: new if a is node else value(a))
        try:
            user_new = user.target(*args) if user.op == "call_function" else getattr(args[0], user.target)(*args[1:])
        except RuntimeError:
            return None
        user_old = user.meta["val"]
        if (not isinstance(user_new, torch.Tensor) or user_new.dtype != user_old.dtype
                or not _no_larger(user_new.shape, user_old.shape)):
            return None
        if user_new.shape != user_old.shape:
            further = _absorbed(user, user_new, depth - 1)
            if further is None:
                return None
            changed += [user, *further]
    return changed


def _replace(node: fx.Node, replacement: Any) -> None:
    if isinstance(replacement, fx.Node):
        node.replace_all_uses_with(replacement)
    else:  # a constant
        for user in list(node.users):
            user.args, user.kwargs = map_aggregate((user.args, user.kwargs), lambda a: replacement if a is node else a)
    node.graph.erase_node(node)


def eliminate_common_subexpressions(graph: fx.Graph) -> bool:
    """Merge nodes that compute the same op on the same arguments."""
    seen: dict[Any, fx.Node] = {}
    changed = False
    for node in list(graph.nodes):
        if node.op not in ("call_function", "call_method") or node.target is zero:
            continue
        args = node.args
        if op_of(node) in _COMMUTATIVE:
            args = tuple(sorted(args, key=repr))
        key = (node.op, node.target, _hashable(args), _hashable(node.kwargs))
        try:
            hash(key)
        except TypeError:  # an argument Python cannot hash (a slice, before Python 3.12)
            continue
        if key in seen:
            node.replace_all_uses_with(seen[key])
            graph.erase_node(node)
            changed = True
        else:
            seen[key] = node
    return changed


def _hashable(x: Any) -> Any:
    """A key for `x` under which only equal arguments meet: Python's `True == 1 == 1.0` and
    `0.0 == -0.0` name values that ops treat differently (`~True`, dtypes, `1 / -0.0`)."""
    if isinstance(x, dict):
        return tuple(sorted((k, _hashable(v)) for k, v in x.items()))
    if isinstance(x, (list, tuple)):
        return (type(x).__name__, tuple(_hashable(v) for v in x))
    if isinstance(x, (bool, int, float)):
        return (type(x).__name__, x, math.copysign(1.0, x) if isinstance(x, float) else 0)
    return x


def finish(graph: fx.Graph, gradient_of: list[fx.Node | None]) -> None:
    """Write out the zeros still in the graph. A zero returned as the gradient of value v
    (`gradient_of[i]` for the i-th returned value) becomes `torch.zeros_like(v)`; any other
    zero (`abs(x - x)`) becomes `torch.zeros_like(v)` for an input `v` of its shape and dtype,
    else `v.new_zeros(shape)`."""
    output = next(node for node in graph.nodes if node.op == "output")
    results = list(output.args[0])
    for i, (result, like) in enumerate(zip(results, gradient_of)):
        if op_of(result) == "zero" and like is not None:
            with graph.inserting_before(output):
                results[i] = graph.call_function(torch.zeros_like, (like,))
                results[i].meta["val"] = result.meta["val"]
    output.args = (tuple(results),)
    inputs = [node for node in graph.nodes if node.op == "placeholder"]
    for node in list(graph.nodes):
        if op_of(node) == "zero" and node.users:
            val = node.meta["val"]
            same = [p for p in inputs if (value(p).shape, value(p).dtype) == (val.shape, val.dtype)]
            with graph.inserting_before(node):
                if same:
                    written = graph.call_function(torch.zeros_like, (same[0],))
                else:
                    written = graph.call_method("new_zeros", (inputs[0], tuple(val.shape)), {"dtype": val.dtype})
            written.meta["val"] = val
            node.replace_all_uses_with(written)
    remove_dead_code(graph)
