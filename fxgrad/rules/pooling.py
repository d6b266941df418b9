"""Pooling, padding and resampling: a max-pool's gradient goes to the element its indices name;
the others are linear and separable, each output a weighted sum of inputs along every spatial
dim, so their gradient is g contracted with one (output × input) weight matrix per dim.

The matrices are built when the backward runs, from the input's and g's sizes, so that the
rules hold at every size.
"""

import torch
import torch.nn.functional as F

from ..canon.pooling import ADAPTIVE_AVG_POOLS, ADAPTIVE_MAX_POOLS, AVG_POOLS, MAX_POOLS, _one
from ..canon.registry import options_given
from ..graph import value
from . import rule


@rule(*MAX_POOLS.values(), *ADAPTIVE_MAX_POOLS.values(),
      math="y = max over each window of x: ∂x = ∂y at the element each window picked (overlaps add up)")
def max_pool(g, input, kernel_or_output_size, *options, out):
    grad, _ = g  # the indices carry no gradient
    # each output's gradient to the element torch's kernel picked, its flat index within the
    # spatial dims; windows that overlap add up
    spatial = -len(kernel_or_output_size)
    grad_input = torch.zeros_like(input).flatten(spatial).scatter_add(-1, out[1].flatten(spatial),
                                                                      grad.flatten(spatial))
    return grad_input.view_as(input)


@rule(*AVG_POOLS.values(),
      math="y = mean over each window of x: ∂x = Σ over the windows holding each element of ∂y / window size")
def avg_pool(g, input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):
    # window o along a dim covers o·stride − padding ... + kernel, cut at padding past the end;
    # torch divides by the product of the windows' lengths along the dims (within the padding,
    # or within the input without count_include_pad), or by divisor_override
    matrices = []
    for d, (k, s, p) in enumerate(zip(kernel_size, stride, padding), start=-len(kernel_size)):
        size = input.size(d)
        start = _positions(g.size(d), g) * s - p
        end = (start + k).clamp(max=size + p)
        length = end - start
        start, end = start.clamp(min=0), end.clamp(max=size)
        windows = _windows(start, end, size, g)
        if not divisor_override:
            windows = windows / (length if count_include_pad else end - start)[:, None]
        matrices.append(windows)
    grad = _separable(g, matrices)
    return grad / divisor_override if divisor_override else grad


@rule(*ADAPTIVE_AVG_POOLS.values(),
      math="y = mean over adaptive windows of x: ∂x = Aᵀ ∂y, one averaging matrix A per spatial dim")
def adaptive_avg_pool(g, input, output_size):
    # output o of n along a dim of size m averages inputs ⌊o·m/n⌋ ... ⌈(o+1)·m/n⌉
    matrices = []
    for d in range(-len(output_size), 0):
        size, n = input.size(d), g.size(d)
        o = _positions(n, g)
        start, end = o * size // n, ((o + 1) * size + n - 1) // n
        matrices.append(_windows(start, end, size, g) / (end - start)[:, None])
    return _separable(g, matrices)


@rule(F.pad, math="y = pad(x): ∂x = ∂y with the padding cut off (reflected or wrapped copies added back)")
def pad(g, input, pad, mode, value):
    if mode == "constant":
        return F.pad(g, tuple(-p for p in pad))  # the padding cut off (a negative padding's part: zeros)
    # each output along a padded dim copies one input: i − left reflected, clamped or wrapped into
    # the input; the last dim's pair comes first
    matrices = []
    for d in range(-len(pad) // 2, 0):
        size = input.size(d)
        source = _positions(g.size(d), g) - pad[2 * (-d - 1)]
        if mode == "reflect":
            source = (size - 1 - (size - 1 - source.abs()).abs())
        elif mode == "replicate":
            source = source.clamp(0, size - 1)
        else:  # circular
            source = source.remainder(size)
        matrices.append(_one_hot(source, size, g))
    return _separable(g, matrices)


@rule(F.interpolate, math="y = A x along each spatial dim (nearest or linear weights): ∂x = Aᵀ ∂y")
def interpolate(g, input, size, scale_factor, mode, align_corners):
    matrices = []
    for i, d in enumerate(range(2 - value(input).ndim, 0)):
        m, n = input.size(d), g.size(d)
        scale = None if scale_factor is None else scale_factor[i]
        if mode == "nearest":
            matrices.append(_nearest(m, n, scale, g))
        else:
            matrices.append((_cubic if mode == "bicubic" else _linear)(m, n, scale, align_corners, g))
    return _separable(g, matrices)


def _nearest(m, n, scale, g):
    # output o copies input ⌊o·scale⌋, scale = m/n (or 1/scale_factor) in float32, as torch's kernel
    # computes it
    if scale is None:
        scale = torch.full((), m, dtype=torch.float32, device=g.device) / n
    else:
        scale = 1 / scale
    source = (_positions(n, g).float() * scale).floor().long().clamp(max=m - 1)
    return _one_hot(source, m, g)


def _linear(m, n, scale, align_corners, g):
    # output o reads the inputs either side of its source position, weighted by the distance
    if align_corners:  # the corners on the corners: a ratio of (m − 1)/(n − 1), 0 for one output
        source = _positions(n, g).to(g.dtype) * ((m - 1) / (n - 1 + (n == 1)))
    else:
        ratio = m / n if scale is None else 1 / scale
        source = ((_positions(n, g).to(g.dtype) + 0.5) * ratio - 0.5).clamp(min=0)
    left = source.floor().long().clamp(max=m - 1)
    right = (left + 1).clamp(max=m - 1)
    weight = (source - left).clamp(0, 1)[:, None]
    return _one_hot(left, m, g) * (1 - weight) + _one_hot(right, m, g) * weight


def _cubic(m, n, scale, align_corners, g):
    # output o reads the four inputs around its source position (clamped into the input), weighted
    # by Keys' cubic convolution with A = −0.75, as torch's kernel; the source is not clamped
    positions = _positions(n, g).to(g.dtype)
    if align_corners:
        source = positions * ((m - 1) / (n - 1 + (n == 1)))
    else:
        source = (positions + 0.5) * (m / n if scale is None else 1 / scale) - 0.5
    start = source.floor()
    t = (source - start)[:, None]
    a = -0.75

    def near(x):  # |x| ≤ 1
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x):  # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    weights = (far(t + 1), near(t), near(1 - t), far(2 - t))
    start = start.long()
    return sum(_one_hot((start + k - 1).clamp(0, m - 1), m, g) * w for k, w in enumerate(weights))


@rule(torch.pixel_shuffle, math="y = pixel_shuffle(x): ∂x = pixel_unshuffle(∂y)")
def pixel_shuffle(g, input, upscale_factor):
    return torch.pixel_unshuffle(g, upscale_factor)


@rule(torch.pixel_unshuffle, math="y = pixel_unshuffle(x): ∂x = pixel_shuffle(∂y)")
def pixel_unshuffle(g, input, downscale_factor):
    return torch.pixel_shuffle(g, downscale_factor)


def _positions(count, g):
    return torch.arange(count, device=g.device)


def _windows(start, end, size, g):
    """The (output × input) matrix that is 1 where input i is in output o's window [start, end)."""
    i = _positions(size, g)
    return ((i >= start[:, None]) & (i < end[:, None])).to(g.dtype)


def _one_hot(source, size, g):
    """The (output × input) matrix that is 1 where output o copies input source[o]."""
    return (_positions(size, g) == source[:, None]).to(g.dtype)


def _separable(g, matrices):
    """g over (..., o₁, o₂, ...) back onto the inputs: Σ g[..., o₁, o₂] · M₁[o₁, i₁] · M₂[o₂, i₂]."""
    outs, ins = "abc"[:len(matrices)], "xyz"[:len(matrices)]
    equation = ",".join([f"...{outs}", *(o + i for o, i in zip(outs, ins))]) + f"->...{ins}"
    return torch.einsum(equation, g, *matrices)


@rule(F.unfold, math="Y = unfold(x): ∂x = fold(∂Y), the windows' gradients added back")
def unfold(g, input, kernel_size, dilation, padding, stride):
    # each column is a window of the input: fold adds every window's gradient back where it was read
    return F.fold(g, input.shape[-2:], _one(kernel_size), **_window_options(dilation, padding, stride))


@rule(F.fold, math="y = fold(X): ∂X = unfold(∂y)")
def fold(g, input, output_size, kernel_size, dilation, padding, stride):
    # fold adds each column into its window: the adjoint reads every window of g as a column
    return F.unfold(g, _one(kernel_size), **_window_options(dilation, padding, stride))


def _window_options(dilation, padding, stride) -> dict:
    return options_given({"dilation": 1, "padding": 0, "stride": 1}, dilation=dilation, padding=padding,
                         stride=stride)
