"""fxgrad.check: a hand-written backward against the derived one, naming what is wrong."""

import pytest
import torch
import torch.nn as nn

import fxgrad


def attn(q, k, v):  # seed 001: the onboarding lab's function
    x = torch.matmul(q, k.transpose(0, 1))
    a = torch.tanh(x)
    o = torch.matmul(a, v)
    return o, a


def attn_inputs():
    g = torch.Generator().manual_seed(0)
    return tuple(torch.randn(shape, generator=g, dtype=torch.float64) for shape in ((2, 3), (2, 3), (2, 4)))


def attn_backward(q, k, v, grad_o, grad_a):
    a = torch.tanh(q @ k.T)
    grad_x = (grad_a + grad_o @ v.T) * (1 - a ** 2)
    return grad_x @ k, grad_x.T @ q, a.T @ grad_o


def test_a_correct_backward_passes_and_is_truthy(capsys):
    result = fxgrad.check(attn, attn_backward, attn_inputs())
    assert result and result.ok and result.wrong == []
    assert "All gradients agree." in capsys.readouterr().out


def test_a_forgotten_accumulation_is_named_by_the_incoming_gradient_it_misses(capsys):
    def forgot_grad_a(q, k, v, grad_o, grad_a):
        a = torch.tanh(q @ k.T)
        grad_x = (grad_o @ v.T) * (1 - a ** 2)  # `a` is also an output: its own gradient is missing
        return grad_x @ k, grad_x.T @ q, a.T @ grad_o

    result = fxgrad.check(attn, forgot_grad_a, attn_inputs())
    assert not result
    assert result.wrong == ["grad_q", "grad_k"]
    assert [g.wrong_when for g in result.gradients] == [["grad_a"], ["grad_a"], []]
    printed = capsys.readouterr().out
    assert "grad_q  wrong" in printed and "wrong when grad_a ≠ 0" in printed and "grad_v  ok" in printed
    assert "The derived grad_q, grad_k:" in printed and "grad_q = grad_x @ k" in printed


def lin(x, w, b):
    return x @ w + b


def lin_inputs():
    return torch.randn(5, 3, dtype=torch.float64), torch.randn(3, 3, dtype=torch.float64), torch.randn(3, dtype=torch.float64)


def test_a_wrong_transpose_is_wrong_in_value_and_shows_the_derived_formula():
    def transposed(x, w, b, grad):
        return grad @ w, x.T @ grad, grad.sum(0)  # grad @ w.T is right

    result = fxgrad.check(lin, transposed, lin_inputs(), verbose=False)
    assert result.wrong == ["grad_x"]
    assert result.gradients[0].max_error > 0.1
    assert "grad_x = grad_out @ w.mT" in str(result)


def test_a_missing_broadcast_sum_is_named_as_such():
    def unsummed(x, w, b, grad):
        return grad @ w.T, x.T @ grad, grad

    result = fxgrad.check(lin, unsummed, lin_inputs(), verbose=False)
    assert result.wrong == ["grad_b"]
    assert "has shape (5, 3) where the input has (3,) (not summed over the dims it was broadcast along?)" in str(result)


def test_none_stands_for_a_zero_gradient():
    def f(x, y):
        return x * 2 + y.detach()

    def backward(x, y, grad):
        return 2 * grad, None

    assert fxgrad.check(f, backward, (torch.randn(3, dtype=torch.float64), torch.randn(3, dtype=torch.float64)),
                        verbose=False)


def test_a_backward_that_raises_or_returns_too_few_is_reported_not_raised():
    def raising(q, k, v, grad_o, grad_a):
        return grad_o @ k, None, None  # (2, 4) @ (2, 3)

    result = fxgrad.check(attn, raising, attn_inputs(), verbose=False)
    assert not result and "the hand-written backward raised" in str(result) and "mat1 and mat2" in str(result)
    result = fxgrad.check(attn, lambda q, k, v, grad_o, grad_a: (q, k), attn_inputs(), verbose=False)
    assert not result and "returned 2 gradients; the derived one returns 3" in str(result)


def test_a_module_backward_returns_the_parameters_gradients_too():
    torch.manual_seed(0)
    layer = nn.Linear(3, 2).double()

    def backward(x, grad):
        return grad @ layer.weight, grad.T @ x, grad.sum(0)

    assert fxgrad.check(layer, backward, (torch.randn(4, 3, dtype=torch.float64),), verbose=False)
    result = fxgrad.check(layer, lambda x, grad: (grad @ layer.weight, x.T @ grad, grad.sum(0)),
                          (torch.randn(4, 3, dtype=torch.float64),), verbose=False)
    assert result.wrong == ["grad_weight"] and "has shape (3, 2) where the input has (2, 3)" in str(result)


def test_float32_inputs_are_compared_at_float32_tolerances():
    q, k, v = (t.float() for t in attn_inputs())
    assert fxgrad.check(attn, attn_backward, (q, k, v), verbose=False)


def test_the_backward_must_be_a_function():
    with pytest.raises(fxgrad.InputError, match="the hand-written backward as its second argument"):
        fxgrad.check(attn, attn_inputs(), attn_inputs())


def test_draws_must_be_a_positive_count():  # no draw would compare nothing and call any backward right
    with pytest.raises(fxgrad.InputError, match="draws, the number of random draws.*got 0"):
        fxgrad.check(attn, lambda q, k, v, grad_o, grad_a: (q, k, v), attn_inputs(), draws=0)


def test_inputs_are_drawn_in_their_examples_domain():
    def f(x):
        return x.sum().sqrt()

    def forgot_the_half(x, grad):
        return (grad / x.sum().sqrt()).expand(x.shape)

    positive = torch.rand(4, dtype=torch.float64) + 0.5  # drawn from randn, x.sum() < 0 gave NaN at both
    for seed in range(8):
        assert not fxgrad.check(f, forgot_the_half, (positive,), seed=seed, verbose=False)
    assert fxgrad.check(f, lambda x, grad: (grad / (2 * x.sum().sqrt())).expand(x.shape), (positive,), verbose=False)


def test_a_gradient_with_nothing_finite_to_compare_is_not_called_right():
    def f(x):
        return x.sum().sqrt()

    result = fxgrad.check(f, lambda x, grad: (grad / x.sum().sqrt()).expand(x.shape),
                          (-torch.rand(4, dtype=torch.float64) - 1,), verbose=False)
    assert not result and result.gradients[0].checked is False
    assert "grad_x  not checked  the derived gradient is NaN or infinite everywhere at the drawn inputs" in str(result)


def test_a_nan_where_the_derived_gradient_has_none_is_a_nan_error():
    def nan_in_a_corner(q, k, v, grad_o, grad_a):
        grad_q, grad_k, grad_v = attn_backward(q, k, v, grad_o, grad_a)
        return grad_q.index_fill(0, torch.tensor([0]), float("nan")), grad_k, grad_v

    result = fxgrad.check(attn, nan_in_a_corner, attn_inputs(), verbose=False)
    assert result.wrong == ["grad_q"] and "grad_q  wrong  max error nan" in str(result)


def test_a_backward_writing_into_its_incoming_gradients_is_blamed_for_its_own_mistake():
    def f(x):
        return x.sin(), x.cos(), x * 2

    def wrong_sign_in_place(x, grad_sin, grad_cos, grad_twice):
        grad_sin.mul_(x.cos())  # writes into the gradient it is given, then forgets cos' minus
        return (grad_sin + grad_cos * x.sin() + 2 * grad_twice,)

    result = fxgrad.check(f, wrong_sign_in_place, (torch.randn(3, 4, dtype=torch.float64),), verbose=False)
    assert [g.wrong_when for g in result.gradients] == [["grad_out1"]]


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_is_compared_at_its_rounding(dtype):
    x, w = torch.randn(16, 32, dtype=torch.float64), torch.randn(32, 8, dtype=torch.float64) / 4

    def f(x, w):
        return (x @ w).tanh()

    def in_float64(x, w, grad):  # more accurate than the derived one, which rounds at each step
        y = (x.double() @ w.double()).tanh()
        grad_y = grad.double() * (1 - y * y)
        return (grad_y @ w.double().T).to(dtype), (x.double().T @ grad_y).to(dtype)

    def doubled(x, w, grad):
        grad_x, grad_w = in_float64(x, w, grad)
        return grad_x, grad_w * 2

    assert fxgrad.check(f, in_float64, (x.to(dtype), w.to(dtype)), verbose=False)
    assert fxgrad.check(f, doubled, (x.to(dtype), w.to(dtype)), verbose=False).wrong == ["grad_w"]
