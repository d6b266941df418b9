"""`python -m fxgrad derive EXPRESSION|FILE.py:FUNCTION NAME=DIMS ...`: the gradient calculator,
the derived backward with its shapes (`python -m fxgrad derive --help`).
`python -m fxgrad ops [TESTS_DIR]`: every canonical op, its rule, and the tests that cover it.
`python -m fxgrad coverage`: the Core ATen op set, each op with a rule, decomposed, carrying no
gradient, or refused, with counts.

Run from a checkout of fxgrad, `ops` derives the op cases (tests/op_cases.py) and the model
functions (tests/models) to find which tests apply each rule.
"""

from __future__ import annotations

import os
import sys
from collections import Counter

from tabulate import tabulate

from .canon import supported_ops
from .coverage import DECOMPOSED, NO_GRADIENT, REFUSED, WITH_A_RULE, core_aten_coverage, covered_by, table


def _tests(directory: str):
    """(name, run) for each op case and model function found under `directory`."""
    import torch

    from . import derive

    sys.path.insert(0, directory)
    sys.path.insert(0, os.path.dirname(os.path.abspath(directory)))
    from op_cases import CASES

    for case in CASES:
        yield f"case {case.name}", lambda case=case: derive(case.fn, case.inputs())
    if os.path.isdir(os.path.join(directory, "models")):
        from tests.models import losses, transformers, vision  # noqa: F401  (register them)
        from tests.models.registry import MODELS

        for name, model in sorted(MODELS.items()):
            yield f"model {name}", lambda m=model: derive(m.fn, m.make_inputs(torch.Generator().manual_seed(0)))


def core_aten_summary(rows: list[tuple[str, str, str]]) -> str:
    """`Core ATen IR (torch.Tag.core): 160 ops; 68 with a rule, ...`, the figure the README states."""
    counts = Counter(status for _, status, _ in rows)
    return (f"Core ATen IR (torch.Tag.core): {len(rows)} ops; "
            + ", ".join(f"{counts[status]} {status}" for status in (WITH_A_RULE, DECOMPOSED, NO_GRADIENT, REFUSED)))


def main(argv: list[str]) -> int:
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0
    if argv and argv[0] == "derive":
        from . import cli

        return cli.main(argv[1:])
    if argv and argv[0] == "coverage":
        rows = core_aten_coverage()
        print(tabulate(rows, headers=["Core ATen op", "derived", "why refused"]))
        print(f"\n{core_aten_summary(rows)}")
        return 0
    if not argv or argv[0] != "ops":
        print(__doc__.strip())
        return 2
    directory = argv[1] if len(argv) > 1 else "tests"
    coverage, failures = covered_by(_tests(directory)) if os.path.isdir(directory) else (None, {})
    headers = ["canonical op", "rule", "tests covering it"][: 2 + (coverage is not None)]
    print(tabulate(table(coverage), headers=headers))
    print(f"\n{len(supported_ops())} traced spellings lower onto these ops: fxgrad.supported_ops() lists them.")
    for name, error in failures.items():
        print(f"failed to derive {name}: {error}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
