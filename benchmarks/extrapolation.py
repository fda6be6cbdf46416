"""Intervention extrapolation: seconds per seed, and how the overlap (and every method's error)
depends on the action effect size (issue #14; docs/extrapolation.md).

    .venv/bin/python benchmarks/extrapolation.py                      # effect 0.5 and 1.0
    .venv/bin/python benchmarks/extrapolation.py --effect 0.25 0.5 1.0 --seeds 10
    .venv/bin/python benchmarks/extrapolation.py --vmap               # also time jax.vmap

Table 1: per effect size, the mean over seeds of the control-function overlap at the support's
edge, 1 and 2 half-widths beyond it, and each method's MSE outside the support (tanh outcome,
confounding 0.9, n = 10000, the block's other settings). Table 2: seconds per seed of
``mncrl.extrapolate.all_methods_batch`` (every method, ``lax.map`` over seeds, compiled once;
median of ``--repeats`` calls after the compiling one) and, with ``--vmap``, the same program
with ``jax.vmap`` instead, in the same run (stopped after ``--vmap-timeout`` seconds: XLA's CPU
batched eigen-decompositions and least squares made it stall).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import time
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from mncrl import extrapolate as ex
from mncrl.actions import ActionScenario, simulate_actions

HP = {"landmarks": 300, "length_scale": 1.0, "eval_rows": 2000, "draws": 4}


def batch_inputs(scenario: ActionScenario, seeds: list[int]):
    data = [simulate_actions(scenario, s) for s in seeds]
    f32 = lambda xs: jnp.asarray(np.stack(xs), dtype=jnp.float32)  # noqa: E731
    args = (
        jax.random.split(jax.random.key(0), len(seeds)),
        f32([d.X for d in data]),
        f32([d.Z for d in data]),
        f32([d.A for d in data]),
        f32([d.Y for d in data]),
        f32([d.a for d in data]),
    )
    return data, args


def run_batch(args, d: int):
    out = ex.all_methods_batch(
        *args, d, HP["landmarks"], HP["length_scale"], HP["eval_rows"], HP["draws"]
    )
    return {k: np.asarray(v) for k, v in out.items()}


def vmapped(args, d: int):
    one = partial(ex.all_methods, latent_dim=d, **HP)
    out = jax.jit(jax.vmap(one))(*args)
    return {k: np.asarray(v) for k, v in out.items()}


def _vmap_child(n: int, seeds: int, queue) -> None:
    s = ActionScenario(n=n, effect=0.5, confounding=0.9)
    _, args = batch_inputs(s, list(range(seeds)))
    vmapped(args, s.d)  # compile
    t = time.perf_counter()
    vmapped(args, s.d)
    queue.put((time.perf_counter() - t) / seeds)


def effect_table(effects: list[float], seeds: int, n: int) -> None:
    print(f"tanh outcome, confounding 0.9, n = {n}, {seeds} seeds (mean over seeds)")
    print("| effect | overlap at |s| = 1 / 2 / 3 | " + " | ".join(ex.METHODS) + " |")
    print("|---|---|" + "---|" * len(ex.METHODS))
    for effect in effects:
        s = ActionScenario(n=n, effect=effect, confounding=0.9)
        data, args = batch_inputs(s, list(range(seeds)))
        out = run_batch(args, s.d)
        pos = data[0].s
        truth = np.stack([d.truth for d in data])
        outside = np.abs(pos) > 1
        ov = out["overlap"].mean(axis=0)
        at = [ov[np.isclose(np.abs(pos), v)].mean() for v in (1.0, 2.0, 3.0)]
        mse = [((out[m] - truth)[:, outside] ** 2).mean() for m in ex.METHODS]
        print(
            f"| {effect:g} | {' / '.join(f'{v:.2f}' for v in at)} | "
            + " | ".join(f"{v:.4f}" for v in mse)
            + " |",
            flush=True,
        )


def timing_table(ns: list[int], seeds: int, repeats: int, vmap: bool, timeout: float) -> None:
    print(f"\nseconds per seed, {seeds} seeds per call, median of {repeats} calls after compiling")
    print("| n | lax.map (s/seed) | vmap (s/seed) |")
    print("|---|---|---|")
    for n in ns:
        s = ActionScenario(n=n, effect=0.5, confounding=0.9)
        _, args = batch_inputs(s, list(range(seeds)))
        run_batch(args, s.d)
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            run_batch(args, s.d)
            times.append((time.perf_counter() - t) / seeds)
        vm = "-"
        if vmap:
            queue = mp.get_context("spawn").Queue()
            child = mp.get_context("spawn").Process(target=_vmap_child, args=(n, seeds, queue))
            child.start()
            child.join(timeout)
            if child.is_alive():
                child.terminate()
                vm = f"> {timeout:g} s (stopped)"
            else:
                vm = f"{queue.get():.3f}"
        print(f"| {n} | {statistics.median(times):.3f} | {vm} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--effect", type=float, nargs="+", default=[0.5, 1.0])
    ap.add_argument("--seeds", type=int, default=6)
    ap.add_argument("--n", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--vmap", action="store_true", help="also time jax.vmap (separate process)")
    ap.add_argument("--vmap-timeout", type=float, default=300.0)
    args = ap.parse_args()
    effect_table(args.effect, args.seeds, max(args.n))
    timing_table(args.n, args.seeds, args.repeats, args.vmap, args.vmap_timeout)


if __name__ == "__main__":
    main()
