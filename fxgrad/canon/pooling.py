"""Vision ops: pooling (max, average, adaptive), padding, resampling (`F.interpolate`) and
pixel shuffles, in 1, 2 and 3 spatial dims.

One canonical op per spatial rank for pooling, taking each option as a tuple with one int per
spatial dim; max-pooling ops return their indices too (the rule sends each gradient to the
index torch's kernel picked), and the spellings without indices take the values.
"""

import torch
import torch.nn.functional as F

from ..graph import value
from .pieces import item
from .registry import aten, call, define, emit, lowers, options_given, unsupported_argument

MAX_POOLS = {1: F.max_pool1d_with_indices, 2: F.max_pool2d_with_indices, 3: F.max_pool3d_with_indices}
ADAPTIVE_MAX_POOLS = {1: F.adaptive_max_pool1d_with_indices, 2: F.adaptive_max_pool2d_with_indices}
AVG_POOLS = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}
ADAPTIVE_AVG_POOLS = {1: F.adaptive_avg_pool1d, 2: F.adaptive_avg_pool2d, 3: F.adaptive_avg_pool3d}


def _write_max_pool(spatial: int):
    spelled = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}[spatial]

    def write(input, kernel_size, stride, padding, dilation, ceil_mode):
        options = options_given({"stride": kernel_size, "padding": 0, "dilation": 1, "ceil_mode": False},
                                stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode)
        return call(spelled, input, _one(kernel_size), **options, return_indices=True)

    return write


def _write_adaptive_max_pool(spatial: int):
    spelled = {1: F.adaptive_max_pool1d, 2: F.adaptive_max_pool2d}[spatial]
    return lambda input, output_size: call(spelled, input, _one(output_size), return_indices=True)


def _write_avg_pool(spatial: int):
    def write(input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):
        options = options_given(
            {"stride": kernel_size, "padding": 0, "ceil_mode": False, "count_include_pad": True,
             "divisor_override": None},
            stride=stride, padding=padding, ceil_mode=ceil_mode, count_include_pad=count_include_pad,
            divisor_override=divisor_override)
        return call(AVG_POOLS[spatial], input, _one(kernel_size), **options)

    return write


def _write_interpolate(input, size, scale_factor, mode, align_corners):
    options = {"size": size} if scale_factor is None else {"scale_factor": _one(scale_factor)}
    if mode != "nearest":
        options["mode"] = mode
    if align_corners is not None:
        options["align_corners"] = align_corners
    return call(F.interpolate, input, **options)


def _write_pad(input, pad, mode, value):
    options = {} if mode == "constant" else {"mode": mode}
    if value:
        options["value"] = value
    return call(F.pad, input, pad, **options)


def _one(option):
    """A tuple of one repeated value written as that value (`2` for `(2, 2)`)."""
    return option[0] if isinstance(option, tuple) and len(set(option)) == 1 else option


define({
    **{op: _write_max_pool(spatial) for spatial, op in MAX_POOLS.items()},
    **{op: _write_adaptive_max_pool(spatial) for spatial, op in ADAPTIVE_MAX_POOLS.items()},
    **{op: _write_avg_pool(spatial) for spatial, op in AVG_POOLS.items()},
    **{op: lambda input, output_size, _op=op: call(_op, input, _one(output_size))
       for op in ADAPTIVE_AVG_POOLS.values()},
    # pad: (left, right) pairs from the last dim backwards; mode: constant, reflect, replicate, circular
    F.pad: _write_pad,
    # mode: nearest, linear, bilinear, trilinear, bicubic; scale_factor: a tuple of floats, or None for `size`
    F.interpolate: _write_interpolate,
    torch.pixel_shuffle: lambda input, upscale_factor: torch.pixel_shuffle(input, upscale_factor),
    torch.pixel_unshuffle: lambda input, downscale_factor: torch.pixel_unshuffle(input, downscale_factor),
})


def _per_dim(option, spatial: int) -> tuple:
    return tuple(option) if isinstance(option, (tuple, list)) else (option,) * spatial


def _spatial(input, rank: int) -> int:
    """The spatial rank of a pooling spelled for `rank` dims, checked against the input's."""
    if value(input).ndim not in (rank + 1, rank + 2):
        unsupported_argument(f"{rank}-D pooling of a {value(input).ndim}-D input")
    return rank


# max pooling

def _max_pool(rank: int, with_indices: bool):
    def lower(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
        spatial = _spatial(input, rank)
        kernel = _per_dim(kernel_size, spatial)
        stride = kernel if stride is None or stride == [] or stride == () else _per_dim(stride, spatial)
        pooled = emit(MAX_POOLS[rank], input, kernel, stride, _per_dim(padding, spatial),
                      _per_dim(dilation, spatial), ceil_mode)
        return pooled if with_indices or return_indices else emit(item, pooled, 0)

    return lower


for _rank in (1, 2, 3):
    lowers({1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}[_rank],
           getattr(aten, f"max_pool{_rank}d"))(_max_pool(_rank, with_indices=False))
    lowers(MAX_POOLS[_rank], getattr(aten, f"max_pool{_rank}d_with_indices"))(_max_pool(_rank, with_indices=True))


def _adaptive_max_pool(rank: int, with_indices: bool):
    def lower(input, output_size, return_indices=False):
        pooled = emit(ADAPTIVE_MAX_POOLS[rank], input, _per_dim(output_size, _spatial(input, rank)))
        return pooled if with_indices or return_indices else emit(item, pooled, 0)

    return lower


lowers(F.adaptive_max_pool1d)(_adaptive_max_pool(1, with_indices=False))
lowers(F.adaptive_max_pool2d)(_adaptive_max_pool(2, with_indices=False))
for _rank in (1, 2):  # ATen's adaptive max pools return their indices
    lowers(ADAPTIVE_MAX_POOLS[_rank], getattr(aten, f"adaptive_max_pool{_rank}d"))(
        _adaptive_max_pool(_rank, with_indices=True))


# average pooling

def _avg_pool(rank: int):
    def lower(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
              divisor_override=None):
        spatial = _spatial(input, rank)
        kernel = _per_dim(kernel_size, spatial)
        stride = kernel if stride is None or stride == [] or stride == () else _per_dim(stride, spatial)
        return emit(AVG_POOLS[rank], input, kernel, stride, _per_dim(padding, spatial), ceil_mode,
                    count_include_pad, divisor_override)

    return lower


for _rank in (1, 2, 3):
    lowers(AVG_POOLS[_rank], getattr(aten, f"avg_pool{_rank}d"))(_avg_pool(_rank))


def _adaptive_avg_pool(rank: int):
    def lower(input, output_size):
        return emit(ADAPTIVE_AVG_POOLS[rank], input, _per_dim(output_size, _spatial(input, rank)))

    return lower


lowers(F.adaptive_avg_pool1d, aten.adaptive_avg_pool1d)(_adaptive_avg_pool(1))
lowers(F.adaptive_avg_pool2d, aten.adaptive_avg_pool2d, aten._adaptive_avg_pool2d)(_adaptive_avg_pool(2))
lowers(F.adaptive_avg_pool3d, aten.adaptive_avg_pool3d, aten._adaptive_avg_pool3d)(_adaptive_avg_pool(3))


# padding

@lowers(F.pad, aten.pad)
def _pad(input, pad, mode="constant", value=None):
    if mode not in ("constant", "reflect", "replicate", "circular"):
        unsupported_argument(f"F.pad mode={mode!r}")
    if mode != "constant" and any(p < 0 for p in pad):
        unsupported_argument(f"F.pad mode={mode!r} with a negative padding")
    return emit(F.pad, input, tuple(pad), mode, 0.0 if value is None else value)


@lowers(torch.constant_pad_nd, aten.constant_pad_nd)
def _constant_pad_nd(input, pad, value=0):
    return _pad(input, pad, "constant", value)


for _mode, _name in (("reflect", "reflection"), ("replicate", "replication")):
    for _rank in (1, 2, 3):
        lowers(getattr(aten, f"{_name}_pad{_rank}d"))(lambda input, padding, _mode=_mode: _pad(input, padding, _mode))


# resampling

def _interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None,
                 recompute_scale_factor=None, antialias=False):
    if mode not in ("nearest", "linear", "bilinear", "trilinear", "bicubic"):
        unsupported_argument(f"F.interpolate mode={mode!r}")
    if antialias:
        unsupported_argument("F.interpolate(antialias=True)")
    spatial = value(input).ndim - 2
    if scale_factor is not None and recompute_scale_factor:
        unsupported_argument("F.interpolate(recompute_scale_factor=True), whose output size is the "
                             "example's")
    if scale_factor is not None:
        scale_factor = tuple(float(s) for s in _per_dim(scale_factor, spatial))
        # torch takes a source pixel as itself where the output size equals the input's (and, for
        # nearest, as half where it is twice), whatever the scale: for a factor between 1 and 3
        # that is a decision by size, which a scale of 1 or 2 agrees with
        if any(1 < s < 3 and s != 2 for s in scale_factor):
            unsupported_argument(f"F.interpolate scale_factor={_one(scale_factor)} (between 1 and 3, not 2)")
    elif size is not None:
        size = _one(tuple(size)) if isinstance(size, (tuple, list)) else size
    return emit(F.interpolate, input, size, scale_factor, mode, align_corners)


lowers(F.interpolate)(_interpolate)


def _upsample(mode: str, linear: bool):
    """ATen's upsampling: `.vec` overloads take a list of scale factors, the others one per dim."""

    def lower(input, output_size, *options):
        align_corners = options[0] if linear else None
        scales = options[1:] if linear else options
        if len(scales) == 1 and (scales[0] is None or isinstance(scales[0], (list, tuple))):
            scales = scales[0]  # the .vec overload
        elif scales and all(s is not None for s in scales):
            scales = tuple(scales)
        else:
            scales = None
        return _interpolate(input, None if scales else output_size, scales, mode, align_corners)

    return lower


for _name, _mode in (("nearest1d", "nearest"), ("nearest2d", "nearest"), ("nearest3d", "nearest"),
                     ("linear1d", "linear"), ("bilinear2d", "bilinear"), ("trilinear3d", "trilinear"),
                     ("bicubic2d", "bicubic")):
    lowers(getattr(aten, f"upsample_{_name}"))(_upsample(_mode, linear=_mode != "nearest"))


@lowers(torch.pixel_shuffle, aten.pixel_shuffle)
def _pixel_shuffle(input, upscale_factor):
    return emit(torch.pixel_shuffle, input, upscale_factor)


@lowers(torch.pixel_unshuffle, aten.pixel_unshuffle)
def _pixel_unshuffle(input, downscale_factor):
    return emit(torch.pixel_unshuffle, input, downscale_factor)


# sliding windows: unfold (im2col) gathers each window as a column, fold (col2im) adds them back

_WINDOW_DEFAULTS = {"dilation": 1, "padding": 0, "stride": 1}


def _write_unfold(input, kernel_size, dilation, padding, stride):
    options = options_given(_WINDOW_DEFAULTS, dilation=dilation, padding=padding, stride=stride)
    return call(F.unfold, input, _one(kernel_size), **options)


def _write_fold(input, output_size, kernel_size, dilation, padding, stride):
    options = options_given(_WINDOW_DEFAULTS, dilation=dilation, padding=padding, stride=stride)
    return call(F.fold, input, output_size, _one(kernel_size), **options)


define({
    # kernel_size, dilation, padding, stride: a pair each; output_size: a pair, or a size read at run time
    F.unfold: _write_unfold,
    F.fold: _write_fold,
})


@lowers(F.unfold, aten.im2col)
def _unfold(input, kernel_size, dilation=1, padding=0, stride=1):
    return emit(F.unfold, input, *(_per_dim(option, 2) for option in (kernel_size, dilation, padding, stride)))


@lowers(F.fold, aten.col2im)
def _fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1):
    output_size = output_size if isinstance(output_size, torch.fx.Proxy) else _per_dim(output_size, 2)
    return emit(F.fold, input, output_size,
                *(_per_dim(option, 2) for option in (kernel_size, dilation, padding, stride)))
