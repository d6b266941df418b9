"""Embedding: the gradient of each row looked up is added to that row."""

import torch
import torch.nn.functional as F

from ..shapes import add_at
from . import rule


@rule(F.embedding, math="y = w[i]: ∂w = zeros with ∂y added at rows i (repeats add up)")
def embedding(g, input, weight, padding_idx):
    if padding_idx is not None:  # the padding row gets no gradient
        padding_row = padding_idx if padding_idx >= 0 else weight.size(0) - (-padding_idx)
        g = torch.where((input == padding_row).unsqueeze(-1), 0.0, g)
    return None, add_at(weight, 0, input, g)


@rule(torch.embedding_bag, math="y = bag-reduce(W[i]): ∂W = ∂y of each bag added back at its rows (÷ bag size for mean, at the maximum's row for max)")
def embedding_bag(g, weight, input, offsets, mode, per_sample_weights, include_last_offset, padding_idx, *, out):
    grad = g[0]  # (the other results, indices and sizes, carry none)
    if grad is None:
        return None
    bag_of, bag_size = out[1], out[2]
    if mode == 2:  # max: each feature of a bag to the row its maximum came from; an empty bag has none
        taken = torch.where((bag_size > 0).unsqueeze(-1), grad, 0.0)
        return torch.zeros_like(weight).scatter_add(0, out[3], taken)
    rows = grad[bag_of]  # each index's share: its bag's gradient
    if mode == 1:
        rows = rows / bag_size[bag_of].unsqueeze(-1)
    if padding_idx is not None:  # the padding row takes no part
        rows = torch.where((input == padding_idx).unsqueeze(-1), 0.0, rows)
    if per_sample_weights is None:
        return add_at(weight, 0, input, rows)
    # Σ wᵢ·W[iᵢ] over a bag: each weight's gradient is its row's product with the bag's gradient
    return (add_at(weight, 0, input, rows * per_sample_weights.unsqueeze(-1)), None, None, None,
            (rows * weight[input]).sum(-1))
