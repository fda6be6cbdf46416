"""Where a result comes from: the commit, a hash of the config that determines the numbers,
and the platform. Stamped into the claims report and the archive's manifest.

:func:`config_hash` hashes the whole config (every experiment); :func:`experiment_hashes`
hashes, per experiment, only what determines that experiment's numbers, so that the archive
stays valid for an experiment when another one is added or changed.
"""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
from collections.abc import Mapping
from pathlib import Path

#: The config keys that determine the numbers (paths and captions do not).
HASHED_KEYS = ("scenarios", "estimators", "experiments", "headline_metric", "max_batch_mb")


def _git(args: list[str], cwd: str | Path) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, check=True, timeout=30
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def git_commit(cwd: str | Path = ".") -> str:
    """HEAD's hash, ``-dirty`` appended when tracked files differ from it; ``unknown`` outside
    a git checkout."""
    head = _git(["rev-parse", "HEAD"], cwd)
    if not head:
        return "unknown"
    dirty = _git(["status", "--porcelain", "--untracked-files=no"], cwd)
    return head + ("-dirty" if dirty else "")


def _plain(value):
    """Config values as plain JSON data (display names dropped: presentation only)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items() if k != "display"}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _digest(data) -> str:
    """The first 16 hex digits of the SHA-256 of ``data`` as key-sorted, compact JSON."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def config_hash(config: Mapping) -> str:
    """The first 16 hex digits of the SHA-256 of the keys in :data:`HASHED_KEYS` of a
    validated config (defaults filled), as key-sorted JSON."""
    return _digest({k: _plain(config.get(k)) for k in HASHED_KEYS})


def experiment_inputs(config: Mapping, name: str) -> dict:
    """Everything in a validated config (defaults filled) that determines the numbers of
    experiment ``name``: its block, the base scenario it names, the entries of the estimator
    labels it lists (in its order; display names dropped), ``headline_metric`` and
    ``max_batch_mb``. Other experiments, scenarios, estimators, paths and figures do not
    enter."""
    experiments = config["experiments"]
    if name not in experiments:
        raise KeyError(f"unknown experiment '{name}'")
    block = experiments[name]
    scenario = block.get("scenario")  # an extrapolation block carries its own scenario
    return {
        "experiment": _plain(block),
        "scenario": {scenario: _plain(config["scenarios"].get(scenario))} if scenario else {},
        "estimators": [
            [label, _plain(config["estimators"].get(label))]
            for label in block.get("estimators", [])
        ],
        "headline_metric": _plain(config.get("headline_metric")),
        "max_batch_mb": _plain(config.get("max_batch_mb")),
    }


def experiment_hashes(config: Mapping) -> dict[str, str]:
    """Experiment name -> hash (16 hex digits, as :func:`config_hash`) of
    :func:`experiment_inputs`, for every experiment of a validated config."""
    return {name: _digest(experiment_inputs(config, name)) for name in config["experiments"]}


def platform_info() -> dict:
    """The platform a run happened on (the numbers are bit-identical only on the same one)."""
    from importlib import metadata

    versions = {}
    for package in ("jax", "jaxlib", "numpy", "scipy", "scikit-learn", "pandas", "snakemake"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "machine": platform.machine(),
        "system": platform.system(),
        "python": platform.python_version(),
        "processor": platform.processor() or platform.machine(),
        "packages": versions,
    }
