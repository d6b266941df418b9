"""The errors fxgrad raises. Every one is an `FxgradError`, so callers can catch them all."""

from __future__ import annotations

import re
from typing import NamedTuple

import torch.fx as fx


class FxgradError(Exception):
    """Base class of every error fxgrad raises on bad input or unsupported code."""


class TraceError(FxgradError):
    """The function could not be traced into a graph."""


class UnsupportedOpError(FxgradError):
    """An op on the path from the differentiated inputs to the outputs has no backward rule."""

    def __init__(self, op: str, where: str, supported: list[str]):
        self.op = op
        self.where = where
        self.supported = supported
        super().__init__(
            f"fxgrad has no backward rule for `{op}`, used at {where}.\n"
            f"Supported ops ({len(supported)}): {', '.join(supported)}.\n"
            "Rewrite the function with supported ops, or detach() the value if it needs no gradient."
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
