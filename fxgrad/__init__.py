"""fxgrad: the closed-form gradient of a PyTorch function, as a readable torch.fx GraphModule."""

from .api import Backward, derive
from .check import CheckResult, check
from .canon import supported_ops
from .explain import explain  # (the function: fxgrad.explain.Explanation is its result)
from .function import function
from .shaped import shaped
from .hvp import HessianVectorProduct, hvp
from .errors import (
    FxgradError,
    GradOutputError,
    InputError,
    MutationError,
    OutputError,
    ParameterError,
    RandomnessError,
    ShapeError,
    TraceError,
    UnsupportedArgumentError,
    UnsupportedOpError,
)

__all__ = [
    "derive",
    "check",
    "CheckResult",
    "explain",
    "function",
    "shaped",
    "hvp",
    "HessianVectorProduct",
    "supported_ops",
    "Backward",
    "FxgradError",
    "GradOutputError",
    "InputError",
    "MutationError",
    "OutputError",
    "ParameterError",
    "RandomnessError",
    "ShapeError",
    "TraceError",
    "UnsupportedArgumentError",
    "UnsupportedOpError",
]
__version__ = "0.1.0"
