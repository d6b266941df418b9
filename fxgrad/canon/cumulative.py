"""Cumulative sums and products along a dim."""

from typing import Callable

import torch

from .registry import aten, define, emit, lowers, static_dim, unsupported_argument

define({
    torch.cumsum: lambda input, dim: input.cumsum(dim),
    torch.cumprod: lambda input, dim: input.cumprod(dim),
})


def _cumulative_lowering(op: Callable) -> Callable:
    def lowering(input, dim, *, dtype=None):
        if dtype is not None:
            unsupported_argument(f"{op.__name__}(dtype=...)")
        return emit(op, input, static_dim(dim))

    return lowering


lowers(torch.cumsum, "Tensor.cumsum", aten.cumsum)(_cumulative_lowering(torch.cumsum))
lowers(torch.cumprod, "Tensor.cumprod", aten.cumprod)(_cumulative_lowering(torch.cumprod))
