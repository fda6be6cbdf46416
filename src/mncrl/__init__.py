"""mncrl: identifying linearly-mixed causal representations from multi-node interventions."""

from mncrl.errors import ConvergenceError, DataError, MncrlError, NotIdentifiableError

__version__ = "0.1.0"

__all__ = [
    "ConvergenceError",
    "DataError",
    "MncrlError",
    "NotIdentifiableError",
    "__version__",
    "fit",
    "metrics",
]


def __getattr__(name):  # lazy: `import mncrl` (and `mncrl --help`) stay light
    if name == "fit":
        from mncrl.api import fit

        return fit
    if name == "metrics":
        import importlib

        return importlib.import_module("mncrl.metrics")
    raise AttributeError(f"module 'mncrl' has no attribute {name!r}")
