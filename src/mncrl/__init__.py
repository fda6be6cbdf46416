"""mncrl: identifying linearly-mixed causal representations from multi-node interventions."""

from mncrl.errors import ConvergenceError, DataError, MncrlError, NotIdentifiableError

__version__ = "0.1.0"

__all__ = ["ConvergenceError", "DataError", "MncrlError", "NotIdentifiableError", "__version__"]
