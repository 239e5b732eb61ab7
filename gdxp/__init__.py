"""gdxp: neural networks trained by backpropagation and gradient descent, on any array library.

The math is written once against the Python array API standard; :mod:`gdxp.backend` picks the
array library and device (NumPy, CuPy, PyTorch, JAX, array_api_strict, or Dask across a cluster) at run
time.
"""

from . import optimizers
from .availability import BackendStatus, available_backends, backend_status
from .backend import Backend, BackendUnavailableError, get_backend
from .gradcheck import check_gradients
from .history import History
from .hooks import StoppingRule, TrainingDiverged
from .loading import load
from .network import Network
from .trace import Trace, TraceStep

__version__ = "0.1.0"

__all__ = [
    "Backend",
    "BackendStatus",
    "BackendUnavailableError",
    "History",
    "Network",
    "StoppingRule",
    "Trace",
    "TraceStep",
    "TrainingDiverged",
    "__version__",
    "available_backends",
    "backend_status",
    "check_gradients",
    "get_backend",
    "load",
    "optimizers",
]
