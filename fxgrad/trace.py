"""Tracing a user's function into a torch.fx graph, with the user's source line on every node."""

from __future__ import annotations

import inspect
import os
import traceback
import types
from typing import Callable

import torch
import torch.fx as fx

from .errors import TraceError

_LIBRARY_DIRS = tuple(
    os.path.dirname(os.path.abspath(module.__file__)) + os.sep for module in (torch, fx)
) + (os.path.dirname(os.path.abspath(__file__)) + os.sep,)


def trace(fn: Callable, n_inputs: int) -> fx.GraphModule:
    """`torch.fx.symbolic_trace(fn)`, recording the user's source line of every node.

    A callable fx cannot trace directly (a builtin such as `torch.tanh`, a `functools.partial`,
    a function whose trailing parameters keep their defaults) is traced through a Python
    function of `n_inputs` arguments that calls it.
    """
    if not isinstance(fn, torch.nn.Module) and _needs_wrapper(fn, n_inputs):
        fn = _python_function_calling(fn, n_inputs)
    tracer = _SourceRecordingTracer(fn)
    try:
        graph = tracer.trace(fn)
    except Exception as error:  # fx raises many kinds; all mean "this cannot be traced"
        name = getattr(fn, "__qualname__", type(fn).__name__)
        raise TraceError(f"torch.fx could not trace `{name}`: {type(error).__name__}: {error}") from error
    return fx.GraphModule(tracer.root, graph)


class _SourceRecordingTracer(fx.Tracer):
    """A symbolic tracer that keeps, for each node, the user's frames that made it.

    fx's own `record_stack_traces` keeps only frames below a method named `forward`, which plain
    functions do not have, so the user's frames are picked out here by excluding library code.
    """

    def __init__(self, fn: Callable):
        super().__init__()
        code = getattr(fn, "__code__", None) or getattr(getattr(fn, "forward", None), "__code__", None)
        self.entry = (code.co_filename, code.co_name) if code else None

    def user_stack(self) -> str:
        """The frames from the traced function inwards; empty outside it (fx's own epilogue)."""
        frames = [
            frame for frame in traceback.extract_stack()
            if not frame.filename.startswith(_LIBRARY_DIRS) and "<frozen " not in frame.filename
        ]
        entry = next((i for i, f in enumerate(frames) if (f.filename, f.name) == self.entry), None)
        return "" if entry is None else "".join(traceback.format_list(frames[entry:]))

    def create_node(self, kind, target, args, kwargs, name=None, type_expr=None):
        node = super().create_node(kind, target, args, kwargs, name, type_expr)
        node.stack_trace = self.user_stack()
        return node

    def proxy(self, node: fx.Node) -> fx.Proxy:
        return _SourceProxy(node, self)


class _SourceProxy(fx.Proxy):
    def __getattr__(self, attr: str) -> fx.proxy.Attribute:
        return _Attribute(self, attr)


class _Attribute(fx.proxy.Attribute):
    """`x.T`: fx makes its node only when the value is used, maybe after the user's function
    has returned, so the source line is taken when the attribute is read."""

    def __init__(self, root: fx.Proxy, attr: str):
        super().__init__(root, attr)
        self.stack_trace = root.tracer.user_stack()

    @property
    def node(self) -> fx.Node:
        created = self._node is None
        node = super().node
        if created:
            node.stack_trace = self.stack_trace
        return node


def _needs_wrapper(fn: Callable, n_inputs: int) -> bool:
    """Whether fx cannot make exactly `n_inputs` placeholders of `fn` itself."""
    if not isinstance(fn, types.FunctionType):
        return True
    code = fn.__code__
    if code.co_flags & (inspect.CO_VARARGS | inspect.CO_VARKEYWORDS) or code.co_kwonlyargcount:
        return True
    required = code.co_argcount - len(fn.__defaults__ or ())
    return required <= n_inputs < code.co_argcount


def _python_function_calling(fn: Callable, n_inputs: int) -> types.FunctionType:
    try:
        names = list(inspect.signature(fn).parameters)[:n_inputs]
    except (TypeError, ValueError):  # builtins without a signature
        names = []
    if len(names) < n_inputs or not all(name.isidentifier() for name in names):
        names = [f"x{i}" for i in range(n_inputs)]
    arguments = ", ".join(names)
    wrapper = eval(f"lambda {arguments}: fn({arguments})", {"fn": fn})  # a fixed arity for fx's placeholders
    wrapper.__name__ = wrapper.__qualname__ = getattr(fn, "__name__", type(fn).__name__)
    return wrapper
