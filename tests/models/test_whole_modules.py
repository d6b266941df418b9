"""Whole vision models as users hold them, nn.Modules called with their defaults: derived
through the default tracer and checked against torch.autograd in float64 on two draws of the
input — the input's gradient and every parameter's."""

import time

import pytest
import torch

import fxgrad

from . import torchvision_like as tv

MODELS = {  # the module, in which mode, its input's shape
    "efficientnet eval": (tv.EfficientNet, False, (2, 3, 32, 32)),
    "efficientnet train": (lambda: tv.EfficientNet(dropout=0.0, stochastic_depth_prob=0.0), True, (2, 3, 32, 32)),
    "densenet eval": (tv.DenseNet, False, (2, 3, 32, 32)),
    "densenet train": (tv.DenseNet, True, (2, 3, 32, 32)),
    "swin eval": (tv.SwinTransformer, False, (2, 3, 28, 28)),
    "vit eval": (tv.VisionTransformer, False, (2, 3, 16, 16)),
    "vit unfused, layer scale, average pool": (
        lambda: tv.VisionTransformer(fused_attn=False, init_values=0.1, global_pool="avg"), False, (2, 3, 16, 16)),
}


def module_of(name):
    make, training, shape = MODELS[name]
    torch.manual_seed(0)
    return make().double().train(training), shape


def autograd_grads(module, x, grad_output, **kwargs):
    leaf = x.clone().requires_grad_()
    return torch.autograd.grad(module(leaf, **kwargs), [leaf, *module.parameters()], grad_output)


@pytest.mark.parametrize("name", MODELS)
def test_whole_model_matches_autograd_on_two_draws(name):
    module, shape = module_of(name)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=g, dtype=torch.float64)
    start = time.perf_counter()
    bwd = fxgrad.derive(module, (x,))
    print(f"{name}: derived in {time.perf_counter() - start:.1f} s")
    assert len(bwd.grad_names) == 1 + len(list(module.parameters()))
    for _ in range(2):
        x = torch.randn(shape, generator=g, dtype=torch.float64)
        grad_output = torch.randn(module(x).shape, generator=g, dtype=torch.float64)
        derived = bwd(x, grad_output)
        for n, d, e in zip(bwd.grad_names, derived, autograd_grads(module, x, grad_output)):
            torch.testing.assert_close(d, e, msg=lambda m: f"{n}: {m}")
        x = torch.randn(shape, generator=g, dtype=torch.float64)


def test_vit_called_with_an_attention_mask_by_keyword():
    module, shape = module_of("vit eval")
    x = torch.randn(shape, dtype=torch.float64)
    mask = torch.zeros(17, 17, dtype=torch.float64)
    mask[:, -3:] = -1e9  # the last patches are hidden from every token
    bwd = fxgrad.derive(module, (x,), {"attn_mask": mask})
    grad_output = torch.randn(2, 10, dtype=torch.float64)
    derived = bwd(x, mask, grad_output)
    expected = autograd_grads(module, x, grad_output, attn_mask=mask)
    derived = [d for n, d in zip(bwd.grad_names, derived) if n != "grad_attn_mask"]
    for d, e in zip(derived, expected):
        torch.testing.assert_close(d, e)
