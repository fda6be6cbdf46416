"""The committed archive of the last full run (paper/results/) and the README generated from it:
in sync with the claims file, and no result number typed by hand.
(Writing an archive and verifying a rerun against it: tests/test_workflow.py.)"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from mncrl import archive as arch
from mncrl import claims as cl
from mncrl import config as config_mod
from mncrl import provenance

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


def test_archive_matches_the_config_it_claims():
    manifest = json.loads((ARCHIVE / "manifest.json").read_text())
    config = config_mod.load(ROOT / "config/config.yaml")
    assert manifest["config_hash"] == provenance.config_hash(config), (
        "config changed since the archive (make archive, or say why the numbers cannot change)"
    )
    verify = config_mod.load(ROOT / "config/config.yaml", ROOT / "config/verify.yaml")
    assert provenance.config_hash(verify) == manifest["config_hash"]


def test_archived_verdicts_are_what_the_claims_file_says_today():
    """claims.json in the archive = the current claims file evaluated on the archived rows
    (after editing claims.yaml: python -m mncrl.archive claims)."""
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


def test_readme_summary_is_generated_from_the_archive():
    text = README.read_text()
    assert arch.splice_readme(text, arch.readme_block(ARCHIVE)) == text, (
        "README claims summary is stale: python -m mncrl.archive readme"
    )


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
