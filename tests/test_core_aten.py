"""Writing into tensors (scatter, index_put, item assignment), batch norm as Core ATen writes it,
embedding bags, and the refusals around them, against torch.autograd."""

import pytest
import torch
import torch.nn.functional as F

import fxgrad
from checks import assert_matches_autograd
from fxgrad.trace import TRACERS

aten = torch.ops.aten


def float64(*values):
    return torch.tensor(values, dtype=torch.float64)


@pytest.mark.parametrize("reduce", ["amax", "amin"])
def test_an_excluded_input_equal_to_the_extreme_shares_its_gradient_as_torch_shares_it(reduce):
    # input's 3 is not included, yet torch counts it among the values equal to the result
    def f(x, src):
        return x.scatter_reduce(0, torch.tensor([0, 0]), src, reduce, include_self=False)

    src = float64(3.0, 1.0) if reduce == "amax" else float64(3.0, 5.0)
    inputs = (float64(3.0, 5.0), src)
    assert_matches_autograd(f, fxgrad.derive(f, inputs), inputs)


@pytest.mark.parametrize("include_self", [True, False])
def test_a_product_over_several_zeros_at_one_place_matches_autograd(include_self):
    def f(x, src):
        return x.scatter_reduce(0, torch.tensor([0, 0, 0, 1]), src, "prod", include_self=include_self)

    inputs = (float64(0.0, 2.0), float64(0.0, 0.0, 3.0, 0.0))
    assert_matches_autograd(f, fxgrad.derive(f, inputs), inputs)


def test_a_src_larger_than_its_index_gets_no_gradient_as_in_torch():
    def f(x, src):
        return x.scatter(0, torch.tensor([[0, 1]]), src)

    x, src = torch.randn(3, 4, dtype=torch.float64), torch.randn(3, 4, dtype=torch.float64)
    with pytest.raises(fxgrad.UnsupportedOpError, match=r"torch.scatter with respect to its src \(larger than its "
                                                         r"index"):
        fxgrad.derive(f, (x, src))
    # (autograd fails where src requires grad: only x's gradient can be compared)
    g = torch.randn(3, 4, dtype=torch.float64)
    grad_x, grad_src = fxgrad.derive(f, (x, src), wrt=0)(x, src, g)
    leaf = x.clone().requires_grad_()
    assert grad_src is None
    torch.testing.assert_close(grad_x, torch.autograd.grad(f(leaf, src), leaf, g)[0])


def scatter_to_add(x, src, index):
    return x.scatter(0, index, src, reduce="add")


def reduce_a_larger_src(x, src, index):
    return x.scatter_reduce(0, index, src, "sum")


def put_at_a_mask(x, v, index):
    y = x.clone()
    y[x > 0] = v[0, 0]
    return y


def assign_at_a_column(x, v, index):
    y = x.clone()
    y[:, index[0]] = v[0, 0]
    return y


def assign_at_an_int(x, v, index):
    y = x.clone()
    y[0] = v[0]
    return y


@pytest.mark.parametrize("fn, error, match", [
    (scatter_to_add, fxgrad.UnsupportedArgumentError, r"scatter\(reduce='add'\) \(write scatter_add"),
    (reduce_a_larger_src, fxgrad.UnsupportedArgumentError, "scatter_reduce with a src larger than its index"),
    (put_at_a_mask, fxgrad.UnsupportedArgumentError, "index_put with a boolean mask"),
    (assign_at_a_column, fxgrad.UnsupportedArgumentError, r"index_put with whole dims before indexed ones"),
], ids=["scatter reduce=", "scatter_reduce larger src", "boolean mask", "whole dims first"])
@pytest.mark.parametrize("tracer", TRACERS)
def test_writes_fxgrad_does_not_differentiate_are_refused_naming_the_line(fn, error, match, tracer):
    inputs = (torch.randn(3, 4), torch.randn(3, 4), torch.tensor([[0, 2, 1, 0]]))
    with pytest.raises(error, match=match + f".*{fn.__name__} line"):
        fxgrad.derive(fn, inputs, tracer=tracer)


@pytest.mark.parametrize("tracer", ["fx"])  # (export and make_fx record the clone's copy_ as a change of x)
def test_item_assignment_at_an_int_is_written_back_beside_the_index_put_form(tracer):
    inputs = (torch.randn(3, 4, dtype=torch.float64), torch.randn(3, 4, dtype=torch.float64), torch.tensor([0]))
    assert_matches_autograd(assign_at_an_int, fxgrad.derive(assign_at_an_int, inputs, tracer=tracer), inputs)


def strided(x):
    return x.as_strided((2, 2), (1, 2)) * 2


@pytest.mark.parametrize("tracer", TRACERS)
def test_as_strided_is_refused_saying_why(tracer):
    with pytest.raises(fxgrad.UnsupportedOpError, match=r"as_strided.*used at .*\nas_strided reads the input's "
                                                         r"memory through strides"):
        fxgrad.derive(strided, (torch.randn(3, 3),), tracer=tracer)


@pytest.mark.parametrize("statistics", [
    lambda x: aten.native_batch_norm(x, None, None, None, None, True, 0.1, 1e-5),
    lambda x: aten._native_batch_norm_legit(x, None, None, True, 0.1, 1e-5),
    lambda x: aten.native_layer_norm(x, [4], None, None, 1e-5),
], ids=["native_batch_norm", "_native_batch_norm_legit", "native_layer_norm"])
def test_the_statistics_a_normalisation_returns_carry_no_gradient_as_in_autograd(statistics):
    def f(x):
        out, mean, rstd = statistics(x)
        return out * (mean.sum() + rstd.sum())

    x = torch.randn(3, 2, 4, dtype=torch.float64)
    assert_matches_autograd(f, fxgrad.derive(f, (x,), tracer="fx"), (x,))


class LegitBatchNorm(torch.nn.Module):
    """Batch norm written as torch.export's Core ATen decomposition writes it, on its own buffers."""

    def __init__(self):
        super().__init__()
        self.bn = torch.nn.BatchNorm1d(3).double()

    def forward(self, x):
        bn = self.bn
        return aten._native_batch_norm_legit(x, bn.weight, bn.bias, bn.running_mean, bn.running_var, True, 0.1,
                                             1e-5)[0]


@pytest.mark.parametrize("tracer", TRACERS)
def test_native_batch_norm_legit_updates_the_running_statistics_as_eager_does(tracer):
    x = torch.randn(4, 3, 5, dtype=torch.float64)
    model, eager = LegitBatchNorm(), LegitBatchNorm()
    g = torch.randn(4, 3, 5, dtype=torch.float64)
    leaf, reference = x.clone().requires_grad_(), LegitBatchNorm()
    expected = torch.autograd.grad(reference(leaf), (leaf, *reference.parameters()), g)
    for derived, autograd in zip(fxgrad.derive(model, (x,), tracer=tracer)(x, g), expected, strict=True):
        torch.testing.assert_close(derived, autograd)
    fxgrad.function(model, (x,))(x.requires_grad_()).sum().backward()
    eager(x.detach())
    torch.testing.assert_close(model.bn.running_mean, eager.bn.running_mean)
    torch.testing.assert_close(model.bn.running_var, eager.bn.running_var)


@pytest.mark.parametrize("call, error, match", [
    (lambda i, w: F.embedding_bag(i, w, torch.tensor([0, 2]), scale_grad_by_freq=True),
     fxgrad.UnsupportedArgumentError, r"embedding_bag\(scale_grad_by_freq=True\)"),
    (lambda i, w: F.embedding_bag(i, w, torch.tensor([0, 2]), max_norm=1.0), fxgrad.MutationError,
     r"embedding_bag\(max_norm=...\)` renormalises"),
])
def test_embedding_bag_options_fxgrad_does_not_differentiate_are_refused(call, error, match):
    with pytest.raises(error, match=match):
        fxgrad.derive(call, (torch.tensor([0, 1, 3, 3]), torch.randn(4, 2)), tracer="fx")


@pytest.mark.parametrize("tracer", ["auto", "export", "aten"])
def test_a_function_of_a_derived_cross_entropy_backward_derives(tracer):
    # the backward of cross-entropy writes its targets' one-hot with scatter_add
    x, t = torch.randn(4, 5, dtype=torch.float64), torch.tensor([0, 3, 1, 3])
    bwd = fxgrad.derive(F.cross_entropy, (x, t))

    def gradient_norm(x, t):
        grad_x, _ = bwd(x, t, torch.ones((), dtype=x.dtype))
        return (grad_x * grad_x).sum()

    assert_matches_autograd(gradient_norm, fxgrad.derive(gradient_norm, (x, t), tracer=tracer), (x, t))
    with pytest.raises(fxgrad.TraceError, match="fx cannot trace a call of a derived backward"):
        fxgrad.derive(gradient_norm, (x, t), tracer="fx")
