"""Views and reshapes, copies, and the ops that pass values through or stop their gradient."""

import torch
import torch.nn.functional as F

from ..errors import RandomnessError
from ..graph import value
from .registry import (aten, call, define, emit, lowers, lowers_directly, sizes, splat, static_dim,
                       unsupported_argument)

define({
    torch.reshape: lambda input, shape: splat(input.reshape, shape),
    torch.flatten: lambda input, start_dim, end_dim: input.flatten(start_dim, end_dim),
    torch.unsqueeze: lambda input, dim: input.unsqueeze(dim),
    torch.squeeze: lambda input, dim: input.squeeze() if dim is None else input.squeeze(dim),
    torch.Tensor.expand: lambda input, size: splat(input.expand, size),
    torch.Tensor.expand_as: lambda input, other: input.expand_as(other),
    torch.detach: lambda input: input.detach(),
})


@lowers(torch.reshape, aten.view, aten.reshape, aten._unsafe_view)
def _reshape(input, shape):
    return emit(torch.reshape, input, sizes((shape,)))


@lowers("Tensor.reshape", "Tensor.view")
def _reshape_method(input, *shape):
    if len(shape) == 1 and isinstance(shape[0], torch.dtype):
        unsupported_argument("view(dtype) (a reinterpretation of the bits, not differentiable)")
    return emit(torch.reshape, input, sizes(shape))


@lowers(torch.flatten, "Tensor.flatten", aten.flatten)
def _flatten(input, start_dim=0, end_dim=-1):
    return emit(torch.flatten, input, static_dim(start_dim), static_dim(end_dim))


@lowers(torch.unsqueeze, "Tensor.unsqueeze", aten.unsqueeze)
def _unsqueeze(input, dim):
    return emit(torch.unsqueeze, input, static_dim(dim))


@lowers(torch.squeeze, "Tensor.squeeze", aten.squeeze)
def _squeeze(input, dim=None):
    return emit(torch.squeeze, input, static_dim(dim))


@lowers("Tensor.expand")
def _expand(input, *size):
    return emit(torch.Tensor.expand, input, sizes(size))


@lowers(aten.expand)
def _aten_expand(input, size, *, implicit=False):
    return emit(torch.Tensor.expand, input, sizes((size,)))


@lowers(torch.broadcast_to, aten.broadcast_to)
def _broadcast_to(input, size):
    return emit(torch.Tensor.expand, input, sizes((size,)))


lowers_directly(torch.Tensor.expand_as, "Tensor.expand_as", aten.expand_as)
lowers_directly(torch.detach, torch.detach, "Tensor.detach", aten.detach)


@lowers(torch.clone, "Tensor.clone", aten.clone, "Tensor.contiguous", aten.contiguous)
def _copy(input, *, memory_format=None):
    # a copy, or a copy in another memory layout, has the values it copies: to a derived
    # function, which never writes to a tensor, it is the value itself
    return input


@lowers(F.dropout, F.dropout1d, F.dropout2d, F.dropout3d, F.alpha_dropout, F.feature_alpha_dropout)
def _dropout(input, p=0.5, training=True, inplace=False):
    if training and p > 0:
        raise RandomnessError(
            f"dropout with p={p} in training mode draws random numbers; the backward recomputes the forward, "
            "which would drop other elements (use p=0 or eval mode, or pass the mask as an input)"
        )
    return input


@lowers(aten.dropout, aten.feature_dropout, aten.alpha_dropout, aten.feature_alpha_dropout)
def _aten_dropout(input, p, train):
    return _dropout(input, p, train)


@lowers(torch.broadcast_tensors, aten.broadcast_tensors)
def _broadcast_tensors(*tensors):
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):  # the ATen op takes a list
        tensors = tuple(tensors[0])
    shape = torch.broadcast_shapes(*(value(t).shape for t in tensors))
    # expanded as one of them that has the whole shape, or to the shape they broadcast to at run time
    whole = next((t for t in tensors if value(t).shape == shape), None)
    if whole is None:
        expand, to = torch.Tensor.expand, call(torch.broadcast_shapes, *(t.shape for t in tensors))
    else:
        expand, to = torch.Tensor.expand_as, whole
    return tuple(t if value(t).shape == shape else emit(expand, t, to) for t in tensors)
