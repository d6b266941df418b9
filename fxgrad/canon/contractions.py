"""Contractions: einsum, scaled dot-product attention, and 1-, 2- and 3-D convolutions, plain and
transposed.

make_fx decomposes einsum into permutes, views and bmm, and attention into matmuls and
`_safe_softmax`, all lowered here or elsewhere; it records convolutions as `aten.convolution`.
"""

import string

import torch
import torch.nn.functional as F

from ..errors import RandomnessError
from ..graph import value
from .registry import aten, call, define, emit, lowers, options_given, static_dim, unsupported_argument


def conv_options(**options) -> dict:
    """The keyword arguments of a convolution that differ from their defaults."""
    return options_given({"stride": 1, "padding": 0, "output_padding": 0, "groups": 1, "dilation": 1}, **options)


def _write_conv(op):
    def write(input, weight, bias, stride, padding, dilation, groups):
        options = conv_options(stride=stride, padding=padding, dilation=dilation, groups=groups)
        return call(op, input, weight, *([] if bias is None else [bias]), **options)

    return write


def _write_conv_transpose(op):
    def write(input, weight, bias, stride, padding, output_padding, groups, dilation):
        options = conv_options(stride=stride, padding=padding, output_padding=output_padding, groups=groups,
                               dilation=dilation)
        return call(op, input, weight, *([] if bias is None else [bias]), **options)

    return write


def _write_attention(query, key, value, attn_mask, is_causal, scale):
    options = {"attn_mask": attn_mask, "is_causal": is_causal, "scale": scale}
    defaults = {"attn_mask": None, "is_causal": False, "scale": None}
    return call(F.scaled_dot_product_attention, query, key, value,
                **{name: option for name, option in options.items() if option is not defaults[name]})


define({
    # equation: explicit (`ij,jk->ik`), no label repeated within one operand
    torch.einsum: lambda equation, *operands: torch.einsum(equation, *operands),
    # make_fx's softmax in attention: 0, not NaN, in a row that is -inf throughout (masked out)
    torch._safe_softmax: lambda input, dim: call(torch._safe_softmax, input, dim),
    F.scaled_dot_product_attention: _write_attention,
    # batched input; stride, padding, dilation: a tuple with one int per spatial dim
    torch.conv1d: _write_conv(torch.conv1d),
    torch.conv2d: _write_conv(torch.conv2d),
    torch.conv3d: _write_conv(torch.conv3d),
    # output_padding: a tuple with one int per spatial dim, each below its stride
    torch.conv_transpose1d: _write_conv_transpose(torch.conv_transpose1d),
    torch.conv_transpose2d: _write_conv_transpose(torch.conv_transpose2d),
    torch.conv_transpose3d: _write_conv_transpose(torch.conv_transpose3d),
})


# einsum

def parse_equation(equation: str) -> tuple[list[list[str]], list[str]]:
    """The subscripts of each operand and of the output, as lists of labels, `...` one label."""
    inputs, output = equation.split("->")
    return [_labels(subscripts) for subscripts in inputs.split(",")], _labels(output)


def _labels(subscripts: str) -> list[str]:
    before, ellipsis, after = subscripts.partition("...")
    return [*before, *([ellipsis] if ellipsis else []), *after]


def _explicit(equation: str) -> str:
    """`equation` with its output written out: an implicit output has the ellipsis, then the
    labels used once, in alphabetical order (upper case first), as torch orders them."""
    equation = equation.replace(" ", "")
    if "->" in equation:
        inputs = equation.split("->")[0]
    else:
        inputs = equation
        labels = [label for operand in inputs.split(",") for label in _labels(operand)]
        once = sorted(label for label in set(labels) if label != "..." and labels.count(label) == 1)
        equation = inputs + "->" + ("..." if "..." in labels else "") + "".join(once)
    for operand in inputs.split(","):
        labels = _labels(operand)
        if len(set(labels)) != len(labels):
            unsupported_argument(f"einsum {equation!r}: an index repeated within one operand (a diagonal)")
    return equation


def _sublist_equation(args: tuple) -> tuple[str, tuple]:
    """`einsum(a, [0, 1], b, [1, 2], [0, 2])` as `("ab,bc->ac", (a, b))`."""
    letters = string.ascii_uppercase + string.ascii_lowercase  # torch's own lettering: 0 is A, 26 is a

    def subscripts(sublist):
        return "".join("..." if i is Ellipsis else letters[i] for i in sublist)

    operands, sublists = args[0::2], args[1::2]
    equation = ",".join(subscripts(s) for s in sublists)
    if len(args) % 2:  # the output's sublist ends the arguments
        operands, equation = operands[:-1], equation + "->" + subscripts(args[-1])
    return equation, tuple(operands)


@lowers(torch.einsum, aten.einsum)
def _einsum(*args, path=None):
    if isinstance(args[0], str):
        equation, operands = args[0], args[1:]
        if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
            operands = tuple(operands[0])
    else:
        equation, operands = _sublist_equation(args)
    return emit(torch.einsum, _explicit(equation), *operands)


# attention

@lowers(F.scaled_dot_product_attention, aten.scaled_dot_product_attention)
def _attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, enable_gqa=False):
    if dropout_p > 0:
        raise RandomnessError(
            f"scaled_dot_product_attention with dropout_p={dropout_p} draws random numbers; the backward "
            "recomputes the forward, which would drop other elements (use dropout_p=0)"
        )
    if enable_gqa:
        unsupported_argument("scaled_dot_product_attention(enable_gqa=True)")
    return emit(F.scaled_dot_product_attention, query, key, value, attn_mask, is_causal, scale)


@lowers(torch._safe_softmax, aten._safe_softmax)
def _safe_softmax(input, dim, dtype=None):
    if dtype is not None:
        unsupported_argument("_safe_softmax to another dtype")
    return emit(torch._safe_softmax, input, static_dim(dim))


# convolutions

def _per_dim(option, spatial: int) -> tuple:
    return tuple(option) if isinstance(option, (tuple, list)) else (option,) * spatial


def _padding(padding, weight, dilation: tuple, spatial: int) -> tuple:
    """Padding as ints: "valid" pads nothing, "same" half the dilated kernel on each side."""
    if padding == "valid":
        return (0,) * spatial
    if padding != "same":
        return _per_dim(padding, spatial)
    kernel = value(weight).shape[2:]
    total = [d * (k - 1) for d, k in zip(dilation, kernel)]
    if any(t % 2 for t in total):
        unsupported_argument("convolution padding='same' with an even (dilated) kernel size, which pads one "
                             "side more than the other")
    return tuple(t // 2 for t in total)


def _on_batch(op, input, weight, *args):
    """`op` on a batch: an unbatched input is made a batch of one, as make_fx records it."""
    if value(input).ndim == value(weight).ndim:
        return emit(op, input, weight, *args)
    batch = emit(torch.unsqueeze, input, 0)
    return emit(torch.squeeze, emit(op, batch, weight, *args), 0)


def _spatial(weight) -> int:
    spatial = value(weight).ndim - 2
    if spatial not in (1, 2, 3):
        unsupported_argument(f"{spatial}-D convolution")
    return spatial


def _conv(input, weight, bias, stride, padding, dilation, groups):
    """The canonical convolution of the weight's spatial rank."""
    spatial = _spatial(weight)
    op = {1: torch.conv1d, 2: torch.conv2d, 3: torch.conv3d}[spatial]
    stride, dilation = _per_dim(stride, spatial), _per_dim(dilation, spatial)
    padding = _padding(padding, weight, dilation, spatial)
    return _on_batch(op, input, weight, bias, stride, padding, dilation, groups)


def _conv_transpose(input, weight, bias, stride, padding, output_padding, groups, dilation):
    spatial = _spatial(weight)
    op = {1: torch.conv_transpose1d, 2: torch.conv_transpose2d, 3: torch.conv_transpose3d}[spatial]
    stride, dilation = _per_dim(stride, spatial), _per_dim(dilation, spatial)
    padding, output_padding = _per_dim(padding, spatial), _per_dim(output_padding, spatial)
    if any(value(o) >= s for o, s in zip(output_padding, stride)):  # (one read from a size: its value)
        unsupported_argument("transposed convolution with output_padding not below its stride")
    return _on_batch(op, input, weight, bias, stride, padding, output_padding, groups, dilation)


@lowers(torch.conv1d, torch.conv2d, torch.conv3d, aten.conv1d, aten.conv2d, aten.conv3d)
def _conv_function(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    return _conv(input, weight, bias, stride, padding, dilation, groups)


@lowers(torch.conv_transpose1d, torch.conv_transpose2d, torch.conv_transpose3d, aten.conv_transpose1d,
        aten.conv_transpose2d, aten.conv_transpose3d)
def _conv_transpose_function(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                             dilation=1):
    return _conv_transpose(input, weight, bias, stride, padding, output_padding, groups, dilation)


@lowers(aten.convolution)
def _convolution(input, weight, bias, stride, padding, dilation, transposed, output_padding, groups):
    if transposed:
        return _conv_transpose(input, weight, bias, stride, padding, output_padding, groups, dilation)
    return _conv(input, weight, bias, stride, padding, dilation, groups)
