"""Bad input and unsupported code fail with a clear `FxgradError`."""

import inspect

import pytest
import torch
import torch.nn.functional as F

import fxgrad
from fxgrad import FxgradError, UnsupportedOpError


def spectrum(x):
    y = x * 2
    z = torch.fft.fft(y)
    return z


def magnitude(x):
    return torch.fft.fft(x).real


def line_of(fn, text):
    source, first = inspect.getsourcelines(fn)
    return first + next(i for i, line in enumerate(source) if text in line)


def test_unsupported_op_names_op_line_and_supported_list():
    with pytest.raises(UnsupportedOpError) as info:
        fxgrad.derive(spectrum, (torch.randn(4),))
    message = str(info.value)
    assert info.value.op == "torch.fft.fft"
    assert f"spectrum line {line_of(spectrum, 'fft')}" in message
    assert "z = torch.fft.fft(y)" in message
    assert "fxgrad.supported_ops()" in message and "torch.matmul" in info.value.supported
    assert isinstance(info.value, FxgradError)


def test_unsupported_op_met_first_on_the_backward_path_is_named():
    with pytest.raises(UnsupportedOpError, match=r"Tensor\.real.*magnitude line"):
        fxgrad.derive(magnitude, (torch.randn(4),))


@pytest.mark.parametrize("fn", [lambda x: x.nanmedian(1)[0], lambda x: x.nanmedian(1).values],
                         ids=["[0]", ".values"])
def test_unsupported_op_returning_a_tuple_is_named(fn):
    with pytest.raises(UnsupportedOpError) as info:
        fxgrad.derive(fn, (torch.randn(3, 4),))
    assert info.value.op == "Tensor.nanmedian"


def test_unsupported_op_off_the_gradient_path_is_fine():
    def f(x, y):
        return x * torch.cumsum(y, 0).detach()

    x, y = torch.randn(3), torch.randn(3)
    grad_x, grad_y = fxgrad.derive(f, (x, y))(x, y, torch.ones(3))
    torch.testing.assert_close(grad_x, torch.cumsum(y, 0))
    assert torch.equal(grad_y, torch.zeros(3))


def test_complex_values_are_refused_not_dropped():
    with pytest.raises(UnsupportedOpError, match="complex"):
        fxgrad.derive(lambda x: torch.fft.fft(x).abs(), (torch.randn(4),))


def test_unsupported_argument_names_the_line():
    def f(x):
        return torch.div(x, 2, rounding_mode="floor")

    with pytest.raises(fxgrad.UnsupportedArgumentError, match=r"rounding_mode.*f line"):
        fxgrad.derive(f, (torch.randn(3),))


def test_untraceable_function():
    def f(x):
        if x.sum() > 0:  # data-dependent control flow
            return x
        return -x

    with pytest.raises(fxgrad.TraceError, match="could not trace `.*f`"):
        fxgrad.derive(f, (torch.randn(3),))


@pytest.mark.parametrize(
    "example_inputs, message",
    [
        (torch.randn(3), "must be a tuple of tensors"),
        ((torch.randn(3), object()), r"`y` is a object, not a tensor"),
        ((torch.randn(3),), "takes 2 arguments"),
    ],
)
def test_bad_example_inputs(example_inputs, message):
    with pytest.raises(FxgradError, match=message):
        fxgrad.derive(lambda x, y: x * y, example_inputs)


@pytest.mark.parametrize("wrt", [(2,), (-3,), ("x",)])
def test_wrt_out_of_range(wrt):
    with pytest.raises(fxgrad.InputError, match="wrt names .* values to differentiate"):
        fxgrad.derive(lambda x, y: x * y, (torch.randn(3), torch.randn(3)), wrt=wrt)


def test_non_tensor_output():
    with pytest.raises(FxgradError, match="must return a tensor or a tuple of tensors"):
        fxgrad.derive(lambda x: (x * 2, x.shape[0]), (torch.randn(3),))


def test_in_place_change_of_an_input_is_refused():
    def f(x):
        x.add_(1)
        return x * 2

    for tracer in ("fx", "export", "aten"):
        with pytest.raises(fxgrad.MutationError, match=r"add_.*in place"):
            fxgrad.derive(f, (torch.randn(3),), tracer=tracer)


def test_in_place_op_on_a_fresh_value_is_derived_as_its_functional_twin():
    def f(x):
        return (x * 2).tanh_() + F.relu(x - 1, inplace=True)

    x = torch.randn(4, dtype=torch.float64)
    from checks import assert_matches_autograd
    assert_matches_autograd(f, fxgrad.derive(f, (x,)), (x,))


@pytest.mark.parametrize("fn", [
    lambda x: x + torch.randn_like(x),
    lambda x: F.dropout(x, 0.1),
    lambda x: x * torch.rand(3),
    lambda x: x.bernoulli() * x,
], ids=["randn_like", "dropout", "rand", "bernoulli"])
def test_randomness_is_refused(fn):
    for tracer in ("fx", "aten"):
        with pytest.raises(fxgrad.RandomnessError):
            fxgrad.derive(fn, (torch.rand(3),), tracer=tracer)


def test_function_returning_nothing():
    def f(x):
        x * 2

    with pytest.raises(fxgrad.OutputError, match="returns nothing"):
        fxgrad.derive(f, (torch.randn(3),))


def test_wrt_naming_an_integer_input():
    with pytest.raises(fxgrad.InputError, match="wrt names n, a torch.int64 tensor"):
        fxgrad.derive(lambda x, n: x * n, (torch.randn(3), torch.arange(3)), wrt=[1])


def test_complex_input_is_refused_unless_left_out_of_wrt():
    def f(x, z):
        return x * z.real

    x, z = torch.randn(3), torch.randn(3, dtype=torch.complex64)
    with pytest.raises(fxgrad.InputError, match="z is complex"):
        fxgrad.derive(f, (x, z))
    grad_x, grad_z = fxgrad.derive(f, (x, z), wrt=[0])(x, z, torch.ones(3))
    torch.testing.assert_close(grad_x, z.real)
    assert grad_z is None


def test_grad_outputs_of_the_wrong_count_or_shape():
    from examples.seeds import attn, example_inputs

    q, k, v = example_inputs("attn")
    bwd = fxgrad.derive(attn, (q, k, v))
    grad_o, grad_a = torch.ones(2, 4, dtype=torch.float64), torch.ones(2, 2, dtype=torch.float64)
    with pytest.raises(fxgrad.GradOutputError, match=r"3 inputs and then 2 incoming gradients \(grad_o, grad_a\)"):
        bwd(q, k, v, grad_o)
    with pytest.raises(fxgrad.GradOutputError, match=r"gradient of output `a` has shape \(2, 4\).*\(2, 2\)"):
        bwd(q, k, v, grad_o, grad_o)
    with pytest.raises(fxgrad.GradOutputError, match="must be a tensor"):
        bwd(q, k, v, grad_o, 1.0)
    assert len(bwd(q, k, v, grad_o, grad_a)) == 3


def test_derivative_undefined_at_the_example_follows_torch():
    # relu and abs have no derivative at 0; fxgrad returns what torch does there: 0
    x = torch.tensor([-1.0, 0.0, 2.0], dtype=torch.float64)
    for fn in (torch.relu, torch.abs):
        (grad,) = fxgrad.derive(fn, (x,))(x, torch.ones(3, dtype=torch.float64))
        leaf = x.clone().requires_grad_()
        (expected,) = torch.autograd.grad(fn(leaf), leaf, torch.ones(3, dtype=torch.float64))
        assert torch.equal(grad, expected) and grad[1] == 0


def test_a_gradient_torch_does_not_define_is_refused():
    logits, target, weight = torch.randn(4, 3), torch.tensor([0, 2, 1, 2]), torch.rand(3) + 0.5

    def f(logits, target, weight):
        return F.cross_entropy(logits, target, weight=weight)

    with pytest.raises(UnsupportedOpError, match="with respect to its weight"):
        fxgrad.derive(f, (logits, target, weight))
    grad_logits, _, grad_weight = fxgrad.derive(f, (logits, target, weight), wrt=[0])(logits, target, weight,
                                                                                      torch.tensor(1.0))
    assert grad_weight is None and grad_logits.shape == (4, 3)


@pytest.mark.parametrize("tracer", ["fx", "export", "aten"])
def test_the_remainder_of_a_number_by_a_tensor_is_refused(tracer):
    # torch's autograd defines no derivative of `2.5 % x` (remainder.Scalar_Tensor)
    x = torch.rand(3, dtype=torch.float64) + 0.5
    with pytest.raises(UnsupportedOpError, match="remainder with respect to its divisor, where the dividend is a num"):
        fxgrad.derive(lambda x: 2.5 % x, (x,), tracer=tracer)
    # off the gradient's path it is a constant like any other
    from checks import assert_matches_autograd
    fn = lambda x: (2.5 % x.detach()) * x
    assert_matches_autograd(fn, fxgrad.derive(fn, (x,), tracer=tracer), (x,))


def test_in_place_change_through_a_view_is_refused():
    def through_transpose(x):
        y = x.t().add_(1)  # changes x itself
        return x * 2 + y.sum()

    with pytest.raises(fxgrad.MutationError):
        fxgrad.derive(through_transpose, (torch.randn(2, 3),))


def test_in_place_change_through_indexing_is_written_back():
    from checks import assert_matches_autograd

    def through_indexing(x):
        y = x * 2
        z = y[0].mul_(3)  # changes a row of y, which is read again
        return y + z.sum()

    x = torch.randn(2, 3, dtype=torch.float64)
    assert_matches_autograd(through_indexing, fxgrad.derive(through_indexing, (x,)), (x,))


def test_in_place_change_through_a_view_of_a_fresh_value_is_derived():
    from checks import assert_matches_autograd

    def f(x):
        return (x * 2).t().relu_()

    x = torch.randn(2, 3, dtype=torch.float64)
    assert_matches_autograd(f, fxgrad.derive(f, (x,)), (x,))


def test_in_place_torch_functions_are_seen_as_in_place():
    def changes_its_input(x):
        torch.relu_(x)
        return x * 2

    x = torch.randn(5)
    example = x.clone()
    with pytest.raises(fxgrad.MutationError, match="relu_"):
        fxgrad.derive(changes_its_input, (x,))
    assert torch.equal(x, example)  # deriving did not change the caller's tensor

    from checks import assert_matches_autograd

    def on_a_fresh_value(x):
        return torch.relu_(x * 2) + F.elu_(x * 3)

    x = torch.randn(5, dtype=torch.float64)
    assert_matches_autograd(on_a_fresh_value, fxgrad.derive(on_a_fresh_value, (x,)), (x,))


@pytest.mark.parametrize("alias", [lambda y: y.detach(), lambda y: y.view(-1), lambda y: y[::2]],
                         ids=["detach", "view", "strided slice"])
def test_in_place_change_through_an_alias_is_refused(alias):
    def f(x):
        y = x * 2
        alias(y).mul_(3)
        return y * y

    with pytest.raises(fxgrad.MutationError):
        fxgrad.derive(f, (torch.randn(3),))


def test_in_place_change_through_a_slice_is_written_back():
    from checks import assert_matches_autograd

    def f(x):
        y = x * 2
        y[1:].mul_(3)
        return y * y

    x = torch.randn(3, dtype=torch.float64)
    assert_matches_autograd(f, fxgrad.derive(f, (x,)), (x,))


@pytest.mark.parametrize("tracer", ["fx", "export"])  # make_fx records the example's start as an int
def test_narrow_with_a_tensor_start_is_refused(tracer):
    with pytest.raises(fxgrad.UnsupportedArgumentError, match="narrow with a tensor start"):
        fxgrad.derive(lambda x: x.narrow(0, torch.tensor(1), 2), (torch.randn(4, 3),), tracer=tracer)


def test_narrow_with_a_tensor_start_read_at_run_time_is_refused_by_every_tracer():
    for tracer in ("fx", "export", "aten"):
        with pytest.raises(FxgradError):
            fxgrad.derive(lambda x, start: x.narrow(0, start, 2), (torch.randn(4, 3), torch.tensor(1)), tracer=tracer)


def nested_input():
    return torch.nested.nested_tensor([torch.randn(2, 3), torch.randn(3, 3)])


@pytest.mark.filterwarnings("ignore:The PyTorch API of nested tensors")
def test_nested_tensor_as_input_is_an_input_error():
    with pytest.raises(fxgrad.InputError, match="nested tensor"):
        fxgrad.derive(lambda x: x * 2, (nested_input(),))
    for tracer in ("export", "aten"):  # these fail to trace it
        with pytest.raises(FxgradError):
            fxgrad.derive(lambda x: x * 2, (nested_input(),), tracer=tracer)


@pytest.mark.filterwarnings("ignore:The PyTorch API of nested tensors")
@pytest.mark.parametrize("tracer", ["fx", "export", "aten"])
def test_nested_tensor_as_value_is_refused(tracer):
    with pytest.raises(FxgradError):
        fxgrad.derive(lambda x: torch.nested.nested_tensor([x, x * 2]).sum(), (torch.randn(2, 3),), tracer=tracer)


@pytest.mark.parametrize("tracer", ["fx", "export", "aten"])
def test_sparse_values_are_refused(tracer):
    with pytest.raises(fxgrad.UnsupportedArgumentError, match="a sparse_coo tensor as a value"):
        fxgrad.derive(lambda x: x.to_sparse() * 2, (torch.randn(3, 3),), tracer=tracer)
    with pytest.raises(fxgrad.InputError, match="sparse_coo"):
        fxgrad.derive(lambda x: x * 2, (torch.randn(3, 3).to_sparse(),), tracer=tracer)
