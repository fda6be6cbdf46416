"""Type checks of plain config values shared by every scenario validator (a bool is neither an
integer nor a real here, though Python says it is both)."""

from __future__ import annotations

import numpy as np


def is_int(x) -> bool:
    """An integer (Python or numpy), not a bool."""
    return isinstance(x, int | np.integer) and not isinstance(x, bool | np.bool_)


def is_real(x) -> bool:
    """A real number (Python or numpy int or float), not a bool."""
    return isinstance(x, int | float | np.integer | np.floating) and not isinstance(
        x, bool | np.bool_
    )


__all__ = ["is_int", "is_real"]
