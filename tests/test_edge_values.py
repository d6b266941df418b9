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

