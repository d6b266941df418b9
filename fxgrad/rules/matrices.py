"""Matrix functions, as in a matrix-calculus text: for Y = f(A) with incoming gradient G, the
gradient of A is the adjoint of the differential dY = Df(A)[dA]. All act on the last two dims,
a batch before them; the formulas are those of torch's autograd (`FunctionsManual.cpp`), for
real matrices.
"""

import string

import torch

from ..graph import value
from . import rule


def _scaled(scalar, matrix):
    """A batch of numbers times a batch of matrices: each number scales its matrix."""
    return scalar.unsqueeze(-1).unsqueeze(-1) * matrix


def _identity_for(vector):
    """The identity matrix of a vector's size (its dtype and device)."""
    return torch.eye(vector.size(-1), dtype=vector.dtype, device=vector.device)


def _power_and_gradient(B, G, n: int):
    """(Bⁿ, Σₖ Bᵏ G Bⁿ⁻¹⁻ᵏ for k < n), by the squarings and multiplications that compute Bⁿ:
    the sum for a + b factors is (that of a)·Bᵇ + Bᵃ·(that of b), so the gradient of a power
    takes O(log n) products, each reusing the powers already made."""
    if n == 1:
        return B, G
    if n % 2:
        power, gradient = _power_and_gradient(B, G, n - 1)
        return power @ B, gradient @ B + power @ G
    power, gradient = _power_and_gradient(B, G, n // 2)
    return power @ power, gradient @ power + power @ gradient


@rule(torch.linalg.matrix_power, math="Y = Aⁿ: ∂A = Σₖ (Aᵀ)ᵏ ∂Y (Aᵀ)ⁿ⁻¹⁻ᵏ")
def matrix_power(g, input, n):
    # d Aⁿ = Σₖ Aᵏ dA Aⁿ⁻¹⁻ᵏ, so ∂A = Σₖ (Aᵀ)ᵏ G (Aᵀ)ⁿ⁻¹⁻ᵏ (n = 0: the identity, no gradient)
    return None if n == 0 else _power_and_gradient(input.mT, g, n)[1]


@rule(torch.linalg.inv, math="Y = A⁻¹: ∂A = −Yᵀ ∂Y Yᵀ")
def inv(g, input, *, out):
    # d A⁻¹ = -A⁻¹ dA A⁻¹: ∂A = -A⁻ᵀ G A⁻ᵀ
    return -(out.mT @ g @ out.mT)


@rule(torch.linalg.det, math="y = det A: ∂A = ∂y y A⁻ᵀ")
def det(g, input, *, out):
    # d det A = det A · tr(A⁻¹ dA): ∂A = G det A · A⁻ᵀ (a singular A fails at the inverse, where
    # torch gives the cofactors)
    return _scaled(g * out, torch.linalg.inv(input).mT)


@rule(torch.linalg.slogdet, math="(s, y) = slogdet A: ∂A = ∂y A⁻ᵀ (the sign has none)")
def slogdet(g, input):
    # d log|det A| = tr(A⁻¹ dA): ∂A = G A⁻ᵀ; the sign is piecewise constant, with no gradient
    _, g_logabsdet = g
    return None if g_logabsdet is None else _scaled(g_logabsdet, torch.linalg.inv(input).mT)


@rule(torch.linalg.solve, math="X = A⁻¹ B: ∂B = A⁻ᵀ ∂X, ∂A = −∂B Xᵀ")
def solve(g, A, B, *, out):
    # X = A⁻¹B: ∂B = A⁻ᵀ G, ∂A = -∂B Xᵀ
    grad_B = torch.linalg.solve(A.mT, g)
    return -(grad_B @ out.mT), grad_B


@rule(torch.linalg.cholesky, math="L = chol(A): ∂A = L⁻ᵀ Φ(Lᵀ ∂L) L⁻¹ symmetrised, Φ the lower triangle with half its diagonal")
def cholesky(g, input, upper, *, out):
    # A = L Lᵀ: ∂A = L⁻ᵀ Φ(Lᵀ G) L⁻¹ with Φ the lower triangle, its diagonal halved, made
    # symmetric (Murray, 2016; torch's cholesky_backward)
    L, g = (out.mT, g.mT) if upper else (out, g)
    phi = (L.mT @ g).tril()
    phi = 0.5 * (phi + phi.tril(-1).mT)
    grad = torch.linalg.solve_triangular(L.mT, phi, upper=True)
    return torch.linalg.solve_triangular(L, grad, upper=False, left=False)


@rule(torch.linalg.solve_triangular, math="X = A⁻¹ B, A triangular: ∂B = A⁻ᵀ ∂X, ∂A = tri(−∂B Xᵀ)")
def solve_triangular(g, A, B, upper, left, unitriangular, *, out):
    # X = A⁻¹B (left) or B A⁻¹: ∂B = A⁻ᵀ G (or G A⁻ᵀ), ∂A = -∂B Xᵀ (or -Xᵀ ∂B) on A's triangle,
    # without its diagonal where A is taken as unitriangular
    grad_B = torch.linalg.solve_triangular(A.mT, g, upper=not upper, left=left, unitriangular=unitriangular)
    grad_A = -(grad_B @ out.mT) if left else -(out.mT @ grad_B)
    return grad_A.triu(int(unitriangular)) if upper else grad_A.tril(-int(unitriangular)), grad_B


@rule(torch.linalg.eigh, math="A = V diag(λ) Vᵀ: ∂A = V (diag(∂λ) + F ⊙ (Vᵀ ∂V)) Vᵀ, Fᵢⱼ = 1/(λⱼ − λᵢ)")
def eigh(g, input, UPLO, *, out):
    # A = Q diag(λ) Qᵀ: ∂A = Q (diag(∂λ) + skew(Qᵀ ∂Q) / E) Qᵀ, E_ij = λⱼ - λᵢ (1 on the diagonal,
    # where the skew part is 0); repeated eigenvalues divide by zero, as in torch
    g_values, g_vectors = g
    values, vectors = out[0], out[1]
    if g_vectors is None:  # the eigenvalues alone
        return (vectors * g_values.unsqueeze(-2)) @ vectors.mT
    projected = vectors.mT @ g_vectors
    gaps = values.unsqueeze(-2) - values.unsqueeze(-1) + _identity_for(values)
    inner = 0.5 * (projected - projected.mT) / gaps
    if g_values is not None:
        inner = inner + torch.diag_embed(g_values)
    return vectors @ inner @ vectors.mT


@rule(torch.linalg.svdvals, math="σ = svdvals A: ∂A = U diag(∂σ) Vᵀ")
def svdvals(g, input):
    # dσᵢ = uᵢᵀ dA vᵢ: ∂A = U diag(∂σ) Vᵀ
    U, _, Vh = torch.linalg.svd(input, full_matrices=False)
    return (U * g.unsqueeze(-2)) @ Vh


@rule(torch.linalg.svd, math="A = U diag(σ) Vᵀ: ∂A = U (diag(∂σ) + the skew terms of ∂U, ∂V) Vᵀ, as torch's svd_backward")
def svd(g, input, full_matrices, *, out):
    # A = U S Vᵀ (reduced): ∂A = U [skew(Uᵀ∂U)/E · S + S · skew(Vᵀ∂V)/E + diag(∂S)] Vᵀ, with
    # E_jk = σₖ² - σⱼ² (1 on the diagonal), plus (I - UUᵀ) ∂U S⁻¹ Vᵀ for a tall A and
    # U S⁻¹ ∂Vᵀ (I - VVᵀ) for a wide one (torch's svd_backward)
    g_U, g_S, g_Vh = g
    U, S, Vh = out[0], out[1], out[2]
    if full_matrices:  # as torch: the reduced SVD's gradient, of the vectors that pair with singular values
        k = S.size(-1)
        U, Vh = U[..., :k], Vh[..., :k, :]
        g_U = None if g_U is None else g_U[..., :k]
        g_Vh = None if g_Vh is None else g_Vh[..., :k, :]
    if g_U is None and g_Vh is None:
        return (U * g_S.unsqueeze(-2)) @ Vh
    S2 = S * S
    gaps = S2.unsqueeze(-2) - S2.unsqueeze(-1) + _identity_for(S)
    inner = 0.0
    if g_U is not None:
        UgU = U.mT @ g_U
        inner = (UgU - UgU.mT) * S.unsqueeze(-2) / gaps
    if g_Vh is not None:
        VgV = Vh @ g_Vh.mT
        inner = inner + S.unsqueeze(-1) * (VgV - VgV.mT) / gaps
    if g_S is not None:
        inner = inner + torch.diag_embed(g_S)
    grad = U @ inner @ Vh
    # (what U and V leave out: nothing for a square A, up to rounding, and one of them for any A,
    # which need not keep its shape's kind at other sizes)
    if g_U is not None:
        g_U_scaled = g_U / S.unsqueeze(-2)
        grad = grad + (g_U_scaled - U @ (U.mT @ g_U_scaled)) @ Vh
    if g_Vh is not None:
        g_Vh_scaled = g_Vh / S.unsqueeze(-1)
        grad = grad + U @ (g_Vh_scaled - (g_Vh_scaled @ Vh.mT) @ Vh)
    return grad


@rule(torch.linalg.pinv, math="Y = A⁺: ∂A = −Yᵀ ∂Y Yᵀ + (I − A Y) ∂Yᵀ Y Yᵀ + Yᵀ Y ∂Yᵀ (I − Y A)")
def pinv(g, input, atol, rtol, hermitian, *, out):
    # A⁺ of a matrix of constant rank (torch's pinv_backward): the products grouped to keep the
    # smaller of A's dims inside
    m, n = value(input).shape[-2:]
    gh = g.mT
    if m <= n:
        K = gh @ out
        K_pinv = K @ out.mT
        return -(out @ K).mT + K_pinv - (input @ out) @ K_pinv + (out.mT @ out) @ (gh - K @ input)
    K = out @ gh
    pinv_K = out.mT @ K
    return -(K @ out).mT + (gh - input @ K) @ out @ out.mT + pinv_K - pinv_K @ out @ input


@rule(torch.linalg.qr, math="A = Q R: ∂A = (∂Q + Q copyltu(M)) R⁻ᵀ, M = R ∂Rᵀ − ∂Qᵀ Q")
def qr(g, input, *, out):
    # A = QR (reduced). For m ≥ n: ∂A = [∂Q + Q copyltu(M)] R⁻ᵀ with M = R ∂Rᵀ - ∂Qᵀ Q, copyltu(M)
    # the symmetric matrix of its lower triangle (torch's linalg_qr_backward). For m < n,
    # A = [X | Y] with X square: X = Q U is that case, and Y = Q V adds Y ∂Vᵀ to ∂Q, ∂Y = Q ∂V.
    g_Q, g_R = g
    Q, R = out[0], out[1]
    m, n = value(input).shape[-2:]
    if m >= n:
        return _qr_tall(g_Q, g_R, Q, R)
    k = Q.size(-1)  # (m, read at run time)
    g_U, g_V = (None, None) if g_R is None else (g_R[..., :k], g_R[..., k:])
    if g_V is not None:
        from_Y = input[..., k:] @ g_V.mT
        g_Q = from_Y if g_Q is None else g_Q + from_Y
    grad_X = _qr_tall(g_Q, g_U, Q, R[..., :k])
    return grad_X if g_V is None else torch.cat((grad_X, Q @ g_V), -1)


def _qr_tall(g_Q, g_R, Q, R):
    if g_R is None:
        Mt = -(Q.mT @ g_Q)
    else:
        Mt = g_R @ R.mT if g_Q is None else g_R @ R.mT - Q.mT @ g_Q
    grad = Q @ (Mt.triu() + Mt.triu(1).mT)
    if g_Q is not None:
        grad = grad + g_Q
    return torch.linalg.solve_triangular(R.mT, grad, upper=False, left=False)


@rule(torch.trace, math="y = tr A: ∂A = ∂y I")
def trace(g, input):
    # d tr A = tr dA: ∂A = G I
    return g * torch.eye(input.size(0), input.size(1), dtype=input.dtype, device=input.device)


@rule(torch.diag_embed, math="Y = diag(x): ∂x = diagonal(∂Y)")
def diag_embed(g, input, offset, dim1, dim2):
    # the diagonal the input was written onto
    return g.diagonal(offset, dim1, dim2)


@rule(torch.kron, math="Y = A ⊗ B: ∂A = Σ over B's blocks of ∂Y ⊙ B, ∂B = Σ over A's entries of ∂Y ⊙ A")
def kron(g, input, other):
    # (A ⊗ B)[(i, j), (k, l)] = A[i, k] B[j, l], in every dim: G read with each dim split in two,
    # (A's index, B's index), contracted with the other factor
    ndim = value(input).ndim
    split = g.reshape(*(size for d in range(ndim) for size in (input.size(d), other.size(d))))
    a, b = string.ascii_lowercase[:ndim], string.ascii_uppercase[:ndim]
    g_labels = "".join(i + j for i, j in zip(a, b))
    return torch.einsum(f"{g_labels},{b}->{a}", split, other), torch.einsum(f"{g_labels},{a}->{b}", split, input)


@rule(torch.linalg.cross, math="y = a × b: ∂a = b × ∂y, ∂b = ∂y × a")
def cross(g, input, other, dim):
    # ⟨G, dA × B⟩ = ⟨dA, B × G⟩ and ⟨G, A × dB⟩ = ⟨dB, G × A⟩
    return torch.linalg.cross(other, g, dim=dim), torch.linalg.cross(g, input, dim=dim)
