"""The errors fxgrad raises. Every one is an `FxgradError`, so callers can catch them all."""

from __future__ import annotations

import re
from typing import NamedTuple

import torch.fx as fx


class FxgradError(Exception):
    """Base class of every error fxgrad raises on bad input or unsupported code."""


class TraceError(FxgradError):
    """The function could not be traced into a graph."""


class InputError(FxgradError):
    """The example inputs, or the inputs to differentiate (`wrt`), are not what derive takes."""


class OutputError(FxgradError):
    """The function returns something other than a tensor or a tuple of tensors."""


class GradOutputError(FxgradError):
    """A derived backward was called with arguments of the wrong number or shape."""


class MutationError(FxgradError):
    """The function changes a tensor in place."""


class RandomnessError(FxgradError):
    """The function draws random numbers, so recomputing its forward would not reproduce it."""


class UnsupportedOpError(FxgradError):
    """An op on the path from the differentiated inputs to the outputs has no backward rule."""

    def __init__(self, op: str, where: str, supported: list[str]):
        self.op = op
        self.where = where
        self.supported = supported
        super().__init__(
            f"fxgrad has no backward rule for `{op}`, used at {where}.\n"
            f"fxgrad.supported_ops() lists the {len(supported)} spellings it differentiates (and the README, by "
            "op); rewrite the function with those, or detach() the value if it needs no gradient."
        )


_FRAME = re.compile(r'File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<func>\S+)\n\s*(?P<code>.*)')


class Frame(NamedTuple):
    file: str
    line: int
    func: str
    code: str


def last_frame(node: fx.Node) -> Frame | None:
    """The innermost frame of the user's code that recorded `node`, if one was recorded."""
    frames = list(_FRAME.finditer(node.stack_trace or ""))
    if not frames:
        return None
    last = frames[-1]
    return Frame(last["file"], int(last["line"]), last["func"], last["code"].strip())


def source_location(node: fx.Node) -> str:
    """Where in the user's source `node` was recorded, e.g. `attn line 3 (lab.py): x = q @ k.mT`."""
    frame = last_frame(node)
    if frame is None:
        return f"graph node `{node.name}` (no source line recorded)"
    return f"{frame.func} line {frame.line} ({frame.file.rsplit('/', 1)[-1]}): {frame.code}"
