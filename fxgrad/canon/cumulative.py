"""Cumulative sums and products along a dim."""

from typing import Callable

import torch

from ..graph import value
from .conversion import convert
from .registry import aten, define, emit, lowers, static_dim

define({
    torch.cumsum: lambda input, dim: input.cumsum(dim),
    torch.cumprod: lambda input, dim: input.cumprod(dim),
})


def _cumulative_lowering(op: Callable) -> Callable:
    def lowering(input, dim, *, dtype=None):
        # dtype=: the input cast to it first, as torch computes it
        return emit(op, convert(input, value(dtype)), static_dim(dim))

    return lowering


lowers(torch.cumsum, "Tensor.cumsum", aten.cumsum)(_cumulative_lowering(torch.cumsum))
lowers(torch.cumprod, "Tensor.cumprod", aten.cumprod)(_cumulative_lowering(torch.cumprod))
