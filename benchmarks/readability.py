"""How much code fxgrad's backward is, before and after simplification, beside AOTAutograd's.

    python benchmarks/readability.py

For each seed example: the ops (fx call nodes) of fxgrad's backward graph, split into the
forward values it recomputes and the backward ops proper, with simplification off and on; the
lines fxgrad prints the backward ops in; and the ops of AOTAutograd's backward graph for the
same function (which saves forward values instead of recomputing them), measured in this run.
"""

from __future__ import annotations

import os
import sys

import torch
from functorch.compile import aot_function, make_boxed_func
from tabulate import tabulate

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

import fxgrad  # noqa: E402
from examples.seeds import EXAMPLES, example_inputs  # noqa: E402
from fxgrad.emit import op_counts  # noqa: E402


def aot_backward_ops(fn, inputs) -> int:
    """Call nodes in the backward graph AOTAutograd makes for `fn`."""
    graphs = {}

    def keep(kind):
        def compiler(gm, _):
            graphs[kind] = gm
            return make_boxed_func(gm)
        return compiler

    leaves = [x.detach().clone().requires_grad_() for x in inputs]
    outputs = aot_function(fn, fw_compiler=keep("forward"), bw_compiler=keep("backward"))(*leaves)
    outputs = tuple(outputs) if isinstance(outputs, (tuple, list)) else (outputs,)
    torch.autograd.backward(outputs, [torch.ones_like(out) for out in outputs])
    return sum(1 for node in graphs["backward"].graph.nodes if node.op in ("call_function", "call_method"))


def main() -> None:
    rows = []
    for name, fn in EXAMPLES.items():
        inputs = example_inputs(name)
        raw = op_counts(fxgrad.derive(fn, inputs, simplify=False).graph)
        simplified = op_counts(fxgrad.derive(fn, inputs).graph)
        rows.append([
            name,
            raw["forward"], raw["backward"],
            simplified["forward"], simplified["backward"], simplified["backward_statements"],
            aot_backward_ops(fn, inputs),
        ])
    print(tabulate(rows, headers=[
        "example", "raw: recomputed", "raw: backward ops", "simplified: recomputed",
        "simplified: backward ops", "printed backward lines", "AOTAutograd backward ops",
    ]))


if __name__ == "__main__":
    main()
