"""Matrix functions: powers, the inverse, determinants, solves, and the factorisations (Cholesky,
symmetric eigendecomposition, SVD, QR, the pseudo-inverse), each one canonical op acting on the
last two dims (a batch of matrices before them), with a closed-form backward (`rules/matrices.py`);
and the matrix norms, trace, diagonal matrices and the products of linear algebra (Kronecker,
cross, outer, tensordot), whose torch decompositions write the example sizes into the graph.

torch checks the values of some of these (a singular matrix in `inv` or `solve`, one not
positive-definite in `cholesky`) and raises `torch.linalg.LinAlgError`; the canonical ops are
torch's own, so the recomputed forward raises as the user's function does. ATen's `_ex` forms
return an `info` beside the value, which make_fx then checks (`aten._linalg_check_errors`):
their lowerings give the checking op, whose value needs no check.
"""

import math
import string

import torch

from ..graph import value
from .pieces import item
from .reduction import vector_norm
from .registry import aten, call, define, emit, is_constant, lowers, static_dim, unsupported_argument


def _write_options(fn, defaults: dict):
    """A writer `fn(*tensors, **options)` leaving out the options at their defaults."""
    def write(*args):
        tensors, options = args[:len(args) - len(defaults)], args[len(args) - len(defaults):]
        given_options = {name: option for (name, default), option in zip(defaults.items(), options)
                         if not is_constant(option, default)}
        return call(fn, *tensors, **given_options)

    return write


define({
    # n ≥ 0 (a negative power is a power of the inverse)
    torch.linalg.matrix_power: lambda input, n: torch.linalg.matrix_power(input, n),
    torch.linalg.inv: lambda input: torch.linalg.inv(input),
    torch.linalg.det: lambda input: torch.linalg.det(input),
    # (sign, logabsdet)
    torch.linalg.slogdet: lambda input: torch.linalg.slogdet(input),
    # B: a matrix or a batch of them (a vector right-hand side is made a column by the lowering)
    torch.linalg.solve: lambda A, B: torch.linalg.solve(A, B),
    torch.linalg.cholesky: _write_options(torch.linalg.cholesky, {"upper": False}),
    torch.linalg.solve_triangular: lambda A, B, upper, left, unitriangular: call(
        torch.linalg.solve_triangular, A, B, upper=upper, **({} if left else {"left": False}),
        **({"unitriangular": True} if unitriangular else {})),
    # (eigenvalues, eigenvectors) of a symmetric matrix, read from its lower (UPLO "L") or upper triangle
    torch.linalg.eigh: _write_options(torch.linalg.eigh, {"UPLO": "L"}),
    # (U, S, Vh)
    torch.linalg.svd: lambda input, full_matrices: torch.linalg.svd(input, full_matrices=full_matrices),
    torch.linalg.svdvals: lambda input: torch.linalg.svdvals(input),
    torch.linalg.pinv: _write_options(torch.linalg.pinv, {"atol": None, "rtol": None, "hermitian": False}),
    # (Q, R), reduced
    torch.linalg.qr: lambda input: torch.linalg.qr(input),
    torch.trace: lambda input: torch.trace(input),
    torch.diag_embed: _write_options(torch.diag_embed, {"offset": 0, "dim1": -2, "dim2": -1}),
    # both of one rank (torch pads the smaller one's shape with leading 1s)
    torch.kron: lambda input, other: torch.kron(input, other),
    torch.linalg.cross: _write_options(torch.linalg.cross, {"dim": -1}),
})


def _check_errors(info, api_name, *, is_matrix):
    """make_fx's check of an `_ex` op's info: the canonical op raises itself on what it checks."""
    return None


lowers(aten._linalg_check_errors)(_check_errors)


def _field(index: int):
    """A named result of a factorisation (`torch.linalg.eigh(a).eigenvalues`): one of its values."""
    def lowering(values):
        if isinstance(values, tuple):  # a lowering's tuple (`triangular_solve`)
            return values[index]
        return emit(item, values, index) if isinstance(value(values), tuple) else NotImplemented

    return lowering


for index, fields in enumerate([("eigenvalues", "U", "Q", "solution"), ("eigenvectors", "S", "R", "logabsdet",
                                                                        "cloned_coefficient"), ("Vh",)]):
    for field in fields:
        lowers(f"Tensor.{field}")(_field(index))


@lowers(torch.linalg.matrix_power, torch.matrix_power, "Tensor.matrix_power", aten.linalg_matrix_power,
        aten.matrix_power)
def _matrix_power(input, n):
    n = static_dim(n)
    if n < 0:  # A⁻ⁿ = (A⁻¹)ⁿ, as torch computes it
        input, n = emit(torch.linalg.inv, input), -n
    return input if n == 1 else emit(torch.linalg.matrix_power, input, n)


@lowers(torch.linalg.inv, torch.inverse, "Tensor.inverse", aten.linalg_inv, aten.inverse)
def _inv(input):
    return emit(torch.linalg.inv, input)


@lowers(aten.linalg_inv_ex)
def _inv_ex(input, *, check_errors=False):
    return emit(torch.linalg.inv, input), None


@lowers(torch.linalg.det, torch.det, "Tensor.det", aten.linalg_det, aten.det)
def _det(input):
    return emit(torch.linalg.det, input)


@lowers(aten._linalg_det)
def _det_with_lu(input):
    return emit(torch.linalg.det, input), None, None


@lowers(torch.linalg.slogdet, torch.slogdet, "Tensor.slogdet", aten.linalg_slogdet, aten.slogdet)
def _slogdet(input):
    return emit(torch.linalg.slogdet, input)


@lowers(aten._linalg_slogdet)
def _slogdet_with_lu(input):
    sign_and_logabsdet = _slogdet(input)
    return emit(item, sign_and_logabsdet, 0), emit(item, sign_and_logabsdet, 1), None, None


@lowers(torch.logdet, "Tensor.logdet", aten.logdet)
def _logdet(input):
    # as torch defines it: log|det A|, NaN where det A < 0
    sign_and_logabsdet = _slogdet(input)
    sign, logabsdet = emit(item, sign_and_logabsdet, 0), emit(item, sign_and_logabsdet, 1)
    return emit(torch.where, sign == -1, float("nan"), logabsdet)


def _is_vector_rhs(A, B) -> bool:
    """Whether `solve` takes B as a vector (or a batch of them), as torch decides it."""
    a, b = value(A), value(B)
    return b.ndim == 1 or (b.ndim == a.ndim - 1 and b.shape == a.shape[:-1])


@lowers(torch.linalg.solve, aten.linalg_solve)
def _solve(A, B, *, left=True):
    if _is_vector_rhs(A, B):
        if not left:
            unsupported_argument("linalg.solve(left=False) with a vector right-hand side")
        return emit(torch.squeeze, emit(torch.linalg.solve, A, emit(torch.unsqueeze, B, -1)), -1)
    if not left:  # X A = B: Aᵀ Xᵀ = Bᵀ
        return emit(torch.transpose, emit(torch.linalg.solve, emit(torch.transpose, A, -2, -1),
                                          emit(torch.transpose, B, -2, -1)), -2, -1)
    return emit(torch.linalg.solve, A, B)


@lowers(aten._linalg_solve_ex)
def _solve_ex(A, B, *, left=True, check_errors=False):
    return _solve(A, B, left=left), None, None, None


@lowers(torch.linalg.cholesky, aten.linalg_cholesky)
def _cholesky(input, *, upper=False):
    return emit(torch.linalg.cholesky, input, upper)


@lowers(torch.cholesky, "Tensor.cholesky", aten.cholesky)
def _cholesky_positional(input, upper=False):
    return emit(torch.linalg.cholesky, input, upper)


@lowers(aten.linalg_cholesky_ex)
def _cholesky_ex(input, *, upper=False, check_errors=False):
    return emit(torch.linalg.cholesky, input, upper), None


@lowers(torch.linalg.solve_triangular, aten.linalg_solve_triangular)
def _solve_triangular(A, B, *, upper, left=True, unitriangular=False):
    return emit(torch.linalg.solve_triangular, A, B, upper, left, unitriangular)


@lowers(torch.triangular_solve, "Tensor.triangular_solve", aten.triangular_solve)
def _triangular_solve(b, A, upper=True, transpose=False, unitriangular=False):
    # (the solution of A X = b, or of Aᵀ X = b, and a copy of A)
    coefficient = emit(torch.transpose, A, -2, -1) if transpose else A
    solution = emit(torch.linalg.solve_triangular, coefficient, b, upper != transpose, True, unitriangular)
    if value(A).shape[:-2] == value(solution).shape[:-2]:
        return solution, A
    # torch's copy of A has the batch dims that b broadcast it to
    return solution, emit(torch.Tensor.expand, A, solution.shape[:-2] + A.shape[-2:])


@lowers(torch.linalg.eigh, aten.linalg_eigh)
def _eigh(input, UPLO="L"):
    return emit(torch.linalg.eigh, input, UPLO)


@lowers(torch.linalg.eigvalsh, aten.linalg_eigvalsh)
def _eigvalsh(input, UPLO="L"):
    return emit(item, _eigh(input, UPLO), 0)


@lowers(aten._linalg_eigh)
def _eigh_aten(input, UPLO="L", compute_v=True):
    eigh = _eigh(input, UPLO)
    return eigh if compute_v else (emit(item, eigh, 0), None)


@lowers(torch.linalg.svd, aten.linalg_svd)
def _svd(input, full_matrices=True, *, driver=None):
    # (the driver picks a LAPACK routine on CUDA; the values are the same)
    return emit(torch.linalg.svd, input, full_matrices and value(input).shape[-2] != value(input).shape[-1])


@lowers(torch.linalg.svdvals, aten.linalg_svdvals)
def _svdvals(input, *, driver=None):
    return emit(torch.linalg.svdvals, input)


@lowers(aten._linalg_svd)
def _svd_aten(input, full_matrices=False, compute_uv=True, *, driver=None):
    return _svd(input, full_matrices) if compute_uv else (None, _svdvals(input), None)


@lowers(torch.linalg.pinv)
def _pinv(input, rcond=None, hermitian=False, *, atol=None, rtol=None):
    if rcond is not None:  # (torch's older name for rtol, with no atol)
        atol, rtol = 0.0, rcond
    return emit(torch.linalg.pinv, input, atol, rtol, hermitian)


@lowers(torch.pinverse, "Tensor.pinverse", aten.pinverse)
def _pinverse(input, rcond=1e-15):
    return _pinv(input, rcond)


@lowers(aten.linalg_pinv)
def _pinv_aten(input, *args, **kwargs):
    if args and not isinstance(args[0], bool):  # linalg_pinv(A, rcond, hermitian)
        return _pinv(input, *args)
    return _pinv(input, None, *args, **kwargs)


@lowers(torch.linalg.qr, aten.linalg_qr)
def _qr(input, mode="reduced"):
    m, n = value(input).shape[-2:]
    if mode == "r" or (mode == "complete" and m > n):  # (torch does not differentiate them)  # (complete with m ≤ n is the reduced one)
        unsupported_argument(f"linalg.qr(mode={mode!r}) (only 'reduced', whose derivative torch defines)")
    return emit(torch.linalg.qr, input)



@lowers(torch.trace, "Tensor.trace", aten.trace)
def _trace(input):
    return emit(torch.trace, input)


@lowers(torch.diag_embed, "Tensor.diag_embed", aten.diag_embed)
def _diag_embed(input, offset=0, dim1=-2, dim2=-1):
    ndim = value(input).ndim + 1
    dim1, dim2 = static_dim(dim1), static_dim(dim2)
    # dims counted from the end where the default's are, so that `-2, -1` is written as the default
    return emit(torch.diag_embed, input, static_dim(offset), dim1 % ndim - ndim, dim2 % ndim - ndim)


@lowers(torch.diag, "Tensor.diag", aten.diag)
def _diag(input, diagonal=0):
    if value(input).ndim == 2:  # a matrix's diagonal
        return emit(torch.diagonal, input, static_dim(diagonal), -2, -1)
    return emit(torch.diag_embed, input, static_dim(diagonal), -2, -1)


@lowers(torch.kron, "Tensor.kron", aten.kron)
def _kron(input, other):
    while value(input).ndim < value(other).ndim:
        input = emit(torch.unsqueeze, input, 0)
    while value(other).ndim < value(input).ndim:
        other = emit(torch.unsqueeze, other, 0)
    return emit(torch.kron, input, other)


@lowers(torch.linalg.cross, aten.linalg_cross)
def _linalg_cross(input, other, *, dim=-1):
    ndim = max(value(input).ndim, value(other).ndim)
    return emit(torch.linalg.cross, input, other, static_dim(dim) % ndim - ndim)


@lowers(torch.cross, "Tensor.cross", aten.cross)
def _cross(input, other, dim=None):
    if dim is None:  # torch's default: the first dim of size 3
        shape = torch.broadcast_shapes(value(input).shape, value(other).shape)
        dim = next(d for d, size in enumerate(shape) if size == 3)
    return _linalg_cross(input, other, dim=dim)


@lowers(torch.outer, "Tensor.outer", torch.ger, "Tensor.ger", aten.outer, aten.ger)
def _outer(input, vec2):
    return emit(torch.mul, emit(torch.unsqueeze, input, -1), vec2)


@lowers(aten.tensordot)
def _tensordot_aten(a, b, dims_self, dims_other):
    return _tensordot(a, b, (dims_self, dims_other))


@lowers(torch.tensordot)
def _tensordot(a, b, dims=2, out=None):
    # as an einsum: the contracted dims share labels, the others are the result's, in order
    dims = static_dim(dims)
    a_ndim, b_ndim = value(a).ndim, value(b).ndim
    if isinstance(dims, int):
        dims = (tuple(range(a_ndim - dims, a_ndim)), tuple(range(dims)))
    a_dims, b_dims = ([d % n for d in (ds if isinstance(ds, (tuple, list)) else (ds,))]
                      for ds, n in zip(dims, (a_ndim, b_ndim)))
    letters = iter(string.ascii_letters)
    a_labels = [next(letters) for _ in range(a_ndim)]
    b_labels = [next(letters) for _ in range(b_ndim)]
    for a_dim, b_dim in zip(a_dims, b_dims):
        b_labels[b_dim] = a_labels[a_dim]
    out_labels = ([label for d, label in enumerate(a_labels) if d not in a_dims]
                  + [label for d, label in enumerate(b_labels) if d not in b_dims])
    return emit(torch.einsum, f"{''.join(a_labels)},{''.join(b_labels)}->{''.join(out_labels)}", a, b)


def matrix_norm(input, ord="fro", dim=(-2, -1), keepdim=False, *, dtype=None):
    """The matrix norms: Frobenius (the 2-norm of the elements), nuclear and spectral (the sum
    and the largest of the singular values), and the largest (or smallest) column (1) or row (∞)
    sum of absolute values."""
    if dtype is not None:
        unsupported_argument("matrix_norm(dtype=...)")
    ndim = value(input).ndim
    rows, columns = (static_dim(d) % ndim for d in dim)
    if ord == "fro":
        return vector_norm(input, 2, (rows, columns), keepdim)
    if ord in ("nuc", 2, -2):
        if (rows, columns) != (ndim - 2, ndim - 1):  # the matrices' dims last, as svdvals takes them
            input = emit(torch.permute, input, (*(d for d in range(ndim) if d not in (rows, columns)), rows, columns))
        singular_values = emit(torch.linalg.svdvals, input)
        norm = (emit(torch.sum, singular_values, -1, False) if ord == "nuc"
                else emit(torch.amax if ord == 2 else torch.amin, singular_values, -1, False))
        for d in sorted((rows, columns)) if keepdim else ():
            norm = emit(torch.unsqueeze, norm, d)
        return norm
    if ord not in (1, -1, math.inf, -math.inf):
        unsupported_argument(f"matrix_norm(ord={ord!r})")
    summed, extreme = (rows, columns) if ord in (1, -1) else (columns, rows)  # column sums for 1, rows for ∞
    sums = emit(torch.sum, emit(torch.abs, input), summed, True)
    norm = emit(torch.amax if ord > 0 else torch.amin, sums, extreme, True)
    return norm if keepdim else emit(torch.squeeze, norm, tuple(sorted((rows, columns))))


lowers(torch.linalg.matrix_norm, aten.linalg_matrix_norm)(matrix_norm)


@lowers(torch.linalg.norm, aten.linalg_norm)
def _linalg_norm(input, ord=None, dim=None, keepdim=False, *, dtype=None):
    # a matrix norm for a string ord, or a number with two dims (given, or a matrix's); else a vector norm
    dims = static_dim(dim)
    if isinstance(ord, str) or (ord is not None and (len(dims) == 2 if isinstance(dims, tuple)
                                                     else dims is None and value(input).ndim == 2)):
        return matrix_norm(input, ord, (-2, -1) if dims is None else dims, keepdim, dtype=dtype)
    return vector_norm(input, 2 if ord is None else ord, dims, keepdim, dtype=dtype)


@lowers(torch.norm, "Tensor.norm")
def _norm(input, p="fro", dim=None, keepdim=False, dtype=None, *, out=None):
    # torch.norm: "fro" (and None) the 2-norm over `dim`, "nuc" the nuclear norm of matrices
    if p == "nuc":
        return matrix_norm(input, "nuc", (-2, -1) if dim is None else dim, keepdim, dtype=dtype)
    return vector_norm(input, 2 if p in ("fro", None) else p, dim, keepdim, dtype=dtype)
