"""Which ops fxgrad differentiates, where each rule is, and which tests exercise it."""

from __future__ import annotations

import contextlib
import inspect
import os
from collections import defaultdict
from typing import Callable, Iterable, Iterator

from .canon import OPS, op_name
from .errors import FxgradError
from .rules import RULES


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
