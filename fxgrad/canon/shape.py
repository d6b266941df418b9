"""Views and reshapes, copies, and the ops that pass values through or stop their gradient
(`detach`, and the new tensors made from a value's shape and dtype alone: `zeros_like(x)`)."""

import math

import torch
import torch.nn.functional as F

from ..errors import RandomnessError
from ..graph import value
from .conversion import convert, same_device
from .registry import (aten, call, define, dim_in_range, emit, given, is_constant, lowers, lowers_directly, sizes,
                       splat, static_dim, unsupported_argument)

define({
    torch.reshape: lambda input, shape: splat(input.reshape, shape),
    torch.flatten: lambda input, start_dim, end_dim: input.flatten(start_dim, end_dim),
    torch.unflatten: lambda input, dim, sizes: input.unflatten(dim, sizes),
    torch.unsqueeze: lambda input, dim: input.unsqueeze(dim),
    torch.squeeze: lambda input, dim: input.squeeze() if dim is None else input.squeeze(dim),
    torch.Tensor.expand: lambda input, size: splat(input.expand, size),
    torch.Tensor.expand_as: lambda input, other: input.expand_as(other),
    torch.detach: lambda input: input.detach(),
    # a tensor like `input` (its dtype unless `dtype` is given) filled with `fill_value`
    torch.full_like: lambda input, fill_value, dtype: _write_filled(torch.zeros_like, torch.ones_like, torch.full_like,
                                                                    fill_value, input, dtype=dtype),
    # a tensor of `size` with `input`'s dtype (unless `dtype` is given) and device
    torch.Tensor.new_full: lambda input, size, fill_value, dtype: _write_filled(
        input.new_zeros, input.new_ones, input.new_full, fill_value, size, dtype=dtype),
})


def _write_filled(zeros, ones, full, fill_value, *args, dtype):
    """`zeros(*args)` or `ones(*args)` where the fill value is 0 or 1, else `full(*args, fill_value)`."""
    options = given(dtype=dtype)
    if is_constant(fill_value, 0) and math.copysign(1.0, fill_value) > 0:  # (-0.0 is not zeros_like's 0)
        return zeros(*args, **options)
    if is_constant(fill_value, 1):
        return ones(*args, **options)
    return full(*args, fill_value, **options)


@lowers(torch.reshape, aten.view, aten.reshape, aten._unsafe_view)
def _reshape(input, shape):
    return emit(torch.reshape, input, sizes((shape,)))


@lowers("Tensor.reshape", "Tensor.view")
def _reshape_method(input, *shape):
    if len(shape) == 1 and isinstance(shape[0], torch.dtype):
        unsupported_argument("view(dtype) (a reinterpretation of the bits, not differentiable)")
    return emit(torch.reshape, input, sizes(shape))


@lowers("Tensor.view_as", aten.view_as)
def _view_as(input, other):
    return emit(torch.reshape, input, other.shape)


@lowers(torch.unflatten, "Tensor.unflatten", aten.unflatten)
def _unflatten(input, dim, sizes):
    return emit(torch.unflatten, input, dim_in_range(input, dim), tuple(static_dim(sizes)))


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


def _filled(input, fill_value, dtype, layout, device, requires_grad=False):
    """`full_like` in canonical ops, for a tensor like `input` in what it is made with."""
    if isinstance(fill_value, torch.fx.Proxy) and isinstance(value(fill_value), torch.Tensor):
        unsupported_argument("filling with a tensor value (write `value.expand_as(x)`)")
    if layout not in (None, torch.strided) or requires_grad:
        unsupported_argument(f"a new tensor with layout={layout} or requires_grad=True")
    if device is not None and not same_device(torch.device(device), value(input).device):
        unsupported_argument(f"a new tensor on another device ({value(input).device} to {device})")
    dtype = value(dtype)  # (a dtype read from a tensor, `dtype=x.dtype`: the guards fix it)
    return None if dtype == value(input).dtype else dtype


def _like(fill_value):
    def lowering(input, *, dtype=None, layout=None, device=None, pin_memory=None, requires_grad=False,
                 memory_format=None):
        return emit(torch.full_like, input, fill_value,
                    _filled(input, fill_value, dtype, layout, device, requires_grad))

    return lowering


lowers(torch.zeros_like, aten.zeros_like, "Tensor.zero", aten.zero)(_like(0))
lowers(torch.ones_like, aten.ones_like)(_like(1))


@lowers(torch.full_like, aten.full_like)
def _full_like(input, fill_value, *, dtype=None, layout=None, device=None, pin_memory=None, requires_grad=False,
               memory_format=None):
    return emit(torch.full_like, input, fill_value, _filled(input, fill_value, dtype, layout, device, requires_grad))


@lowers("Tensor.fill", aten.fill)
def fill(input, fill_value):  # the out-of-place twin of `x.fill_(v)`: every value of x is replaced
    if isinstance(fill_value, torch.fx.Proxy) and isinstance(value(fill_value), torch.Tensor):
        return copy(input, fill_value)  # a 0-d tensor (export's record of `x[0] = 0.5`)
    return _full_like(input, fill_value)


@lowers("Tensor.copy", aten.copy)
def copy(input, src, non_blocking=False):
    """The out-of-place twin of `x.copy_(src)`: every value of x replaced by src's, broadcast to
    x's shape and cast to its dtype."""
    src = convert(src, value(input).dtype, value(input).device)
    return src if value(src).shape == value(input).shape else emit(torch.Tensor.expand_as, src, input)


def _new(fill_value):
    def lowering(input, *varargs, size=None, dtype=None, layout=None, device=None, pin_memory=None,
                 requires_grad=False):  # x.new_zeros(2, 3), x.new_zeros((2, 3)), x.new_zeros(size=(2, 3))
        return emit(torch.Tensor.new_full, input, sizes(varargs if size is None else (size,)), fill_value,
                    _filled(input, fill_value, dtype, layout, device, requires_grad))

    return lowering


lowers("Tensor.new_zeros", aten.new_zeros)(_new(0))
lowers("Tensor.new_ones", aten.new_ones)(_new(1))


@lowers("Tensor.new_full", aten.new_full)
def _new_full(input, size, fill_value, *, dtype=None, layout=None, device=None, pin_memory=None,
              requires_grad=False):
    return _new(fill_value)(input, size, dtype=dtype, layout=layout, device=device, requires_grad=requires_grad)


@lowers(torch.clone, "Tensor.clone", aten.clone, "Tensor.contiguous", aten.contiguous)
def _copy(input, *, memory_format=None):
    # a copy, or a copy in another memory layout, has the values it copies: to a derived
    # function, which never writes to a tensor, it is the value itself
    return input


@lowers(aten.alias)
def _alias(input):
    # a view of the whole tensor (export records HF's `x[:, slice(-0, None)]`, the head's
    # `slice_logits_to_keep`, so): its values are the tensor's; writes through it are told by
    # the storage it shares, as for any view
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
