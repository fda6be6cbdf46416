"""The persistent XLA compilation cache of the command line.

Every `mncrl fit` process would otherwise compile the same XLA programs again (about a second
for sparse-variance). The compiled programs are kept in a user cache directory, the first of:

1. ``--cache-dir DIR``;
2. ``$MNCRL_CACHE_DIR``;
3. ``$JAX_COMPILATION_CACHE_DIR`` when already set (the workflow sets it for its jobs);
4. ``$XDG_CACHE_HOME/mncrl/jax``, by default ``~/.cache/mncrl/jax``.

A directory that cannot be created or written to never fails a command: it runs without a
cache after one warning line on stderr. A program loaded from the cache is the one XLA compiled
before, so results are bit-identical with and without it. Only this process's JAX settings
change; :mod:`mncrl.api` users configure JAX themselves.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ENV_VAR = "MNCRL_CACHE_DIR"
JAX_ENV_VAR = "JAX_COMPILATION_CACHE_DIR"
MIN_TIME_ENV_VAR = "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"


def default_dir() -> Path:
    """``$XDG_CACHE_HOME/mncrl/jax`` (``~/.cache/mncrl/jax`` without XDG_CACHE_HOME)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path("~/.cache").expanduser()
    return Path(base) / "mncrl" / "jax"


def cache_dir(flag: str | os.PathLike | None = None) -> Path:
    """The cache directory: ``flag``, else $MNCRL_CACHE_DIR, else $JAX_COMPILATION_CACHE_DIR,
    else :func:`default_dir` (empty values count as unset)."""
    for value in (flag, os.environ.get(ENV_VAR), os.environ.get(JAX_ENV_VAR)):
        if value:
            return Path(value).expanduser()
    return default_dir()


def unwritable(directory: Path) -> str | None:
    """Why ``directory`` cannot hold the cache (None when it can): created (mode 0700) when
    missing, then a probe file is written and removed."""
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=directory, prefix=".mncrl-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def use(directory: Path | None) -> None:
    """Make JAX read and write compiled programs in ``directory`` (None: no persistent cache).

    Every program is cached, however short its compilation (unless
    $JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS says otherwise). Must run before the first
    compilation: through ``jax.config`` when jax is imported, else through the environment
    variables jax reads when it is imported.
    """
    settings: dict = {"jax_enable_compilation_cache": directory is not None}
    if directory is not None:
        settings["jax_compilation_cache_dir"] = str(directory)
        if MIN_TIME_ENV_VAR not in os.environ:
            settings["jax_persistent_cache_min_compile_time_secs"] = 0.0
    if "jax" not in sys.modules:
        for name, value in settings.items():
            os.environ[name.upper()] = str(value).lower() if isinstance(value, bool) else str(value)
        return
    import jax
    from jax.experimental.compilation_cache import compilation_cache

    for name, value in settings.items():
        jax.config.update(name, value)
    compilation_cache.reset_cache()  # a process that compiled before takes the new directory


def configure(
    flag: str | os.PathLike | None = None, *, enabled: bool = True, prog: str = "mncrl"
) -> Path | None:
    """Choose (:func:`cache_dir`), check and :func:`use` the cache directory; return it, or None
    when disabled or unwritable (then one warning line ``{prog}: warning: ...`` on stderr)."""
    directory = cache_dir(flag) if enabled else None
    if directory is not None:
        problem = unwritable(directory)
        if problem:
            print(
                f"{prog}: warning: cannot use the compilation cache {directory} ({problem}); "
                f"compiling without a cache",
                file=sys.stderr,
            )
            directory = None
    use(directory)
    return directory


__all__ = ["ENV_VAR", "cache_dir", "configure", "default_dir", "unwritable", "use"]
