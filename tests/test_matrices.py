"""Matrix functions beyond the op cases: the seed expression `(M¹⁰ Q Kᵀ M¹⁰)(V ⊙ W)`, powers'
sizes, and a backward's failures where torch's own linear algebra fails (a singular matrix)."""

import pytest
import torch

import fxgrad
from checks import FORBIDDEN_IN_CODE, assert_matches_autograd
from fxgrad.emit import op_counts


def seed(M, Q, K, V, W):
    return (torch.linalg.matrix_power(M, 10) @ Q @ K.mT @ torch.linalg.matrix_power(M, 10)) @ (V * W)


def seed_inputs(d=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return tuple(0.5 * torch.randn(d, d, generator=g, dtype=torch.float64) for _ in range(5))


@pytest.mark.parametrize("tracer", ["fx", "export", "aten"])
def test_seed_expression_matches_autograd(tracer):
    bwd = fxgrad.derive(seed, seed_inputs(), tracer=tracer)
    assert_matches_autograd(seed, bwd, seed_inputs())
    assert_matches_autograd(seed, bwd, seed_inputs(seed=3), seed=4)


def test_seed_expression_reads_as_matrix_calculus():
    bwd = fxgrad.derive(seed, seed_inputs())
    code = "\n".join(line for line in bwd.code.splitlines() if line.strip() and not line.strip().startswith("#"))
    for word in FORBIDDEN_IN_CODE:
        assert word not in code, f"`{word}` in the derived code:\n{bwd.code}"
    assert "torch.linalg.matrix_power(M, 10)" in code  # the forward's power, not ten products
    assert len(code.splitlines()) <= 40, bwd.code
    assert_matches_autograd(seed, bwd, seed_inputs(d=12, seed=5))  # sizes kept generic


@pytest.mark.parametrize("n", [2, 3, 10, 17, 1000])
def test_the_gradient_of_a_power_takes_logarithmically_many_products(n):
    a = torch.eye(3, dtype=torch.float64) + 0.01 * torch.randn(3, 3, dtype=torch.float64)
    bwd = fxgrad.derive(lambda a: torch.linalg.matrix_power(a, n), (a,))
    assert op_counts(bwd.graph)["backward"] <= 8 * n.bit_length()  # a squaring and a product per bit
    assert_matches_autograd(lambda a: torch.linalg.matrix_power(a, n), bwd, (a,))


@pytest.mark.parametrize("tracer", ["fx", "export"])
def test_power_zero_is_the_identity_with_no_gradient(tracer):
    def f(a):
        return torch.linalg.matrix_power(a, 0) * a

    a = torch.randn(2, 3, 3, dtype=torch.float64)
    assert_matches_autograd(f, fxgrad.derive(f, (a,), tracer=tracer), (a,))


def test_a_singular_matrix_fails_in_the_backward_as_in_torch():
    def f(a):
        return torch.linalg.inv(a).sum()

    bwd = fxgrad.derive(f, (torch.randn(3, 3, dtype=torch.float64),))
    singular = torch.ones(3, 3, dtype=torch.float64)
    with pytest.raises(torch.linalg.LinAlgError):
        f(singular)
    with pytest.raises(fxgrad.InputError, match=r"line \d+.*LinAlgError: linalg.inv: .*singular"):
        bwd(singular, torch.tensor(1.0, dtype=torch.float64))


def test_a_determinant_at_a_singular_matrix_is_refused_not_nan():
    # torch's gradient there is the cofactor matrix; the closed form det·A⁻ᵀ has no value there
    bwd = fxgrad.derive(torch.linalg.det, (torch.randn(3, 3, dtype=torch.float64),))
    with pytest.raises(fxgrad.InputError, match="LinAlgError"):
        bwd(torch.ones(3, 3, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64))


def test_a_positive_definite_example_derives_through_shape_only_values():
    # the backward is built on zero-filled stand-ins, which cholesky and solve refuse as singular
    def f(a, b):
        spd = a.mT @ a
        return torch.linalg.solve(spd, b) + torch.linalg.cholesky(spd).sum()

    a, b = torch.randn(5, 3, dtype=torch.float64), torch.randn(3, 2, dtype=torch.float64)
    assert_matches_autograd(f, fxgrad.derive(f, (a, b)), (a, b))


def test_training_through_an_inverse_at_new_sizes():
    f = fxgrad.function(lambda a: torch.linalg.inv(a).square().sum(), (torch.randn(3, 3, dtype=torch.float64),))
    for size in (3, 5):
        a = (torch.randn(size, size, dtype=torch.float64) + 3 * torch.eye(size, dtype=torch.float64)).requires_grad_()
        f(a).backward()
        expected = a.detach().clone().requires_grad_()
        torch.linalg.inv(expected).square().sum().backward()
        torch.testing.assert_close(a.grad, expected.grad)


def test_qr_modes_torch_does_not_differentiate_are_refused():
    with pytest.raises(fxgrad.UnsupportedArgumentError, match="mode='r'"):
        fxgrad.derive(lambda a: torch.linalg.qr(a, mode="r")[1], (torch.randn(4, 3, dtype=torch.float64),))
    with pytest.raises(fxgrad.UnsupportedArgumentError, match="mode='complete'"):
        fxgrad.derive(lambda a: torch.linalg.qr(a, mode="complete")[1], (torch.randn(4, 3, dtype=torch.float64),))


def test_solve_from_the_right_of_a_vector_is_refused():
    with pytest.raises(fxgrad.UnsupportedArgumentError, match="left=False"):
        fxgrad.derive(lambda a, b: torch.linalg.solve(a, b, left=False),
                      (torch.randn(3, 3, dtype=torch.float64), torch.randn(3, dtype=torch.float64)))
