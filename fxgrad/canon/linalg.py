"""Matrix products and dimension permutations."""

import operator

import torch
import torch.nn.functional as F

from ..graph import value
from .registry import aten, define, emit, lowers, sizes, splat, static_dim, unsupported_argument


def _write_transpose(input, dim0, dim1):
    ndim = value(input).ndim
    if ndim >= 2 and {dim0 % ndim, dim1 % ndim} == {ndim - 2, ndim - 1}:
        return input.mT
    return input.transpose(dim0, dim1)


define({
    torch.matmul: lambda input, other: input @ other,  # both operands at least 2-D
    torch.transpose: _write_transpose,
    torch.permute: lambda input, dims: splat(input.permute, dims),
})


@lowers(torch.matmul, operator.matmul, "Tensor.matmul", torch.mm, "Tensor.mm", torch.bmm, "Tensor.bmm",
        aten.matmul, aten.mm, aten.bmm)
def matmul(input, other):
    # 1-D operands are promoted to matrices here, as torch.matmul does, so that the matmul rule
    # only ever sees matrices and batches of them.
    input_ndim, other_ndim = value(input).ndim, value(other).ndim
    if input_ndim == 1 and other_ndim == 1:
        return emit(torch.sum, emit(torch.mul, input, other), None, False)
    if input_ndim == 1:
        return emit(torch.squeeze, emit(torch.matmul, emit(torch.unsqueeze, input, 0), other), -2)
    if other_ndim == 1:
        return emit(torch.squeeze, emit(torch.matmul, input, emit(torch.unsqueeze, other, -1)), -1)
    return emit(torch.matmul, input, other)


@lowers(torch.dot, "Tensor.dot", aten.dot)
def _dot(input, other):
    # matmul would take any ranks; torch.dot takes vectors only, and so does its lowering
    if (value(input).ndim, value(other).ndim) != (1, 1):
        unsupported_argument(f"dot of {value(input).ndim}-D and {value(other).ndim}-D tensors (dot takes two 1-D ones)")
    return matmul(input, other)


@lowers(torch.mv, "Tensor.mv", aten.mv)
def _mv(input, vec):
    if (value(input).ndim, value(vec).ndim) != (2, 1):
        unsupported_argument(f"mv of {value(input).ndim}-D and {value(vec).ndim}-D tensors (mv takes a matrix and a vector)")
    return matmul(input, vec)


@lowers(F.linear, aten.linear)
def _linear(input, weight, bias=None):
    if value(weight).ndim == 2:
        weight = emit(torch.transpose, weight, 0, 1)
    out = matmul(input, weight)
    return out if bias is None else emit(torch.add, out, bias)


@lowers(torch.addmm, "Tensor.addmm", aten.addmm)
def _addmm(input, mat1, mat2, *, beta=1, alpha=1):
    return _add_product(input, matmul(mat1, mat2), beta, alpha)


@lowers(torch.addbmm, "Tensor.addbmm", aten.addbmm)
def _addbmm(input, batch1, batch2, *, beta=1, alpha=1):
    return _add_product(input, emit(torch.sum, matmul(batch1, batch2), 0, False), beta, alpha)


def _add_product(input, product, beta, alpha):
    """beta·input + alpha·product, as addmm and addbmm compute it."""
    if alpha != 1:
        product = emit(torch.mul, product, alpha)
    if beta == 0:  # torch ignores the input then: its NaN and ∞ do not reach the result (nor its gradient)
        return product
    return emit(torch.add, input if beta == 1 else emit(torch.mul, input, beta), product)


@lowers(torch.transpose, "Tensor.transpose", torch.swapaxes, "Tensor.swapaxes", torch.swapdims, "Tensor.swapdims",
        aten.transpose, aten.swapaxes, aten.swapdims)
def _transpose(input, dim0, dim1):
    return emit(torch.transpose, input, static_dim(dim0), static_dim(dim1))


@lowers(torch.t, "Tensor.t", aten.t)
def _t(input):
    return input if value(input).ndim < 2 else emit(torch.transpose, input, 0, 1)


@lowers("Tensor.T", aten.numpy_T)
def _T(input):
    ndim = value(input).ndim
    if ndim < 2:
        return input
    return emit(torch.transpose, input, 0, 1) if ndim == 2 else emit(torch.permute, input, tuple(reversed(range(ndim))))


@lowers("Tensor.mT", aten.mT)
def _mT(input):
    return emit(torch.transpose, input, -2, -1)


@lowers(torch.permute, aten.permute)
def _permute(input, dims):
    return emit(torch.permute, input, static_dim(tuple(dims)))


@lowers("Tensor.permute")
def _permute_method(input, *dims):
    return emit(torch.permute, input, static_dim(sizes(dims)))
