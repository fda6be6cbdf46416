"""One exception type for every user-facing error.

The CLI turns a :class:`MncrlError` into one line on stderr and exit code 2; library users get
an ordinary ``ValueError`` subclass they can catch.
"""


class MncrlError(ValueError):
    """Bad input or an impossible request; the message is the whole explanation."""


class DataError(MncrlError):
    """A data file or array that does not follow the data format."""


class ConvergenceError(MncrlError):
    """An estimator diverged (NaN/Inf loss or unmixing)."""


class NotIdentifiableError(MncrlError):
    """The data do not determine the latents (e.g. the design violates Assumption 4).

    ``targets`` holds the estimated (K x d) target matrix when known and ``unseparated`` the
    ordered node pairs (j, i) that no environment separates.
    """

    def __init__(self, message: str, *, targets=None, unseparated=()):
        super().__init__(message)
        self.targets = targets
        self.unseparated = tuple(unseparated)
