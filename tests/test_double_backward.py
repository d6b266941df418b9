"""Double backward: a function that differentiates itself (`torch.autograd.grad(...,
create_graph=True)`, a gradient penalty) is traced by make_fx, whose graph holds ATen's backward
ops; each is lowered as fxgrad's backward of its forward op, and derived again, against
autograd's double backward in float64."""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import fxgrad
from checks import assert_closed_form, assert_matches_autograd

DOUBLE = torch.float64


def gradient_penalty(model):
    """‖∂ loss / ∂x‖²: the gradient of the input's gradient, as a WGAN-GP critic takes it."""
    def penalty(x, *params):
        grad, = torch.autograd.grad(model(x, *params).sum(), x, create_graph=True)
        return (grad ** 2).sum()

    return penalty


def _inputs(*shapes, seed=0):
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(shape, generator=g, dtype=DOUBLE).requires_grad_() for shape in shapes)


MODELS = [
    ("convolution weight", lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1).tanh(), [(2, 3, 6, 5), (4, 3, 3, 3),
                                                                                            (4,)]),
    ("transposed convolution", lambda x, w: F.conv_transpose2d(x, w, stride=2, padding=1, output_padding=1).tanh(),
     [(2, 3, 4, 4), (3, 2, 3, 3)]),
    ("layer norm", lambda x, w, b: F.layer_norm(x, (5,), w, b).sigmoid(), [(2, 3, 5), (5,), (5,)]),
    ("layer norm, no affine", lambda x: F.layer_norm(x, (3, 5)).sin(), [(2, 3, 5)]),
    ("group norm", lambda x, w, b: F.group_norm(x, 2, w, b).sigmoid(), [(2, 4, 3, 3), (4,), (4,)]),
    ("average pooling", lambda x: F.avg_pool2d(x.tanh(), 3, 2, 1, count_include_pad=False).sin(), [(2, 3, 7, 6)]),
    ("adaptive average pooling", lambda x: F.adaptive_avg_pool2d(x.tanh(), (3, 2)).sin(), [(2, 3, 7, 6)]),
    # their gradients with respect to the incoming gradient scatter-add it back (max pooling's to
    # the picked elements, embedding's to the rows looked up)
    ("max pooling", lambda x: F.max_pool2d(x.tanh(), 2).sin(), [(2, 3, 6, 6)]),
    ("embedding", lambda w: F.embedding(torch.tensor([[0, 2, 1], [2, 2, 3]]), w).tanh(), [(4, 3)]),
]


@pytest.mark.parametrize("name, model, shapes", MODELS, ids=[m[0] for m in MODELS])
def test_gradient_penalty_matches_autograd(name, model, shapes):
    penalty = gradient_penalty(model)
    inputs = _inputs(*shapes)
    bwd = fxgrad.derive(penalty, inputs)
    assert_closed_form(bwd)
    assert_matches_autograd(penalty, bwd, inputs)
    assert_matches_autograd(penalty, bwd, _inputs(*shapes, seed=3), seed=4)


class Critic(nn.Module):
    """A conv net's gradient penalty, differentiated with respect to the input and the parameters."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.Tanh(), nn.Conv2d(4, 2, 3),
                                 nn.Softplus(), nn.Flatten(), nn.Linear(2, 1))

    def forward(self, x):
        grad, = torch.autograd.grad(self.net(x).sum(), x, create_graph=True)
        return (grad ** 2).sum()


def test_conv_net_gradient_penalty_matches_autograd_for_input_and_parameters():
    critic = Critic().to(DOUBLE)
    x, = _inputs((2, 3, 6, 6))
    bwd = fxgrad.derive(critic, (x,))
    assert_closed_form(bwd)
    expected = torch.autograd.grad(critic(x), [x, *critic.parameters()], allow_unused=True, materialize_grads=True)
    derived = bwd(x, torch.tensor(1.0, dtype=DOUBLE))
    assert len(derived) == len(expected)
    for d, e in zip(derived, expected):
        torch.testing.assert_close(d, e, rtol=1e-9, atol=1e-10)


def test_a_gradient_without_create_graph_is_a_constant():
    def f(x):
        grad, = torch.autograd.grad(x.tanh().sum(), x)  # no graph: autograd differentiates it no further
        return (grad ** 2).sum() + (x * grad).sum()

    x, = _inputs((3, 4))
    assert_matches_autograd(f, fxgrad.derive(f, (x,)), (x,))


def test_a_detach_of_the_user_stops_the_gradient_inside_a_penalty():
    def f(x):
        grad, = torch.autograd.grad((x.tanh() * x.detach().exp()).sum(), x, create_graph=True)
        return (grad * x.detach()).sum()

    x, = _inputs((3, 4))
    assert_matches_autograd(f, fxgrad.derive(f, (x,)), (x,))


def test_backward_inside_the_function_is_refused():
    def f(x):
        x.tanh().sum().backward(create_graph=True)
        return x.grad.sum()

    with pytest.raises(fxgrad.TraceError, match=r"accumulates gradients into `\.grad`"):
        fxgrad.derive(f, _inputs((3,)))


def test_fx_says_it_cannot_record_autograd_grad():
    with pytest.raises(fxgrad.TraceError, match=r"fx cannot record `torch.autograd.grad`.*make_fx"):
        fxgrad.derive(gradient_penalty(torch.tanh), _inputs((3,)), tracer="fx")
