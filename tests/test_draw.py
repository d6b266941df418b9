"""bwd.draw: the backward as a graphviz graph, one box per printed statement."""

import shutil
import sys

import pytest
import torch

import fxgrad

graphviz = pytest.importorskip("graphviz")


def attn(q, k, v):
    x = torch.matmul(q, k.transpose(0, 1))
    a = torch.tanh(x)
    o = torch.matmul(a, v)
    return o, a


def derived():
    return fxgrad.derive(attn, (torch.randn(2, 3), torch.randn(2, 3), torch.randn(2, 4)))


def test_each_printed_statement_is_a_box_with_its_shape_and_gradient_edges_are_marked(tmp_path):
    bwd = derived()
    dot = bwd.draw(str(tmp_path / "attn.dot"))
    source = (tmp_path / "attn.dot").read_text()
    assert source == dot.source
    for statement in ("x = q @ k.mT", "a = torch.tanh(x)", "grad_q = grad_x @ k", "grad_k = grad_x.mT @ q",
                      "grad_v = a.mT @ grad_o"):
        assert statement in source
        assert statement in bwd.code
    assert 'x [label="x = q @ k.mT\n2×2"' in source
    assert 'grad_x -> grad_q [color="#d9730d"]' in source  # an edge carrying a gradient
    assert "q -> x [color=black]" in source  # a forward edge
    assert "getattr" not in source and "aten" not in source


def test_a_picture_format_needs_the_dot_program_and_says_so(tmp_path):
    if shutil.which("dot"):
        derived().draw(str(tmp_path / "attn.svg"))
        assert (tmp_path / "attn.svg").exists()
    else:
        with pytest.raises(fxgrad.FxgradError, match="graphviz could not write .*attn.svg.*a .dot file needs no"):
            derived().draw(str(tmp_path / "attn.svg"))


def test_without_graphviz_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "graphviz", None)
    with pytest.raises(fxgrad.FxgradError, match=r"pip install fxgrad\[draw\]"):
        derived().draw()
