"""Conversions to another dtype, and moves to the device a tensor is already on."""

import torch

from ..graph import value
from .registry import aten, define, emit, lowers, unsupported_argument

define({
    torch.Tensor.to: lambda input, dtype: input.to(dtype),
})


def convert(input, dtype=None, device=None):
    """`input` as `dtype` (None: its own) on `device` (None: its own), in canonical ops."""
    own = value(input)
    if device is not None and not same_device(torch.device(device), own.device):
        unsupported_argument(f"moving a tensor to another device ({own.device} to {device})")
    if dtype is None or dtype == own.dtype:  # torch returns the tensor itself
        return input
    return emit(torch.Tensor.to, input, dtype)


def same_device(device: torch.device, own: torch.device) -> bool:
    return device.type == own.type and device.index in (None, own.index)


@lowers("Tensor.to", aten.to)
def _to(input, *args, **kwargs):
    # the spellings to(dtype), to(device, dtype), to(other) and their keywords; the options
    # non_blocking, copy and memory_format leave the values as they are
    dtype, device = value(kwargs.get("dtype")), value(kwargs.get("device"))
    if kwargs.get("layout") not in (None, torch.strided):
        unsupported_argument(f"to(layout={kwargs['layout']})")
    for arg in map(value, args):
        if isinstance(arg, torch.Tensor):
            dtype, device = arg.dtype, arg.device
        elif isinstance(arg, torch.dtype):
            dtype = arg
        elif isinstance(arg, (str, torch.device)):
            device = arg
    return convert(input, dtype, device)


@lowers(aten._to_copy)
def _to_copy(input, *, dtype=None, layout=None, device=None, pin_memory=None, non_blocking=False,
             memory_format=None):
    return _to(input, dtype=dtype, layout=layout, device=device)


@lowers("Tensor.type_as", aten.type_as)
def _type_as(input, other):
    return convert(input, value(other).dtype, value(other).device)


@lowers("Tensor.type")
def _type(input, dtype=None, non_blocking=False):
    if dtype is None:  # x.type(): the name of its type, no gradient to carry
        return NotImplemented
    if not isinstance(dtype, torch.dtype):
        unsupported_argument(f"Tensor.type({dtype!r}) (a type name: write .to(dtype))")
    return convert(input, dtype)


def _method(dtype=None, device=None):
    return lambda input, memory_format=None: convert(input, dtype, device)


for _name, _dtype in {"float": torch.float32, "double": torch.float64, "half": torch.float16,
                      "bfloat16": torch.bfloat16, "long": torch.int64, "int": torch.int32, "bool": torch.bool}.items():
    lowers(f"Tensor.{_name}")(_method(_dtype))
lowers("Tensor.cpu")(_method(device="cpu"))
