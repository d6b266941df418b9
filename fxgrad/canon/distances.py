"""Distances: `torch.cdist` between the rows of two batches of matrices, and `torch.pdist`
between the rows of one (the upper triangle of its cdist with itself).

p = 2 has two paths in torch, the differences of every pair or the matrix product
‖x‖² + ‖y‖² − 2x·y (`compute_mode`, and `aten._euclidean_dist`, which make_fx records for it):
the canonical op keeps the mode, so that the forward value is recomputed as torch computed it.
"""

import torch

from ..graph import value
from .indexing import index_tensor
from .registry import aten, call, define, emit, lowers

define({
    # p ≥ 0 (inf: the largest difference); compute_mode: None or one of torch.cdist's
    torch.cdist: lambda x1, x2, p, compute_mode: call(
        torch.cdist, x1, x2, **({} if p == 2 else {"p": p}), **({} if compute_mode is None else
                                                                 {"compute_mode": compute_mode})),
})

# ATen's compute_mode, as torch.cdist spells it
_COMPUTE_MODES = {None: None, 0: "use_mm_for_euclid_dist_if_necessary", 1: "use_mm_for_euclid_dist",
                  2: "donot_use_mm_for_euclid_dist"}


@lowers(torch.cdist)
def _cdist(x1, x2, p=2.0, compute_mode=None):
    return emit(torch.cdist, x1, x2, float(p), compute_mode)


@lowers(aten.cdist, aten._cdist_forward)
def _aten_cdist(x1, x2, p=2.0, compute_mode=None):
    return _cdist(x1, x2, p, _COMPUTE_MODES[compute_mode])


@lowers(aten._euclidean_dist)
def _euclidean_dist(x1, x2):
    return _cdist(x1, x2, 2.0, "use_mm_for_euclid_dist")


@lowers(torch.pdist, aten.pdist, aten._pdist_forward)
def _pdist(input, p=2.0):
    # the distance of rows i < j, in row-major order: cdist's upper triangle (the differences of
    # every pair, as pdist takes them), the triangle's indices made from the input's size when the
    # graph runs
    distances = emit(torch.cdist, input, input, float(p), "donot_use_mm_for_euclid_dist")
    n = input.size(0)
    rows, cols = call(torch.triu_indices, n, n, 1).unbind(0)
    return index_tensor(distances, (rows, cols))
