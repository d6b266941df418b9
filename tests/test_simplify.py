"""Every rewrite of the simplifier, before and after: it fires, the result reads as expected,
and the graph computes the same values as before it."""

import pytest
import torch
import torch.fx as fx

import fxgrad
from fxgrad.emit import ReadableCodeGen
from fxgrad.graph import GraphBuilder
from fxgrad.simplify import REWRITES, finish, simplify

# (rewrite, function of the inputs, input shapes, the simplified result as printed)
CASES = [
    ("(xᵀ)ᵀ → x", lambda x: x.mT.mT, [(2, 3)], "x"),
    ("xᵀ written with transpose → x.mT", lambda x: x.transpose(0, 1) * 2, [(2, 3)], "x.mT * 2"),
    ("transpose(transpose(x, a, b), a, b) → x", lambda x: x.transpose(0, 2).transpose(0, 2), [(2, 3, 4)], "x"),
    ("aᵀ @ bᵀ → (b @ a)ᵀ", lambda x, y: x.mT @ y.mT, [(3, 2), (4, 3)], "(y @ x).mT"),
    ("(aᵀ @ b)ᵀ → bᵀ @ a", lambda x, y: (x.mT @ y).mT, [(3, 2), (3, 4)], "y.mT @ x"),
    ("(a @ bᵀ)ᵀ → b @ aᵀ", lambda x, y: (x @ y.mT).mT, [(2, 3), (4, 3)], "y @ x.mT"),
    ("x·1 → x", lambda x: x * 1, [(2, 3)], "x"),
    ("x/1 → x", lambda x: x / 1, [(2, 3)], "x"),
    ("x¹ → x", lambda x: x**1, [(2, 3)], "x"),
    ("-(-x) → x", lambda x: -(-x), [(2, 3)], "x"),
    ("x - (-y) → x + y", lambda x, y: x - (-y), [(2, 3), (3,)], "x + y"),
    ("x + (-y) → x - y", lambda x, y: x + (-y), [(2, 3), (3,)], "x - y"),
    ("c₁·(c₂·x) → (c₁c₂)·x", lambda x: (x * 2) * 3, [(2, 3)], "6 * x"),
    ("x + 0 → x", lambda x, y: x + (y - y), [(2, 3), (2, 3)], "x"),
    ("x - 0 → x", lambda x, y: x - (y - y), [(2, 3), (2, 3)], "x"),
    ("0 - x → -x", lambda x, y: (y - y) - x, [(2, 3), (2, 3)], "-x"),
    ("x - x → 0", lambda x: x - x, [(2, 3)], "torch.zeros_like(x)"),
    ("broadcast(x) - x → 0", lambda y, x: x.expand_as(y) - x, [(2, 3), (3,)], "torch.zeros_like(y)"),
    ("0·x → 0", lambda x, y: (x - x) * y, [(2, 3), (2, 3)], "torch.zeros_like(x)"),
    ("0/x → 0", lambda x, y: (x - x) / y, [(2, 3), (2, 3)], "torch.zeros_like(x)"),
    ("0 @ x → 0", lambda x, y: (x - x) @ y, [(2, 2), (2, 2)], "torch.zeros_like(x)"),
    ("x @ 0 → 0", lambda x, y: y @ (x - x), [(2, 2), (2, 2)], "torch.zeros_like(x)"),
    ("where(c, 0, 0) → 0", lambda x, y: torch.where(y > 0, x - x, 0.0), [(2, 3), (2, 3)], "torch.zeros_like(x)"),
    ("f(0) → 0, f linear (-, ᵀ, Σ, reshape, …)", lambda x, y: (y - y).sum(0), [(3,), (2, 3)],
     "torch.zeros_like(x)"),
    ("sum over size-1 dims, keepdim → x", lambda x: x.sum(1, keepdim=True), [(2, 1, 3)], "x"),
    ("Σ_d c·y → c·Σ_d y, c constant along d", lambda x, y: (x.expand_as(y) * y).sum(-1, keepdim=True),
     [(2, 1), (2, 3)], "x * y.sum(-1, keepdim=True)"),
    ("Σ_d softmax(x, d) → 1", lambda x, y: y * x.softmax(-1).sum(-1, keepdim=True), [(2, 3), (2, 1)], "y"),
    ("numel of a 0-d value → 1", lambda x, y: x / y.numel(), [(2, 3), ()], "x"),
    ("y.shape → x.shape, y = f(x) elementwise", lambda x: x.reshape(torch.tanh(x).shape), [(2, 3)],
     "x.reshape(x.shape)"),
    ("y.numel() → x.numel(), y = f(x) elementwise", lambda x: x / (x * 2).numel(), [(2, 3)], "x / x.numel()"),
    ("y.size(d) → x.size(d), y = f(x) elementwise", lambda x: x / (x * 2).size(0), [(2, 3)], "x / x.size(0)"),
    ("g.expand_as(y) → g.expand_as(x), y = f(x) elementwise", lambda x, g: g.expand_as(torch.tanh(x)),
     [(2, 3), (3,)], "g.expand_as(x)"),
]


def build(fn, shapes):
    graph = fx.Graph()
    builder = GraphBuilder(graph)
    inputs = [builder.placeholder(name, torch.empty(shape, dtype=torch.float64, device="meta"))
              for name, shape in zip(fn.__code__.co_varnames, shapes)]
    result = fn(*inputs)
    graph.output((result.node,))
    return graph, builder, [p.node for p in inputs]


def returned_expression(code: str) -> str:
    """What the code returns, as one expression: `return (v,)` after `v = <expression>`."""
    lines = [line.strip() for line in code.strip().splitlines()]
    name = lines[-1].removeprefix("return (").removesuffix(",)")
    assignments = dict(line.split(" = ", 1) for line in lines if " = " in line)
    return assignments.get(name, name)


def module(graph):
    graph.set_codegen(ReadableCodeGen(provenance=False))
    return fx.GraphModule(torch.nn.Module(), graph)


@pytest.mark.parametrize("math, fn, shapes, expected", CASES, ids=[c[0] for c in CASES])
def test_rewrite_before_and_after(math, fn, shapes, expected):
    before = module(build(fn, shapes)[0])
    graph, builder, inputs = build(fn, shapes)
    applied = []
    simplify(graph, builder, applied)
    finish(graph, inputs)
    after = module(graph)

    assert math in applied
    assert returned_expression(after.code) == expected, after.code
    values = [torch.randn(shape, dtype=torch.float64) for shape in shapes]
    torch.testing.assert_close(after(*values)[0], before(*values)[0])


def test_every_rewrite_has_a_case():
    assert sorted(r.math for r in REWRITES) == sorted(c[0] for c in CASES)


def test_common_subexpressions_are_computed_once():
    graph, builder, _ = build(lambda x: torch.tanh(x) * torch.tanh(x), [(2, 3)])
    simplify(graph, builder)
    assert [n.target for n in graph.nodes].count(torch.tanh) == 1


def f64(*shape):
    return torch.randn(*shape, dtype=torch.float64)


def two_statements_share_a_reduction(p, b, big):
    s = (p.expand_as(big) * b).sum(1, keepdim=True) + big
    return torch.tanh(s)


# Functions whose simplification once went wrong: each must still match autograd.
EDGE_CASES = [
    pytest.param(lambda x, w: (x * w).sum(), (f64(2, 1), f64(3)), id="sum of a broadcast product"),
    pytest.param(lambda x, w: (x * w).mean(), (f64(2, 1), f64(3)), id="mean of a broadcast product"),
    pytest.param(two_statements_share_a_reduction, (f64(2, 1, 3), f64(4, 3), f64(2, 4, 3)),
                 id="a replacement must not grow"),
    pytest.param(lambda x: torch.exp(x - x) * x, (f64(3),), id="zero under exp"),
    pytest.param(lambda y, x: torch.tanh(y + (x - x)), (f64(3), f64(2, 3)), id="zero keeping a broadcast shape"),
    pytest.param(lambda x: torch.abs(x - x).abs() + x, (f64(()),), id="zero under abs (property test)"),
    pytest.param(lambda x: torch.nn.functional.gelu(x - x, approximate="tanh") + x.abs(), (f64(()),),
                 id="zero into a sum of numbers (property test)"),
    pytest.param(lambda x, y: y * torch.exp(x.softmax(0).sum(0)), (f64(3), f64(2)), id="number for a 0-d tensor"),
    pytest.param(lambda x, y: y * x.softmax(0).sum(0).unsqueeze(0), (f64(3), f64(2)), id="number as a receiver"),
    pytest.param(lambda x, y: x * torch.full((y.numel(),), 2.0, dtype=torch.float64), (f64(1), f64(())),
                 id="constant inside a tuple argument"),
    pytest.param(lambda x: torch.tanh(x.sum(-1, keepdim=True)), (f64(()),), id="0-d keepdim sum"),
    pytest.param(lambda x: x.softmax(-1) * x, (f64(()),), id="0-d softmax"),
    pytest.param(lambda x: x * torch.where(x > 0)[0].numel(), (f64(4),), id="where with one argument"),
    pytest.param(lambda x, y: y * ~((x > 0) & True) + y * ~((x > 0) & 1), (f64(5), f64(5)), id="True is not 1"),
    pytest.param(lambda x, y: torch.tanh(x * y.softmax(-1).sum(-1, keepdim=True)), (torch.randn(2, 3), f64(2, 3)),
                 id="dtype promotion kept"),
]


@pytest.mark.parametrize("fn, inputs", EDGE_CASES)
def test_edge_cases_match_autograd_and_the_raw_backward(fn, inputs):
    from checks import assert_matches_autograd

    assert_matches_autograd(fn, fxgrad.derive(fn, inputs), inputs)
    assert_matches_autograd(fn, fxgrad.derive(fn, inputs, simplify=False), inputs)
