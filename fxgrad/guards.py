"""Guards: what a derived graph assumes about the tensors it is called with, checked at each call.

A derived backward is specialised to its example inputs in a few ways, as a torch.compile graph
is, and every call is checked against them, never run outside them:

- *always*: the number of arguments, each one's form (a tensor, a constant equal to the one
  derived with, a container of them: `arguments.ArgumentForm`), and each tensor's dtype and
  rank (rules branch on both);
- *sizes fixed by the tracer*: torch.export and make_fx write the example sizes into the graph
  as constants, so a backward they traced holds at those sizes only;
- *sizes generic*: fx reads sizes at run time (`grad.reshape(x.shape)`), so a backward it traced
  holds at other sizes, as long as every value broadcasts as it did at derive time. The first
  call at new sizes is run node by node and each value is checked against its derived shape
  (the same rank, size 1 exactly where it was size 1, as many pieces from a split), the incoming
  gradients against the outputs' shapes at the new sizes, and the gradients against their
  inputs' shapes; sizes that pass are remembered, later calls at them run straight.

A call that breaks a guard raises `ShapeError` (an input) or `GradOutputError` (an incoming
gradient) saying what the graph was derived for, where in the user's source that came from,
and that deriving again at the new sizes is the way out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import torch
import torch.fx as fx

from .arguments import ArgumentForm
from .errors import GradOutputError, InputError, ShapeError, source_location
from .graph import DERIVED_FROM, SMALL_ENOUGH_FOR_ZEROS, portable


@dataclass(frozen=True)
class TensorSpec:
    """A tensor argument as derived: its name, shape and dtype."""

    name: str
    shape: torch.Size
    dtype: torch.dtype


@dataclass
class Guards:
    """The assumptions of one derived graph about its calls `(*arguments, *grad_outputs)`, run as
    `(*inputs, *grad_outputs)`: the tensors of the arguments, then the incoming gradients."""

    inputs: list[TensorSpec]  # the tensors among the arguments
    grad_outputs: list[TensorSpec]  # one per output of the function, named `grad_<output>`
    # why the tracer wrote the example sizes into the graph, or None where it reads them at run time
    fixed_sizes: str | None
    # the function's outputs from the inputs, to check new sizes on: its attributes and graph, made
    # a GraphModule at the first such check (making one compiles its code, a good part of derive)
    forward: tuple[dict, fx.Graph] | None = None
    checked: set = field(default_factory=set)  # the call sizes that passed the node-by-node check
    # the function's arguments (`*args, *kwargs values`) as derived; None: the inputs, by position
    arguments: list[ArgumentForm] | None = None

    def check(self, args: tuple, kwargs: dict) -> tuple:
        """Raise a clear error for a call outside what the graph was derived for (all but the
        node-by-node check of new sizes, `needs_checked_run`); return the call as the graph takes
        it, `(*inputs, *grad_outputs)`."""
        if kwargs:
            raise GradOutputError(f"this backward takes its arguments by position ({self.signature()}); "
                                  f"it was given keyword arguments {', '.join(map(repr, kwargs))}")
        n_arguments, n_grads = len(self._argument_names()), len(self.grad_outputs)
        if len(args) != n_arguments + n_grads:
            raise GradOutputError(
                f"this backward takes the {n_arguments} inputs and then {n_grads} incoming gradients "
                f"({', '.join(spec.name for spec in self.grad_outputs)}), {n_arguments + n_grads} arguments in all "
                f"(`bwd({self.signature()})`); it was given {len(args)}")
        if self.arguments is not None:  # the tensors of each argument, its constants checked
            args = (*(t for form, arg in zip(self.arguments, args) for t in form.tensors(arg)), *args[n_arguments:])
        n_inputs = len(self.inputs)
        for spec, x in zip(self.inputs, args):
            _check_tensor(spec, x, "input", ShapeError)
        for spec, grad in zip(self.grad_outputs, args[n_inputs:]):
            _check_tensor(spec, grad, "incoming gradient", GradOutputError, floating=True)
        if self.fixed_sizes is not None:
            for spec, x in zip(self.inputs, args):
                if x.shape != spec.shape:
                    raise ShapeError(f"derived for {_size_guard(spec, x)}, sizes that {self.fixed_sizes}; "
                                     f"called with {_shape(x)}: derive again at these sizes")
        if self._at_derived_sizes(args[:n_inputs]):
            for spec, grad in zip(self.grad_outputs, args[n_inputs:]):
                if grad.shape != spec.shape:
                    raise GradOutputError(f"the gradient of output `{_output(spec)}` has shape {tuple(grad.shape)}; "
                                          f"it must have the output's shape, {tuple(spec.shape)}")
        return args

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("_forward_module", None)  # (a GraphModule pickles as its code; its graph holds the derived shapes)
        if self.forward is not None:
            attributes, graph = self.forward
            state["forward"] = ({node.target: attributes[node.target] for node in graph.nodes if node.op == "get_attr"},
                                portable(graph))
        return state

    def forward_module(self) -> fx.GraphModule:
        if "_forward_module" not in self.__dict__:
            self._forward_module = fx.GraphModule(*self.forward)
        return self._forward_module

    def needs_checked_run(self, args: tuple) -> bool:
        """Whether this call is at sizes not yet checked node by node."""
        return not self._at_derived_sizes(args[:len(self.inputs)]) and _sizes(args) not in self.checked

    def checked_run(self, module: fx.GraphModule, args: tuple) -> Any:
        """Run `module` on `args` at new sizes, node by node, checking every value against its
        derived shape; remember the sizes if all hold."""
        n_inputs = len(self.inputs)
        inputs, grads = args[:n_inputs], args[n_inputs:]
        described = ", ".join(f"{spec.name}: {tuple(x.shape)}" for spec, x in zip(self.inputs, inputs))
        for spec, x in zip(self.inputs, inputs):
            if not _same_ones(spec.shape, x.shape):
                raise ShapeError(f"derived for `{spec.name}` of shape {tuple(spec.shape)}; called with {_shape(x)}, "
                                 "where a dim of size 1 became larger or one became 1, which changes what "
                                 "broadcasts: derive again at these sizes")
        outputs = _CheckingInterpreter(self.forward_module(), described).run(*inputs)
        for spec, grad, out in zip(self.grad_outputs, grads, outputs):
            if grad.shape != out.shape:
                raise GradOutputError(f"the gradient of output `{_output(spec)}` has shape {tuple(grad.shape)}; it "
                                      f"must have the output's shape, at these input sizes ({described}) "
                                      f"{tuple(out.shape)}")
        for hook in module._forward_pre_hooks.values():  # as a call would: read the state by name (`state.py`)
            hook(module, args)
        results = _CheckingInterpreter(module, described).run(*args)
        for name, grad, x in zip(getattr(module, "grad_names", ()), results, inputs):
            if grad is not None and grad.shape != x.shape:
                raise ShapeError(f"at these sizes ({described}) the derived {name} has shape {tuple(grad.shape)}, "
                                 f"not its input's: derive again at these sizes")
        self.checked.add(_sizes(args))
        return results

    def signature(self) -> str:
        return ", ".join(self._argument_names() + [spec.name for spec in self.grad_outputs])

    def _argument_names(self) -> list[str]:
        if self.arguments is None:
            return [spec.name for spec in self.inputs]
        return [form.name for form in self.arguments]

    def _at_derived_sizes(self, inputs: tuple) -> bool:
        return all(x.shape == spec.shape for spec, x in zip(self.inputs, inputs))


def _check_tensor(spec: TensorSpec, x: Any, role: str, error: type, floating: bool = False) -> None:
    if not isinstance(x, torch.Tensor):
        raise (InputError if role == "input" else error)(
            f"the {role} `{spec.name}` must be a tensor, not {type(x).__name__}")
    if x.is_nested:
        raise InputError(f"the {role} `{spec.name}` is a nested tensor; fxgrad derives functions of strided tensors")
    if x.ndim != len(spec.shape):
        raise error(f"derived for a {len(spec.shape)}-d `{spec.name}` ({tuple(spec.shape)}); called with a "
                    f"{x.ndim}-d one ({tuple(x.shape)}): ranks are fixed at derive time, derive again for this rank")
    # an incoming gradient of another floating dtype is cast, as autograd does; an input's dtype is fixed
    if x.dtype != spec.dtype and not (floating and x.is_floating_point()):
        raise error(f"derived for `{spec.name}` of dtype {spec.dtype}; called with {x.dtype}: dtypes are fixed "
                    "at derive time, derive again with inputs of this dtype")


def _output(spec: TensorSpec) -> str:
    return spec.name.removeprefix("grad_")


def _size_guard(spec: TensorSpec, x: torch.Tensor) -> str:
    differ = [d for d, (a, b) in enumerate(zip(spec.shape, x.shape)) if a != b]
    return " and ".join(f"{spec.name}.shape[{d}] == {spec.shape[d]}" for d in differ)


def _shape(x: torch.Tensor) -> str:
    return f"shape {tuple(x.shape)}"


def _sizes(args: tuple) -> tuple:
    return tuple(tuple(x.shape) for x in args)


def cast_gradients(guards: Guards, args: tuple) -> tuple:
    """The arguments with each incoming gradient in its output's dtype, as autograd casts them."""
    n = len(guards.inputs)
    grads = tuple(g if g.dtype == spec.dtype else g.to(spec.dtype) for spec, g in zip(guards.grad_outputs, args[n:]))
    return (*args[:n], *grads)


def holds_at(forward: fx.GraphModule, backward: fx.GraphModule, n_outputs: int, n_state: int,
             args: Sequence[torch.Tensor]) -> bool:
    """Whether a forward and backward, cut from one derived graph (`fxgrad.function`), hold for
    arguments of these sizes: run on tensors of their shapes, every value must broadcast as it
    did at derive time. Anything that fails to run counts as not holding.
    The forward returns `(*outputs, *n_state new buffer values, *saved)`."""
    # zero-filled tensors while small (torch's kernels run on them in microseconds), else meta ones
    on_meta = sum(x.numel() for x in args) > SMALL_ENOUGH_FOR_ZEROS
    shaped = [torch.empty(x.shape, dtype=x.dtype, device="meta") if on_meta else torch.zeros_like(x) for x in args]
    try:
        results = _CheckingInterpreter(forward, "", on_meta=on_meta).run(*shaped)
        grads = [torch.zeros_like(out) for out in results[:n_outputs]]
        _CheckingInterpreter(backward, "", on_meta=on_meta).run(*results[n_outputs + n_state:], *grads)
    except Exception:  # noqa: BLE001 (any failure means: derive again at these sizes)
        return False
    return True


def failing_line(module: fx.GraphModule, args: tuple) -> str:
    """Where in the user's source a graph that raised on `args` fails: the line of the first
    node that raises when it is run again node by node."""
    try:
        _LocatingInterpreter(module).run(*args)
    except _Located as located:
        return located.where
    return "a line of the derived code"


class _Located(Exception):
    def __init__(self, where: str):
        self.where = where


class _LocatingInterpreter(fx.Interpreter):
    def __init__(self, module: fx.GraphModule):
        super().__init__(module)
        self.extra_traceback = False

    def run_node(self, node: fx.Node) -> Any:
        try:
            return super().run_node(node)
        except Exception:  # noqa: BLE001 (the error itself is reported by the caller)
            raise _Located(_where(node)) from None


class _CheckingInterpreter(fx.Interpreter):
    """Runs a derived graph node by node, checking each value against the one it had at derive
    time: the same rank, size 1 exactly where it was 1, as many pieces; and each failure of a
    torch op is reported at the user's line that the node comes from."""

    def __init__(self, module: fx.GraphModule, described: str, on_meta: bool = False):
        super().__init__(module)
        self.described = described
        self.on_meta = on_meta  # buffers and constants read as meta tensors too
        self.extra_traceback = False  # the errors raised here name the user's line themselves

    def fetch_attr(self, target: str) -> Any:
        found = super().fetch_attr(target)
        return found.to("meta") if self.on_meta and isinstance(found, torch.Tensor) else found

    def run_node(self, node: fx.Node) -> Any:
        try:
            result = super().run_node(node)
        except ShapeError:
            raise
        except Exception as error:  # a torch op refusing the new sizes (or values): where, in the user's terms
            raise ShapeError(f"called with {self.described}, other sizes than derived, {_where(node)} fails: "
                             f"{type(error).__name__}: {error}. If the sizes are the cause, derive again at "
                             "these sizes") from None
        derived = node.meta.get("val")
        if node.op != "placeholder" and derived is not None and not _same_pattern(derived, result):
            raise ShapeError(
                f"derived where {_where(node)} gave {_describe(derived)}; called with {self.described}, it gives "
                f"{_describe(result)}, so the backward would sum or broadcast differently: derive again at these sizes")
        return result


def _where(node: fx.Node) -> str:
    source = node.meta.get(DERIVED_FROM, node)
    location = source_location(source)
    return location if "no source line" not in location else f"`{node.name}`"


def _same_pattern(derived: Any, actual: Any) -> bool:
    """Whether a value at new sizes broadcasts as its derived value did: tensors and sizes of the
    same rank with size 1 in the same dims, tuples of as many parts."""
    if isinstance(derived, torch.Tensor):
        return isinstance(actual, torch.Tensor) and _same_ones(derived.shape, actual.shape)
    if isinstance(derived, torch.Size):
        return isinstance(actual, (tuple, list)) and _same_ones(derived, actual)
    if isinstance(derived, (tuple, list)):
        return (isinstance(actual, (tuple, list)) and len(actual) == len(derived)
                and all(_same_pattern(d, a) for d, a in zip(derived, actual)))
    return True


def _same_ones(derived: Any, actual: Any) -> bool:
    return len(derived) == len(actual) and all((d == 1) == (a == 1) for d, a in zip(derived, actual))


def _describe(val: Any) -> str:
    if isinstance(val, torch.Tensor):
        return f"shape {tuple(val.shape)}"
    if isinstance(val, (tuple, list)) and not isinstance(val, torch.Size):
        shapes = ", ".join(str(tuple(v.shape)) if isinstance(v, torch.Tensor) else repr(v) for v in val)
        return f"{len(val)} pieces ({shapes})"
    return f"{tuple(val)}" if isinstance(val, torch.Size) else repr(val)
