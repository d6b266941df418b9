"""The state a function reads besides its arguments, found by name.

That is a module's parameters and buffers, and what a plain function closes over: the tensors
that require grad and the modules it reads from closure cells, globals and default values. A
plain function that closes over any is traced through a stand-in module that holds them
(`Captures`): its modules as submodules, its tensors as parameters, named by their Python
names (`W`, `m.weight`), so every tracer sees them as a module's parameters.

A derived graph reads each value of the state by name when it runs (`Source.read`), so a
reassigned one (`m.weight = nn.Parameter(...)`, `load_state_dict(..., assign=True)`) is seen;
one of another shape, dtype or device, or a replaced module on the way to it, is refused.

What else of the state a derived graph assumes is its `Fingerprint`, taken at derive time and
compared at each call, as torch.compile guards a module's attributes: the modules `fn` runs
(each one's identity and type, its plain attributes, its hooks, its train/eval mode), the global
module hooks, which names share one tensor, and which captured names are tensors that require
grad or modules.
"""

from __future__ import annotations

import dis
import functools
import inspect
import operator
import types
from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple

import torch
import torch.fx as fx
from torch.nn.modules import module as _torch_module
from torch.utils._pytree import tree_leaves

from .errors import ParameterError
from .trace import _is_library, _name


@dataclass(frozen=True)
class Source:
    """Where a tensor of the state lives: `path` read from the object `top()` gives now."""

    name: str  # the user's name: `fc1.weight`, `W`, `m.weight`
    top: Callable[[], Any]
    path: tuple[str, ...]
    modules: tuple[Any, ...]  # the object before each step of `path`, as at derive time
    shape: torch.Size  # and the tensor's, at derive time
    dtype: torch.dtype
    device: torch.device

    def read(self) -> torch.Tensor:
        """The tensor now, refused if it no longer fits the derived graph."""
        obj = self.top()
        for i, (module, attribute) in enumerate(zip(self.modules, self.path)):
            if obj is not module:
                parts = self.name.split(".")
                owner = ".".join(parts[: len(parts) - len(self.path) + i])
                raise ParameterError(
                    f"`{self.name}` is read through `{owner}`, which was replaced by another object after the "
                    "backward was derived: the function it computes may have changed; derive it again"
                )
            obj = getattr(obj, attribute, None)
        derived_for = (self.shape, self.dtype, self.device)
        if not isinstance(obj, torch.Tensor) or (obj.shape, obj.dtype, obj.device) != derived_for:
            raise ParameterError(
                f"`{self.name}` is now {_describe(obj)}; the backward was derived for {_describe(*derived_for)}, "
                "and does not hold for another: derive it again"
            )
        return obj


def _describe(obj: Any, dtype: torch.dtype | None = None, device: torch.device | None = None) -> str:
    if isinstance(obj, torch.Tensor):
        obj, dtype, device = obj.shape, obj.dtype, obj.device
    if not isinstance(obj, torch.Size):
        return f"a {type(obj).__name__}, not a tensor"
    return f"a {dtype} tensor of shape {tuple(obj)} on {device}"


def _source(name: str, top: Callable[[], Any], path: str) -> Source | None:
    """The source of the tensor at `path` from `top()`, None if there is none."""
    obj, parts, modules = top(), tuple(path.split(".")) if path else (), []
    for part in parts:
        modules.append(obj)
        obj = getattr(obj, part, None)
    if not isinstance(obj, torch.Tensor):
        return None
    return Source(name, top, parts, tuple(modules), obj.shape, obj.dtype, obj.device)


class Fingerprint(NamedTuple):
    """What a derived graph assumes of the state besides its tensors' shapes (`State.fingerprint`)."""

    training: tuple[bool, ...]  # the `training` flag of each module `fn` runs, in `modules` order
    # each module by qualified name: (name, itself, its type, its plain attributes, its hook dicts' keys)
    modules: tuple[tuple, ...]
    captured: tuple[tuple[str, bool], ...]  # for a function: whether each name it reads is state
    hooks: tuple[tuple, ...]  # the global module hooks
    shared: tuple[tuple[str, ...], ...]  # the names that share one tensor (tied parameters)

    @property
    def beyond_modes(self) -> tuple:
        """All but `training`, which `function`'s `Key` holds as a guard of its own."""
        return self[1:]


@dataclass
class State:
    """What `fn` reads besides its arguments, and the module the tracers trace in its place."""

    fn: Callable
    module: torch.nn.Module | None  # `fn` itself, its stand-in `Captures`, or None: no state
    readers: dict[str, Callable[[], Any]]  # a captured Python name: how to read its value now
    # every name a function reads from outside its arguments, state or not: what its fingerprint watches
    captured: dict[str, Callable[[], Any]] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)  # a captured name stored under another in `Captures`

    def traced(self) -> Callable:
        return self.module if self.module is not None else self.fn

    def parameters(self) -> dict[str, torch.Tensor]:
        """The values differentiated after the inputs, by target (`named_parameters()` order)."""
        return dict(self.module.named_parameters()) if self.module is not None else {}

    def user_name(self, target: str) -> str:
        """The user's name of a target of the traced module (`training.weight` for `training_.weight`)."""
        top, dot, path = target.partition(".")
        return self.names.get(top, top) + dot + path

    def parameter_sources(self) -> list[Source]:
        return [self.source(name, p) for name, p in self.parameters().items()]

    def source(self, target: str, obj: Any) -> Source | None:
        """The source of attribute `target` of the traced module, if it is `obj`, read by name."""
        if self.module is None or _lookup(self.module, target) is not obj:
            return None  # a constant of the tracer's own
        if self.module is self.fn:
            return _source(target, lambda: self.fn, target)
        name = self.user_name(target)
        top, _, path = name.partition(".")
        return _source(name, self.readers[top], path) if top in self.readers else None

    def roots(self) -> list[tuple[str, Any]]:
        """The objects `fn` runs with, by name, as they are now: a module itself, a bound method's
        module, or what a function reads."""
        if isinstance(self.fn, torch.nn.Module):
            return [("", self.fn)]
        if isinstance(getattr(self.fn, "__self__", None), torch.nn.Module):
            return [("self", self.fn.__self__)]
        return [(name, read()) for name, read in self.captured.items()]

    def fingerprint(self) -> Fingerprint:
        """The fingerprint of the state as it is now: one walk over the modules `fn` runs."""
        modules: list[tuple] = []
        named: dict[int, list[str]] = {}  # the names of each tensor, to find those shared
        captured = []
        plain_function = not isinstance(self.fn, torch.nn.Module) and not inspect.ismethod(self.fn)
        for name, value in self.roots():
            if isinstance(value, torch.nn.Module):
                _module_entries(name, value, modules, named)
            elif isinstance(value, torch.Tensor):
                named.setdefault(id(value), []).append(name)
            if plain_function:
                captured.append((name, _is_state(value)))
        return Fingerprint(tuple(module.training for _, module, *_ in modules), tuple(modules), tuple(captured),
                           tuple(tuple(hooks) for hooks in _global_hooks()),
                           tuple(tuple(names) for names in named.values() if len(names) > 1))


@dataclass
class StateGuard:
    """The fingerprint of a function's state at derive time, which every call checks."""

    state: State
    derived: Fingerprint

    def check(self) -> None:
        now = self.state.fingerprint()
        if now != self.derived:
            raise ParameterError(f"{changed(self.derived, now)} since the backward was derived, and what the "
                                 "function computes may have changed with it: derive it again")


def _module_entries(name: str, module: torch.nn.Module, entries: list, named: dict) -> None:
    """The fingerprint entries of `module` at qualified name `name` and of its submodules."""
    attributes, hooks = [], []
    for attribute, value in vars(module).items():
        if attribute in _HOOK_DICTS:
            hooks.append(tuple(value) if isinstance(value, dict) else value)
        elif attribute != "training" and _is_plain(value):  # `training` is a guard of its own
            attributes.append((attribute, value))
    entries.append((name, module, type(module), tuple(attributes), tuple(hooks)))
    prefix = name + "." if name else ""
    for store in (module._parameters, module._buffers):
        for key, tensor in store.items():
            if tensor is not None:
                named.setdefault(id(tensor), []).append(prefix + key)
    for key, child in module._modules.items():
        if child is not None:
            _module_entries(prefix + key, child, entries, named)


def _is_plain(value: Any) -> bool:
    """A value of a simple type, whose change may change what a module computes (`Dropout.p`)."""
    return type(value) in _PLAIN or (isinstance(value, tuple) and all(_is_plain(v) for v in value))


_PLAIN = frozenset({bool, int, float, str, type(None)})
# the hooks a module's call runs: forward and backward, pre and post (and which kind of backward hook)
_HOOK_DICTS = frozenset(name for name in vars(torch.nn.Module()) if name.startswith("_forward") or "_backward" in name)


def _global_hooks() -> list[dict]:
    return [_torch_module._global_forward_pre_hooks, _torch_module._global_forward_hooks,
            _torch_module._global_backward_pre_hooks, _torch_module._global_backward_hooks,
            _torch_module._global_forward_hooks_always_called]


def changed(derived: Fingerprint, now: Fingerprint) -> str:
    """What differs between two fingerprints, in words (for a `ParameterError`)."""
    modules = {entry[0]: entry for entry in now.modules}
    for (name, *_), was, mode in zip(derived.modules, derived.training, now.training):
        if name in modules and was != mode:
            return f"{_shown(name)} was in {_mode(was)} mode and is now in {_mode(mode)} mode"
    for name, module, kind, attributes, hooks in derived.modules:
        if name not in modules:
            return f"{_shown(name)} is gone"
        _, new_module, new_kind, new_attributes, new_hooks = modules[name]
        if new_module is not module or new_kind is not kind:
            return f"{_shown(name)} is another module now (a {new_kind.__name__})"
        if new_attributes != attributes:
            before, after = dict(attributes), dict(new_attributes)
            attribute = next(a for a in {**before, **after} if before.get(a, ...) != after.get(a, ...))
            return (f"`{name + '.' if name else ''}{attribute}` changed from {before.get(attribute, 'nothing')!r} "
                    f"to {after.get(attribute, 'nothing')!r}")
        if new_hooks != hooks:
            return f"the hooks of {_shown(name)} changed"
    for name, _, kind, _, _ in now.modules:
        if name not in {entry[0] for entry in derived.modules}:
            return f"{_shown(name)} is new (a {kind.__name__})"
    for (name, was), (_, state) in zip(derived.captured, now.captured):
        if was != state:
            return f"whether `{name}` is a module or a tensor that requires grad changed"
    if derived.hooks != now.hooks:
        return "the global module hooks changed"
    return "which names share one tensor changed"


def _shown(name: str) -> str:
    return f"`{name}`" if name else "the module"


def _mode(training: bool) -> str:
    return "training" if training else "eval"


def _lookup(module: torch.nn.Module, target: str) -> Any:
    try:
        return fx.graph_module._get_attr(module, target)
    except AttributeError:
        return None


def find_state(fn: Callable, n_inputs: int) -> State:
    """The state of `fn` called with `n_inputs` arguments; refused where it cannot be read by name."""
    if isinstance(fn, torch.nn.Module):
        # export would keep such a tensor as a constant, even one that is a parameter of the module
        for name, read in _captured(type(fn).forward, n_inputs + 1).items():
            if _differentiable(read()):
                raise ParameterError(
                    f"`{_name(fn)}.forward` reads `{name}`, which holds tensors that require grad, from outside "
                    "the module: read them through the module (`self.fc.weight`), register them as its "
                    "parameters, or pass them as inputs"
                )
        return State(fn, fn, {})
    if not isinstance(fn, types.FunctionType):
        # a bound method, a partial, a callable object: what it holds has no name to read it by
        held = (fn.__self__,) if inspect.ismethod(fn) else (
            (*fn.args, *fn.keywords.values()) if isinstance(fn, functools.partial) else (fn,))
        if any(_differentiable(value) for value in held):
            raise ParameterError(
                f"`{_name(fn)}` holds tensors that require grad (in its module, object or bound arguments); "
                "fxgrad differentiates a module's parameters and the tensors and modules a function reads by "
                "name: pass the module itself, or the tensors as inputs"
            )
        return State(fn, None, {})
    captured = _captured(fn, n_inputs)
    readers = {name: read for name, read in captured.items() if _is_state(read())}
    _refuse_unreachable(fn, captured, readers)
    if not readers:
        return State(fn, None, {}, captured)
    names = _stored_names(readers)
    return State(fn, _captures(fn, readers, names), readers, captured,
                 {stored: name for name, stored in names.items() if stored != name})


def _is_state(value: Any) -> bool:
    return isinstance(value, torch.nn.Module) or (isinstance(value, torch.Tensor) and bool(_differentiable(value)))


def _differentiable(value: Any) -> list[torch.Tensor]:
    """The tensors in `value` (a tensor, a module, a container, the attributes of an object) that
    require grad (complex ones too: they are refused where they are differentiated, not made
    constants)."""
    if isinstance(value, torch.nn.Module):
        return [p for p in value.parameters() if p.requires_grad]
    if isinstance(value, (list, tuple, dict)):
        leaves = tree_leaves(value)
    elif isinstance(value, torch.Tensor) or isinstance(value, _NOT_HOLDERS) or not hasattr(value, "__dict__"):
        leaves = [value]
    else:
        leaves = list(vars(value).values())
    return [t for t in leaves if isinstance(t, torch.Tensor) and t.requires_grad]


# Values whose attributes are not a function's state: Python modules, classes, functions.
_NOT_HOLDERS = (types.ModuleType, type, types.FunctionType, types.BuiltinFunctionType, types.MethodType,
                functools.partial)


def _captured(fn: types.FunctionType, n_inputs: int) -> dict[str, Callable[[], Any]]:
    """Every name `fn` reads from outside its arguments, with how to read it now: its closure
    cells, the globals its code loads, the defaults of the arguments it is not given."""
    readers: dict[str, Callable[[], Any]] = {}
    for name, cell in zip(fn.__code__.co_freevars, fn.__closure__ or ()):
        readers[name] = functools.partial(_contents, cell)
    for name in _globals_loaded(fn.__code__):
        if name in fn.__globals__:
            readers.setdefault(name, functools.partial(_global, fn.__globals__, name))
    positional = [p for p in inspect.signature(fn).parameters.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    first_default = len(positional) - len(fn.__defaults__ or ())
    for i, parameter in enumerate(positional[n_inputs:], n_inputs):
        if i >= first_default:
            readers[parameter.name] = functools.partial(_default, fn, i - first_default)
    for name in fn.__kwdefaults__ or {}:
        readers[name] = functools.partial(_keyword_default, fn, name)
    return readers


def _contents(cell: types.CellType) -> Any:
    try:
        return cell.cell_contents
    except ValueError:  # an empty cell
        return None


def _global(namespace: dict, name: str) -> Any:
    return namespace.get(name)


def _default(fn: types.FunctionType, i: int) -> Any:
    return fn.__defaults__[i]


def _keyword_default(fn: types.FunctionType, name: str) -> Any:
    return fn.__kwdefaults__.get(name)


def _globals_loaded(code: types.CodeType) -> list[str]:
    """The globals `code` loads."""
    return list(dict.fromkeys(i.argval for i in _instructions(code) if i.opname in ("LOAD_GLOBAL", "LOAD_NAME")))


def _instructions(code: types.CodeType):
    """The instructions of `code` and of the code nested in it (comprehensions, lambdas)."""
    yield from dis.get_instructions(code)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _instructions(const)


def _refuse_unreachable(fn: types.FunctionType, captured: dict[str, Callable[[], Any]],
                        readers: dict[str, Callable[[], Any]]) -> None:
    """Refuse tensors requiring grad that `fn` reaches but that cannot be named as state: inside
    a container it closes over, read by a function it calls, or a module or such a tensor read
    from a Python module (`mymod.net`), which export would keep as constants."""
    attributes = _attributes_loaded(fn.__code__)
    for name, read in captured.items():
        value = read()
        if isinstance(value, types.ModuleType):
            for attribute in attributes & vars(value).keys():
                held = getattr(value, attribute)
                if isinstance(held, torch.nn.Module) or _differentiable(held):
                    raise ParameterError(
                        f"`{_name(fn)}` reads `{name}.{attribute}`, a {type(held).__name__}, through the Python module "
                        f"`{name}`; fxgrad differentiates, and guards the mode of, the modules and tensors a function "
                        f"reads by their own name: bind it to a name first (`from {name} import {attribute}`), "
                        "or pass its tensors as inputs"
                    )
        if name not in readers and _differentiable(value):
            raise ParameterError(
                f"`{_name(fn)}` reads `{name}`, a {type(value).__name__} holding tensors that require grad; "
                "fxgrad differentiates tensors and modules a function reads by their own name: "
                "read each by its own name, or pass them as inputs"
            )
    seen = {fn.__code__}
    helpers = [(name, read()) for name, read in captured.items()]
    while helpers:
        name, helper = helpers.pop()
        if not isinstance(helper, types.FunctionType) or helper.__code__ in seen or _is_library(helper.__code__.co_filename):
            continue
        seen.add(helper.__code__)
        for inner, read in _captured(helper, helper.__code__.co_argcount).items():
            if _differentiable(read()):
                raise ParameterError(
                    f"`{_name(fn)}` calls `{name}`, which reads `{inner}`, holding tensors that require grad; "
                    f"fxgrad differentiates the tensors and modules `{_name(fn)}` reads itself: "
                    f"read `{inner}` in `{_name(fn)}`, or pass it as an input"
                )
            helpers.append((inner, read()))


def _attributes_loaded(code: types.CodeType) -> set[str]:
    """The attribute names `code` reads (`net` of `mymod.net`)."""
    return {i.argval for i in _instructions(code) if i.opname in ("LOAD_ATTR", "LOAD_METHOD")}


def _stored_names(readers: dict[str, Callable[[], Any]]) -> dict[str, str]:
    """The name each captured value is stored under in `Captures`: its own, unless that is an
    attribute every module has (`training`, `forward`, `float`), which gets `_` appended."""
    stored: dict[str, str] = {}
    for name in readers:
        safe = name
        while safe in _MODULE_ATTRIBUTES or (safe != name and safe in readers) or safe in stored.values():
            safe += "_"
        stored[name] = safe
    return stored


_MODULE_ATTRIBUTES = frozenset(dir(torch.nn.Module)) | frozenset(vars(torch.nn.Module()))


def _captures(fn: types.FunctionType, readers: dict[str, Callable[[], Any]], names: dict[str, str]) -> torch.nn.Module:
    """A module holding what `fn` closes over, its modules as submodules and its tensors as
    parameters (a tensor that requires grad becomes one sharing its storage; a parameter stays
    itself), whose forward calls a copy of `fn` that reads them from the module: so every tracer
    sees the module's parameters, as it does in a module's own forward."""
    values = {name: read() for name, read in readers.items()}
    tensors = [name for name, value in values.items() if isinstance(value, torch.Tensor)]
    # a captured tensor that is a parameter of a captured module is read, and named, as that one
    in_modules = {id(p): f"{names[name]}.{path}" for name, value in values.items()
                  if isinstance(value, torch.nn.Module) for path, p in value.named_parameters()}
    paths = {name: in_modules.get(id(values[name]), names[name]) for name in tensors}
    code = fn.__code__
    cells = tuple(types.CellType(_contents(cell)) if name in tensors else cell
                  for name, cell in zip(code.co_freevars, fn.__closure__ or ()))
    copy = types.FunctionType(code, dict(fn.__globals__), fn.__name__, fn.__defaults__, cells)
    copy.__kwdefaults__, copy.__qualname__ = dict(fn.__kwdefaults__ or {}) or None, fn.__qualname__
    torch.fx.proxy._register_stack_trace_anchor(copy)  # export keeps the frames of `forward`s and of anchors
    bind = functools.partial(_bind, copy, paths)
    forward = eval("lambda self, *args, **kwargs: bind(self)(*args, **kwargs)", {"bind": bind})
    # export and make_fx record the frames of functions named `forward` only
    forward.__code__ = forward.__code__.replace(co_name="forward", co_qualname="forward")
    module = type(fn.__name__, (torch.nn.Module,), {"forward": forward})()
    for name, value in values.items():
        if isinstance(value, torch.nn.Module):
            module.add_module(names[name], value)
    for name in tensors:
        value = values[name]
        if paths[name] == names[name]:
            module.register_parameter(names[name], value if isinstance(value, torch.nn.Parameter)
                                      else torch.nn.Parameter(value.detach()))
    return module


def _bind(copy: types.FunctionType, paths: dict[str, str], module: torch.nn.Module) -> types.FunctionType:
    """`copy`, made to read each captured tensor as the tracer sees the module's parameter at its path."""
    cells = dict(zip(copy.__code__.co_freevars, copy.__closure__ or ()))
    positional = [p.name for p in inspect.signature(copy).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    defaults = dict(zip(positional[len(positional) - len(copy.__defaults__ or ()):], copy.__defaults__ or ()))
    for name, path in paths.items():
        value = operator.attrgetter(path)(module)
        if name in cells:
            cells[name].cell_contents = value
        elif name in defaults:
            defaults[name] = value
        elif copy.__kwdefaults__ and name in copy.__kwdefaults__:
            copy.__kwdefaults__[name] = value
        else:
            copy.__globals__[name] = value
    if copy.__defaults__:
        copy.__defaults__ = tuple(defaults.values())
    return copy


def read_live(module: fx.GraphModule, sources: dict[str, Source]) -> None:
    """Make `module` (over a derived graph) read its state by name, and check it, on each call."""
    read = {node.target for node in module.graph.nodes if node.op == "get_attr"}
    sources = {target: source for target, source in sources.items() if target in read}
    if sources:
        module.register_forward_pre_hook(functools.partial(_refresh, sources))


def refresh(module: fx.GraphModule) -> None:
    """Read the state of `module` (made to `read_live`) into its attributes now, as a call does."""
    for hook in list(module._forward_pre_hooks.values()):
        if isinstance(hook, functools.partial) and hook.func is _refresh:
            hook(module, ())


def _refresh(sources: dict[str, Source], module: torch.nn.Module, args: tuple) -> None:
    for target, source in sources.items():
        prefix, _, field = target.rpartition(".")
        owner = module.get_submodule(prefix)
        # written where the GraphModule registered it, whatever the type of the new value
        store = owner._parameters if field in owner._parameters else owner._buffers
        store[field] = source.read()
