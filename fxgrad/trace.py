"""Tracing a user's function or module into an fx graph, by one of three tracers.

- "fx": `torch.fx` symbolic tracing. Torch-level ops as written; generic in sizes; cannot
  follow Python that depends on values or sizes.
- "export": `torch.export.export`, without decompositions: high-level ATen (`aten.matmul`,
  `aten.softmax.int`); follows size-dependent Python and library helpers.
- "aten": `make_fx`: low-level ATen (`aten.mm`, `aten._softmax`, `aten.view`), traced on the
  example values, so Python control flow is fixed to the branch the example takes.
- "auto" (the default): fx, then export where fx cannot trace.

Each gives a `Trace`: the graph, the user's names for its inputs, and which placeholders or
attributes are the module's parameters. Every node keeps the user's source frames in
`node.stack_trace`.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import linecache
import operator
import os
import re
import sys
import traceback
import types
from dataclasses import dataclass
from typing import Callable

import torch
import torch.fx as fx
from torch.overrides import TorchFunctionMode

from .canon import GRAD_DISABLED, IN_AUTOGRAD_GRAD, RANDOM_FUNCTIONS, op_name, refuse_randomness
from .errors import FxgradError, TraceError, UnsupportedArgumentError, source_location
from .substitutes import Substituted

TRACERS = ("fx", "export", "aten")

_LIBRARY_DIRS = tuple(
    os.path.dirname(os.path.abspath(module.__file__)) + os.sep for module in (torch, fx)
) + (os.path.dirname(os.path.abspath(__file__)) + os.sep,)


# The file name of the wrappers fxgrad writes around the user's function (a lambda made by `eval`):
# a trace starts at one, but its frame is not the user's code and has no line to quote.
GENERATED_FILE = "<fxgrad>"


@functools.lru_cache(maxsize=None)
def _is_library(filename: str) -> bool:
    """Whether a frame's file is torch's, fxgrad's or Python's own, not the user's code."""
    return os.path.abspath(filename).startswith(_LIBRARY_DIRS) or "<frozen " in filename


@dataclass
class Trace:
    module: fx.GraphModule
    input_names: list[str]
    # A parameter of the traced module, by the placeholder name (make_fx) or get_attr target
    # (fx, export) that stands for it in the graph, to its qualified name.
    parameters: dict[str, str]
    tracer: str
    # why the example sizes are constants of the graph (export, make_fx), None where fx kept them generic
    fixed_sizes: str | None = None


@torch.enable_grad()  # grad mode is the function's own, not the caller's: see GRAD_DISABLED
def trace(fn: Callable, inputs: list[torch.Tensor], tracer: str = "auto") -> Trace:
    """Trace `fn` (a function or an nn.Module of the tensors `inputs`, `arguments.Call.calling`)
    on `inputs` with `tracer`."""
    linecache.checkcache()  # source read for names and provenance: as it is now, not as first read
    _refuse_backward_hooks(fn)
    _refuse_cumulative_batch_norm(fn)
    if autocast_state(inputs):  # only make_fx records autocast's casts; fx and export would leave them out
        if tracer not in ("auto", "aten"):
            raise TraceError(f"under torch.autocast, `{_name(fn)}` can be traced by make_fx (tracer='aten') only: "
                             f"{tracer} does not record autocast's casts")
        tracer = "aten"
    if tracer == "auto":
        reasons = []
        for candidate in TRACERS:
            try:
                traced = trace(fn, inputs, candidate)
            except TraceError as error:
                reasons.append(f"- {candidate}: {error}")
                continue
            if reasons:  # name what made fx fail: it is what a user rewrites to keep sizes generic
                traced.fixed_sizes += f" (fx, which keeps sizes generic, {reasons[0].removeprefix('- fx: fx ')})"
            return traced
        raise TraceError(f"no tracer could capture `{_name(fn)}`:\n" + "\n".join(reasons))
    if tracer not in TRACERS:
        raise TraceError(f"tracer must be 'auto' or one of {TRACERS}, not {tracer!r}")
    try:
        traced = {"fx": _trace_fx, "export": _trace_export, "aten": _trace_aten}[tracer](fn, inputs)
    except FxgradError as error:
        if isinstance(error, UnsupportedArgumentError):  # a substitute's refusal: where the user called it
            raise type(error)(f"{error},{_user_line(error)}") from None
        raise
    except Exception as error:  # each tracer raises many kinds; all mean "this cannot be traced"
        raise TraceError(f"{tracer} could not trace `{_name(fn)}`{_user_line(error)}: "
                         f"{type(error).__name__}: {error}") from error
    _check_input_count(traced, fn, len(inputs))
    if tracer != "fx":
        traced.fixed_sizes = f"{_TRACER_NAMES[tracer]} wrote into the graph as constants"
    return traced


_TRACER_NAMES = {"export": "torch.export", "aten": "make_fx"}


def _refuse_cumulative_batch_norm(fn: Callable) -> None:
    """Batch norm with `momentum=None` averages its statistics over the batches seen so far, a
    step that reads the count of batches as a number, which no tracer can follow."""
    if isinstance(fn, torch.nn.Module):
        for name, module in fn.named_modules():
            if (isinstance(module, torch.nn.modules.batchnorm._BatchNorm) and module.training
                    and module.track_running_stats and module.momentum is None):
                raise TraceError(f"batch norm `{name or type(fn).__name__}` has momentum=None, a cumulative average "
                                 "of its statistics, which reads the count of batches as a number no tracer "
                                 "follows: give it a momentum, or derive it in eval mode")


def _check_input_count(traced: Trace, fn: Callable, n_inputs: int) -> None:
    """A graph must take one placeholder per input (a TraceError, so that "auto" tries the next tracer)."""
    placeholders = [node for node in traced.module.graph.nodes
                    if node.op == "placeholder" and node.target not in traced.parameters]
    if len(placeholders) != n_inputs:
        raise TraceError(f"{traced.tracer} traced `{_name(fn)}` as taking {len(placeholders)} inputs "
                         f"({', '.join(traced.input_names)}) but {n_inputs} were given")


def _refuse_backward_hooks(fn: Callable) -> None:
    """Backward hooks change the gradients autograd computes, and no tracer records them: a
    derived backward would leave them out."""
    from torch.nn.modules import module as nn_module

    hooked = [("every module (a global hook)", None)] if (nn_module._global_backward_hooks
                                                          or nn_module._global_backward_pre_hooks) else []
    if isinstance(fn, torch.nn.Module):
        hooked += [(f"`{name or type(fn).__name__}`", m) for name, m in fn.named_modules()
                   if m._backward_hooks or m._backward_pre_hooks]
    if hooked:
        raise TraceError(f"{hooked[0][0]} has a backward hook, which changes the gradients autograd computes and "
                         "which a derived backward does not run: remove it, or apply it to the derived gradients")


def _user_line(error: Exception) -> str:
    """` at f line 4: for i in range(x.shape[0])`: the innermost line of the user's code in the
    error's traceback, if it has one."""
    frames = [frame for frame in traceback.extract_tb(error.__traceback__) if not _is_library(frame.filename)]
    if not frames:
        return ""
    frame = frames[-1]
    return f" at {frame.name} line {frame.lineno}: `{(frame.line or '').strip()}`"


# ---------------------------------------------------------------------------------------------
# torch.fx


def _trace_fx(fn: Callable, inputs: list[torch.Tensor]) -> Trace:
    tracer = _SourceRecordingTracer(fn)
    hooked = isinstance(fn, torch.nn.Module) and _has_forward_hooks(fn)
    with _tensor_constants_removed(fn):
        with _RefuseRandomness(), _RefuseStateChanges(fn), _RefuseAutograd("fx"):  # fx would run these for real, once
            graph = tracer.trace(_calling_with_hooks(fn, len(inputs)) if hooked else fn)
        tracer.refuse_changed_constants()
        if hooked:  # attributes are read from `fn` itself, not from the module calling it
            for node in graph.nodes:
                if node.op == "get_attr":
                    node.target = node.target.removeprefix(f"{_HOOKED}.")
        module = fx.GraphModule(fn if hooked else tracer.root, graph)
    names = [node.target for node in graph.nodes if node.op == "placeholder"]
    return Trace(module, names, _parameter_names(fn), "fx")


@contextlib.contextmanager
def _tensor_constants_removed(fn: Callable):
    """fx keeps the tensors a function makes (`torch.tensor([1., 2.])`) as `_tensor_constant<n>`
    attributes of the module it traces, which is the user's: the GraphModule copies them, and
    they are taken off the user's module afterwards, whether tracing succeeded or not (another
    tracer, or the next derive, would read them)."""
    before = set(vars(fn)) if isinstance(fn, torch.nn.Module) else set()
    try:
        yield
    finally:
        if isinstance(fn, torch.nn.Module):
            for name in set(vars(fn)) - before:
                if name.startswith("_tensor_constant"):
                    delattr(fn, name)


_HOOKED = "hooked"


def _has_forward_hooks(module: torch.nn.Module) -> bool:
    from torch.nn.modules import module as modules

    return bool(module._forward_hooks or module._forward_pre_hooks or modules._global_forward_hooks
                or modules._global_forward_pre_hooks)


def _calling_with_hooks(module: torch.nn.Module, n_inputs: int) -> torch.nn.Module:
    """A module whose forward calls `module` as a submodule, so that its forward hooks and
    pre-hooks run: fx calls the forward of the module it traces directly, without them."""
    arguments = _arguments(module, n_inputs)
    forward = eval(compile(f"lambda self, {arguments}: self.{_HOOKED}({arguments})", GENERATED_FILE, "eval"))
    caller = type(type(module).__name__, (torch.nn.Module,), {"forward": forward})()
    setattr(caller, _HOOKED, module)
    return caller


class _RefuseRandomness(TorchFunctionMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in RANDOM_FUNCTIONS:
            refuse_randomness(op_name(func))
        return func(*args, **(kwargs or {}))


_AUTOGRAD_CALLS = {torch.autograd.grad: "torch.autograd.grad", torch.autograd.backward: "torch.autograd.backward",
                   torch.Tensor.backward: "Tensor.backward"}


class _RefuseAutograd(TorchFunctionMode):
    """fx records a call of `torch.autograd.grad` as one opaque node, and export cannot trace it:
    make_fx records the backward ops autograd runs (a gradient penalty, a Hessian-vector product)."""

    def __init__(self, tracer: str):
        super().__init__()
        self.tracer = tracer

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in _AUTOGRAD_CALLS:
            raise TraceError(f"{self.tracer} cannot record `{_AUTOGRAD_CALLS[func]}`, the backward it runs (make_fx, "
                             "tracer='aten', records its ops)")
        return func(*args, **(kwargs or {}))


class _RefuseStateChanges(TorchFunctionMode):
    """fx reads a module's buffers as real tensors, so an in-place change of one (`self.count += 1`,
    batch norm's running statistics) would run once, at tracing, and leave no trace in the graph:
    it is refused before it runs (export and make_fx record it)."""

    def __init__(self, fn: Callable):
        super().__init__()
        self.state = {t.untyped_storage().data_ptr() for t in _module_tensors(fn)}

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        in_place = name.endswith("_") and not name.endswith("__") or name in _IN_PLACE_DUNDERS or kwargs.get("inplace")
        changed = args[0] if args else None
        if in_place and isinstance(changed, torch.Tensor) and changed.untyped_storage().data_ptr() in self.state:
            raise TraceError(f"fx cannot record `{name}` changing a module's tensor in place, which it reads "
                             "as a constant")
        return func(*args, **kwargs)


# The operators of Python's augmented assignments (`y += x` calls `y.__iadd__(x)`).
_AUGMENTED = ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "and", "or", "xor", "lshift",
              "rshift")
_IN_PLACE_DUNDERS = {f"__i{name}__" for name in _AUGMENTED} | {"__setitem__"}


class _SourceRecordingTracer(fx.Tracer):
    """A symbolic tracer that traces through every module and keeps, for each node, the user's
    frames that made it.

    fx's own `record_stack_traces` keeps only frames below a method named `forward`, which plain
    functions do not have, so the user's frames are picked out here by excluding library code.
    """

    def __init__(self, fn: Callable):
        super().__init__()
        code = getattr(fn, "__code__", None) or getattr(getattr(fn, "forward", None), "__code__", None)
        self.entry = (code.co_filename, code.co_name) if code else None
        self.constants: list[tuple[torch.Tensor, int]] = []  # the tensors kept as constants, and their versions

    def create_arg(self, a):
        if isinstance(a, torch.Tensor) and not isinstance(a, torch.nn.Parameter):
            self.constants.append((a, a._version))
        return super().create_arg(a)

    def refuse_changed_constants(self) -> None:
        """fx keeps a tensor the function reads as a constant by reference: one the function then
        changes in place (`y = x + m; m[1] = 5`) would be read changed where it was read before."""
        if any(t._version != version for t, version in self.constants):
            raise TraceError("fx could not trace the function: it changes in place a tensor after reading it, "
                             "which fx keeps as a constant, so every read would see the last value (export and "
                             "make_fx record the change)")

    def is_leaf_module(self, module: torch.nn.Module, qualified_name: str) -> bool:
        return False  # into nn.Linear and friends: their ops are what gets differentiated

    def user_stack(self) -> str:
        """The frames from the traced function inwards, formatted as a traceback's (the source
        lines are read only where needed); empty outside it (fx's own epilogue)."""
        frames, frame = [], sys._getframe(1)
        while frame is not None:
            code = frame.f_code
            if not _is_library(code.co_filename):
                frames.append((code.co_filename, frame.f_lineno, code.co_name))
            frame = frame.f_back
        frames.reverse()
        entry = next((i for i, (file, _, name) in enumerate(frames) if (file, name) == self.entry), None)
        if entry is None:
            return ""
        return "".join(f'  File "{file}", line {line}, in {name}\n' for file, line, name in frames[entry:]
                       if file != GENERATED_FILE)

    def create_node(self, kind, target, args, kwargs, name=None, type_expr=None):
        node = super().create_node(kind, target, args, kwargs, name, type_expr)
        node.stack_trace = self.user_stack()
        if kind == "call_method" and target == "backward":
            raise TraceError(f"fx cannot record `Tensor.backward`, the backward it runs, at {source_location(node)}")
        if torch._C._is_any_autocast_enabled():  # fx records no casts: the ops would run in full precision
            raise TraceError(f"fx does not record the casts of the autocast region at {source_location(node)} "
                             "(make_fx, tracer='aten', does)")
        if not torch.is_grad_enabled():  # fx runs the user's `with torch.no_grad():` for real
            node.meta.setdefault("custom", {})[GRAD_DISABLED] = True
        return node

    def proxy(self, node: fx.Node) -> fx.Proxy:
        return _SourceProxy(node, self)


class _RecordsInPlace:
    """Proxies that record `y[0] = v` and `y += x` (which fx's own do not: Python then falls
    back to `y = y + x`, and an alias or view of `y` would miss the change)."""

    def __setitem__(self, index, item) -> None:
        self.tracer.create_proxy("call_function", operator.setitem, (self, index, item), {})


class _SourceProxy(_RecordsInPlace, fx.Proxy):
    def __getattr__(self, attr: str) -> fx.proxy.Attribute:
        return _Attribute(self, attr)


def _record_augmented(name: str) -> Callable:
    target = getattr(operator, f"i{name}")  # `operator.iadd` for `y += x`
    return lambda self, other: self.tracer.create_proxy("call_function", target, (self, other), {})


for _operator in _AUGMENTED:
    setattr(_RecordsInPlace, f"__i{_operator}__", _record_augmented(_operator))


class _Attribute(_RecordsInPlace, fx.proxy.Attribute):
    """`x.T`: fx makes its node only when the value is used, maybe after the user's function
    has returned or inside a `no_grad` block it was not read in, so the source line and the
    grad mode are taken when the attribute is read."""

    def __init__(self, root: fx.Proxy, attr: str):
        super().__init__(root, attr)
        self.stack_trace = root.tracer.user_stack()
        self.grad_enabled = torch.is_grad_enabled()

    @property
    def node(self) -> fx.Node:
        created = self._node is None
        with torch.set_grad_enabled(self.grad_enabled):
            node = super().node
        if created:
            node.stack_trace = self.stack_trace
        return node


# ---------------------------------------------------------------------------------------------
# torch.export and make_fx


def _trace_export(fn: Callable, inputs: list[torch.Tensor]) -> Trace:
    module = fn if isinstance(fn, torch.nn.Module) else _as_module(fn)
    with _RefuseInferenceMode(), _RefuseAutograd("export"), _every_user_frame_recorded(), Substituted():
        exported = torch.export.export(module, tuple(_distinct(inputs)))
    graph_module = exported.module()
    for node in list(graph_module.graph.nodes):
        if node.target is torch.ops.higher_order.wrap_with_autocast:
            raise TraceError(f"export records the autocast region at {source_location(node)} as a region fxgrad does "
                             "not lower (make_fx, tracer='aten', records its casts)")
        if node.op == "call_module" and node.target == "_guards_fn":  # export's own input checks
            graph_module.graph.erase_node(node)
    _name_user_frames(graph_module, fn)
    return Trace(graph_module, _input_names(fn, len(inputs)), _parameter_names(fn), "export")


class _RefuseInferenceMode(TorchFunctionMode):
    """export records `torch.no_grad()` regions (as `wrap_with_set_grad_enabled`), but no trace
    of `torch.inference_mode()`: a value computed there would wrongly carry a gradient."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if torch.is_inference_mode_enabled():
            raise TraceError("export records no trace of `torch.inference_mode()`, so the values computed "
                             "there would wrongly carry a gradient; use `torch.no_grad()`, or tracer='fx' or 'aten'")
        return func(*args, **(kwargs or {}))


def _trace_aten(fn: Callable, inputs: list[torch.Tensor]) -> Trace:
    if isinstance(fn, torch.nn.Module):
        names = [name for name, _ in _named_parameters(fn)]
        module, n_inputs = fn, len(inputs)

        def call(*args):  # parameters as arguments: make_fx sees them as inputs
            return torch.func.functional_call(module, dict(zip(names, args[n_inputs:])), tuple(args[:n_inputs]))

        parameters = [p.detach() for _, p in _named_parameters(fn)]
        with _state_kept(fn):
            graph_module = _make_fx(call)(*_requiring_grad_as(_distinct(inputs), inputs), *parameters)
        placeholders = [node.name for node in graph_module.graph.nodes if node.op == "placeholder"]
        return Trace(graph_module, _input_names(fn, n_inputs), dict(zip(placeholders[n_inputs:], names)), "aten")
    graph_module = _make_fx(_as_forward(fn))(*_requiring_grad_as(_distinct(inputs), inputs))
    _name_user_frames(graph_module, fn)
    return Trace(graph_module, _input_names(fn, len(inputs)), {}, "aten")


def _make_fx(fn: Callable) -> Callable:
    """make_fx of `fn`, with the nodes recorded while grad mode is off marked GRAD_DISABLED."""
    from torch.fx.experimental.proxy_tensor import make_fx

    @functools.wraps(fn)
    def marking(*args):
        with _MarkGradDisabled(), Substituted():
            return fn(*args)

    def traced(*args):
        with fx.traceback.preserve_node_meta(), _every_user_frame_recorded():
            return make_fx(marking, record_stack_traces=True)(*args)

    return traced


class _MarkGradDisabled(TorchFunctionMode):
    """Annotates the ATen nodes a torch call records while grad mode is off (make_fx runs the
    user's `with torch.no_grad():` for real, but records no trace of it), and refuses
    `y.detach_()`, of which make_fx records no trace either.

    The backward `torch.autograd.grad` runs is recorded op by op: with `create_graph=True` it
    is differentiable, its nodes marked IN_AUTOGRAD_GRAD (autograd's detaches of its saved values
    are no stop of the gradient there); without, its result is a constant, as in autograd.
    `backward()` accumulates into `.grad` attributes, a change of state no graph returns."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func is torch.Tensor.detach_:
            raise TraceError("make_fx records no trace of `detach_()`, so the value would wrongly carry a gradient: "
                             "write `y = y.detach()`")
        if func in (torch.autograd.backward, torch.Tensor.backward):
            raise TraceError(f"`{_AUTOGRAD_CALLS[func]}` accumulates gradients into `.grad`, a change of state fxgrad "
                             "does not derive: write `torch.autograd.grad(..., create_graph=True)`")
        if func is torch.autograd.grad:
            create_graph = inspect.signature(func).bind(*args, **(kwargs or {})).arguments.get("create_graph")
            with fx.traceback.annotate({IN_AUTOGRAD_GRAD if create_graph else GRAD_DISABLED: True}):
                return func(*args, **(kwargs or {}))
        if torch.is_grad_enabled():
            return func(*args, **(kwargs or {}))
        with fx.traceback.annotate({GRAD_DISABLED: True}):
            return func(*args, **(kwargs or {}))


@contextlib.contextmanager
def _state_kept(module: torch.nn.Module):
    """make_fx runs the module on its own parameters and buffers: what it changes in place
    there (refused later, or batch norm's running statistics) is put back after tracing."""
    kept = [(t, t.detach().clone()) for t in _module_tensors(module)]
    try:
        yield
    finally:
        with torch.no_grad():
            for t, copy in kept:
                t.copy_(copy)


class _EveryUserFrame(set):
    """What export and make_fx read as the frames to record besides those of methods named
    `forward`: every frame of the user's code, so that a helper a forward calls (torchvision's
    `shifted_window_attention`) is named with its own line, not the forward's call of it."""

    def __contains__(self, frame: object) -> bool:
        return isinstance(frame, tuple) and not _is_library(frame[0])


@contextlib.contextmanager
def _every_user_frame_recorded():
    if not hasattr(fx.proxy, "_STACK_TRACE_ANCHORS"):  # older torch keeps the frames below the first forward
        yield
        return
    anchors, fx.proxy._STACK_TRACE_ANCHORS = fx.proxy._STACK_TRACE_ANCHORS, _EveryUserFrame()
    try:
        yield
    finally:
        fx.proxy._STACK_TRACE_ANCHORS = anchors


def _distinct(inputs: list[torch.Tensor]) -> list[torch.Tensor]:
    """Copies of the inputs: export and make_fx merge arguments that are one tensor object
    (`f(x, x)`), and each argument must keep its own gradient."""
    return [x.detach().clone() for x in inputs]


def _requiring_grad_as(copies: list[torch.Tensor], inputs: list[torch.Tensor]) -> list[torch.Tensor]:
    """The copies requiring grad where the inputs do: for a `torch.autograd.grad` in the function."""
    return [copy.requires_grad_(x.requires_grad) for copy, x in zip(copies, inputs)]


def _as_forward(fn: types.FunctionType) -> types.FunctionType:
    """`fn` as a Python function whose code is named `forward`: export and make_fx record the
    source frames of functions so named only. `_name_user_frames` puts the name back."""
    code = fn.__code__.replace(co_name="forward", co_qualname="forward")
    return types.FunctionType(code, fn.__globals__, "forward", fn.__defaults__, fn.__closure__)


def _as_module(fn: types.FunctionType) -> torch.nn.Module:
    forward = _as_forward(fn)
    return type(_name(fn), (torch.nn.Module,), {"forward": staticmethod(forward)})()


def _name_user_frames(graph_module: fx.GraphModule, fn: Callable) -> None:
    code = getattr(fn, "__code__", None)
    if code is None:
        return
    frame = re.compile(rf'(File "{re.escape(code.co_filename)}", line \d+, in )forward\b')
    for node in graph_module.graph.nodes:
        if node.stack_trace:
            node.stack_trace = frame.sub(rf"\g<1>{code.co_name}", node.stack_trace)


# ---------------------------------------------------------------------------------------------
# Shared pieces


def _named_parameters(fn: Callable) -> list[tuple[str, torch.nn.Parameter]]:
    return list(fn.named_parameters()) if isinstance(fn, torch.nn.Module) else []


def _module_tensors(fn: Callable) -> list[torch.Tensor]:
    """A module's parameters and buffers (none for a plain function)."""
    return [*fn.parameters(), *fn.buffers()] if isinstance(fn, torch.nn.Module) else []


def _parameter_names(fn: Callable) -> dict[str, str]:
    """Every name of a parameter of `fn`, to the one `named_parameters()` gives it: a parameter
    shared by two submodules (a tied embedding and head) is read under both names."""
    if not isinstance(fn, torch.nn.Module):
        return {}
    first = {id(p): name for name, p in reversed(list(fn.named_parameters(remove_duplicate=False)))}
    return {name: first[id(p)] for name, p in fn.named_parameters(remove_duplicate=False)}


def _input_names(fn: Callable, n_inputs: int) -> list[str]:
    """The user's names for the first `n_inputs` parameters of `fn` (or its `forward`)."""
    try:
        signature = inspect.signature(fn.forward if isinstance(fn, torch.nn.Module) else fn)
        names = [p.name for p in signature.parameters.values()
                 if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)][:n_inputs]
    except (TypeError, ValueError):  # builtins without a signature
        names = []
    if len(names) < n_inputs:
        names = [f"x{i}" for i in range(n_inputs)]
    return names


def autocast_state(inputs) -> tuple[tuple[str, torch.dtype], ...]:
    """(device type, dtype) for each of the inputs' devices where autocast is on."""
    if not torch._C._is_any_autocast_enabled():  # (the common case, at each call of a training step)
        return ()
    devices = sorted({x.device.type for x in inputs if isinstance(x, torch.Tensor)})
    return tuple((device, torch.get_autocast_dtype(device)) for device in devices
                 if torch.amp.is_autocast_available(device) and torch.is_autocast_enabled(device))


def _name(fn: Callable) -> str:
    return getattr(fn, "__qualname__", None) or type(fn).__name__


def _arguments(fn: Callable, n_inputs: int) -> str:
    """`a, b`: the user's names for the inputs, as a wrapper's parameters (fx's placeholders)."""
    names = _input_names(fn, n_inputs)
    if not all(name.isidentifier() for name in names):
        names = [f"x{i}" for i in range(n_inputs)]
    return ", ".join(names)

