"""Thread budgets: BLAS for thin products, XLA for scheduled jobs.

The lowest layer with :mod:`mncrl.errors`: the estimators, the metrics and the simulator use it,
it uses nothing of the package.
"""

from __future__ import annotations

import contextlib
import os


def single_threaded_blas():
    """Context limiting BLAS to one thread.

    Products of tall, thin blocks (n x m, m <= ~100) gain little from threads, and
    multi-threaded OpenBLAS busy-waits and slows down 5-50x when the cores are shared (parallel
    workflow jobs, XLA's own threads). A no-op without threadpoolctl (scikit-learn brings it).
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - scikit-learn depends on threadpoolctl
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def limit_xla_threads() -> None:
    """Make XLA respect the thread budget a scheduler gives through ``OMP_NUM_THREADS``.

    Snakemake sets ``OMP_NUM_THREADS`` (and the BLAS variables) to a job's ``threads``; XLA's
    CPU backend ignores them and starts one thread per core. With a budget of one thread its
    intra-op thread pool is switched off (call this before jax is imported) so that parallel
    jobs do not oversubscribe the cores. An explicit ``XLA_FLAGS`` is left alone.
    """
    if os.environ.get("OMP_NUM_THREADS") == "1" and "XLA_FLAGS" not in os.environ:
        os.environ["XLA_FLAGS"] = (
            "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
        )


__all__ = ["limit_xla_threads", "single_threaded_blas"]
