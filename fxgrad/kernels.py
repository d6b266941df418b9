"""The training path's backward kernels: ATen's own backward ops, where a readable rule takes
several kernels for what eager autograd does in one.

`derive` writes each gradient as its math (`∂y ⊙ (Φ(x) + x φ(x))` for GELU, the standardised
gradient of a layer norm), and those statements run as they read: one elementwise kernel per
operator, every intermediate allocated. Eager autograd runs one fused kernel per op instead
(`gelu_backward`, `native_layer_norm_backward`), and some read statistics the forward kernel
kept (a layer norm's mean and 1/σ, a max pool's indices). `fxgrad.function`'s training step,
which nobody reads but `partition_for`, derives with these: the same gradients, computed as
torch computes them, so as fast and, in float16 and bfloat16, rounded alike.

A kernel is written as a rule is (`fxgrad.rules`), for a canonical op, always given `out` (the
forward's result); it returns `NotImplemented` for a use it does not cover (a loss with label
smoothing), and the readable rule applies. A kernel that reads what the forward kernel keeps
asks for it with `in_forward`, which computes the op in the forward with the ATen op that
returns its statistics; the forward's value becomes the first of its results.
"""

from __future__ import annotations

import functools
import operator
from typing import Callable

import torch
import torch.fx as fx
import torch.nn.functional as F
from torch.nn._reduction import get_enum

from .canon.pieces import item
from .canon.pooling import ADAPTIVE_AVG_POOLS, AVG_POOLS, MAX_POOLS
from .graph import FORWARD, value
from .rules import NotDifferentiable
from .shapes import channel_dim

aten = torch.ops.aten
KERNELS: dict[Callable, Callable] = {}


def kernel(*ops: Callable):
    """Register the decorated function as the training path's backward of the canonical `ops`."""
    def register(backward: Callable) -> Callable:
        for op in ops:
            KERNELS[op] = backward
        return backward

    return register


def in_forward(out: fx.Proxy, compute: Callable[[], tuple], *names: str) -> tuple:
    """`compute()`'s statistics, emitted in the forward where `out`'s node is. `compute` returns
    the results of an ATen op whose first is the forward's value, then the statistics the
    backward reads; `out`'s node becomes that first result, so that its users, its name and its
    place among the outputs stay. The statistics are named `names`."""
    node = out.node
    before = node.prev
    with node.graph.inserting_before(node):
        results, *statistics = compute()
    current = before.next
    while current is not node:
        current.meta[FORWARD] = True
        # an item of the results is recomputed in a backward, under a memory budget, as the op is
        current.meta["fxgrad_op"] = item if current.target is operator.getitem else node.meta["fxgrad_op"]
        current = current.next
    node.op, node.target, node.args, node.kwargs = "call_function", operator.getitem, (results.node, 0), {}
    node.meta["fxgrad_op"] = item
    for statistic, name in zip(statistics, names):
        if isinstance(statistic, fx.Proxy):  # (a size the tracer fixed is a number)
            statistic.node._rename(name)
    return tuple(statistics)


def _with_statistics(op: Callable, *args) -> Callable[[], tuple]:
    """What `in_forward` computes for a normalisation: `op(*args)`'s three results, (value, mean,
    1/σ), and the statistics among them."""
    def compute() -> tuple:
        results = op(*args)
        return results, results[1], results[2]

    return compute


def _needs_grad(*values) -> list[bool]:
    """For each argument, whether a gradient flows to it from what is differentiated."""
    return [isinstance(x, fx.Proxy) and x.tracer.carries_input_gradient(x) for x in values]


def _one_dtype(*values) -> bool:
    """Whether the tensors among `values` (None for an absent weight) share one dtype, as torch's
    normalisation kernels take them (autocast may give a norm mixed ones)."""
    return len({value(x).dtype for x in values if x is not None}) == 1


def _affine(grads: fx.Proxy, weight, bias) -> tuple:
    """A normalisation kernel's (input, weight, bias) gradients, None for an absent parameter."""
    return grads[0], None if weight is None else grads[1], None if bias is None else grads[2]


# elementwise


@kernel(F.gelu)
def gelu(g, input, approximate, *, out):
    return aten.gelu_backward(g, input, approximate=approximate)


@kernel(F.silu)
def silu(g, input, *, out):
    return aten.silu_backward(g, input)


@kernel(torch.tanh)
def tanh(g, input, *, out):
    return aten.tanh_backward(g, out)


@kernel(torch.sigmoid)
def sigmoid(g, input, *, out):
    return aten.sigmoid_backward(g, out)


@kernel(torch.relu)
def relu(g, input, *, out):
    return aten.threshold_backward(g, out, 0)


@kernel(torch.softmax)
def softmax(g, input, dim, *, out):
    return aten._softmax_backward_data(g, out, dim, value(input).dtype)


@kernel(torch.log_softmax)
def log_softmax(g, input, dim, *, out):
    return aten._log_softmax_backward_data(g, out, dim, value(input).dtype)


# normalisations


@kernel(F.layer_norm)
def layer_norm(g, input, normalized_shape, weight, bias, eps, *, out):
    if not _one_dtype(input, weight, bias):
        return NotImplemented
    mean, rstd = in_forward(out, _with_statistics(aten.native_layer_norm, input, normalized_shape, weight, bias, eps),
                            "mean", "rstd")
    grads = aten.native_layer_norm_backward(g, input, normalized_shape, mean, rstd, weight, bias,
                                            _needs_grad(input, weight, bias))
    grad_input, grad_weight, grad_bias = _affine(grads, weight, bias)
    return grad_input, None, grad_weight, grad_bias


@kernel(F.group_norm)
def group_norm(g, input, num_groups, weight, bias, eps, *, out):
    if not _one_dtype(input, weight, bias):
        return NotImplemented

    def forward():
        n, c = input.size(0), input.size(1)
        positions = functools.reduce(operator.mul, (input.size(d) for d in range(2, value(input).ndim)), 1)
        results = aten.native_group_norm(input, weight, bias, n, c, positions, num_groups, eps)
        return results, results[1], results[2], n, c, positions

    mean, rstd, n, c, positions = in_forward(out, forward, "mean", "rstd", "batch", "channels", "positions")
    grads = aten.native_group_norm_backward(g, input, mean, rstd, weight, n, c, positions, num_groups,
                                            _needs_grad(input, weight, bias))
    grad_input, grad_weight, grad_bias = _affine(grads, weight, bias)
    return grad_input, None, grad_weight, grad_bias


@kernel(F.batch_norm)
def batch_norm(g, input, running_mean, running_var, weight, bias, eps, *, out):
    if running_mean is not None or not _one_dtype(input, weight, bias):
        return NotImplemented  # by constants, an affine map: the rule is one product
    mean, invstd = in_forward(out, _with_statistics(aten.native_batch_norm, input, weight, bias, None, None, True, 0.0,
                                                    eps), "mean", "invstd")
    grads = aten.native_batch_norm_backward(g, input, weight, None, None, mean, invstd, True, eps,
                                            _needs_grad(input, weight, bias))
    grad_input, grad_weight, grad_bias = _affine(grads, weight, bias)
    return grad_input, NotDifferentiable("running_mean"), NotDifferentiable("running_var"), grad_weight, grad_bias


# convolutions and pooling


@kernel(torch.conv1d, torch.conv2d, torch.conv3d)
def convolution(g, input, weight, bias, stride, padding, dilation, groups, *, out):
    if value(input).ndim != value(weight).ndim or isinstance(padding, str):
        return NotImplemented  # an unbatched input; padding by name
    bias_sizes = None if bias is None else list(value(bias).shape)
    grads = aten.convolution_backward(g, input, weight, bias_sizes, stride, padding, dilation, False,
                                      [0] * len(stride), groups, _needs_grad(input, weight, bias))
    return _affine(grads, weight, bias)


@kernel(MAX_POOLS[2], MAX_POOLS[3])
def max_pool(g, input, kernel_size, stride, padding, dilation, ceil_mode, *, out):
    grad, _ = g  # the indices carry no gradient
    backward = aten.max_pool2d_with_indices_backward if len(kernel_size) == 2 else aten.max_pool3d_with_indices_backward
    return backward(grad, input, kernel_size, stride, padding, dilation, ceil_mode, out[1])


@kernel(AVG_POOLS[2], AVG_POOLS[3])
def avg_pool(g, input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, *, out):
    backward = aten.avg_pool2d_backward if len(kernel_size) == 2 else aten.avg_pool3d_backward
    return backward(g, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                    divisor_override)


@kernel(ADAPTIVE_AVG_POOLS[2], ADAPTIVE_AVG_POOLS[3])
def adaptive_avg_pool(g, input, output_size, *, out):
    backward = aten._adaptive_avg_pool2d_backward if len(output_size) == 2 else aten._adaptive_avg_pool3d_backward
    return backward(g, input)


# losses

@kernel(F.cross_entropy)
def cross_entropy(g, input, target, weight, reduction, ignore_index, label_smoothing, *, out):
    # torch's own: log_softmax, then nll_loss, whose backward reads the total weight it counted
    if label_smoothing or value(target).is_floating_point() or value(input).ndim > 2:
        return NotImplemented
    dim = channel_dim(input)
    how = get_enum(reduction)  # (torch's number for it: what the ATen op takes)

    def forward():
        logp = aten._log_softmax(input, dim, False)
        results = aten.nll_loss_forward(logp, target, weight, how, ignore_index)
        return results, logp, results[1]

    logp, total_weight = in_forward(out, forward, "log_probabilities", "total_weight")
    grad_logp = aten.nll_loss_backward(g, logp, target, weight, how, ignore_index, total_weight)
    return aten._log_softmax_backward_data(grad_logp, logp, dim, value(input).dtype), None, NotDifferentiable("weight")
