"""The committed archive of the last full run (paper/results/) and the README generated from it:
in sync with the claims file, and no result number typed by hand.
(Writing an archive and verifying a rerun against it: tests/test_workflow.py.)"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest

from mncrl import archive as arch
from mncrl import claims as cl
from mncrl import config as config_mod
from mncrl import provenance
from mncrl.errors import MncrlError

ROOT = Path(__file__).resolve().parents[1]
ARCHIVE = ROOT / "paper/results"
README = ROOT / "README.md"

#: A metric-like number (0.xx, 1.00) that is not a parameter (``p = 0.75``, ``MCC >= 0.99``).
TYPED_RESULT = re.compile(r"(?<![=<>≤≥\w.])(?<![=<>≤≥] )(?:0\.\d+|1\.0+)(?![\d.])")


def test_archive_files_are_small_text():
    manifest = json.loads((ARCHIVE / "manifest.json").read_text())
    for name in manifest["files"]:
        path = ARCHIVE / name
        assert path.suffix in (".csv", ".json", ".md"), name
        assert path.stat().st_size < 2_000_000, name


def _config():
    return config_mod.load(ROOT / "config/config.yaml")


def test_archive_matches_the_config_it_claims():
    """Valid per experiment: every archived experiment still has the hash of the config it was
    run with (its block, scenario, estimators, headline_metric, max_batch_mb); experiments
    added since are pending (reported in the README block), not a reason to rerun the rest."""
    manifest = json.loads((ARCHIVE / "manifest.json").read_text())
    archived = manifest["experiment_hashes"]
    today = provenance.experiment_hashes(_config())
    for name, value in archived.items():
        assert today.get(name) == value, (
            f"experiment {name} changed since the archive: make archive"
        )
    verify = config_mod.load(ROOT / "config/config.yaml", ROOT / "config/verify.yaml")
    assert provenance.experiment_hashes(verify) == today
    names, _ = arch.pending(ARCHIVE, ROOT / "paper/claims.yaml", _config())
    assert names == [n for n in today if n not in archived]


def test_archived_experiment_hashes_are_those_of_the_archived_commit():
    """The manifest's experiment hashes are what the config of the archived commit gives
    (python -m mncrl.archive rehash --from-commit): that config reproduces config_hash."""
    manifest = json.loads((ARCHIVE / "manifest.json").read_text())
    try:
        old = arch.config_at_commit(manifest["commit"], ROOT)
    except MncrlError as exc:  # a shallow clone without that commit
        pytest.skip(str(exc))
    assert provenance.config_hash(old) == manifest["config_hash"]
    assert provenance.experiment_hashes(old) == manifest["experiment_hashes"]


def test_experiment_hash_depends_only_on_what_the_experiment_reads():
    config = _config()
    base = provenance.experiment_hashes(config)
    # adding a scenario, an estimator, an experiment, or renaming: nothing archived changes
    more = copy.deepcopy(config)
    more["scenarios"]["extra"] = dict(more["scenarios"]["paper-linear"], d=3)
    more["estimators"]["extra"] = {**more["estimators"]["icrl"], "display": "X"}
    more["experiments"]["extra"] = {**more["experiments"]["fig2a"], "scenario": "extra"}
    more["estimators"]["icrl"]["display"] = "renamed"
    more["results_dir"] = "elsewhere"
    hashes = provenance.experiment_hashes(more)
    assert {n: hashes[n] for n in base} == base and hashes["extra"] != base["fig2a"]
    # changing an estimator changes exactly the experiments that use it
    changed = copy.deepcopy(config)
    changed["estimators"]["icrl-reference"]["overrides"] = {"x": 1}
    hashes = provenance.experiment_hashes(changed)
    users = {
        n for n, b in config["experiments"].items() if "icrl-reference" in b.get("estimators", [])
    }
    assert users and {n for n in base if hashes[n] != base[n]} == users
    # changing a scenario: exactly the experiments built on it; max_batch_mb: all of them
    changed = copy.deepcopy(config)
    changed["scenarios"]["paper-nonlinear"]["noise_std"] = 0.2
    hashes = provenance.experiment_hashes(changed)
    users = {n for n, b in config["experiments"].items() if b.get("scenario") == "paper-nonlinear"}
    assert users and {n for n in base if hashes[n] != base[n]} == users
    changed = {**config, "max_batch_mb": config["max_batch_mb"] + 1}
    assert all(v != base[n] for n, v in provenance.experiment_hashes(changed).items())


def test_archived_verdicts_are_what_the_claims_file_says_today():
    """claims.json in the archive = the current claims file evaluated on the archived rows, for
    the claims whose experiments are all archived (after editing claims.yaml: python -m
    mncrl.archive claims); the other claims are pending and listed in the README block."""
    stored = json.loads((ARCHIVE / "claims.json").read_text())
    header, claims, verdicts, values = arch.evaluate_archive(ARCHIVE, ROOT / "paper/claims.yaml")
    fresh = cl.to_json(header, claims, verdicts, values, stored["provenance"])
    fresh = json.loads(json.dumps(fresh, default=float))
    assert fresh["summary"] == stored["summary"]
    assert fresh["fields"] == stored["fields"]
    for new, old in zip(fresh["claims"], stored["claims"], strict=True):
        assert new["id"] == old["id"] and new["verdict"] == old["verdict"], new["id"]
        assert new["rendered"] == old["rendered"], new["id"]
    assert all(v is not None for v in stored["fields"].values()), "a note field has no data"
    assert not any(c["verdict"] == "no data" for c in stored["claims"])
    archived = set(json.loads((ARCHIVE / "manifest.json").read_text())["experiment_hashes"])
    _, all_claims = cl.load_claims(ROOT / "paper/claims.yaml")
    _, waiting = arch.pending(ARCHIVE, ROOT / "paper/claims.yaml", _config())
    assert len(claims) + len(waiting) == len(all_claims)
    assert all(c.experiment in archived for c in claims)
    assert all(not arch.claim_experiments(c, header["fields"]) <= archived for c in waiting)


def test_readme_summary_is_generated_from_the_archive():
    text = README.read_text()
    block = arch.readme_block(ARCHIVE, ROOT / "paper/claims.yaml", _config())
    assert arch.splice_readme(text, block) == text, (
        "README claims summary is stale: python -m mncrl.archive readme"
    )
    names, waiting = arch.pending(ARCHIVE, ROOT / "paper/claims.yaml", _config())
    if names:
        assert f"Not yet archived: {', '.join(names)} ({len(waiting)} claim" in block


def _outside_generated_block(text: str) -> str:
    head, rest = text.split(arch.README_BEGIN, 1)
    return head + rest.split(arch.README_END, 1)[1]


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("the paper's method gets 0.67 on atomic designs", ["0.67"]),
        ("MCC 1.00 at every n", ["1.00"]),
        ("p = 0.75, MCC >= 0.999, Amari <= 1e-3, jax==0.10.2, Python 3.11", []),
    ],
)
def test_typed_result_detector(text, found):
    assert TYPED_RESULT.findall(text) == found


def test_no_hand_typed_result_number_in_the_readme():
    found = TYPED_RESULT.findall(_outside_generated_block(README.read_text()))
    assert not found, f"README types result numbers {found}: generate them from the archive"
