"""In-place changes of fresh values: derived as torch's functionalisation does, where every
alias and view sees the new value; refused where the caller, or a value, would see otherwise."""

import pytest
import torch
from torch import nn

import fxgrad
from checks import assert_matches_autograd

TRACERS = ("fx", "export", "aten", "auto")


def read_again(x):
    y = x * 2
    y.mul_(3)
    return y + x


def alias_read_after_augmented_assignment(x):
    y = x * 1.5
    r = y
    y *= x
    return r + y


def every_augmented_assignment(x):
    y = x * 1.5
    r = y
    y += x
    y -= x.sin()
    y *= x
    y /= 2
    return r * x


def view_read_after_the_change(x):
    y = x * 1.5
    v = y[0]
    w = v.t()
    y *= 2
    return v * x + w.sum()


def read_before_the_change(x):
    y = x + 1
    before = y.sum()  # the old value, as in torch
    y += 1
    return y * before


def copies_keep_the_old_value(x):
    y = x * 2
    c = y.clone()
    d = c.float()  # (c itself)
    n = y.t().contiguous()  # a copy, y.t() being not contiguous
    s = y.contiguous()  # y itself
    y.mul_(3)
    return c + d + n.t() + s * x


def changes_a_clone_of_its_input(x):
    y = x.clone()
    y.add_(1)
    y.masked_fill_(x > 0.5, 0.0)
    return y * x


def views_of_a_clone_and_of_its_input(x):
    y = x.clone()
    v, w = x[0], y[0]  # a view of the input keeps its value; one of the clone sees the change
    y.mul_(2)
    return v * w + y.t()[:, 0]


def changes_a_view_whose_base_is_read(x):
    y = x * 2
    v = y[0]
    v *= 3  # changes y too: written back to it
    return y.sum() * v


def item_assignments(x):
    b = x * 2
    b[0, 1] = 0.
    b[1:, :-1] = x[1:, 1:]  # (a copy_ into a slice, as export records it)
    b.__setitem__((..., -1), x[:, 0])
    return b * x


def shifts_right(x):  # T5's `_shift_right`: a copy into a fresh tensor
    shifted = x.new_zeros(x.shape)
    shifted[..., 1:] = x[..., :-1].clone()
    shifted[..., 0] = 0.5
    return shifted * x


@pytest.mark.parametrize("tracer", TRACERS)
@pytest.mark.parametrize("fn", [read_again, alias_read_after_augmented_assignment, every_augmented_assignment,
                                view_read_after_the_change, read_before_the_change, copies_keep_the_old_value,
                                changes_a_clone_of_its_input, views_of_a_clone_and_of_its_input,
                                changes_a_view_whose_base_is_read, item_assignments, shifts_right])
def test_later_reads_see_the_new_value(fn, tracer):
    x = torch.randn(2, 3, dtype=torch.float64)
    assert_matches_autograd(fn, fxgrad.derive(fn, (x,), tracer=tracer), (x,))


@pytest.mark.parametrize("tracer", TRACERS)
@pytest.mark.parametrize("itself", [lambda y: y.contiguous(), lambda y: y.float()], ids=["contiguous", "float"])
def test_a_change_through_a_call_returning_the_tensor_itself_is_seen(itself, tracer):
    def f(x):
        y = x * 2
        itself(y).mul_(3)  # y.contiguous() is y
        return y * y

    x = torch.randn(3, 2, dtype=torch.float32)
    bwd = fxgrad.derive(f, (x,), tracer=tracer)
    g = torch.randn(3, 2)
    torch.testing.assert_close(bwd(x, g)[0], 72 * x * g)


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.block = nn.Sequential(nn.Tanh(), nn.Linear(3, 3))

    def forward(self, x):
        x = x * 2
        x += self.block(x)  # x is an intermediate, read by the block before it changes
        return x.sin()


@pytest.mark.parametrize("tracer", TRACERS)
def test_a_residual_added_in_place_to_an_intermediate(tracer):
    model = Residual().double()
    x = torch.randn(2, 3, dtype=torch.float64)
    g = torch.randn(2, 3, dtype=torch.float64)
    derived = fxgrad.derive(model, (x,), tracer=tracer)(x, g)
    leaf = x.clone().requires_grad_()
    expected = torch.autograd.grad(model(leaf), (leaf, *model.parameters()), g)
    for d, e in zip(derived, expected):
        torch.testing.assert_close(d, e, rtol=1e-9, atol=1e-10)


def adds_to_its_input(x):
    x += 1
    return x * 2


def scales_a_view_of_its_input(x):
    v = x[0]
    v *= 2
    return x.sum()


class CountsCalls(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(3))
        self.register_buffer("calls", torch.zeros(()))

    def forward(self, x):
        self.calls += 1
        return x * self.weight


class ScalesItsWeight(CountsCalls):
    def forward(self, x):
        self.weight.data *= 2  # (a Parameter changed in place where autograd cannot see it)
        return x * self.weight


@pytest.mark.parametrize("tracer", TRACERS)
@pytest.mark.parametrize("fn", [adds_to_its_input, scales_a_view_of_its_input, CountsCalls(), ScalesItsWeight()],
                         ids=["input", "view of an input", "buffer", "parameter"])
def test_a_change_the_caller_would_see_is_refused(fn, tracer):
    x = torch.randn(2, 3)
    example, state = x.clone(), {name: t.clone() for name, t in getattr(fn, "state_dict", dict)().items()}
    error, message = fxgrad.MutationError, "in place an input, parameter or buffer"
    if tracer == "fx" and type(fn) is CountsCalls:  # fx reads buffers as constants
        error, message = fxgrad.TraceError, "fx cannot record `add_` changing a module's tensor"
    if tracer == "export" and type(fn) is ScalesItsWeight:
        error, message = fxgrad.TraceError, "export could not trace"
    with pytest.raises(error, match=message):
        fxgrad.derive(fn, (x,), tracer=tracer)
    assert torch.equal(x, example)  # deriving changed nothing the caller holds
    for name, t in state.items():
        assert torch.equal(getattr(fn, name), t), name


def changes_a_strided_view_whose_base_is_read(x):
    y = x * 2
    v = y[:, ::2]
    v *= 3  # changes y too, through a view with a step, which is not written back
    return y.sum()


def changes_one_split_piece(x):
    y = x * 2
    a, b = y.split(1)
    y *= 3  # a and b are views of y: not made again from it
    return a * b


@pytest.mark.parametrize("tracer", TRACERS)
@pytest.mark.parametrize("fn", [changes_a_strided_view_whose_base_is_read, changes_one_split_piece])
def test_a_change_another_value_would_miss_is_refused(fn, tracer):
    with pytest.raises(fxgrad.MutationError, match="read afterwards, shares memory"):
        fxgrad.derive(fn, (torch.randn(2, 3),), tracer=tracer)


def promotes(x):
    y = x * 2
    y *= torch.ones(3, dtype=torch.float64)  # stays float32 in torch
    return y


@pytest.mark.parametrize("tracer", TRACERS)
def test_an_in_place_op_that_keeps_its_dtype_where_the_twin_promotes_is_refused(tracer):
    with pytest.raises(fxgrad.MutationError, match="float32"):
        fxgrad.derive(promotes, (torch.randn(3),), tracer=tracer)


def assigns_through_a_mask(x):
    b = x * 2
    b[b > 0] = 0.
    return b


def assigns_into_its_input(x):
    x[0] = 0.
    return x * 2


def test_item_assignment_through_a_mask_is_refused():
    with pytest.raises(fxgrad.UnsupportedArgumentError, match="index_put with a boolean mask .* at assigns_through_a_mask"):
        fxgrad.derive(assigns_through_a_mask, (torch.randn(3),), tracer="fx")


@pytest.mark.parametrize("tracer", TRACERS)
def test_item_assignment_into_an_input_is_refused(tracer):
    with pytest.raises(fxgrad.MutationError, match="in place an input"):
        fxgrad.derive(assigns_into_its_input, (torch.randn(3),), tracer=tracer)
