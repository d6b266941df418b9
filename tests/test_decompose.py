"""Ops with no lowering, derived through torch's own decompositions of them."""

import pytest
import torch
import torch.nn.functional as F

import fxgrad
from checks import assert_closed_form, assert_matches_autograd


def mish_glu(x, w):
    h = F.mish(x @ w)
    return F.glu(h, -1)


def test_decomposed_statements_print_under_the_users_line_with_its_names():
    x, w = torch.randn(2, 3, dtype=torch.float64), torch.randn(3, 4, dtype=torch.float64)
    bwd = fxgrad.derive(mish_glu, (x, w))
    assert_closed_form(bwd)
    assert_matches_autograd(mish_glu, bwd, (x, w))
    code = bwd.code
    line = code.index("# from mish_glu line 12: h = F.mish(x @ w)")
    assert "h = " in code[line:code.index("# from", line + 1)]
    assert "tanh" in code[line:]


def test_sizes_a_decomposition_writes_into_the_graph_are_guarded():
    x, w = torch.randn(2, 3, dtype=torch.float64), torch.randn(3, 4, dtype=torch.float64)
    bwd = fxgrad.derive(mish_glu, (x, w))
    assert "mish_glu line 13" in bwd.guards.fixed_sizes
    with pytest.raises(fxgrad.ShapeError, match=r"decomposition of `torch.nn.functional.glu` at mish_glu line 13"):
        bwd(torch.randn(5, 3, dtype=torch.float64), w, torch.randn(5, 2, dtype=torch.float64))


def test_function_derives_again_where_a_decomposition_fixed_the_sizes():
    f = fxgrad.function(mish_glu, (torch.randn(2, 3), torch.randn(3, 4)))
    for n in (2, 5):
        x = torch.randn(n, 3, dtype=torch.float64, requires_grad=True)
        w = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
        f(x, w).square().sum().backward()
        x0, w0 = x.detach().requires_grad_(), w.detach().requires_grad_()
        mish_glu(x0, w0).square().sum().backward()
        torch.testing.assert_close(x.grad, x0.grad)
        torch.testing.assert_close(w.grad, w0.grad)


def test_a_size_generic_decomposition_keeps_the_graph_generic():
    bwd = fxgrad.derive(F.mish, (torch.randn(2, 3, dtype=torch.float64),))
    assert bwd.guards.fixed_sizes is None
    assert_matches_autograd(F.mish, bwd, (torch.randn(7, 5, dtype=torch.float64),))


def order_statistic(x):
    y = torch.nanmedian(x, 0)[0]
    return y * 2


def test_an_op_whose_decompositions_stop_short_is_refused_naming_where():
    with pytest.raises(fxgrad.UnsupportedOpError, match=r"`torch.nanmedian` \(torch's decompositions of it stop "
                       r"at `aten.nanmedian`, which has none\), used at order_statistic line 54") as info:
        fxgrad.derive(order_statistic, (torch.randn(4),))
    assert info.value.op == "torch.nanmedian" and info.value.stuck_on == "aten.nanmedian"
    with pytest.raises(fxgrad.UnsupportedOpError, match=r"`Tensor.unfold` \(torch's decompositions of it stop at "
                       r"`aten.as_strided`"):
        fxgrad.derive(lambda x: x.unfold(0, 2, 1), (torch.randn(3, 3),))


def test_no_decomposition_is_needed_on_a_path_without_gradient():
    def f(x):
        return torch.nanmedian(x, 0)[0].detach() * x + torch.empty_like(x).fill_(2) * x

    x = torch.randn(4, dtype=torch.float64)
    bwd = fxgrad.derive(f, (x,))
    assert_matches_autograd(f, bwd, (x,))


def shrink_by_rows(a, b):
    return F.softshrink(a + b, a.size(0) * 0.1)


def test_a_number_computed_at_run_time_that_a_decomposition_takes_is_guarded():
    a, b = torch.randn(2, 3, dtype=torch.float64), torch.randn(2, 3, dtype=torch.float64)
    bwd = fxgrad.derive(shrink_by_rows, (a, b))
    assert_matches_autograd(shrink_by_rows, bwd, (a, b))
    with pytest.raises(fxgrad.ShapeError, match=r"decomposition of `torch.nn.functional.softshrink` at shrink_by_rows line"):
        bwd(torch.randn(5, 3, dtype=torch.float64), torch.randn(5, 3, dtype=torch.float64),
            torch.randn(5, 3, dtype=torch.float64))
