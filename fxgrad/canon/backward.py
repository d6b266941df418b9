"""ATen's backward ops, as make_fx records them where the function differentiates itself
(`torch.autograd.grad(..., create_graph=True)`: a gradient penalty, a Hessian-vector product).

Each is lowered as fxgrad's own backward of its forward op: the rule's torch code (or, for the
normalisations, which are given their statistics rather than their eps, the same standardising
algebra on those statistics) is written on a scratch graph and lowered in turn, so that it is
made of canonical ops, differentiable again, and prints as the closed form it is. The statistics
a normalisation's backward is given are functions of its input in the traced graph, so their
gradients reach the input through them.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.fx as fx
import torch.nn.functional as F
from torch.fx.node import map_aggregate

from ..graph import GraphBuilder, node_of, value
from ..shapes import along_channels, last_dims
from .pooling import ADAPTIVE_AVG_POOLS, AVG_POOLS, MAX_POOLS
from .registry import aten, lowers, unsupported_argument


def lowered(code: Callable, *arguments):
    """`code(*arguments)`, plain torch code of the tensors among `arguments` (Proxies; the rest
    are passed as they are), appended to their graph in canonical ops."""
    from .lowering import canonicalize

    builder = next(a for a in arguments if isinstance(a, fx.Proxy)).tracer
    scratch = GraphBuilder(fx.Graph())
    stand_ins = [scratch.placeholder(f"x{i}", value(a)) if isinstance(a, fx.Proxy) else a
                 for i, a in enumerate(arguments)]
    scratch.graph.output(map_aggregate(code(*stand_ins), node_of))
    scratch.graph.eliminate_dead_code()
    bindings = {}
    for stand_in, argument in zip(stand_ins, arguments):
        if isinstance(stand_in, fx.Proxy):
            if stand_in.node.users:
                bindings[stand_in.node] = argument
            else:
                scratch.graph.erase_node(stand_in.node)
    return canonicalize(fx.GraphModule(torch.nn.Module(), scratch.graph), bindings, builder, [torch.nn.Module()])


def _masked(grads, output_mask) -> tuple:
    """The gradients an ATen backward op was asked for, None for the others."""
    return tuple(grad if wanted else None for grad, wanted in zip(grads, output_mask))


def _rule(op: Callable) -> Callable:
    from ..rules import RULES

    return RULES[op]


_CONVS = {1: (torch.conv1d, torch.conv_transpose1d), 2: (torch.conv2d, torch.conv_transpose2d),
          3: (torch.conv3d, torch.conv_transpose3d)}


@lowers(aten.convolution_backward)
def _convolution_backward(grad_output, input, weight, bias_sizes, stride, padding, dilation, transposed,
                          output_padding, groups, output_mask):
    stride, padding, dilation, output_padding = map(tuple, (stride, padding, dilation, output_padding))
    conv, conv_transpose = _CONVS[len(stride)]

    def backward(g, input, weight):
        if transposed:
            grad_input, grad_weight, _ = _rule(conv_transpose)(g, input, weight, None, stride, padding,
                                                               output_padding, groups, dilation)
        else:
            grad_input, grad_weight, _ = _rule(conv)(g, input, weight, None, stride, padding, dilation, groups)
        grad_bias = g.sum((0, *range(2, value(g).ndim)))
        return _masked((grad_input, grad_weight, grad_bias), output_mask)

    return lowered(backward, grad_output, input, weight)


@lowers(aten.native_layer_norm_backward)
def _native_layer_norm_backward(grad_out, input, normalized_shape, mean, rstd, weight, bias, output_mask):
    from ..rules.norms import _standardized_backward

    dims = last_dims(len(normalized_shape))
    leading = tuple(range(value(input).ndim - len(normalized_shape)))

    def backward(g, input, rstd, weight):
        # native_layer_norm's statistics are constants, as autograd takes them, but a double
        # backward needs their dependence on the input: they are computed again from it, with
        # the eps the given rstd implies (the op carries none), so every derivative is exact
        mean = input.mean(dims, keepdim=True)
        var = ((input - mean) * (input - mean)).mean(dims, keepdim=True)
        eps = (1 / (rstd * rstd) - var).detach()
        rstd = (var + eps).rsqrt()
        xhat = (input - mean) * rstd
        grad_input = _standardized_backward(g if weight is None else g * weight, xhat, rstd, dims)
        grad_weight, grad_bias = g * xhat, g
        if leading:
            grad_weight, grad_bias = grad_weight.sum(leading), grad_bias.sum(leading)
        return _masked((grad_input, grad_weight, grad_bias), output_mask)

    return lowered(backward, grad_out, input, rstd, weight)


@lowers(aten.native_group_norm_backward)
def _native_group_norm_backward(grad_out, input, mean, rstd, weight, N, C, HxW, group, output_mask):
    from ..rules.norms import _standardized_backward

    def backward(g, input, mean, rstd, weight):
        # mean and rstd are (N, groups): the input standardised as (N, groups, C/groups·HxW)
        groups = input.reshape(input.size(0), group, -1)
        rstd = rstd.unsqueeze(-1)
        xhat = (groups - mean.unsqueeze(-1)) * rstd
        gx = g if weight is None else g * along_channels(weight, input)
        grad_input = _standardized_backward(gx.reshape(groups.shape), xhat, rstd, -1).reshape(input.shape)
        channels = (0, *range(2, value(input).ndim))
        grad_weight, grad_bias = (g * xhat.reshape(input.shape)).sum(channels), g.sum(channels)
        return _masked((grad_input, grad_weight, grad_bias), output_mask)

    return lowered(backward, grad_out, input, mean, rstd, weight)


@lowers(aten.embedding_dense_backward)
def _embedding_dense_backward(grad_output, indices, num_weights, padding_idx, scale_grad_by_freq):
    if scale_grad_by_freq:
        unsupported_argument("embedding_dense_backward(scale_grad_by_freq=True)")

    def backward(g, indices):
        table = g.new_zeros(num_weights, g.size(-1))  # (the rule reads the table's shape alone)
        return _rule(F.embedding)(g, indices, table, None if padding_idx == -1 else padding_idx)[1]

    return lowered(backward, grad_output, indices)


def _per_dim(option, spatial: int) -> tuple:
    return tuple(option) if len(option) == spatial else tuple(option) * spatial


@lowers(aten.avg_pool2d_backward)
def _avg_pool2d_backward(grad_output, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                         divisor_override):
    kernel = _per_dim(kernel_size, 2)
    stride = kernel if not stride else _per_dim(stride, 2)
    return lowered(lambda g, input: _rule(AVG_POOLS[2])(g, input, kernel, stride, _per_dim(padding, 2), ceil_mode,
                                                        count_include_pad, divisor_override), grad_output, input)


@lowers(aten.max_pool2d_with_indices_backward)
def _max_pool2d_with_indices_backward(grad_output, input, kernel_size, stride, padding, dilation, ceil_mode,
                                      indices):
    kernel = _per_dim(kernel_size, 2)
    stride = kernel if not stride else _per_dim(stride, 2)
    options = (kernel, stride, _per_dim(padding, 2), _per_dim(dilation, 2), ceil_mode)
    # the rule sends each gradient to the element `indices` names
    return lowered(lambda g, input, indices: _rule(MAX_POOLS[2])((g, None), input, *options, out=(None, indices)),
                   grad_output, input, indices)


@lowers(aten._adaptive_avg_pool2d_backward)
def _adaptive_avg_pool2d_backward(grad_output, input):
    output_size = tuple(value(grad_output).shape[-2:])
    return lowered(lambda g, input: _rule(ADAPTIVE_AVG_POOLS[2])(g, input, output_size), grad_output, input)
