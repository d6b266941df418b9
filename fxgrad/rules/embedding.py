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
