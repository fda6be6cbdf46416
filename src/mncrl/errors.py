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


class DegenerateFitError(MncrlError):
    """A fit that is no answer: nearly collinear or collapsed recovered latents, or data
    without the near-zero-variance directions a do-intervention estimator needs
    (:mod:`mncrl.degeneracy`).

    ``diagnosis`` holds the :class:`~mncrl.degeneracy.Diagnosis` (numbers, thresholds, which
    checks fired) and ``fit`` the degenerate fit itself, for inspection.
    """

    def __init__(self, message: str, *, diagnosis=None, fit=None):
        super().__init__(message)
        self.diagnosis = diagnosis
        self.fit = fit
