"""The op-case table: every supported spelling, on shapes that broadcast, batch, use 1-D,
size-1 and 0-d tensors. One parametrised check (test_ops.py) runs every case against
torch.autograd; test_registry.py proves every rule and every lowering has a case here.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Index:
    """An input of integer indices below `bound`, of `shape` (repeats included, so that
    gradients must add up); its sizes stay as they are when the case is scaled."""

    bound: int
    shape: tuple[int, ...] = (3,)


@dataclass(frozen=True)
class OpCase:
    name: str
    fn: Callable
    shapes: tuple[tuple[int, ...], ...]
    # "real": any value; "positive": > 0 (log, sqrt, fractional powers); "nonzero": |x| ≥ 0.5
    domain: str = "real"
    # False where the gradient deliberately differs from finite differences (detach)
    gradcheck: bool = True
    # True where the function has sizes written out (`x.view(2, 3)`, `x.split(2)`, `x[1:3]`),
    # so that its graph holds only at the example's sizes
    literal_sizes: bool = False

    def inputs(self, seed: int = 0, scale: int = 1) -> tuple[torch.Tensor, ...]:
        """Float64 inputs; `scale` multiplies every size but the broadcast 1s."""
        g = torch.Generator().manual_seed(seed)
        tensors = []
        for shape in self.shapes:
            if isinstance(shape, Index):
                tensors.append(torch.randint(0, shape.bound, shape.shape, generator=g))
                continue
            shape = tuple(s if s == 1 else s * scale for s in shape)
            x = torch.randn(shape, generator=g, dtype=torch.float64)
            if self.domain == "positive":
                x = x.abs() + 0.5
            elif self.domain == "nonzero":
                x = x.sign() * (x.abs() + 0.5)
            tensors.append(x)
        return tuple(tensors)


def case(name, fn, *shapes, domain="real", gradcheck=True, literal_sizes=False):
    return OpCase(name, fn, tuple(shapes), domain, gradcheck, literal_sizes)


CASES = [
    # matrix products
    case("torch.matmul", torch.matmul, (2, 3), (3, 4)),
    case("@ broadcast batch", operator.matmul, (2, 1, 3, 4), (5, 4, 2)),
    case("@ 1-D @ 2-D", operator.matmul, (3,), (3, 4)),
    case("@ 2-D @ 1-D", operator.matmul, (2, 3), (3,)),
    case("@ 1-D @ 1-D", operator.matmul, (3,), (3,)),
    case("@ batch @ 1-D", operator.matmul, (2, 3, 4), (4,)),
    case("@ 1-D @ batch", operator.matmul, (3,), (2, 3, 4)),
    case("Tensor.matmul", lambda a, b: a.matmul(b), (2, 2, 3), (3, 4)),
    case("torch.mm", torch.mm, (2, 3), (3, 4)),
    case("Tensor.mm", lambda a, b: a.mm(b), (2, 3), (3, 1)),
    case("torch.bmm", torch.bmm, (2, 3, 4), (2, 4, 5)),
    case("Tensor.bmm", lambda a, b: a.bmm(b), (1, 3, 4), (1, 4, 2)),
    case("F.linear", F.linear, (5, 3), (4, 3), (4,)),
    case("F.linear batch, no bias", F.linear, (2, 5, 3), (4, 3)),
    case("F.linear 1-D weight", F.linear, (5, 3), (3,)),
    case("torch.addmm", torch.addmm, (4,), (2, 3), (3, 4)),
    case("Tensor.addmm alpha beta", lambda b, x, w: b.addmm(x, w, beta=0.5, alpha=2), (2, 1), (2, 3), (3, 4)),
    # transposes and permutations
    case("torch.transpose", lambda x: torch.transpose(x, 0, 2), (2, 3, 4)),
    case("Tensor.transpose", lambda x: x.transpose(-1, 0), (2, 3)),
    case("torch.swapaxes", lambda x: torch.swapaxes(x, 0, 1), (2, 3)),
    case("Tensor.swapaxes", lambda x: x.swapaxes(1, 2), (2, 3, 4)),
    case("torch.swapdims", lambda x: torch.swapdims(x, 0, 1), (2, 3)),
    case("Tensor.swapdims", lambda x: x.swapdims(0, 1), (2, 3)),
    case("torch.t", torch.t, (2, 3)),
    case("Tensor.t 1-D", lambda x: x.t() * x, (3,)),
    case("Tensor.T 2-D", lambda x: x.T, (2, 3)),
    case("Tensor.T 3-D", lambda x: x.T, (2, 3, 4)),
    case("Tensor.mT", lambda x: x.mT, (2, 3, 4)),
    case("torch.permute", lambda x: torch.permute(x, (2, 0, 1)), (2, 3, 4)),
    case("Tensor.permute", lambda x: x.permute(1, 2, 0), (2, 3, 4)),
    case("Tensor.permute tuple", lambda x: x.permute((1, 0)), (2, 3)),
    case("Tensor.permute 0-d", lambda x: x.permute(()), ()),
    # arithmetic, with broadcasting, scalars and 0-d tensors
    case("torch.add broadcast", torch.add, (2, 3), (3,)),
    case("+ size-1 dims", operator.add, (2, 1, 3), (4, 1)),
    case("+ 0-d", operator.add, (), (2, 3)),
    case("+ scalar", lambda x: x + 2, (2, 3)),
    case("scalar +", lambda x: 2 + x, (2, 3)),
    case("Tensor.add alpha", lambda a, b: a.add(b, alpha=2), (2, 3), (2, 1)),
    case("torch.sub", torch.sub, (2, 3), (1, 3)),
    case("torch.subtract alpha", lambda a, b: torch.subtract(a, b, alpha=0.5), (3,), (2, 3)),
    case("- operator", operator.sub, (2, 3), ()),
    case("scalar -", lambda x: 1 - x, (2, 3)),
    case("Tensor.sub", lambda a, b: a.sub(b), (2, 3), (2, 3)),
    case("Tensor.subtract", lambda a, b: a.subtract(b), (4, 1), (3,)),
    case("torch.rsub", lambda a, b: torch.rsub(a, b), (2, 3), (3,)),
    case("torch.mul", torch.mul, (3, 1), (1, 4)),
    case("torch.multiply", torch.multiply, (2, 3), ()),
    case("* operator", operator.mul, (2, 2, 3), (2, 1, 1)),
    case("* scalar", lambda x: 3 * x, (2, 3)),
    case("Tensor.mul", lambda a, b: a.mul(b), (2, 3), (3,)),
    case("Tensor.multiply", lambda a, b: a.multiply(b), (2, 3), (2, 3)),
    case("torch.div", torch.div, (2, 3), (3,), domain="nonzero"),
    case("torch.divide", torch.divide, (2, 3), (), domain="nonzero"),
    case("torch.true_divide", torch.true_divide, (3, 1), (1, 2), domain="nonzero"),
    case("/ operator", operator.truediv, (2, 3), (2, 3), domain="nonzero"),
    case("scalar /", lambda x: 2 / x, (2, 3), domain="nonzero"),
    case("Tensor.div", lambda a, b: a.div(b), (2, 3), (2, 1), domain="nonzero"),
    case("Tensor.divide", lambda a, b: a.divide(b), (2, 3), (3,), domain="nonzero"),
    case("Tensor.true_divide", lambda a, b: a.true_divide(b), (2, 3), (2, 3), domain="nonzero"),
    case("torch.reciprocal", torch.reciprocal, (2, 3), domain="nonzero"),
    case("Tensor.reciprocal", lambda x: x.reciprocal(), (3,), domain="nonzero"),
    case("torch.neg", torch.neg, (2, 3)),
    case("torch.negative", torch.negative, ()),
    case("- unary", operator.neg, (2, 3)),
    case("Tensor.neg", lambda x: x.neg(), (3,)),
    case("Tensor.negative", lambda x: x.negative(), (2, 1)),
    case("** scalar", lambda x: x**3, (2, 3)),
    case("** fractional", lambda x: x**0.5, (2, 3), domain="positive"),
    case("** zero", lambda x, y: x**0 * y, (2, 3), (2, 3)),
    case("scalar **", lambda x: 2**x, (2, 3)),
    case("** tensor broadcast", operator.pow, (3, 1), (4,), domain="positive"),
    case("torch.pow", lambda x: torch.pow(x, 2), (2, 3)),
    case("Tensor.pow tensor", lambda a, b: a.pow(b), (2, 3), (), domain="positive"),
    case("** size read in the function", lambda x: x**x.ndim, (2, 3)),
    case("zero **", lambda x: 0.0**x, (2, 3), domain="positive"),
    case("torch.square", torch.square, (2, 3)),
    case("Tensor.square", lambda x: x.square(), ()),
    # elementwise functions
    case("torch.exp", torch.exp, (2, 3)),
    case("Tensor.exp", lambda x: x.exp(), ()),
    case("torch.log", torch.log, (2, 3), domain="positive"),
    case("Tensor.log", lambda x: x.log(), (3,), domain="positive"),
    case("torch.sqrt", torch.sqrt, (2, 3), domain="positive"),
    case("Tensor.sqrt", lambda x: x.sqrt(), (3,), domain="positive"),
    case("torch.rsqrt", torch.rsqrt, (2, 3), domain="positive"),
    case("Tensor.rsqrt", lambda x: x.rsqrt(), (), domain="positive"),
    case("torch.abs", torch.abs, (2, 3), domain="nonzero"),
    case("torch.absolute", torch.absolute, (3,), domain="nonzero"),
    case("abs()", operator.abs, (2, 3), domain="nonzero"),
    case("Tensor.abs", lambda x: x.abs(), (2, 3), domain="nonzero"),
    case("Tensor.absolute", lambda x: x.absolute(), (), domain="nonzero"),
    case("torch.tanh", torch.tanh, (2, 3)),
    case("F.tanh", F.tanh, (3,)),
    case("Tensor.tanh", lambda x: x.tanh(), ()),
    case("torch.sigmoid", torch.sigmoid, (2, 3)),
    case("F.sigmoid", F.sigmoid, (3,)),
    case("Tensor.sigmoid", lambda x: x.sigmoid(), ()),
    case("torch.relu", torch.relu, (2, 3), domain="nonzero"),
    case("F.relu", F.relu, (4,), domain="nonzero"),
    case("Tensor.relu", lambda x: x.relu(), (2, 1), domain="nonzero"),
    case("F.silu", F.silu, (2, 3)),
    case("F.gelu", F.gelu, (2, 3)),
    case("F.gelu tanh", lambda x: F.gelu(x, approximate="tanh"), (2, 3)),
    case("torch.softmax", lambda x: torch.softmax(x, -1), (2, 3)),
    case("F.softmax dim 0", lambda x: F.softmax(x, dim=0), (2, 3, 4)),
    case("Tensor.softmax", lambda x: x.softmax(1), (2, 3, 4)),
    case("torch.log_softmax", lambda x: torch.log_softmax(x, 0), (3,)),
    case("F.log_softmax", lambda x: F.log_softmax(x, dim=-1), (2, 3)),
    case("Tensor.log_softmax", lambda x: x.log_softmax(-2), (2, 3, 4)),
    case("Tensor.softmax dim from dim()", lambda x: x.softmax(x.dim() - 1), (2, 3)),
    # reductions
    case("torch.sum", torch.sum, (2, 3)),
    case("torch.sum 0-d", torch.sum, ()),
    case("Tensor.sum dim", lambda x: x.sum(1), (2, 3, 4)),
    case("Tensor.sum dims keepdim", lambda x: x.sum((0, 2), keepdim=True), (2, 3, 4)),
    case("Tensor.sum list dims", lambda x: x.sum([-1, 0]), (2, 3, 4)),
    case("Tensor.sum all keepdim", lambda x: x.sum(dim=(), keepdim=True), (2, 3)),
    case("Tensor.sum dim from ndim", lambda x: x.sum(x.ndim - 1), (2, 3)),
    case("torch.mean", torch.mean, (2, 3)),
    case("torch.mean dim", lambda x: torch.mean(x, -1, keepdim=True), (2, 3)),
    case("Tensor.mean dims", lambda x: x.mean((0, 1)), (2, 3, 4)),
    case("Tensor.mean size-1 dim", lambda x: x.mean(1), (2, 1, 3)),
    case("Tensor.norm", lambda x: x.norm(dim=-1, keepdim=True), (2, 3)),
    case("torch.norm", lambda x: torch.norm(x), (2, 3)),
    case("torch.linalg.vector_norm", lambda x: torch.linalg.vector_norm(x, dim=(0, 1)), (2, 3, 2)),
    # views and reshapes
    case("torch.reshape", lambda x: torch.reshape(x, (3, 2)), (2, 3), literal_sizes=True),
    case("Tensor.reshape", lambda x: x.reshape(-1), (2, 3)),
    case("Tensor.reshape to 0-d", lambda x: x.reshape(()), (1,)),
    case("torch.reshape to y.shape", lambda x, y: torch.reshape(x, y.shape) * y, (2, 3), (3, 2)),
    case("Tensor.view", lambda x: x.view(2, 3, 1), (6,), literal_sizes=True),
    case("Tensor.view size()", lambda x: x.view(x.size(0), -1), (2, 3, 4)),
    case("torch.flatten", lambda x: torch.flatten(x, 1), (2, 3, 4)),
    case("Tensor.flatten", lambda x: x.flatten(), (2, 3)),
    case("torch.unsqueeze", lambda x: torch.unsqueeze(x, 0), (2, 3)),
    case("Tensor.unsqueeze", lambda x: x.unsqueeze(-1), ()),
    case("torch.squeeze", torch.squeeze, (1, 3, 1)),
    case("Tensor.squeeze dim", lambda x: x.squeeze(0), (1, 3)),
    case("Tensor.expand", lambda x: x.expand(2, 3, 4), (3, 1), literal_sizes=True),
    case("Tensor.expand -1", lambda x: x.expand(-1, 4), (3, 1), literal_sizes=True),
    case("Tensor.expand_as", lambda x, y: x.expand_as(y) * y, (1, 3), (2, 3)),
    case("torch.broadcast_to", lambda x: torch.broadcast_to(x, (2, 3)), (), literal_sizes=True),
    case("torch.broadcast_to y.shape", lambda x, y: torch.broadcast_to(x, y.shape) * y, (3,), (2, 3)),
    # joining and splitting
    case("torch.cat", lambda x, y: torch.cat([x, y * 2], 1), (2, 3), (2, 4)),
    case("torch.concat", lambda x, y: torch.concat((x, y), 0), (2, 3), (1, 3)),
    case("torch.concatenate", lambda x, y: torch.concatenate((x, y), -1), (3,), (2,)),
    case("torch.stack", lambda x, y: torch.stack((x, y), -1).sum(0), (2, 3), (2, 3)),
    case("torch.split", lambda x: torch.split(x, 2, 1)[1] * 3, (2, 5), literal_sizes=True),
    case("Tensor.split sections", lambda x: x.split([1, 4], 1)[0].exp() + x.split([1, 4], 1)[1].sum(1, keepdim=True),
         (2, 5), literal_sizes=True),
    case("torch.chunk", lambda x: torch.chunk(x, 3, 0)[2], (7, 2), literal_sizes=True),
    case("Tensor.chunk", lambda x: x.chunk(2, -1)[0] * x.chunk(2, -1)[1], (3, 4)),
    case("torch.unbind", lambda x: torch.unbind(x, 1)[0] * torch.unbind(x, 1)[2], (2, 3), literal_sizes=True),
    case("Tensor.unbind", lambda x: x.unbind()[1], (2, 3), literal_sizes=True),
    # indexing
    case("[int, slice]", lambda x: x[1:3, 0], (4, 3), literal_sizes=True),
    case("[..., None, int]", lambda x: x[..., None, -1], (2, 3, 4)),
    case("[::2]", lambda x: x[::2], (5, 3)),
    case("[:, tensor]", lambda x, i: x[:, i], (3, 4), Index(4, (5,))),
    case("[2-D tensor]", lambda x, i: x[i], (3, 4), Index(3, (2, 2))),
    case("[tensor, tensor]", lambda x, i, j: x[i, j], (3, 4), Index(3), Index(4)),
    case("Tensor.narrow", lambda x: x.narrow(1, 1, 2), (3, 4)),
    case("torch.narrow", lambda x: torch.narrow(x, 0, 0, 1), (3, 4)),
    case("Tensor.select", lambda x: x.select(0, 1), (3, 4)),
    case("torch.select", lambda x: torch.select(x, -1, 0), (3, 4)),
    # copies
    case("torch.clone", lambda x: torch.clone(x) * x, (2, 3)),
    case("Tensor.clone", lambda x: x.clone(), (3,)),
    case("Tensor.contiguous", lambda x: x.mT.contiguous(), (2, 3, 4)),
    # dropout that drops nothing
    case("F.dropout p=0", lambda x: F.dropout(x, p=0.0) * 2, (2, 3)),
    case("F.dropout eval", lambda x: F.dropout(x, 0.5, training=False), (2, 3)),
    case("F.dropout1d eval", lambda x: F.dropout1d(x, 0.5, training=False), (2, 3, 4)),
    case("F.dropout2d eval", lambda x: F.dropout2d(x, 0.5, training=False), (2, 3, 4, 2)),
    case("F.dropout3d eval", lambda x: F.dropout3d(x, 0.5, training=False), (2, 3, 4, 2, 2)),
    case("F.alpha_dropout eval", lambda x: F.alpha_dropout(x, 0.5, training=False), (2, 3)),
    case("F.feature_alpha_dropout eval", lambda x: F.feature_alpha_dropout(x, 0.5, training=False), (2, 3, 4)),
    # gradient stops
    case("torch.detach", lambda x, y: torch.detach(x) * y, (2, 3), (2, 3), gradcheck=False),
    case("Tensor.detach", lambda x, y: x * y.detach(), (2, 3), (3,), gradcheck=False),
    # selecting reductions, gathering, repeating
    case("Tensor.max", lambda x: x.max(), (2, 3)),
    case("torch.max 0-d", torch.max, ()),
    case("Tensor.min", lambda x: x.min(), (3,)),
    case("torch.min", torch.min, (2, 3)),
    case("Tensor.max ties", lambda x: (x - x.detach()).max() + x, (2, 3), gradcheck=False),
    case("Tensor.max dim [0]", lambda x: x.max(1)[0], (2, 3, 4)),
    case("Tensor.max dim .values", lambda x: x.max(-1).values * 2, (2, 3)),
    case("torch.max dim keepdim", lambda x: torch.max(x, 0, keepdim=True).values, (3, 4)),
    case("torch.max dim ties", lambda x: torch.max(x - x.detach(), 1)[0] + x[:, 0], (2, 3), gradcheck=False),
    case("torch.max dim 0-d", lambda x: torch.max(x, 0).values, ()),
    case("torch.max dim size-1", lambda x: torch.max(x, 1, True)[0], (2, 1)),
    case("Tensor.min dim .indices", lambda x: x.min(dim=0).values * x.min(dim=0).indices, (3, 4)),
    case("torch.min dim keepdim", lambda x: torch.min(x, -2, True)[0], (2, 3, 4)),
    case("torch.amax", lambda x: torch.amax(x, (0, 2)), (2, 3, 4)),
    case("Tensor.amax keepdim", lambda x: x.amax(-1, keepdim=True), (2, 3)),
    case("Tensor.amax all", lambda x: x.amax(), (2, 3)),
    case("Tensor.amax all keepdim", lambda x: x.amax((), True), (2, 3)),
    case("torch.amin", lambda x: torch.amin(x, 1), (2, 3)),
    case("Tensor.amin ties", lambda x: (x - x.detach()).amin(0) + x, (2, 3), gradcheck=False),
    case("Tensor.amax 0-d", lambda x: x.amax(0), ()),
    case("torch.gather", lambda x, i: torch.gather(x, 1, i), (3, 4), Index(4, (3, 6))),
    case("Tensor.gather", lambda x, i: x.gather(-1, i), (2, 3, 4), Index(4, (2, 2, 5))),
    case("Tensor.gather dim 0", lambda x, i: x.gather(0, i), (3, 2), Index(3, (4, 2))),
    case("torch.take_along_dim", lambda x, i: torch.take_along_dim(x, i, 1), (1, 4), Index(4, (1, 5))),
    case("Tensor.take_along_dim flat", lambda x, i: x.take_along_dim(i), (3, 4), Index(12, (7,))),
    case("torch.index_select", lambda x, i: torch.index_select(x, 1, i), (3, 4), Index(4, (6,))),
    case("Tensor.index_select", lambda x, i: x.index_select(-1, i), (2, 3, 4), Index(4, (5,))),
    case("Tensor.index_select 0-d index", lambda x, i: x.index_select(0, i), (3, 4), Index(3, ())),
    case("Tensor.repeat", lambda x: x.repeat(2, 1, 3), (2, 3, 4), literal_sizes=True),
    case("Tensor.repeat new dims", lambda x: x.repeat(2, 3, 1, 2), (3, 4), literal_sizes=True),
    case("Tensor.repeat tuple", lambda x: x.repeat((1, 2)), (3, 1), literal_sizes=True),
    case("Tensor.repeat 0-d", lambda x: x.repeat(3), (), literal_sizes=True),
    case("Tensor.repeat ones", lambda x: x.repeat(1, 1, 1), (2, 3), literal_sizes=True),
    case("Tensor.repeat_interleave", lambda x: x.repeat_interleave(2, 1), (2, 3, 4)),
    case("torch.repeat_interleave", lambda x: torch.repeat_interleave(x, 3, dim=-1), (2, 3)),
    case("torch.repeat_interleave flat", lambda x: torch.repeat_interleave(x, 2), (2, 3)),
    case("Tensor.roll", lambda x: x.roll(1, 2), (2, 3, 4)),
    case("torch.roll dims", lambda x: torch.roll(x, (1, -2), (0, -1)), (2, 3, 4)),
    case("torch.roll flat", lambda x: torch.roll(x, 4), (2, 3)),
    case("Tensor.flip", lambda x: x.flip(0, 2), (2, 3, 4)),
    case("torch.flip", lambda x: torch.flip(x, (-1,)), (2, 3)),
    case("torch.fliplr", torch.fliplr, (2, 3)),
    case("Tensor.fliplr", lambda x: x.fliplr(), (2, 3, 4)),
    case("torch.flipud", torch.flipud, (3,)),
    case("Tensor.flipud", lambda x: x.flipud(), (3, 2)),
    # contractions
    case("torch.einsum matmul", lambda a, b: torch.einsum("ij,jk->ik", a, b), (2, 3), (3, 4)),
    case("torch.einsum batched", lambda a, b: torch.einsum("bij,bkj->bik", a, b), (2, 3, 4), (2, 5, 4)),
    case("torch.einsum implicit output", lambda a, b: torch.einsum("kj,ij", a, b), (2, 3), (4, 3)),
    case("torch.einsum outer product", lambda a, b: torch.einsum("i,j->ij", a, b), (3,), (4,)),
    case("torch.einsum elementwise", lambda a, b: torch.einsum("ij,ij->ij", a, b), (2, 3), (2, 3)),
    case("torch.einsum size-1 label", lambda a, b: torch.einsum("ij,ij->i", a, b), (2, 1), (2, 3)),
    case("torch.einsum 0-d operand", lambda s, x: torch.einsum(",ij->ji", s, x), (), (2, 3)),
    case("torch.einsum sum all", lambda a: torch.einsum("ij->", a), (2, 3)),
    case("torch.einsum sum a middle label", lambda a: torch.einsum("ijk->ki", a), (2, 3, 4)),
    case("torch.einsum three operands", lambda a, b, c: torch.einsum("ij,jk,kl->il", a, b, c), (2, 3), (3, 4), (4, 2)),
    case("torch.einsum ellipsis broadcast", lambda a, b: torch.einsum("...ij,...jk->...ik", a, b), (2, 1, 3, 4),
         (5, 4, 2)),
    case("torch.einsum ellipsis after a label", lambda a, b: torch.einsum("i...j,...j->i...", a, b), (2, 5, 3),
         (4, 5, 3)),
    case("torch.einsum ellipsis summed out", lambda a, b: torch.einsum("...ij, j -> i", a, b), (2, 3, 4), (4,)),
    case("torch.einsum list of operands", lambda a, b: torch.einsum("ij,j->i", [a, b]), (2, 3), (3,)),
    case("torch.einsum sublists", lambda a, b: torch.einsum(a, [0, 1], b, [1, ...], [..., 0]), (2, 3), (3, 4)),
    case("F.scaled_dot_product_attention", F.scaled_dot_product_attention, (2, 3, 4), (2, 5, 4), (2, 5, 6)),
    case("F.scaled_dot_product_attention heads, broadcast batch", F.scaled_dot_product_attention, (2, 1, 3, 4),
         (2, 2, 5, 4), (1, 2, 5, 6)),
    case("F.scaled_dot_product_attention unbatched", F.scaled_dot_product_attention, (3, 4), (5, 4), (5, 2)),
    case("F.scaled_dot_product_attention float mask",
         lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v, attn_mask=m), (2, 3, 4), (2, 5, 4), (2, 5, 6),
         (3, 5)),
    case("F.scaled_dot_product_attention bool mask",  # some rows hidden entirely
         lambda q, k, v, i: F.scaled_dot_product_attention(q, k, v, i > 1), (2, 3, 4), (2, 5, 4), (2, 5, 6),
         Index(3, (2, 3, 5)), literal_sizes=True),
    case("F.scaled_dot_product_attention causal, scale",
         lambda q, k, v: F.scaled_dot_product_attention(q, k, v, None, 0.0, True, scale=0.3), (2, 4, 3), (2, 5, 3),
         (2, 5, 2)),
    case("torch._safe_softmax", lambda x: torch._safe_softmax(x, -1), (2, 3)),
    case("F.conv1d", F.conv1d, (2, 4, 9), (6, 4, 3), (6,)),
    case("F.conv1d stride, padding", lambda x, w, b: F.conv1d(x, w, b, stride=2, padding=1), (2, 4, 9), (6, 4, 3),
         (6,), literal_sizes=True),
    case("F.conv1d unbatched, same, dilation", lambda x, w: F.conv1d(x, w, padding="same", dilation=2), (4, 9),
         (3, 4, 3), literal_sizes=True),
    case("F.conv2d", lambda x, w: F.conv2d(x, w), (2, 3, 6, 5), (4, 3, 3, 2), literal_sizes=True),
    case("F.conv2d stride, padding, dilation, groups",
         lambda x, w, b: F.conv2d(x, w, b, stride=(2, 3), padding=(1, 2), dilation=(2, 1), groups=3), (2, 6, 11, 10),
         (9, 2, 3, 2), (9,), literal_sizes=True),
    case("F.conv2d stride past the input's end", lambda x, w, b: F.conv2d(x, w, b, 3), (1, 2, 8, 7), (3, 2, 2, 2), (3,),
         literal_sizes=True),
    case("F.conv2d valid, groups", lambda x, w: F.conv2d(x, w, padding="valid", groups=2), (2, 4, 5, 5), (4, 2, 3, 3),
         literal_sizes=True),
]
