"""float16 and bfloat16: the derived backward is as accurate as autograd's own.

Torch's kernels accumulate reductions and compute fragile intermediates (x², x³, q @ kᵀ) of a
float16 or bfloat16 value in float32; recomputed in the low precision they overflow or underflow
(x ≈ 300 squared is past float16's largest value, 65504). For each op, at ordinary scales and at
those, fxgrad's error against a float64 autograd reference is at most twice autograd's own error
in that dtype, plus a few units of the dtype's rounding.
"""

import pytest
import torch
import torch.nn.functional as F

import fxgrad
from checks import as_tuple, autograd_grads

C = 8


def _targets(n, classes):
    return torch.arange(n) % classes


# (name, function, input shapes (an int: class targets below it), scales of the inputs)
OPS = [
    ("layer_norm", lambda x, w, b: F.layer_norm(x, (C,), w, b), [(4, C), (C,), (C,)], (1, 300)),
    ("rms_norm", lambda x, w: F.rms_norm(x, (C,), w), [(4, C), (C,)], (0.01, 1, 300)),  # 0.01: eps matters
    ("group_norm", lambda x, w, b: F.group_norm(x, 2, w, b), [(3, 4, C), (4,), (4,)], (1, 300)),
    ("batch_norm", lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True), [(6, 4, 3), (4,), (4,)],
     (1, 300)),
    ("norm", lambda x: x.norm(dim=-1), [(4, C)], (1, 300)),
    ("softmax", lambda x: x.softmax(-1), [(4, C)], (1, 30, 3000)),
    ("log_softmax", lambda x: x.log_softmax(-1), [(4, C)], (1, 30, 3000)),
    ("cross_entropy", lambda x, t: F.cross_entropy(x, t), [(6, C), C], (1, 30, 3000)),
    ("gelu", lambda x: F.gelu(x), [(4, C)], (1, 3000)),
    ("gelu tanh", lambda x: F.gelu(x, approximate="tanh"), [(4, C)], (1, 3000)),
    ("silu", lambda x: F.silu(x), [(4, C)], (1, 3000)),
    ("softplus", lambda x: F.softplus(x), [(4, C)], (1, 3000)),
    ("sdpa", lambda q, k, v: F.scaled_dot_product_attention(q, k, v), [(2, 5, C), (2, 6, C), (2, 6, C)], (1, 30, 100)),
    ("mse_loss", lambda x, y: F.mse_loss(x, y), [(4, C), (4, C)], (1, 300, 3000)),
    ("logsumexp", lambda x: x.logsumexp(-1), [(4, C)], (1, 30, 3000)),
    ("var", lambda x: x.var(-1), [(4, C)], (1, 300, 3000)),
    ("std", lambda x: x.std(-1), [(4, C)], (1, 300, 3000)),
    ("sum", lambda x: x.sum(), [(16, C)], (1, 300)),
    ("mean", lambda x: x.mean(-1), [(4, 64)], (1, 300)),
    ("tanh", torch.tanh, [(4, C)], (1, 3)),
    ("sigmoid", torch.sigmoid, [(4, C)], (1, 30)),
    ("relu", torch.relu, [(4, C)], (1, 300)),
    ("conv2d", lambda x, w, b: F.conv2d(x, w, b, padding=1), [(2, 3, 6, 6), (4, 3, 3, 3), (4,)], (1, 30)),
    ("max_pool2d", lambda x: F.max_pool2d(x, 3, 2, 1), [(2, 3, 7, 7)], (1, 300)),
    ("avg_pool2d", lambda x: F.avg_pool2d(x, 2), [(2, 3, 6, 6)], (1, 300)),
    ("adaptive_avg_pool2d", lambda x: F.adaptive_avg_pool2d(x, 1), [(2, 3, 6, 6)], (1, 300)),
]


def _inputs(shapes, scale, seed=0):
    g = torch.Generator().manual_seed(seed)
    inputs = []
    for shape in shapes:
        if isinstance(shape, int):
            inputs.append(_targets(6, shape))
        else:
            inputs.append(torch.randn(shape, generator=g, dtype=torch.float64) * scale)
    return inputs


def _error(grad, reference):
    """The gradient's error relative to the reference's size (∞ where it is not finite and the
    reference is)."""
    grad = grad.double()
    if not torch.isfinite(grad).all():
        return float("inf")
    return ((grad - reference).norm() / reference.norm().clamp_min(1e-30)).item()


def _near_equal_keys(shapes, scale):
    # q·k ≈ 80000 is past float16's range, but the keys differ little: the softmax is not saturated
    q, k, v = _inputs(shapes, 1)
    return [q + scale, k * 0.01 + scale, v]


def _derived(fn, inputs, grad_outputs):
    return fxgrad.derive(fn, tuple(inputs))(*inputs, *grad_outputs)


def _training_step(fn, inputs, grad_outputs):
    """The gradients of `fxgrad.function`'s step, which runs ATen's backward kernels."""
    return autograd_grads(fxgrad.function(fn, tuple(inputs)), inputs, grad_outputs)


@pytest.mark.parametrize("gradients", [_derived, _training_step], ids=["derive", "function"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["float16", "bfloat16"])
@pytest.mark.parametrize("name, fn, shapes, scales", OPS, ids=[op[0] for op in OPS])
def test_as_accurate_as_autograd_in_low_precision(name, fn, shapes, scales, dtype, gradients):
    check_accuracy(name, fn, [_inputs(shapes, scale) for scale in scales], dtype, gradients=gradients)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["float16", "bfloat16"])
def test_attention_whose_scores_overflow_float16(dtype):
    shapes = [(2, 5, C), (2, 6, C), (2, 6, C)]
    check_accuracy("sdpa", F.scaled_dot_product_attention, [_near_equal_keys(shapes, 100)], dtype)


# softmax(..., dtype=torch.float32), as HF attention computes its probabilities: the input cast to
# float32, then the softmax, whatever the input's dtype
TO_FLOAT32 = [
    ("softmax dtype=float32", lambda x: F.softmax(x, -1, dtype=torch.float32), [(4, C)], (1, 30, 3000)),
    ("log_softmax dtype=float32", lambda x: x.log_softmax(0, dtype=torch.float32), [(C, 4)], (1, 30, 3000)),
]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.float16, torch.bfloat16],
                         ids=["float64", "float32", "float16", "bfloat16"])
@pytest.mark.parametrize("name, fn, shapes, scales", TO_FLOAT32, ids=[op[0] for op in TO_FLOAT32])
def test_softmax_in_float32_as_accurate_as_autograd(name, fn, shapes, scales, dtype):
    # a float64 input is rounded to float32 (the reference's own rounding is float32's)
    check_accuracy(name, fn, [_inputs(shapes, scale) for scale in scales], dtype,
                   rounding=torch.float32 if dtype == torch.float64 else dtype)


def check_accuracy(name, fn, draws, dtype, rounding=None, gradients=_derived):
    for draw, exact in enumerate(draws):
        low = [x.to(dtype) if x.is_floating_point() else x for x in exact]
        g = torch.Generator().manual_seed(1)
        grad_outputs = [torch.randn(out.shape, generator=g, dtype=torch.float64) for out in as_tuple(fn(*low))]
        low_grad_outputs = [grad.to(dtype) for grad in grad_outputs]
        # the reference: float64 autograd at the values the low-precision inputs hold
        reference = autograd_grads(fn, [x.double() if x.is_floating_point() else x for x in low], grad_outputs)
        expected = autograd_grads(fn, low, low_grad_outputs)
        derived = gradients(fn, low, low_grad_outputs)
        tolerance = 4 * torch.finfo(rounding or dtype).eps
        for i, (d, e, r) in enumerate(zip(derived, expected, reference)):
            if r is None:
                continue
            assert d.dtype == e.dtype, f"{name} input {i}: {d.dtype}, autograd {e.dtype}"
            if not torch.isfinite(r).all():
                continue
            fxgrad_error, autograd_error = _error(d, r), _error(e, r)
            assert fxgrad_error <= 2 * autograd_error + tolerance, (
                f"{name}, draw {draw}, input {i}: error {fxgrad_error:.3g}, autograd's {autograd_error:.3g}")
