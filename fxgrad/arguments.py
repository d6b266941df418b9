"""A call's arguments and a function's outputs as flat lists of tensors, and back.

Real code calls a model with keywords (`model(inputs_embeds=e)`), leaves arguments at their
defaults (`mask=None`), passes options (`is_causal=True`), containers of tensors (a list, a
dict batch), and gets back a dict, a namedtuple, a dataclass or an HF `ModelOutput`. The
tracers and the reverse pass see none of that: `bind` takes a call apart with
`torch.utils._pytree` into its tensors, each named after the argument (and key) it comes from,
and the rest, which are constants of the trace; `Call.calling` makes the function a function
of those tensors alone, returning its outputs flat (None skipped), and records their structure
(`Structure`) so that `fxgrad.function` can return what `fn` returns.
"""

from __future__ import annotations

import dataclasses
import inspect
import keyword
import re
import types
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch
import torch.utils._pytree as pytree

from .errors import InputError, OutputError, ShapeError, TraceError
from .trace import GENERATED_FILE, _has_forward_hooks, _input_names, _name

# The values an argument may hold besides tensors: constants of the trace, guarded by value.
CONSTANTS = (type(None), bool, int, float, str, torch.dtype, torch.device)


@dataclass
class ArgumentForm:
    """One argument of a call as derived: its structure (a tensor, a constant, a container of
    them) and its constants, by leaf index. A call of the backward must give the same."""

    name: str
    spec: pytree.TreeSpec
    constants: dict[int, Any]

    @property
    def is_tensor(self) -> bool:
        return self.spec.is_leaf() and 0 not in self.constants

    def kind(self) -> str:
        """What this argument is: `a tensor`, `a float`, `a list`, ..."""
        if self.is_tensor:
            return "a tensor"
        return f"a {type(self.constants[0]).__name__ if self.spec.is_leaf() else self.spec.type.__name__}"

    def tensors(self, value: Any) -> list:
        """The tensors of `value`, given for this argument; refused if it has another structure
        or another constant."""
        if self.is_tensor:
            return [value]  # a tensor: checked as one by the guards
        leaves, spec = pytree.tree_flatten(value)
        if spec != self.spec:
            raise InputError(f"derived for `{self.name}` of the form {_form(self.spec)}; called with "
                             f"{_form(spec)}: derive again for this form")
        for i, constant in self.constants.items():
            if not _same_constant(leaves[i], constant):
                raise ShapeError(f"derived for `{self.name}`{_where(self.spec, i)} == {constant!r}, a constant of the "
                                 f"trace; called with {_value(leaves[i])}: derive again with this value")
        return [leaf for i, leaf in enumerate(leaves) if i not in self.constants]


def _same_constant(value: Any, constant: Any) -> bool:
    if type(value) is not type(constant):
        return False
    return value == constant or (value != value and constant != constant)  # NaN is NaN


def _value(value: Any) -> str:
    return f"a tensor of shape {tuple(value.shape)}" if isinstance(value, torch.Tensor) else repr(value)


def _form(spec: pytree.TreeSpec) -> str:
    return "a tensor or constant" if spec.is_leaf() else str(spec).replace("*", "x")


def _where(spec: pytree.TreeSpec, i: int) -> str:
    if spec.is_leaf():
        return ""
    paths, _ = pytree.tree_flatten_with_path(pytree.tree_unflatten(range(spec.num_leaves), spec))
    return pytree.keystr(paths[i][0])


@dataclass
class Structure:
    """What a function returns, its tensors taken out: `rebuild` puts values back in their places
    (None where the function returned None)."""

    spec: pytree.TreeSpec
    kept: list[int]  # the leaves that are outputs (not None), in order

    def rebuild(self, values: Sequence[Any]) -> Any:
        if len(values) != len(self.kept):  # a value holding several (`x.max(1)`): its parts
            return tuple(values)
        leaves = [None] * self.spec.num_leaves
        for i, v in zip(self.kept, values):
            leaves[i] = v
        return pytree.tree_unflatten(leaves, self.spec)


@dataclass
class Call:
    """A call of the user's function taken apart: its tensors, named, and the rest constants."""

    fn: Callable
    arguments: list[ArgumentForm]  # (*args, *kwargs values): what a backward takes before the gradients
    names: list[str]  # one per tensor
    tensors: list[torch.Tensor]
    spec: pytree.TreeSpec  # of (args, kwargs)
    leaves: list  # of (args, kwargs), tensors among them
    n_positional: int
    plain: bool  # tensors by position only: what the call's tensors are is what `fn` is given
    outputs: Structure | None = None  # set when traced
    output_names: list[str | None] = field(default_factory=list)  # the key of each output, where it has one
    form: int | None = None  # the number `fxgrad.function` gave the call's form (its spec and constants)

    def rebuild(self, tensors: Sequence[Any]) -> tuple[tuple, dict]:
        tensors = iter(tensors)
        leaves = [next(tensors) if isinstance(leaf, torch.Tensor) else leaf for leaf in self.leaves]
        return pytree.tree_unflatten(leaves, self.spec)

    def calling(self, traced: Callable) -> Callable:
        """`traced` (the user's function, its stand-in module or the user's module) as a callable of
        the call's tensors alone, with parameters named after them, returning its outputs flat."""
        if isinstance(traced, torch.nn.Module):
            return self._module_calling(traced)
        if isinstance(self.fn, types.FunctionType):
            # export and make_fx keep the frames of `forward`s and of anchors: the user's lines
            torch.fx.proxy._register_stack_trace_anchor(self.fn)

        def call(*tensors):
            args, kwargs = self.rebuild(tensors)
            return self._flat(traced(*args, **kwargs))

        return _with_parameters(call, self.names, _name(self.fn))

    def _module_calling(self, module: torch.nn.Module) -> torch.nn.Module:
        """A module that is `module` (its attributes, parameters, buffers and hooks are the same
        objects: one `__dict__`) but whose forward takes the call's tensors."""
        if _has_forward_hooks(module):
            if not self.plain:
                raise TraceError(f"`{_name(self.fn)}` has forward hooks, which take the call's arguments as they "
                                 "are: fxgrad traces a module with hooks when it is called with tensors by position only")

            def call(self_, *tensors):  # the hooks see the call's tensors and the module's outputs as they are
                return self._flat(torch.nn.Module.__call__(self_, *tensors))

            namespace = {"__call__": call}
        else:
            original = type(module).forward

            def forward(self_, *tensors):
                args, kwargs = self.rebuild(tensors)
                return self._flat(original(self_, *args, **kwargs))

            namespace = {"forward": _with_parameters(forward, ["self", *self.names], "forward")}
        taking_tensors = type(type(module).__name__, (type(module),), namespace)
        bound = object.__new__(taking_tensors)
        object.__setattr__(bound, "__dict__", module.__dict__)
        return bound

    def _flat(self, result: Any) -> tuple:
        leaves_with_paths, spec = pytree.tree_flatten_with_path(_taken_apart(result))
        for path, leaf in leaves_with_paths:
            _refuse_opaque_output(self.fn, path, leaf)
        kept = [i for i, (_, leaf) in enumerate(leaves_with_paths) if leaf is not None]
        self.outputs = Structure(spec, kept)
        self.output_names = [_key_name(leaves_with_paths[i][0]) for i in kept]
        return tuple(leaves_with_paths[i][1] for i in kept)


def _refuse_opaque_output(fn: Callable, path: tuple, leaf: Any) -> None:
    """An output that is an object pytree does not take apart (an HF model's `DynamicCache`) may
    hold tensors no gradient could be given for: refused where the function returns it, before a
    tracer fails on it."""
    if isinstance(leaf, (torch.Tensor, torch.fx.Proxy, *CONSTANTS)):
        return
    where = f" as `{_identifier(_key_part(path[0]), path[1:])}`" if path else ""
    # transformers names its caches of keys and values `...Cache`, which use_cache=False leaves out
    hint = (": pass use_cache=False, or register the cache with pytree (transformers' "
            "`register_dynamic_cache_export_support()`), which makes its tensors outputs"
            if type(leaf).__name__.endswith("Cache") else "")
    raise OutputError(f"`{_name(fn)}` returns a {type(leaf).__name__}{where}, which is not a tensor nor a "
                      f"container torch.utils._pytree takes apart{hint}")


def bind(fn: Callable, args: Any, kwargs: Any) -> Call:
    """Take the call `fn(*args, **kwargs)` apart; refuse one `fn` cannot take or a value that is
    neither a tensor nor a constant."""
    if isinstance(args, torch.Tensor) or not isinstance(args, (tuple, list)):
        raise InputError(
            "example_inputs must be a tuple of tensors, one per argument of the function "
            f"(got {type(args).__name__}; for one tensor x, pass (x,))"
        )
    if kwargs is None:
        kwargs = {}
    if not isinstance(kwargs, dict) or not all(isinstance(k, str) for k in kwargs):
        raise InputError(f"kwargs must be a dict of keyword arguments, not {type(kwargs).__name__}")
    args = tuple(args)
    signature = _signature(fn)
    if signature is None and kwargs:
        raise InputError(f"`{_name(fn)}` has no Python signature to take keyword arguments by")
    if signature is not None:
        try:
            signature.bind(*args, **kwargs)
        except TypeError as error:
            raise InputError(f"`{_name(fn)}` takes {len(signature.parameters)} arguments "
                             f"({', '.join(signature.parameters)}) and cannot be called with these: {error}") from None
    bases = _input_names(fn, len(args)) + list(kwargs)
    values = [*args, *kwargs.values()]
    arguments, names, tensors = [], [], []
    for base, value in zip(bases, values):
        leaves_with_paths, spec = pytree.tree_flatten_with_path(value)
        constants = {}
        for i, (path, leaf) in enumerate(leaves_with_paths):
            where = base + pytree.keystr(path)
            if isinstance(leaf, torch.Tensor):
                if leaf.is_nested:
                    raise InputError(f"`{where}` is a nested tensor; fxgrad derives functions of "
                                     "strided tensors (pad the pieces into one tensor, with a mask)")
                names.append(_identifier(base, path))
                tensors.append(leaf)
            elif isinstance(leaf, CONSTANTS):
                constants[i] = leaf
            else:
                raise InputError(f"`{where}` is a {type(leaf).__name__}, not a tensor: fxgrad takes "
                                 "tensors, lists, tuples and dicts of them, and constants (numbers, bools, "
                                 "strings, None)")
        arguments.append(ArgumentForm(base, spec, constants))
    leaves, spec = pytree.tree_flatten((args, kwargs))
    plain = not kwargs and all(isinstance(x, torch.Tensor) for x in args)
    return Call(fn, arguments, _distinct_names(names), tensors, spec, leaves, len(args), plain)


def _signature(fn: Callable) -> inspect.Signature | None:
    try:
        return inspect.signature(fn.forward if isinstance(fn, torch.nn.Module) else fn)
    except (TypeError, ValueError):  # builtins without a signature, objects that are not callable
        return None


def _identifier(base: str, path: tuple) -> str:
    """`batch_input_ids` for `batch["input_ids"]`, `xs_0` for `xs[0]`."""
    name = "_".join([base, *(_key_part(key) for key in path)])
    name = re.sub(r"\W", "_", name)
    return name if name.isidentifier() and not keyword.iskeyword(name) else f"x_{name}"


def _key_part(key: Any) -> str:
    if isinstance(key, pytree.SequenceKey):
        return str(key.idx)
    if isinstance(key, pytree.MappingKey):
        return str(key.key)
    return str(getattr(key, "name", key))


def _key_name(path: tuple) -> str | None:
    """An output's name from its key (`logits`, `hidden_states_0`); None for a tuple's entry,
    which takes the name the user's code gives it."""
    if all(isinstance(key, pytree.SequenceKey) for key in path):
        return None
    return _identifier(_key_part(path[0]), path[1:])


def _distinct_names(names: list[str]) -> list[str]:
    seen: set[str] = {"self"}
    distinct = []
    for name in names:
        unique, n = name, 1
        while unique in seen:
            unique, n = f"{name}_{n}", n + 1
        seen.add(unique)
        distinct.append(unique)
    return distinct


def _with_parameters(call: Callable, names: list[str], name: str) -> types.FunctionType:
    """A function of the parameters `names` that calls `call` with them: the tracers name their
    placeholders after a function's parameters, and take as many inputs as it has."""
    arguments = ", ".join(names)
    function = eval(compile(f"lambda {arguments}: _fxgrad_call({arguments})", GENERATED_FILE, "eval"),
                    {"_fxgrad_call": call})
    function.__name__ = function.__qualname__ = name
    return function


class _Dataclass:
    """A dataclass output pytree does not know, taken apart by its fields and built again."""

    def __init__(self, value: Any):
        self.cls = type(value)
        self.fields = {f.name: _taken_apart(getattr(value, f.name)) for f in dataclasses.fields(value) if f.init}


def _is_unknown_dataclass(value: Any) -> bool:
    return (dataclasses.is_dataclass(value) and not isinstance(value, type)
            and type(value) not in pytree.SUPPORTED_NODES)


def _taken_apart(value: Any) -> Any:
    return pytree.tree_map(lambda v: _Dataclass(v) if _is_unknown_dataclass(v) else v, value,
                           is_leaf=_is_unknown_dataclass)


pytree.register_pytree_node(
    _Dataclass,
    lambda d: (list(d.fields.values()), (d.cls, list(d.fields))),
    lambda values, context: context[0](**dict(zip(context[1], values))),
    flatten_with_keys_fn=lambda d: ([(pytree.GetAttrKey(k), v) for k, v in d.fields.items()],
                                    (d.cls, list(d.fields))),
    serialized_type_name="fxgrad.arguments._Dataclass",
)
