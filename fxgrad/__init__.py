"""fxgrad: the closed-form gradient of a PyTorch function, as a readable torch.fx GraphModule."""

from .api import derive
from .errors import FxgradError, TraceError, UnsupportedOpError

__all__ = ["derive", "FxgradError", "TraceError", "UnsupportedOpError"]
__version__ = "0.1.0"
