"""Contractions: the backward of an einsum is an einsum, attention's goes back through its
probabilities, and a convolution's is a transposed convolution and a correlation."""

import math

import torch
import torch.fx as fx
import torch.nn.functional as F

from ..canon.contractions import conv_options, parse_equation
from ..graph import is_tensor, value
from . import rule
from .pointwise import softmax


@rule(torch.einsum, math="y = einsum(xᵢ…): ∂xₖ = einsum of ∂y with the other operands, onto xₖ's labels")
def einsum(g, equation, *operands):
    # ∂/∂operand k: g contracted with every other operand, onto operand k's labels
    inputs, output = parse_equation(equation)
    grads = []
    for k, operand in enumerate(operands):
        others = [i for i in range(len(operands)) if i != k]
        elsewhere = set(output).union(*(inputs[i] for i in others))
        kept = [label for label in inputs[k] if label in elsewhere]
        grad = _contract([output, *(inputs[i] for i in others)], kept, g, *(operands[i] for i in others))
        grads.append(_lay_out(grad, operand, inputs[k], kept))
    return (None, *grads)


def _contract(subscripts: list[list[str]], result: list[str], *tensors):
    if len(tensors) == 1 and subscripts[0] == result:  # nothing to contract or permute
        return tensors[0]
    return torch.einsum(",".join("".join(s) for s in subscripts) + "->" + "".join(result), *tensors)


def _lay_out(grad, operand, labels: list[str], kept: list[str]):
    """`grad`, over the labels `kept`, laid out like `operand` over `labels`.

    A label only `operand` has was summed away: it comes back as a size-1 dim, which the engine
    expands. An ellipsis that broadcasting made wider than the operand's own is summed back here
    when other labels precede it (the engine sums only leading dims).
    """
    width = value(operand).ndim - len(labels) + 1  # dims the operand's ellipsis spans
    grad_width = value(grad).ndim - len(kept) + 1
    at = 0  # where the next label's dims start in grad
    for label in labels:
        if label not in kept:
            for _ in range(width if label == "..." else 1):
                grad = grad.unsqueeze(at)
                at += 1
        elif label == "..." and at > 0 and grad_width > width:
            extra = tuple(range(at, at + grad_width - width))
            grad = grad.sum(extra[0] if len(extra) == 1 else extra)
            at += width
        else:
            at += grad_width if label == "..." else 1
    return grad


@rule(torch._safe_softmax, in_float32=True,
      math="y = softmax(x), 0 on rows that are all −∞: ∂x = y ⊙ (∂y − rowsum(∂y ⊙ y))")
def safe_softmax(g, input, dim, *, out):
    return softmax(g, input, dim, out=out)  # a row of zeros passes no gradient


@rule(F.scaled_dot_product_attention, in_float32=True,
      math=("y = P v, P = softmax(s·q kᵀ + m): ∂v = Pᵀ ∂y, ∂S = P ⊙ (∂y vᵀ − rowsum(∂y vᵀ ⊙ P)), "
            "∂q = s·∂S k, ∂k = s·∂Sᵀ q, ∂m = ∂S"))
def scaled_dot_product_attention(g, q, k, v, attn_mask, is_causal, scale):
    # recompute p = softmax(q kᵀ·scale + mask), L×S, the largest value the backward makes
    if scale is None:
        scale = q.size(-1) ** -0.5
    scores = q @ k.mT * scale
    if is_causal:  # -inf above the diagonal
        scores = scores + torch.full_like(scores, -math.inf).triu(1)
    if attn_mask is not None and value(attn_mask).dtype == torch.bool:
        scores = scores.masked_fill(attn_mask.logical_not(), -math.inf)
    elif attn_mask is not None:
        scores = scores + attn_mask
    # a row the mask hides entirely attends to nothing: torch gives it zeros, not NaN
    p = scores.softmax(-1)
    if attn_mask is not None:
        p = torch.where((scores == -math.inf).all(-1, keepdim=True), 0.0, p)
    # out = p v: back through v, then through the softmax
    grad_scores = softmax(g @ v.mT, scores, -1, out=p)
    grad_mask = grad_scores if is_tensor(attn_mask) and value(attn_mask).is_floating_point() else None
    return grad_scores @ k * scale, grad_scores.mT @ q * scale, p.mT @ g, grad_mask


def _plus(size, constant: int):
    """`size + constant`, written `size - 1` rather than `size + -1`."""
    return size if constant == 0 else size + constant if constant > 0 else size - -constant


_CONVS = {1: (torch.conv1d, torch.conv_transpose1d), 2: (torch.conv2d, torch.conv_transpose2d),
          3: (torch.conv3d, torch.conv_transpose3d)}


@rule(torch.conv1d, torch.conv2d, torch.conv3d,
      math=("y = conv(x, w) + b: ∂x = conv_transpose(∂y, w), ∂w = correlation of x with ∂y, "
            "∂b = Σ ∂y over all but channels"))
def convolution(g, input, weight, bias, stride, padding, dilation, groups):
    kernel = value(weight).shape[2:]
    # ∂/∂input: the transposed convolution spreads each output back over the window it read;
    # output_padding restores the input's last rows, which a stride stepped over: their number,
    # (size + 2·padding − dilation·(kernel − 1) − 1) mod stride, is read from the input's size
    # when the backward runs, so that it holds at every size
    output_padding = tuple(0 if s == 1 else _plus(input.size(2 + i), 2 * p - d * (k - 1) - 1) % s
                           for i, (k, s, p, d) in enumerate(zip(kernel, stride, padding, dilation)))
    options = conv_options(stride=stride, padding=padding, groups=groups, dilation=dilation)
    if any(isinstance(extra, fx.Proxy) for extra in output_padding):
        options["output_padding"] = output_padding
    grad_input = _CONVS[len(stride)][1](g, weight, **options)
    grad_bias = None if bias is None else _channel_sum(g)
    return grad_input, _weight_grad(input, g, kernel, stride, padding, dilation, groups), grad_bias


@rule(torch.conv_transpose1d, torch.conv_transpose2d, torch.conv_transpose3d,
      math=("y = conv_transpose(x, w) + b: ∂x = conv(∂y, w), ∂w = correlation of ∂y with x, "
            "∂b = Σ ∂y over all but channels"))
def conv_transpose(g, input, weight, bias, stride, padding, output_padding, groups, dilation):
    # the transposed convolution is the convolution's gradient: ⟨conv_transpose(x, w), g⟩ =
    # ⟨x, conv(g, w)⟩, so ∂/∂input is that convolution, and ∂/∂weight the convolution's weight
    # gradient with g as its input and x as its output's gradient; the output_padding rows
    # (below the stride) are the ones a convolution's stride steps over
    kernel = value(weight).shape[2:]
    options = conv_options(stride=stride, padding=padding, groups=groups, dilation=dilation)
    grad_input = _CONVS[len(stride)][0](g, weight, **options)
    grad_bias = None if bias is None else _channel_sum(g)
    return grad_input, _weight_grad(g, input, kernel, stride, padding, dilation, groups), grad_bias


def _weight_grad(input, g, kernel, stride, padding, dilation, groups):
    """∂/∂weight of `conv(input, weight)` for the output's gradient `g`: the correlation of the
    input with g, the batch taking the place of the channels summed over (per group: channels
    (N·groups) of a batch of in_channels/groups), and stride and dilation trading places."""
    if groups == 1:
        batch_as_channels = input.transpose(0, 1)
    else:
        batch_as_channels = input.unflatten(1, (groups, -1)).transpose(0, 2).flatten(1, 2)
    grad_weight = _CONVS[len(stride)][0](batch_as_channels, g.transpose(0, 1), **conv_options(
        stride=dilation, padding=padding, dilation=stride, groups=groups)).transpose(0, 1)
    # the correlation reaches past the kernel where a stride left input over: how far depends on
    # the input's size, so with a stride the kernel's part is always taken
    if any(s > 1 for s in stride) or value(grad_weight).shape[2:] != kernel:
        grad_weight = grad_weight[(..., *(slice(None, k) for k in kernel))]
    return grad_weight


def _channel_sum(g):
    return g.sum((0, *range(2, value(g).ndim)))
