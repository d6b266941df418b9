"""Canonical ops: every spelling of an op a trace can record, lowered onto one small op set.

A traced graph says the same thing many ways: `torch.matmul(a, b)`, `a @ b`, `a.mm(b)`,
`F.linear(x, w)`; `x.t()`, `x.T`, `x.mT`, `x.transpose(0, 1)`. This package rewrites each node
into *canonical ops* (OPS), so that a backward rule is written once per canonical op and
never sees an alias, a keyword argument or a default.

- A canonical op is identified by a torch callable (`torch.matmul`, `torch.softmax`, ...). Its
  entry in OPS is a function whose parameters are the op's canonical arguments and whose body
  writes the op the way generated code should read (`input @ other`, `input.softmax(dim)`).
- A lowering (LOWERINGS) maps one traced spelling onto canonical ops, in the style of
  `torch._decomp`: a plain function with the spelling's own signature, calling `emit`.

Every canonical node carries its op in `node.meta["fxgrad_op"]` and its bound arguments in
`node.meta["fxgrad_args"]`; the reverse pass reads those two and nothing else.

One module per area (linalg, pointwise, pooling, choice, selection, reduction, cumulative, shape, pieces,
indexing, contractions, embedding, conversion, norms, losses) defines its canonical ops (`define`)
beside the spellings that lower onto them (`lowers`), ATen ones included; `registry` holds the
tables, `lowering.canonicalize` is the pass that applies them.
"""

from . import (  # noqa: F401  (each defines its ops and spellings)
    backward,
    choice,
    contractions,
    conversion,
    cumulative,
    distances,
    embedding,
    indexing,
    linalg,
    losses,
    norms,
    pieces,
    pointwise,
    pooling,
    reduction,
    selection,
    shape,
    scatter,
)
from . import matrices  # noqa: F401
from .lowering import GRAD_DISABLED, IN_AUTOGRAD_GRAD, RANDOM_FUNCTIONS, canonicalize, refuse_randomness, traced_target
from .registry import LOWERINGS, OPS, emit, lowers, op_name, supported_ops

__all__ = ["OPS", "LOWERINGS", "GRAD_DISABLED", "IN_AUTOGRAD_GRAD", "RANDOM_FUNCTIONS", "canonicalize", "emit", "lowers",
           "op_name", "refuse_randomness", "supported_ops", "traced_target"]
