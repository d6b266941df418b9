"""Vision pieces: ConvNeXt, MLP-Mixer, ViT, ResNet, a diffusion UNet block."""

import math

import torch
import torch.nn.functional as F

from .registry import model, randn

N, CH, HW = 2, 4, 5  # batch, channels, height = width


@model("ConvNeXt convnext.py: LayerNorm with data_format='channels_first'")
def convnext_layernorm(x, weight, bias):
    u = x.mean(1, keepdim=True)
    s = (x - u).pow(2).mean(1, keepdim=True)
    x = (x - u) / torch.sqrt(s + 1e-6)
    return weight[:, None, None] * x + bias[:, None, None]


convnext_layernorm.inputs = lambda g: (randn(g, N, CH, HW, HW), 1 + randn(g, CH, scale=0.1), randn(g, CH, scale=0.1))


@model("ConvNeXt convnext.py: Block (depthwise conv, channels-last LayerNorm, MLP, layer scale)")
def convnext_block(x, dw_w, dw_b, ln_w, ln_b, pw1_w, pw1_b, pw2_w, pw2_b, gamma):
    shortcut = x
    x = F.conv2d(x, dw_w, dw_b, padding=1, groups=CH)
    x = x.permute(0, 2, 3, 1)  # (N, C, H, W) -> (N, H, W, C)
    x = F.layer_norm(x, (CH,), ln_w, ln_b, 1e-6)
    x = F.linear(F.gelu(F.linear(x, pw1_w, pw1_b)), pw2_w, pw2_b)
    x = gamma * x
    return shortcut + x.permute(0, 3, 1, 2)


convnext_block.inputs = lambda g: (
    randn(g, N, CH, HW, HW), randn(g, CH, 1, 3, 3, scale=0.3), randn(g, CH, scale=0.1), 1 + randn(g, CH, scale=0.1),
    randn(g, CH, scale=0.1), randn(g, 4 * CH, CH, scale=0.3), randn(g, 4 * CH, scale=0.1),
    randn(g, CH, 4 * CH, scale=0.3), randn(g, CH, scale=0.1), randn(g, CH, scale=0.1))


@model("MLP-Mixer (Tolstikhin et al.): MixerBlock, token and channel mixing")
def mixer_block(x, ln1_w, ln1_b, tok_w1, tok_b1, tok_w2, tok_b2, ln2_w, ln2_b, ch_w1, ch_b1, ch_w2, ch_b2):
    def mlp(t, w1, b1, w2, b2):
        return F.linear(F.gelu(F.linear(t, w1, b1)), w2, b2)

    y = F.layer_norm(x, (x.shape[-1],), ln1_w, ln1_b).transpose(1, 2)  # (B, C, tokens)
    x = x + mlp(y, tok_w1, tok_b1, tok_w2, tok_b2).transpose(1, 2)
    return x + mlp(F.layer_norm(x, (x.shape[-1],), ln2_w, ln2_b), ch_w1, ch_b1, ch_w2, ch_b2)


mixer_block.inputs = lambda g: (
    randn(g, 2, 6, 4), 1 + randn(g, 4, scale=0.1), randn(g, 4, scale=0.1), randn(g, 8, 6, scale=0.3),
    randn(g, 8, scale=0.1), randn(g, 6, 8, scale=0.3), randn(g, 6, scale=0.1), 1 + randn(g, 4, scale=0.1),
    randn(g, 4, scale=0.1), randn(g, 8, 4, scale=0.3), randn(g, 8, scale=0.1), randn(g, 4, 8, scale=0.3),
    randn(g, 4, scale=0.1))


@model("ViT (timm vision_transformer.py): PatchEmbed, class token and position embedding")
def vit_patch_embed(images, proj_w, proj_b, cls_token, pos_embed):
    x = F.conv2d(images, proj_w, proj_b, stride=2)  # (B, D, H/2, W/2)
    x = x.flatten(2).transpose(1, 2)  # (B, patches, D)
    x = torch.cat((cls_token.expand(x.shape[0], -1, -1), x), dim=1)
    return x + pos_embed


vit_patch_embed.inputs = lambda g: (randn(g, 2, 3, 4, 4), randn(g, 6, 3, 2, 2, scale=0.3), randn(g, 6, scale=0.1),
                                    randn(g, 1, 1, 6), randn(g, 1, 5, 6))


@model("torchvision resnet.py: BasicBlock (conv, batch norm in training, ReLU, residual)")
def resnet_basic_block(x, conv1_w, bn1_w, bn1_b, conv2_w, bn2_w, bn2_b):
    out = F.relu(F.batch_norm(F.conv2d(x, conv1_w, padding=1), None, None, bn1_w, bn1_b, training=True))
    out = F.batch_norm(F.conv2d(out, conv2_w, padding=1), None, None, bn2_w, bn2_b, training=True)
    return F.relu(out + x)


resnet_basic_block.inputs = lambda g: (
    randn(g, N, CH, HW, HW), randn(g, CH, CH, 3, 3, scale=0.3), 1 + randn(g, CH, scale=0.1), randn(g, CH, scale=0.1),
    randn(g, CH, CH, 3, 3, scale=0.3), 1 + randn(g, CH, scale=0.1), randn(g, CH, scale=0.1))


@model("diffusion UNet (DDPM): sinusoidal timestep embedding and a GroupNorm/SiLU residual block")
def diffusion_resblock(x, t, gn_w, gn_b, conv_w, conv_b, emb_w, emb_b):
    half = 4
    freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float64) / half)
    args = t[:, None] * freqs[None]
    embedding = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    h = F.conv2d(F.silu(F.group_norm(x, 2, gn_w, gn_b)), conv_w, conv_b, padding=1)
    h = h + F.linear(F.silu(embedding), emb_w, emb_b)[:, :, None, None]
    return x + h


diffusion_resblock.inputs = lambda g: (
    randn(g, N, CH, HW, HW), torch.rand(N, generator=g, dtype=torch.float64) * 100, 1 + randn(g, CH, scale=0.1),
    randn(g, CH, scale=0.1), randn(g, CH, CH, 3, 3, scale=0.3), randn(g, CH, scale=0.1), randn(g, CH, 8, scale=0.3),
    randn(g, CH, scale=0.1))
