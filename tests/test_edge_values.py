"""Where a derivative meets a zero, an infinity or a NaN, the derived backward gives what
torch.autograd gives, float64 against float64."""

import pytest
import torch

import fxgrad
from checks import assert_matches_autograd
from fxgrad.trace import TRACERS

ZERO_ROW = torch.tensor([[0.0, 0.0, 0.0], [1.0, -2.0, 3.0]], dtype=torch.float64)


@pytest.mark.parametrize("tracer", TRACERS)
@pytest.mark.parametrize("fn", [
    lambda x: x.norm(),
    lambda x: torch.norm(x),
    lambda x: torch.linalg.vector_norm(x),
    lambda x: x.norm(dim=1),
    lambda x: torch.norm(x, dim=1, keepdim=True),
    lambda x: torch.linalg.vector_norm(x, dim=-1, keepdim=True) * x,
], ids=["Tensor.norm", "torch.norm", "vector_norm", "dim", "dim keepdim", "vector_norm keepdim"])
def test_two_norm_at_zero_has_gradient_zero(fn, tracer):
    bwd = fxgrad.derive(fn, (ZERO_ROW,), tracer=tracer)
    assert_matches_autograd(fn, bwd, (ZERO_ROW,))
    zeros = torch.zeros(2, 3, dtype=torch.float64)
    assert_matches_autograd(fn, bwd, (zeros,))
    assert not bwd(zeros, *[torch.ones_like(out) for out in [fn(zeros)]])[0].isnan().any()


@pytest.mark.parametrize("tracer", TRACERS)
def test_a_nan_reaching_the_two_norm_at_zero_stays_nan_as_in_autograd(tracer):
    fn = lambda x: x / x.norm()  # noqa: E731  (0/0 in the forward: NaN gradients, in torch too)
    zeros = torch.zeros(2, 3, dtype=torch.float64)
    assert_matches_autograd(fn, fxgrad.derive(fn, (zeros,), tracer=tracer), (zeros,))


AT_ZERO = torch.tensor([0.0, 1.0, -2.0], dtype=torch.float64)
NON_FINITE = torch.tensor([0.0, float("inf"), float("nan"), -1.5], dtype=torch.float64)


@pytest.mark.parametrize("tracer", TRACERS)
@pytest.mark.parametrize("fn", [
    lambda x: 0.0 / x,  # -g·0/x² is NaN at 0
    lambda x: torch.sqrt(0.0 * x),  # sqrt's gradient at 0 is ∞, and ∞·0 is NaN
    lambda x: torch.sqrt(x * 0),
    lambda x: torch.sqrt(torch.zeros(()) * x),
    lambda x: (x * 0.0).rsqrt() + x,
], ids=["0 / x", "sqrt(0.0 * x)", "sqrt(x * 0)", "sqrt(zeros(()) * x)", "rsqrt(x * 0.0)"])
def test_a_zero_written_in_the_function_is_a_number_not_a_symbolic_zero(fn, tracer):
    for x in (AT_ZERO, NON_FINITE):
        assert_matches_autograd(fn, fxgrad.derive(fn, (x,), tracer=tracer), (x,))


@pytest.mark.parametrize("fn", [
    lambda x, w: (x - x) * w,  # ∞ - ∞ is NaN
    lambda x, w: (x.expand(2, 4) - x) * w,
    lambda x, w: ((x * 1e300) * 1e-300) * w,  # 1e10·1e300 overflows, where (1e300·1e-300)·1e10 would not
    # Σ ∞·w of mixed signs is NaN, ∞·Σ w is not
    lambda x, w: (x.detach().mT.expand(4, 2) * w.detach().mT).sum(-1, keepdim=True) * w.mT,
    lambda x, w: x.softmax(-1).sum(-1, keepdim=True) * w,  # NaN where x holds ∞ or NaN
], ids=["x - x", "broadcast(x) - x", "c·(c·x)", "Σ c·y", "Σ softmax"])
def test_forward_values_are_computed_as_the_function_computes_them(fn):
    x, w = torch.tensor([[0.0, float("inf"), float("nan"), 1e10]], dtype=torch.float64), torch.tensor([[1.0, -2.0, 0.5, 3.0], [2.0, 1.0, -1.0, 0.0]], dtype=torch.float64)
    assert_matches_autograd(fn, fxgrad.derive(fn, (x, w)), (x, w))


def test_softmax_rows_summing_to_one_still_give_an_exact_zero_gradient():
    fn = lambda x: torch.softmax(x, -1).sum()  # noqa: E731
    bwd = fxgrad.derive(fn, (torch.randn(2, 3, dtype=torch.float64),))
    assert "zeros_like" in bwd.code and "softmax" not in bwd.code


@pytest.mark.parametrize("tracer", TRACERS)
def test_addmm_with_beta_zero_ignores_the_input_as_torch_does(tracer):
    fn = lambda b, x, w: torch.tanh(torch.addmm(b, x, w, beta=0))  # noqa: E731
    b = torch.tensor([[float("nan"), float("inf")]], dtype=torch.float64)
    x, w = torch.randn(3, 4, dtype=torch.float64), torch.randn(4, 2, dtype=torch.float64)
    assert_matches_autograd(fn, fxgrad.derive(fn, (b, x, w), tracer=tracer), (b, x, w))


DOMAIN_EDGES = torch.tensor([-2.0, -1.0, 0.0, 1.0, 2.0], dtype=torch.float64)


@pytest.mark.parametrize("tracer", TRACERS)
@pytest.mark.parametrize("op", [torch.asin, torch.acos, torch.atanh, torch.acosh, torch.log2, torch.log10],
                         ids=lambda op: op.__name__)
def test_inverse_functions_at_their_domain_edges_give_what_torch_gives(op, tracer):
    # ±∞ on the edges (asin, acos, atanh at ±1, acosh at 1, the logs at 0) and NaN beyond them
    assert_matches_autograd(op, fxgrad.derive(op, (DOMAIN_EDGES,), tracer=tracer), (DOMAIN_EDGES,))


@pytest.mark.parametrize("tracer", TRACERS)
def test_atan2_at_the_origin_has_gradient_zero(tracer):
    a = torch.tensor([0.0, 0.0, 1.0, -0.0], dtype=torch.float64)
    b = torch.tensor([0.0, 1.0, 0.0, -0.0], dtype=torch.float64)
    assert_matches_autograd(torch.atan2, fxgrad.derive(torch.atan2, (a, b), tracer=tracer), (a, b))


@pytest.mark.parametrize("tracer", TRACERS)
@pytest.mark.parametrize("op", [torch.fmod, torch.remainder], ids=["fmod", "remainder"])
def test_fmod_and_remainder_divisor_gradient_rounds_the_quotient_their_way(op, tracer):
    # fmod truncates a/b, remainder floors it: they differ where a/b is negative
    a = torch.tensor([5.5, -5.5, 5.5, -5.5, 0.0], dtype=torch.float64)
    b = torch.tensor([2.0, 2.0, -2.0, -2.0, 3.0], dtype=torch.float64)
    assert_matches_autograd(op, fxgrad.derive(op, (a, b), tracer=tracer), (a, b))


@pytest.mark.parametrize("tracer", TRACERS)
@pytest.mark.parametrize("fn", [
    lambda x: x.prod(),
    lambda x: x.prod(1),
    lambda x: x.prod(0, keepdim=True),
], ids=["whole", "dim", "dim keepdim"])
def test_prod_with_zeros_gives_what_torch_gives(fn, tracer):
    # rows with no zero, one zero and two zeros; a whole product with two zeros and with one
    x = torch.tensor([[1.0, -2.0, 3.0], [0.0, 2.0, 0.5], [0.0, 0.0, 4.0]], dtype=torch.float64)
    one_zero = torch.tensor([[1.0, -2.0, 3.0], [0.0, 2.0, 0.5], [1.5, 1.0, 4.0]], dtype=torch.float64)
    bwd = fxgrad.derive(fn, (x,), tracer=tracer)
    for inputs in (x, one_zero):
        assert_matches_autograd(fn, bwd, (inputs,))
