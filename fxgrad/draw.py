"""`bwd.draw("attn.svg")`: a derived backward as a graph picture, one box per printed statement.

As torchviz draws autograd's graph, but with the closed-form statements fxgrad prints instead
of `MmBackward0`: each box is a line of `bwd.code` with its shape; the forward values the
backward recomputes are blue, the gradients orange, the incoming gradients and the returned
gradients outlined, and the edges that carry gradients drawn in the gradients' colour.
graphviz is an optional dependency (`pip install fxgrad[draw]`); a `.dot` file needs only the
Python package, other formats graphviz's `dot` program as well.
"""

from __future__ import annotations

import os

import torch.fx as fx

from .emit import printout
from .errors import FxgradError, described
from .graph import FORWARD

_FORWARD, _GRADIENT, _INPUT = "#dbe9f6", "#fde3c8", "#ffffff"
_GRADIENT_EDGE = "#d9730d"


def draw(bwd: fx.GraphModule, path: str | None = None):
    """The backward's graph as a `graphviz.Digraph` (shown as SVG in a notebook), written to
    `path` if given: its extension names the format (`.svg`, `.png`, `.pdf`, `.dot`)."""
    try:
        import graphviz
    except ImportError:
        raise FxgradError("drawing a backward needs the graphviz package: pip install fxgrad[draw] "
                          "(and graphviz's `dot` program for formats other than .dot)") from None
    printed = printout(bwd.graph)
    returned = set(bwd.graph.output_node().all_input_nodes)
    dot = graphviz.Digraph(name="backward", graph_attr={"rankdir": "TB"},
                           node_attr={"shape": "box", "style": "filled,rounded", "fontname": "Helvetica",
                                      "fontsize": "11"})
    placeholders = [node for node in bwd.graph.nodes if node.op == "placeholder"]
    incoming_from = len(placeholders) - len(bwd.guards.grad_outputs)
    for i, node in enumerate(placeholders):
        incoming = i >= incoming_from
        dot.node(node.name, _label(printed.names[node], node), fillcolor=_GRADIENT if incoming else _INPUT,
                     penwidth="2" if incoming else "1")
    for node, text in printed.statements:
        dot.node(node.name, _label(text, node), fillcolor=_FORWARD if node.meta.get(FORWARD) else _GRADIENT,
                 penwidth="2" if node in returned else "1")
        for source in sorted(_read(node, printed.nested), key=lambda n: n.name):
            gradient = not node.meta.get(FORWARD)
            dot.edge(source.name, node.name, color=_GRADIENT_EDGE if gradient else "black")
    if path is not None:
        _write(dot, path)
    return dot


def _label(text: str, node: fx.Node) -> str:
    value = node.meta.get("val")
    shape = getattr(value, "shape", None)
    return text if shape is None else f"{text}\n{'×'.join(map(str, shape)) or 'scalar'}"


def _read(node: fx.Node, nested: dict) -> set[fx.Node]:
    """The printed variables `node`'s statement reads, through the values written inside it."""
    read = set()
    for arg in node.all_input_nodes:
        read |= _read(arg, nested) if arg in nested else {arg}
    return read


def _write(dot, path: str) -> None:
    stem, extension = os.path.splitext(path)
    if extension in (".dot", ".gv"):
        with open(path, "w") as file:
            file.write(dot.source)
        return
    try:
        dot.render(stem, format=extension.lstrip(".") or "svg", cleanup=True)
    except Exception as error:  # no `dot` program, or a format it does not know
        raise FxgradError(f"graphviz could not write {path}: {described(error)} (a .dot file needs no "
                          "graphviz program)") from error
