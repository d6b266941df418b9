"""Which ops fxgrad differentiates, where each rule is, and which tests exercise it."""

from __future__ import annotations

import contextlib
import inspect
import os
from collections import defaultdict
from typing import Callable, Iterable, Iterator

import torch
import torch.utils._pytree

from .canon import LOWERINGS, OPS, op_name
from .errors import FxgradError, UnsupportedOpError
from .rules import RULES

aten = torch.ops.aten


def rule_location(op: Callable) -> str:
    """`fxgrad/rules/pointwise.py:87`, where the rule of canonical `op` is written."""
    rule = inspect.unwrap(RULES[op])
    file = inspect.getsourcefile(rule)
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return f"{os.path.relpath(file, package)}:{inspect.getsourcelines(rule)[1]}"


@contextlib.contextmanager
def recording_rules() -> Iterator[set]:
    """Within the block, the canonical ops whose rules run are added to the yielded set."""
    applied: set = set()
    originals = dict(RULES)

    def recording(op, backward):
        def rule(*args, **kwargs):
            applied.add(op)
            return backward(*args, **kwargs)
        return rule

    try:
        for op, backward in originals.items():
            RULES[op] = recording(op, backward)
        yield applied
    finally:
        RULES.update(originals)


def covered_by(tests: Iterable[tuple[str, Callable[[], None]]]) -> tuple[dict[Callable, list[str]], dict[str, str]]:
    """For each canonical op, the names of the tests among `tests` (name, run) that apply its
    rule; and the tests that fail to derive, with their error."""
    coverage: dict[Callable, list[str]] = defaultdict(list)
    failures = {}
    for name, run in tests:
        with recording_rules() as applied:
            try:
                run()
            except FxgradError as error:
                failures[name] = str(error).splitlines()[0]
        for op in applied:
            coverage[op].append(name)
    return coverage, failures


def table(coverage: dict[Callable, list[str]] | None = None) -> list[list[str]]:
    """One row per canonical op: its name, its rule's location, and the tests that cover it."""
    rows = []
    for op in sorted(OPS, key=op_name):
        row = [op_name(op), rule_location(op)]
        if coverage is not None:
            tests = coverage.get(op, [])
            row.append(f"{len(tests)}: {', '.join(tests[:3])}{', ...' if len(tests) > 3 else ''}")
        rows.append(row)
    return rows


# Core ATen ops by how fxgrad derives them; NO_GRADIENT: their results carry none (`aten.eq`).
WITH_A_RULE, DECOMPOSED, NO_GRADIENT, REFUSED = "with a rule", "decomposed", "no gradient", "refused"


def core_aten_ops() -> list[torch._ops.OpOverloadPacket]:
    """The Core ATen op set (`torch.Tag.core`), by packet: PyTorch's own list of the ops every
    model reduces to."""
    # (every registered op: `dir(aten)` lists only the packets loaded so far)
    names = {name.split("::")[1].split(".")[0] for name in torch._C._dispatch_get_all_op_names()
             if name.startswith("aten::")}
    packets = (getattr(aten, name) for name in names)
    return sorted((p for p in packets if isinstance(p, torch._ops.OpOverloadPacket)
                   and any(torch.Tag.core in getattr(p, overload).tags for overload in p.overloads())), key=str)


def core_aten_coverage() -> list[tuple[str, str, str]]:
    """One row per Core ATen op: its name, how fxgrad derives it (WITH_A_RULE: lowered onto
    canonical ops with rules; DECOMPOSED: a call made from its schema derives through torch's
    decompositions; NO_GRADIENT: that call's result carries none; REFUSED), and for the refused
    ones why: where the decompositions stop, or that no call could be made to try."""
    from . import derive

    rows = []
    for packet in core_aten_ops():
        if packet in LOWERINGS:
            rows.append((str(packet), WITH_A_RULE, ""))
            continue
        outcome = "no call to try could be made from its schema"
        for overload in (getattr(packet, name) for name in packet.overloads()):
            call = _example_call(overload)
            if call is None:
                continue
            fn, inputs = call
            try:
                derive(fn, inputs, tracer="fx")
            except UnsupportedOpError as error:
                outcome = f"decompositions stop at {error.stuck_on}" if error.stuck_on else "no decomposition"
                break
            except Exception:  # the made-up call is not one the op takes
                continue
            outcome = DECOMPOSED if _carries_gradient(fn, inputs) else NO_GRADIENT
            break
        rows.append((str(packet), outcome, "") if outcome in (DECOMPOSED, NO_GRADIENT) else
                    (str(packet), REFUSED, outcome))
    return rows


def _carries_gradient(fn: Callable, inputs: tuple) -> bool:
    with torch.enable_grad():
        result = fn(*(x.detach().requires_grad_() for x in inputs))
    return any(isinstance(r, torch.Tensor) and r.requires_grad for r in torch.utils._pytree.tree_leaves(result))


def _example_call(overload: torch._ops.OpOverload) -> tuple[Callable, tuple] | None:
    """`(fn, inputs)` calling `overload` on float64 tensors of shape (2, 3, 4) for its tensor
    arguments and small constants for its other required ones; None where its schema takes
    arguments of other kinds or returns no tensor."""
    schema = overload._schema
    if schema.is_mutable or not any(isinstance(r.type, torch.TensorType) for r in schema.returns):
        return None
    tensors, constants = [], []
    for argument in schema.arguments:
        if argument.has_default_value() or argument.kwarg_only:
            break
        kind = str(argument.type)
        if kind == "Tensor":
            tensors.append(len(constants))
            constants.append(None)
        elif kind in _CONSTANTS:
            constants.append(_CONSTANTS[kind])
        else:
            return None
    if not tensors:
        return None

    def fn(*inputs):
        args = list(constants)
        for i, x in zip(tensors, inputs):
            args[i] = x
        return overload(*args)

    g = torch.Generator().manual_seed(0)
    return fn, tuple(torch.rand(2, 3, 4, generator=g, dtype=torch.float64) + 0.5 for _ in tensors)


# Constants for required arguments, by their schema type as Python writes it: sizes of 2 (a
# kernel, a padding, an output size), dim 1. (Ops taking others, `None` for a tensor among them,
# are not called: some crash on made-up arguments rather than raise.)
_CONSTANTS = {"number": 0.5, "float": 0.5, "int": 1, "bool": False, "List[int]": [2, 2], "List[float]": [0.5, 0.5]}
