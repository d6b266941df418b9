"""Values no gradient flows through are computed with anything the tracer records: options fxgrad
does not differentiate, boolean masks, constants changed in place, integer arithmetic on indices,
values computed from `x.detach()`. Each under every tracer, against torch.autograd."""

import pytest
import torch

import fxgrad
from checks import assert_matches_autograd
from fxgrad.trace import TRACERS


def floor_divided_positions(x):
    return x * torch.div(torch.arange(4.0), 2, rounding_mode="floor")


def counted_mask(x):
    mask = x > 0
    return x * mask.cumsum(0, dtype=x.dtype)


def shifted_window_mask(x):
    # torchvision's Swin Transformer: an attention mask written into a fresh tensor
    m = torch.zeros(4, 4)
    m[:2] = 1
    mask = torch.zeros(4, 4, dtype=x.dtype)
    mask[:2, 1:] = -100.0
    mask[2:] = 3.0
    return (x + m + mask).softmax(-1)


def masked_constant(x):
    c = torch.arange(6.0).to(x.dtype)
    return x * c[c > 3].sum() + c[c > 2]


def from_detached(x):
    scale = x.detach().abs().max()
    positives = x.detach()[x.detach() > 0].sum()
    return x / scale * positives + x[x.detach().argmax()]


def position_arithmetic(x):
    n = x.shape[-1]
    positions = torch.arange(n)
    return x * (positions * 2 + 1).to(x.dtype) / n + torch.sin(torch.arange(n, dtype=x.dtype) / 100 ** (positions / n))


def index_arithmetic(x):
    i = torch.arange(x.shape[0])
    j = torch.bitwise_and(i, 1) + i // 2
    return x[j] * (i & 1).to(x.dtype)[:, None] + x[i ^ 1] + x[torch.div(i, 2, rounding_mode="trunc")]


FUNCTIONS = [floor_divided_positions, counted_mask, shifted_window_mask, masked_constant, from_detached,
             position_arithmetic, index_arithmetic]
SHAPES = {floor_divided_positions: (4,), counted_mask: (5,), shifted_window_mask: (4, 4), masked_constant: (3,),
          from_detached: (5,), position_arithmetic: (3, 4), index_arithmetic: (4, 3)}


@pytest.mark.parametrize("tracer", TRACERS)
@pytest.mark.parametrize("fn", FUNCTIONS, ids=[fn.__name__ for fn in FUNCTIONS])
def test_values_without_gradient_are_computed_as_recorded(fn, tracer):
    if fn is from_detached and tracer == "aten":
        pytest.skip("make_fx cannot record a boolean mask of the inputs' values (a size that depends on them)")
    x = torch.randn(SHAPES[fn], dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    bwd = fxgrad.derive(fn, (x,), tracer=tracer)
    assert_matches_autograd(fn, bwd, (x,))


def test_a_boolean_mask_of_the_inputs_values_is_beyond_make_fx():
    with pytest.raises(fxgrad.TraceError, match="aten could not trace"):
        fxgrad.derive(from_detached, (torch.randn(5),), tracer="aten")


@pytest.mark.parametrize("tracer", TRACERS)
def test_an_option_fxgrad_does_not_differentiate_is_refused_on_the_gradients_path(tracer):
    with pytest.raises(fxgrad.UnsupportedArgumentError, match="rounding_mode='floor'.*line"):
        fxgrad.derive(lambda x: torch.div(x, 2, rounding_mode="floor").sum() + x.sum(), (torch.randn(3),),
                      tracer=tracer)
    with pytest.raises(fxgrad.UnsupportedArgumentError, match="boolean mask"):
        fxgrad.derive(lambda x: x[x > 0].sum(), (torch.randn(3),), tracer="fx" if tracer == "aten" else tracer)


def changed_after_read(x):
    m = torch.ones(3)
    before = x + m  # (add keeps no value for its backward, which autograd would find changed)
    m[1] = 5.0
    return before.tanh() + x * m


@pytest.mark.parametrize("tracer", ["export", "aten", "auto"])
def test_a_constant_changed_in_place_is_the_value_at_that_point(tracer):
    x = torch.randn(3, dtype=torch.float64)
    bwd = fxgrad.derive(changed_after_read, (x,), tracer=tracer)
    assert_matches_autograd(changed_after_read, bwd, (x,))


def test_fx_refuses_a_constant_changed_after_it_read_it():
    # fx keeps the tensor itself as the constant: both reads would see 5 at [1]
    with pytest.raises(fxgrad.TraceError, match="keeps as a constant"):
        fxgrad.derive(changed_after_read, (torch.randn(3),), tracer="fx")


def test_a_bool_mask_counted_as_floats_keeps_sizes_generic():
    bwd = fxgrad.derive(counted_mask, (torch.randn(5, dtype=torch.float64),), tracer="fx")
    assert_matches_autograd(counted_mask, bwd, (torch.randn(9, dtype=torch.float64),))
    assert "cumsum" in bwd.code
