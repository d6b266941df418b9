"""Functions written in styles the naming and provenance must cope with (read by test_readability)."""

import torch


def two_statements_on_a_line(x, w):
    a = x @ w; b = torch.tanh(a)  # noqa: E702
    return b


def multi_line_statement(x, w):
    y = torch.tanh(
        x @ w
    )
    return y * 2


def repeated_statement(x, w1, w2):
    h = torch.tanh(x @ w1)
    h = torch.tanh(h @ w2)
    return h


def accumulated(x):
    y = x.exp()
    return y + x * x + x.sin() if False else y + x * x
