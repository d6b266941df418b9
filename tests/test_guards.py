"""A derived backward holds for the calls it accepts, and refuses the others: guards."""

import copy
import inspect
import pickle

import pytest
import torch
import torch.nn.functional as F

import fxgrad
from checks import assert_matches_autograd
from fxgrad import GradOutputError, InputError, ShapeError


def randn(*shape):
    return torch.randn(*shape, dtype=torch.float64)


def line_of(fn, text):
    source, first = inspect.getsourcelines(fn)
    return first + next(i for i, line in enumerate(source) if text in line)


def loop_over_rows(x):
    total = 0
    for i in range(x.shape[0]):
        total = total + x[i] * (i + 1)
    return total / x.shape[0]


def asserts_rank(x):
    assert x.ndim == 2
    return (x * x).sum(0) / x.shape[0]


def branches_on_size(x):
    if x.shape[0] > 2:
        return x.sum(0) * 2
    return x.sum(0)


@pytest.mark.parametrize("fn, text", [(loop_over_rows, "for i in range"), (asserts_rank, "assert x.ndim"),
                                      (branches_on_size, "if x.shape[0]")], ids=["for", "assert", "if"])
def test_sizes_fixed_by_the_tracer_are_guarded(fn, text):
    x = randn(3, 2)
    bwd = fxgrad.derive(fn, (x,))  # fx cannot trace these lines; export fixes the sizes
    assert_matches_autograd(fn, bwd, (randn(3, 2),))
    with pytest.raises(ShapeError) as info:
        bwd(randn(6, 2), randn(2))
    message = str(info.value)
    assert "derived for x.shape[0] == 3" in message and "called with shape (6, 2)" in message
    assert f"line {line_of(fn, text)}" in message and text in message
    assert "derive again" in message


@pytest.mark.parametrize("tracer", ["export", "aten"])
def test_export_and_aten_fix_every_size(tracer):
    fn = lambda x, w: torch.tanh(x @ w)  # noqa: E731
    bwd = fxgrad.derive(fn, (randn(4, 3), randn(3, 2)), tracer=tracer)
    with pytest.raises(ShapeError, match=r"x.shape\[0\] == 4.*(torch.export|make_fx) wrote"):
        bwd(randn(5, 3), randn(3, 2), randn(5, 2))


def broadcast_product(x, b):
    return (x * b).sum(0)


@pytest.mark.parametrize("sizes", [((5, 4), (4,)), ((1, 7), (7,)), ((9, 2), (2,))])
def test_generic_math_holds_at_other_sizes(sizes):
    bwd = fxgrad.derive(broadcast_product, (randn(3, 4), randn(4)))
    inputs = tuple(randn(*shape) for shape in sizes)
    if sizes[0][0] == 1:  # a dim that was 3 is now 1: it would broadcast, so it is refused
        with pytest.raises(ShapeError, match="size 1"):
            bwd(*inputs, randn(sizes[1][0]))
        return
    assert_matches_autograd(broadcast_product, bwd, inputs)
    assert_matches_autograd(broadcast_product, bwd, inputs, seed=2)  # the second call runs unchecked


def test_a_dim_that_broadcast_cannot_stop_broadcasting():
    bwd = fxgrad.derive(lambda x, y: x * y, (randn(3, 4), randn(3, 1)))
    with pytest.raises(ShapeError, match=r"`y` of shape \(3, 1\); called with shape \(3, 4\)"):
        bwd(randn(3, 4), randn(3, 4), randn(3, 4))


def slice_then_broadcast(x):
    return x[2:] * torch.ones(4, dtype=x.dtype)


def test_a_value_that_changes_how_it_broadcasts_is_refused_at_its_line():
    bwd = fxgrad.derive(slice_then_broadcast, (randn(3),))
    with pytest.raises(ShapeError) as info:
        bwd(randn(6), randn(4))
    assert f"slice_then_broadcast line {line_of(slice_then_broadcast, 'x[2:]')}" in str(info.value)
    assert "gave shape (1,)" in str(info.value) and "gives shape (4,)" in str(info.value)


def split_in_twos(x):
    a, b = x.split(2)
    return a * b


def chunk_in_two(x):
    a, b = x.chunk(2)
    return a * b.sum()


def test_a_piece_count_is_guarded():
    bwd = fxgrad.derive(split_in_twos, (randn(4),))
    with pytest.raises(ShapeError, match=r"x.split\(2\) gave 2 pieces.*gives 3 pieces"):
        bwd(randn(6), randn(2))
    bwd = fxgrad.derive(split_in_twos, (randn(4, 3),))  # as many pieces, one of them shorter
    with pytest.raises(ShapeError, match=r"gave 2 pieces \(\(2, 3\), \(2, 3\)\).*gives 2 pieces \(\(2, 3\), \(1, 3\)\)"):
        bwd(randn(3, 3), randn(2, 3))
    bwd = fxgrad.derive(chunk_in_two, (randn(6),))
    assert_matches_autograd(chunk_in_two, bwd, (randn(8),))  # still two pieces


@pytest.mark.parametrize("stride, padding, dilation", [(2, 1, 1), (3, 0, 1), (2, 2, 2)])
@pytest.mark.parametrize("spatial", [1, 2])
def test_strided_convolution_is_generic_in_sizes(stride, padding, dilation, spatial):
    conv = F.conv1d if spatial == 1 else F.conv2d

    def fn(x, w):
        return conv(x, w, stride=stride, padding=padding, dilation=dilation)

    w = randn(3, 2, *(3,) * spatial)
    bwd = fxgrad.derive(fn, (randn(2, 2, *(7,) * spatial), w))
    for size in (7, 8, 9, 10):
        assert_matches_autograd(fn, bwd, (randn(2, 2, *(size,) * spatial), w))


def test_rank_is_guarded():
    fn = lambda x, w: F.layer_norm(x, (4,), w)  # noqa: E731
    bwd = fxgrad.derive(fn, (randn(3, 4), randn(4)))
    with pytest.raises(ShapeError, match=r"2-d `x`.*3-d"):
        bwd(randn(2, 3, 4), randn(4), randn(2, 3, 4))


def test_an_embedding_index_of_another_rank_is_refused():
    fn = lambda w, i: F.embedding(i, w)  # noqa: E731
    bwd = fxgrad.derive(fn, (randn(5, 3), torch.tensor([0, 2, 4])))
    with pytest.raises(ShapeError, match="1-d `i`"):
        bwd(randn(5, 3), torch.tensor([[0, 2]]), randn(1, 2, 3))


def test_dtype_is_guarded_and_an_incoming_gradient_is_cast_as_autograd_casts_it():
    fn = lambda x: x.tanh()  # noqa: E731
    x = randn(3)
    bwd = fxgrad.derive(fn, (x,))
    with pytest.raises(ShapeError, match="dtype torch.float64; called with torch.float32"):
        bwd(x.float(), torch.ones(3))
    (grad,) = bwd(x, torch.ones(3, dtype=torch.float32))
    assert grad.dtype == torch.float64
    torch.testing.assert_close(grad, 1 - x.tanh() ** 2)


@pytest.mark.parametrize("call, error, match", [
    (lambda bwd, x: bwd(x, None, randn(3)), InputError, "input `y` must be a tensor"),
    (lambda bwd, x: bwd(x, x, grad_out=randn(3)), GradOutputError, "by position"),
    (lambda bwd, x: bwd(x, x), GradOutputError, "3 arguments in all"),
    (lambda bwd, x: bwd(x, x, 1.0), GradOutputError, "must be a tensor"),
    (lambda bwd, x: bwd(x, x, randn(4)), GradOutputError, r"has shape \(4,\); it must have the output's shape, \(3,\)"),
    (lambda bwd, x: bwd(randn(5), randn(5), randn(3)), GradOutputError, r"at these input sizes .* \(5,\)"),
    (lambda bwd, x: bwd(x, x.int(), randn(3)), ShapeError, "dtype"),
    (lambda bwd, x: bwd(torch.nested.nested_tensor([x, x]), x, randn(3)), InputError, "nested"),
], ids=["None input", "keywords", "too few", "number as gradient", "gradient shape", "gradient shape at new sizes",
        "integer input", "nested input"])
def test_calls_are_checked(call, error, match):
    x = randn(3)
    bwd = fxgrad.derive(lambda x, y: x * y, (x, x))
    with pytest.raises(error, match=match):
        call(bwd, x)


@pytest.mark.parametrize("duplicate", [copy.deepcopy, lambda bwd: pickle.loads(pickle.dumps(bwd))],
                         ids=["deepcopy", "pickle"])
def test_copies_keep_names_guards_and_printout(duplicate):
    bwd = fxgrad.derive(slice_then_broadcast, (randn(3),))
    copied = duplicate(bwd)
    assert isinstance(copied, fxgrad.Backward) and copied.grad_names == ["grad_x"] and copied.code == bwd.code
    assert_matches_autograd(slice_then_broadcast, copied, (randn(3),))
    with pytest.raises(ShapeError, match="gave shape"):
        copied(randn(6), randn(4))
    with pytest.raises(GradOutputError):
        copied(randn(3))


def test_compiled_backward_keeps_the_checks():
    bwd = fxgrad.derive(broadcast_product, (randn(3, 4), randn(4)), compile=True)
    assert_matches_autograd(broadcast_product, bwd, (randn(3, 4), randn(4)))
    with pytest.raises(GradOutputError, match="3 arguments in all"):
        bwd(randn(3, 4), randn(4))
    with pytest.raises(ShapeError, match="ranks are fixed"):
        bwd(randn(3, 4), randn(1, 4), randn(4))


def test_wrt_of_another_type_is_an_input_error():
    with pytest.raises(InputError, match="wrt must be"):
        fxgrad.derive(lambda x: x * 2, (randn(3),), wrt=0.0)


def test_a_value_the_function_fails_on_is_an_input_error_at_its_line():
    fn = lambda x, t: F.cross_entropy(x, t)  # noqa: E731
    bwd = fxgrad.derive(fn, (randn(4, 5), torch.tensor([0, 1, 2, 3])))
    with pytest.raises(InputError, match=r"fails on these inputs at <lambda> line \d+.*out of bounds"):
        bwd(randn(4, 5), torch.tensor([0, 1, 7, 2]), randn(()))


def test_a_backward_runs_as_printed_under_autocast():
    fn = lambda x, w: torch.tanh(x @ w)  # noqa: E731
    x, w, g = torch.randn(4, 3), torch.randn(3, 2), torch.randn(4, 2)
    bwd = fxgrad.derive(fn, (x, w))
    outside = bwd(x, w, g)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        inside = bwd(x, w, g)
    for a, b in zip(outside, inside):
        assert torch.equal(a, b)
