"""The model functions, each with its example inputs: a plain function of tensors (the model's
parameters as inputs), re-implemented from public model code."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

MODELS: dict[str, "Model"] = {}


@dataclass
class Model:
    name: str
    fn: Callable
    source: str  # where the original code lives

    def make_inputs(self, g: torch.Generator) -> tuple:
        return self.fn.inputs(g)  # set below each function's definition


def model(source: str):
    """Register `fn`; its example inputs come from the maker set as `fn.inputs`."""

    def register(fn: Callable) -> Callable:
        MODELS[fn.__name__] = Model(fn.__name__, fn, source)
        return fn

    return register


def randn(g: torch.Generator, *shape, scale: float = 1.0) -> torch.Tensor:
    return torch.randn(*shape, generator=g, dtype=torch.float64) * scale


def targets(g: torch.Generator, bound: int, *shape) -> torch.Tensor:
    return torch.randint(0, bound, shape, generator=g)
