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
    # more elementwise functions and activations
    case("torch.erf", torch.erf, (2, 3)),
    case("Tensor.erf", lambda x: x.erf(), ()),
    case("torch.special.erf", torch.special.erf, (3,)),
    case("torch.sin", torch.sin, (2, 3)),
    case("Tensor.sin", lambda x: x.sin(), ()),
    case("torch.cos", torch.cos, (2, 3)),
    case("Tensor.cos", lambda x: x.cos(), (3, 1)),
    case("torch.log1p", torch.log1p, (2, 3), domain="positive"),
    case("Tensor.log1p", lambda x: x.log1p(), (), domain="positive"),
    case("torch.special.log1p", torch.special.log1p, (3,), domain="positive"),
    case("torch.expm1", torch.expm1, (2, 3)),
    case("Tensor.expm1", lambda x: x.expm1(), ()),
    case("torch.special.expm1", torch.special.expm1, (3,)),
    case("torch.sign", lambda x: torch.sign(x) * x, (2, 3)),
    case("Tensor.sign", lambda x: x.sign() + x, (3,)),
    case("torch.sgn", lambda x: torch.sgn(x) * x, (2, 3)),
    case("Tensor.sgn", lambda x: x.sgn() * x, ()),
    case("torch.floor", lambda x: torch.floor(x) * x, (2, 3)),
    case("Tensor.floor", lambda x: x.floor() + x, (3,)),
    case("torch.ceil", lambda x: torch.ceil(x) * x, (2, 3)),
    case("Tensor.ceil", lambda x: x.ceil() + x, ()),
    case("torch.round", lambda x: torch.round(x) * x, (2, 3)),
    case("Tensor.round decimals", lambda x: x.round(decimals=1) + x, (3,)),
    case("torch.trunc", lambda x: torch.trunc(x) * x, (2, 3)),
    case("Tensor.trunc", lambda x: x.trunc() + x, (3,)),
    case("torch.fix", lambda x: torch.fix(x) * x, (2, 3)),
    case("Tensor.fix", lambda x: x.fix() + x, (3,)),
    case("F.softplus", F.softplus, (2, 3)),
    case("F.softplus beta threshold", lambda x: F.softplus(x, beta=2, threshold=1), (4, 3)),
    case("F.leaky_relu", F.leaky_relu, (2, 3)),
    case("F.leaky_relu slope", lambda x: F.leaky_relu(x, 0.2), (3,)),
    case("F.elu", F.elu, (2, 3)),
    case("F.elu alpha", lambda x: F.elu(x, alpha=0.5), (3,)),
    case("F.selu", F.selu, (2, 3)),
    case("torch.selu", torch.selu, (3,)),
    case("F.celu", lambda x: F.celu(x, 0.7), (2, 3)),
    case("torch.celu", torch.celu, (3,)),
    case("F.hardtanh", F.hardtanh, (2, 3)),
    case("F.hardtanh bounds", lambda x: F.hardtanh(x, -0.5, 0.5), (3,)),
    case("F.relu6", lambda x: F.relu6(x * 4), (2, 3)),
    # choosing elements: maximum and minimum, clamp, where, masked_fill, triangles
    case("torch.maximum broadcast", torch.maximum, (2, 3), (3,)),
    case("Tensor.maximum 0-d", lambda a, b: a.maximum(b), (2, 3), ()),
    case("torch.maximum tie", lambda x: torch.maximum(x, x.detach()), (2, 3), gradcheck=False),
    case("torch.minimum", torch.minimum, (3, 1), (1, 4)),
    case("Tensor.minimum", lambda a, b: a.minimum(b), (2, 3), (2, 3)),
    case("torch.minimum tie", lambda x: torch.minimum(x.detach(), x), (3,), gradcheck=False),
    case("torch.clamp", lambda x: torch.clamp(x, -0.5, 0.5), (2, 3)),
    case("Tensor.clamp min", lambda x: x.clamp(min=0.1), (3,)),
    case("Tensor.clip max", lambda x: x.clip(max=0.2), (2, 3)),
    case("torch.clip", lambda x: torch.clip(x, -1, 1), (2, 3)),
    case("torch.clamp_min", lambda x: torch.clamp_min(x, 0.0), (2, 3)),
    case("Tensor.clamp_min", lambda x: x.clamp_min(0.1), ()),
    case("torch.clamp_max", lambda x: torch.clamp_max(x, 1), (3,)),
    case("Tensor.clamp_max", lambda x: x.clamp_max(0.3), (2, 3)),
    case("torch.clamp tensors", torch.clamp, (2, 3), (3,), (2, 1)),
    case("Tensor.clamp tensor min", lambda x, y: x.clamp(min=y), (2, 3), ()),
    case("Tensor.clip tensors", lambda x, lo, hi: x.clip(lo, hi), (3,), (2, 3), (2, 1)),
    case("torch.clamp tensor max", lambda x, y: torch.clamp(x, max=y), (2, 3), (2, 1)),
    case("torch.clamp_min tensor", torch.clamp_min, (2, 3), (1, 3)),
    case("Tensor.clamp_max tensor", lambda x, y: x.clamp_max(y), (3,), (2, 3)),
    case("torch.where", lambda x, y: torch.where(x > 0, x, y), (2, 3), (3,)),
    case("torch.where 0-d", lambda x, y: torch.where(y > 0, x, y), (2, 3), ()),
    case("torch.where scalar other", lambda x: torch.where(x > 0, x, 0.5), (2, 3)),
    case("torch.where scalar input", lambda x, y: torch.where(x > y, 1.0, y), (2, 3), (2, 1)),
    case("Tensor.where", lambda x, y: x.where(y > 0, y), (2, 3), (2, 3)),
    case("Tensor.masked_fill", lambda x, y: x.masked_fill(y > 0, 0.5), (2, 3), (3,)),
    case("torch.masked_fill", lambda x, y: torch.masked_fill(x, y > 0, -1.0), (2, 3), (2, 3)),
    case("Tensor.masked_fill tensor value", lambda x, y: x.masked_fill(x > 0, y), (2, 3), ()),
    case("torch.tril", torch.tril, (3, 4)),
    case("Tensor.tril diagonal", lambda x: x.tril(-1), (2, 3, 4)),
    case("torch.triu diagonal", lambda x: torch.triu(x, diagonal=1), (3, 3)),
    case("Tensor.triu", lambda x: x.triu(), (2, 3)),
    # cumulative sums and products
    case("torch.cumsum", lambda x: torch.cumsum(x, 1), (2, 3)),
    case("Tensor.cumsum", lambda x: x.cumsum(dim=0), (3,)),
    case("Tensor.cumsum 0-d", lambda x: x.cumsum(0), ()),
    case("Tensor.cumsum batch", lambda x: x.cumsum(-1), (2, 3, 4)),
    case("torch.cumprod", lambda x: torch.cumprod(x, 1), (2, 5)),
    case("Tensor.cumprod", lambda x: x.cumprod(0), (4, 2)),
    case("torch.cumprod with zeros", lambda x: torch.cumprod(torch.relu(x), -1), (3, 6)),
    # dtype conversions (to float32 and back: finite differences cannot see through the rounding)
    case("Tensor.to dtype", lambda x: x.to(torch.float32), (2, 3), gradcheck=False),
    case("Tensor.to dtype=", lambda x: x.to(dtype=torch.float32).double(), (3,), gradcheck=False),
    case("Tensor.to other", lambda x, y: x.float().to(y) * y, (2, 3), (3,), gradcheck=False),
    case("Tensor.to device dtype", lambda x: x.to("cpu", torch.float32), (2, 3), gradcheck=False),
    case("Tensor.float", lambda x: x.float() * 2, (2, 3), gradcheck=False),
    case("Tensor.half", lambda x: x.half().double(), (2, 3), gradcheck=False),
    case("Tensor.bfloat16", lambda x: x.bfloat16().double(), (3,), gradcheck=False),
    case("Tensor.type_as", lambda x, y: x.float().type_as(y) * y, (2, 3), (2, 3), gradcheck=False),
    case("Tensor.type", lambda x: x.type(torch.float32), (2, 3), gradcheck=False),
    case("Tensor.to same dtype", lambda x: x.to(torch.float64) * x, (2, 3)),
    case("Tensor.double", lambda x: x.double(), (3,)),
    case("Tensor.to same device", lambda x: x.to("cpu") + x.to(x.device), (2, 3)),
    case("Tensor.cpu", lambda x: x.cpu(), (3,)),
    case("mask.float()", lambda x: x * (x > 0).float(), (2, 3)),
    case("Tensor.to long", lambda x: x * x.to(torch.long), (2, 3)),
    case("Tensor.long", lambda x: x * x.long(), (3,)),
    case("Tensor.int", lambda x: x.int() + x, (2, 3)),
    case("Tensor.bool", lambda x: x * x.bool(), (3,)),
    # embedding
    case("F.embedding", F.embedding, Index(4, (5,)), (4, 3)),
    # (the padding row gets no gradient, which finite differences do not know)
    case("F.embedding padding_idx", lambda i, w: F.embedding(i, w, padding_idx=1), Index(4, (2, 3)), (4, 3),
         gradcheck=False),
    case("F.embedding negative padding_idx", lambda i, w: F.embedding(i, w, padding_idx=-1), Index(4, (6,)), (4, 2),
         gradcheck=False),
    case("F.embedding 0-d index", F.embedding, Index(4, ()), (4, 3)),
]
