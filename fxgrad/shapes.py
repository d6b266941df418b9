"""Shape plumbing shared by the engine and the rules, written once.

Rules return gradients of whatever shape their math gives (broadcast shapes, reduced shapes);
`fit_to` brings each back to the shape and dtype of the value it is the gradient of. The
decisions (which dims to sum) are taken from the example shapes, but the code they emit reads
sizes from tensors at run time, so the backward stays valid for other sizes that broadcast the
same way.
"""

from __future__ import annotations

import torch
import torch.fx as fx

from .graph import BROADCAST_SUM, value


def fit_to(grad: fx.Proxy, like: fx.Proxy) -> fx.Proxy:
    """`grad` summed over the dims `like` was broadcast along, then expanded to `like`'s shape."""
    grad_val, like_val = value(grad), value(like)
    target = tuple(like_val.shape)
    extra = grad_val.ndim - len(target)
    if extra > 0:  # leading dims that broadcasting added
        grad = grad.sum() if not target else grad.sum(0 if extra == 1 else tuple(range(extra)))
        grad.node.meta[BROADCAST_SUM] = tuple(range(extra))
    shape = tuple(value(grad).shape)
    offset = len(target) - len(shape)
    # dims where `like` has size 1 and was stretched
    stretched = tuple(i for i, size in enumerate(shape) if size != 1 and target[offset + i] == 1)
    if stretched:
        grad = grad.sum(stretched[0] if len(stretched) == 1 else stretched, keepdim=True)
        grad.node.meta[BROADCAST_SUM] = tuple(max(extra, 0) + i for i in stretched)
    if tuple(value(grad).shape) != target:  # a gradient smaller than its value: broadcast it
        grad = grad.expand(like.shape)  # (reads only the shape: a backward can keep just that)
    if value(grad).dtype != like_val.dtype:
        grad = grad.to(like_val.dtype)
    return grad


def reduced_dims(input: fx.Proxy, dim) -> list[int]:
    """The non-negative, sorted dims a reduction over `dim` (int, tuple or None) removes."""
    ndim = value(input).ndim
    if dim is None:
        return list(range(ndim))
    dims = dim if isinstance(dim, tuple) else (dim,)
    return sorted(d % max(ndim, 1) for d in dims)


def unreduce(grad: fx.Proxy, input: fx.Proxy, dim, keepdim: bool) -> fx.Proxy:
    """The gradient of a reduction with its reduced dims restored as size 1.

    The result broadcasts against `input`; the engine expands it to `input`'s shape.
    """
    if keepdim or dim is None:  # dim None: grad is 0-d and broadcasts as it is
        return grad
    for d in reduced_dims(input, dim):
        if d < value(input).ndim:
            grad = grad.unsqueeze(d)
    return grad


def filled(grads: tuple, out: fx.Proxy) -> list[fx.Proxy]:
    """The gradients of an op's several results (`out`), zeros for those no gradient reached."""
    return [torch.zeros_like(out[i]) if grad is None else grad for i, grad in enumerate(grads)]


def add_at(like: fx.Proxy, dim: int, index: fx.Proxy, grad: fx.Proxy) -> fx.Proxy:
    """Zeros like `like` with the slices of `grad` along `dim` added at `index` (repeats add up).

    `grad` has, at `dim`, the dims that `index`'s shape made (`x[:, idx]`, an embedding's rows).
    """
    index_ndim = value(index).ndim
    # one dim of index's numel, for index_add
    if index_ndim == 0:
        grad = grad.unsqueeze(dim)
    elif index_ndim > 1:
        grad = grad.flatten(dim, dim + index_ndim - 1)
    return torch.zeros_like(like).index_add(dim, index if index_ndim == 1 else index.reshape(-1), grad)


def along_channels(vector: fx.Proxy, input: fx.Proxy) -> fx.Proxy:
    """A vector over dim 1 of `input` (channels, classes: dim 0 of a 1-D input), shaped to broadcast
    against `input`: `w.reshape(-1, 1, 1)` for an (N, C, H, W) input."""
    trailing = value(input).ndim - 2
    return vector.reshape(-1, *(1,) * trailing) if trailing > 0 else vector


def channel_dim(input: fx.Proxy) -> int:
    """The channel (class) dim of an (N, C, ...) input, 0 for a 1-D one."""
    return 0 if value(input).ndim == 1 else 1


def last_dims(count: int):
    """The last `count` dims, as a reduction takes them: `-1`, `(-2, -1)`."""
    return -1 if count == 1 else tuple(range(-count, 0))
