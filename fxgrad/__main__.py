"""`python -m fxgrad ops [TESTS_DIR]`: every canonical op, its rule, and the tests that cover it.

Run from a checkout of fxgrad, it derives the op cases (tests/op_cases.py) and the model
functions (tests/models) to find which tests apply each rule.
"""

from __future__ import annotations

import os
import sys

from tabulate import tabulate

from .canon import supported_ops
from .coverage import covered_by, table


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


def main(argv: list[str]) -> int:
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
