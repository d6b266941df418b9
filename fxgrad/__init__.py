"""fxgrad: the closed-form gradient of a PyTorch function, as a readable torch.fx GraphModule."""

from .api import Backward, derive
from .canon import supported_ops
from .function import function
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
    "function",
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
