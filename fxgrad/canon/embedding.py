"""Embedding: rows of a table looked up by index."""

import torch.nn.functional as F

from ..errors import MutationError
from .registry import aten, call, define, emit, lowers, unsupported_argument

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
