"""Sums, means, products and the Euclidean norm."""

from typing import Callable

import torch

from ..graph import value
from .registry import aten, define, emit, given, lowers, static_dim, unsupported_argument

define({
    # dim: an int or a tuple of ints, or None for a reduction over every dim (keepdim False)
    torch.sum: lambda input, dim, keepdim: input.sum() if dim is None else input.sum(dim, keepdim=keepdim),
    torch.mean: lambda input, dim, keepdim: input.mean() if dim is None else input.mean(dim, keepdim=keepdim),
    torch.prod: lambda input, dim, keepdim: input.prod() if dim is None else input.prod(dim, keepdim=keepdim),
    # the ord-norm (torch's kernel accumulates a float16 or bfloat16 input's powers in float32)
    torch.linalg.vector_norm: lambda input, dim, keepdim, ord=2: torch.linalg.vector_norm(
        input, *(() if ord == 2 else (ord,)), **given(dim=dim), **({"keepdim": True} if keepdim else {})),
})


def reduction_dims(input, dim, keepdim) -> tuple:
    """`(dim, keepdim)` as canonical reductions take them: `dim` None (with keepdim False) for a
    reduction over every dim, a tuple of every dim where such a reduction keeps them."""
    dim = static_dim(dim)
    if dim in (None, ()) and keepdim:
        return tuple(range(value(input).ndim)), True
    if dim in (None, ()):
        return None, False
    return dim, keepdim


def _reduction_lowering(op: Callable) -> Callable:
    def lowering(input, dim=None, keepdim=False, *, dtype=None):
        if dtype is not None:
            unsupported_argument(f"{op.__name__}(dtype=...)")
        return emit(op, input, *reduction_dims(input, dim, keepdim))

    return lowering


lowers(torch.sum, "Tensor.sum", aten.sum)(_reduction_lowering(torch.sum))
lowers(torch.mean, "Tensor.mean", aten.mean)(_reduction_lowering(torch.mean))
lowers(torch.prod, "Tensor.prod", aten.prod)(_reduction_lowering(torch.prod))


@lowers(torch.linalg.vector_norm, aten.linalg_vector_norm)
def vector_norm(input, ord=2, dim=None, keepdim=False, *, dtype=None):
    if dtype is not None:
        unsupported_argument("vector_norm(dtype=...)")
    if isinstance(ord, bool) or not isinstance(ord, (int, float)):
        unsupported_argument(f"vector_norm(ord={ord!r}) (a number)")
    return emit(torch.linalg.vector_norm, input, *reduction_dims(input, dim, keepdim), float(ord))

