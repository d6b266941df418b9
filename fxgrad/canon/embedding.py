"""Embedding: rows of a table looked up by index."""

import torch
import torch.nn.functional as F

from ..errors import MutationError
from ..graph import value
from .pieces import item
from .registry import aten, call, define, emit, given, lowers, unsupported_argument

define({
    # padding_idx: None, or the index of the row that gets no gradient (from the end if negative)
    F.embedding: lambda input, weight, padding_idx: (call(F.embedding, input, weight) if padding_idx is None
                                                     else call(F.embedding, input, weight, padding_idx)),
})


@lowers(F.embedding)
def _embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0, scale_grad_by_freq=False,
               sparse=False):
    if max_norm is not None:
        raise MutationError(
            "`F.embedding(max_norm=...)` renormalises rows of the weight in place; fxgrad derives functions "
            "whose inputs and values do not change (renormalise the weight out of place before the lookup)"
        )
    if scale_grad_by_freq:
        unsupported_argument("embedding(scale_grad_by_freq=True)")
    if sparse:
        unsupported_argument("embedding(sparse=True) (a sparse gradient)")
    return emit(F.embedding, input, weight, padding_idx)


@lowers(aten.embedding)
def _aten_embedding(weight, indices, padding_idx=-1, scale_grad_by_freq=False, sparse=False):
    # ATen writes "no padding row" as -1 (F.embedding has made other negative indices positive)
    return _embedding(indices, weight, None if padding_idx == -1 else padding_idx,
                      scale_grad_by_freq=scale_grad_by_freq, sparse=sparse)


# embedding_bag's modes, as ATen numbers them
EMBEDDING_BAG_MODES = {"sum": 0, "mean": 1, "max": 2}


def _write_embedding_bag(weight, input, offsets, mode, per_sample_weights, include_last_offset, padding_idx):
    if padding_idx is not None:  # (torch takes it by position only, after every other argument)
        return torch.embedding_bag(weight, input, offsets, False, mode, False, per_sample_weights,
                                   include_last_offset, padding_idx)
    options = {"mode": mode} if mode else {}
    options.update(given(per_sample_weights=per_sample_weights))
    if include_last_offset:
        options["include_last_offset"] = True
    return torch.embedding_bag(weight, input, offsets, **options)


define({
    # bags of rows reduced (mode: 0 sum, 1 mean, 2 max): a 1-D input, bag b starting at offsets[b]
    # (the last offset ending the last bag if include_last_offset); padding_idx None or a row that
    # takes no part. Its results: the bags, each index's bag, the bags' sizes, and for max the row each
    # maximum came from
    torch.embedding_bag: _write_embedding_bag,
})


@lowers(F.embedding_bag)
def _embedding_bag(input, weight, offsets=None, max_norm=None, norm_type=2, scale_grad_by_freq=False, mode="mean",
                   sparse=False, per_sample_weights=None, include_last_offset=False, padding_idx=None):
    if max_norm is not None:
        raise MutationError(
            "`F.embedding_bag(max_norm=...)` renormalises rows of the weight in place; fxgrad derives functions "
            "whose inputs and values do not change (renormalise the weight out of place before the lookup)"
        )
    if value(input).ndim == 2:  # each row a bag: flattened, the bags starting every row's length
        offsets = input.tracer.create_proxy("call_function", torch.arange, (0, input.numel(), input.size(1)),
                                            {"device": value(input).device})
        input = emit(torch.flatten, input, 0, -1)
        if per_sample_weights is not None:
            per_sample_weights = emit(torch.flatten, per_sample_weights, 0, -1)
    if padding_idx is not None and padding_idx < 0:  # from the end
        padding_idx += value(weight).shape[0]
    return _lowered_embedding_bag(weight, input, offsets, scale_grad_by_freq, EMBEDDING_BAG_MODES[mode], sparse,
                                  per_sample_weights, include_last_offset, padding_idx)[0]


@lowers(aten.embedding_bag)
def _aten_embedding_bag(weight, indices, offsets, scale_grad_by_freq=False, mode=0, sparse=False,
                        per_sample_weights=None, include_last_offset=False, padding_idx=None):
    return _lowered_embedding_bag(weight, indices, offsets, scale_grad_by_freq, mode, sparse, per_sample_weights,
                                  include_last_offset, padding_idx)


@lowers(aten._embedding_bag, aten._embedding_bag_forward_only)
def _aten_embedding_bag_results(weight, indices, offsets, scale_grad_by_freq=False, mode=0, sparse=False,
                                per_sample_weights=None, include_last_offset=False, padding_idx=-1):
    # (ATen writes "no padding row" as -1 here)
    return _lowered_embedding_bag(weight, indices, offsets, scale_grad_by_freq, mode, sparse, per_sample_weights,
                                  include_last_offset, None if padding_idx == -1 else padding_idx)


def _lowered_embedding_bag(weight, indices, offsets, scale_grad_by_freq, mode, sparse, per_sample_weights,
                           include_last_offset, padding_idx):
    """The results of embedding_bag, each taken with `item`."""
    if scale_grad_by_freq:
        unsupported_argument("embedding_bag(scale_grad_by_freq=True)")
    if sparse:
        unsupported_argument("embedding_bag(sparse=True) (a sparse gradient)")
    results = emit(torch.embedding_bag, weight, indices, offsets, mode, per_sample_weights, include_last_offset,
                   padding_idx)
    return tuple(emit(item, results, i) for i in range(4))
