"""`mncrl check-design`: messages, JSON and exit codes (in-process through mncrl.cli.main)."""

from __future__ import annotations

import io
import json

import pytest

from mncrl.cli import main
from mncrl.interventions import assumption4

BLOCKS = [[0, 1], [0, 1], [2, 3], [2, 3]]


@pytest.fixture
def design_file(tmp_path):
    def write(content, name="design.json"):
        path = tmp_path / name
        path.write_text(content if isinstance(content, str) else json.dumps(content))
        return str(path)

    return write


def test_identifiable_text(design_file, capsys):
    assert main(["check-design", design_file([[0, 1], [0, 2], [1, 2]])]) == 0
    out = capsys.readouterr()
    assert out.out.startswith("identifiable:") and "d = 3" in out.out and out.err == ""


def test_not_identifiable_text(design_file, capsys):
    assert main(["check-design", design_file(BLOCKS)]) == 0
    out = capsys.readouterr().out
    first, *rest = out.splitlines()
    assert first.startswith("not identifiable:") and "(0,1), (1,0), (2,3), (3,2)" in first
    assert "greedy" in out and "satisfies Assumption 4" in rest[-1]
    assert "  [0, 2]" in rest and "  [1, 3]" in rest


def test_json_and_the_proposal_repairs_the_design(design_file, capsys):
    assert main(["check-design", design_file(BLOCKS), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {
        "identifiable",
        "d",
        "n_environments",
        "unseparated",
        "proposed_additions",
        "method",
    } <= set(report)
    assert report["identifiable"] is False and report["d"] == 4 and report["n_environments"] == 4
    assert report["unseparated"] == [[0, 1], [1, 0], [2, 3], [3, 2]]
    assert report["method"] == "greedy"
    repaired = BLOCKS + report["proposed_additions"]
    assert assumption4(repaired, 4).satisfied
    # feeding the repaired design back: identifiable, nothing to add
    assert main(["check-design", design_file(repaired, "fixed.json"), "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["identifiable"] is True and again["proposed_additions"] == []


def test_strict_exit_code(design_file, capsys):
    assert main(["check-design", design_file(BLOCKS), "--strict"]) == 1
    assert main(["check-design", design_file([[0], [1]]), "--strict"]) == 0
    capsys.readouterr()


def test_yaml_and_latent_dim(design_file, capsys):
    path = design_file("- [0]\n- [1]\n- []\n", "design.yaml")
    assert main(["check-design", path, "--latent-dim", "3", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["d"] == 3 and report["n_environments"] == 3 and not report["identifiable"]
    assert [2, 0] in report["unseparated"] and 2 not in report["recoverable_latents"]


def test_stdin(monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("[[0], [1]]"))
    assert main(["check-design", "-"]) == 0
    assert capsys.readouterr().out.startswith("identifiable")


@pytest.mark.parametrize(
    "content, name, message",
    [
        (None, "missing.json", "not found"),
        ("[[0, 1]", "design.json", "not valid JSON"),
        ("{a: [", "design.txt", "not valid JSON or YAML"),
        ("", "design.yaml", "empty file"),
        ({"targets": [[0]]}, "design.json", "expected a list of target lists"),
        ([0, 1], "design.json", "environment 0 must be a list"),
        ([[0, -1]], "design.json", ">= 0"),
        ([[0, 1.5]], "design.json", "must be integers"),
        ([[True]], "design.json", "must be integers"),
        ([[0, 0]], "design.json", "more than once"),
        ([[]], "design.json", "names no latent"),
    ],
)
def test_bad_files(design_file, capsys, content, name, message):
    path = design_file(content, name) if content is not None else str(name)
    assert main(["check-design", path]) == 2
    out = capsys.readouterr()
    assert out.out == ""
    lines = out.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mncrl check-design: error:")
    assert message in lines[0]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--latent-dim", "2"], "out of range for --latent-dim 2"),
        (["--latent-dim", "0"], "integer >= 1"),
        (["--latent-dim", "x"], "integer >= 1"),
    ],
)
def test_bad_latent_dim(design_file, capsys, args, message):
    try:
        code = main(["check-design", design_file([[0, 2]]), *args])
    except SystemExit as exc:  # argparse usage errors exit directly
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
