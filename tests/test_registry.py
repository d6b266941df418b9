"""The rule table and the lowering table are bound to the op-case table: nothing goes untested."""

import torch

import fxgrad
from fxgrad.arguments import bind
from fxgrad.canon import LOWERINGS, OPS, op_name, traced_target
from fxgrad.rules import RULES
from fxgrad.trace import TRACERS, trace
from op_cases import CASES


def test_every_canonical_op_has_a_rule():
    assert set(OPS) == set(RULES), "canonical ops and rules must match one to one"


def test_every_rule_is_exercised_by_a_case(monkeypatch):
    applied = set()
    for op, backward in list(RULES.items()):
        def recording(*args, _op=op, _backward=backward, **kwargs):
            applied.add(_op)
            return _backward(*args, **kwargs)
        monkeypatch.setitem(RULES, op, recording)
    for case in CASES:
        fxgrad.derive(case.fn, case.inputs())
    missing = sorted(op_name(op) for op in set(RULES) - applied)
    assert not missing, f"rules no op case exercises: {missing}"


def test_every_lowering_is_exercised_by_a_case():
    traced_targets = set()
    for case in CASES:
        for tracer in TRACERS:
            call = bind(case.fn, case.inputs(), None)
            traced = trace(call.calling(case.fn), call.tensors, tracer)
            traced_targets.update(traced_target(node) for node in traced.module.graph.nodes if node.op != "placeholder")
    # an in-place op on a fresh value is lowered as its out-of-place twin (`x.fill_(v)` as `Tensor.fill`)
    traced_targets.update(_out_of_place(t) for t in list(traced_targets))
    missing = sorted(op_name(t) for t in set(LOWERINGS) - traced_targets)
    assert not missing, f"supported spellings no op case uses: {missing}"


def _out_of_place(target):
    if isinstance(target, str) and target.endswith("_") and not target.endswith("__"):
        return target[:-1]
    name = getattr(target, "__name__", "")
    if isinstance(target, torch._ops.OpOverloadPacket) and name.endswith("_"):
        return getattr(torch.ops.aten, name[:-1], target)
    return target


def test_coverage_table_names_every_op_with_its_rule_and_its_tests():
    from fxgrad.coverage import covered_by, table

    case = next(c for c in CASES if c.name == "torch.tanh")
    coverage, failures = covered_by([("case torch.tanh", lambda: fxgrad.derive(case.fn, case.inputs())),
                                     ("unsupported", lambda: fxgrad.derive(torch.fft.fft, (torch.randn(4),)))])
    rows = {row[0]: row for row in table(coverage)}
    assert set(rows) == {op_name(op) for op in OPS}
    assert rows["torch.tanh"][1].startswith("fxgrad/rules/pointwise.py:")
    assert rows["torch.tanh"][2] == "1: case torch.tanh"
    assert list(failures) == ["unsupported"]

