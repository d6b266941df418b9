"""Cumulative sums and products along a dim."""

from typing import Callable

import torch

from ..graph import value
from .conversion import convert
from .registry import aten, define, emit, lowers, static_dim

define({
    torch.cumsum: lambda input, dim: input.cumsum(dim),
    torch.cumprod: lambda input, dim: input.cumprod(dim),
    torch.logcumsumexp: lambda input, dim: input.logcumsumexp(dim),
})


def _cumulative_lowering(op: Callable) -> Callable:
    def lowering(input, dim, *, dtype=None):
        # torch converts the input to `dtype` first (a bool mask counted as floats)
        return emit(op, convert(input, value(dtype)), static_dim(dim))

    return lowering


lowers(torch.cumsum, "Tensor.cumsum", aten.cumsum)(_cumulative_lowering(torch.cumsum))
lowers(torch.cumprod, "Tensor.cumprod", aten.cumprod)(_cumulative_lowering(torch.cumprod))
lowers(torch.logcumsumexp, "Tensor.logcumsumexp", aten.logcumsumexp)(
    lambda input, dim: emit(torch.logcumsumexp, input, static_dim(dim)))
