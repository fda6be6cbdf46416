"""`mncrl simulate`: in-process runs via mncrl.cli.main, plus one run of the installed script."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mncrl import data
from mncrl.cli import build_parser, main
from mncrl.simulation import Scenario, simulate

DOCS = Path(__file__).resolve().parents[1] / "docs" / "simulator.md"


def run(argv):
    """main() returns the exit code; argparse usage errors exit via SystemExit."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


# ------------------------------------------------------------------ success


def test_writes_the_same_data_as_the_library(tmp_path, capsys):
    out = tmp_path / "d.npz"
    code = run(
        [
            "simulate",
            "--out",
            str(out),
            "--d",
            "4",
            "--n",
            "300",
            "--seed",
            "5",
            "--design",
            "random",
            "--design-param",
            "K=6",
            "--design-param",
            "k=2",
            "--intervention",
            "soft",
            "--observational",
            "--mixing",
            "gaussian",
            "--condition",
            "3",
            "--m",
            "6",
            "--obs-noise",
            "0.01",
        ]
    )
    assert code == 0
    assert "wrote" in capsys.readouterr().out
    ds = data.load(out)
    expected = simulate(
        Scenario(
            d=4,
            n=300,
            design="random",
            design_params={"K": 6, "k": 2},
            intervention="soft",
            observational=True,
            mixing="gaussian",
            condition=3.0,
            m=6,
            obs_noise=0.01,
        ),
        5,
    )
    for key in ("X", "env", "Z", "L", "targets"):
        assert np.array_equal(getattr(ds, key), getattr(expected, key)), key
    assert ds.targets.shape == (7, 4)


def test_csv_output(tmp_path):
    out = tmp_path / "sub" / "d.csv"
    assert run(["simulate", "--out", str(out), "--d", "3", "--n", "10"]) == 0
    ds = data.load(out)
    assert ds.X.shape == (30, 3) and ds.n_envs == 3


def test_config_file_with_flag_overrides(tmp_path):
    cfg = tmp_path / "s.yaml"
    cfg.write_text(
        "d: 3\nn: 50\ndesign: custom\ndesign_params:\n  targets: [[0, 1], [2], []]\n"
        "graph: custom\nedges: [[0, 1], [1, 2]]\nintervention: stochastic\n"
    )
    out = tmp_path / "d.npz"
    assert (
        run(
            [
                "simulate",
                "--config",
                str(cfg),
                "--out",
                str(out),
                "--n",
                "40",
                "--shift",
                "2.5",
                "--paired-noise",
                "--noise",
                "laplace",
            ]
        )
        == 0
    )
    ds = data.load(out)
    s = Scenario(
        d=3,
        n=40,
        design="custom",
        design_params={"targets": [[0, 1], [2], []]},
        graph="custom",
        edges=((0, 1), (1, 2)),
        intervention="stochastic",
        shift=2.5,
        paired_noise=True,
        noise="laplace",
    )
    assert np.array_equal(ds.X, simulate(s, 0).X)
    cfg.write_text("d: 3\nn: 20\nobservational: true\npaired_noise: true\n")
    assert (
        run(
            [
                "simulate",
                "--config",
                str(cfg),
                "--out",
                str(out),
                "--no-observational",
                "--no-paired-noise",
            ]
        )
        == 0
    )
    assert np.array_equal(data.load(out).X, simulate(Scenario(d=3, n=20), 0).X)


def test_edges_flag_and_nonlinear(tmp_path):
    out = tmp_path / "e.npz"
    assert (
        run(
            [
                "simulate",
                "--out",
                str(out),
                "--d",
                "3",
                "--n",
                "20",
                "--edges",
                "0-1,0-2",
                "--mechanism",
                "scm1",
                "--design",
                "atomic",
            ]
        )
        == 0
    )
    out2 = tmp_path / "n.npz"
    assert (
        run(
            [
                "simulate",
                "--out",
                str(out2),
                "--n",
                "20",
                "--graph",
                "paper-nonlinear",
                "--mechanism",
                "scm2",
                "--scm2-variant",
                "reference",
                "--dtype",
                "float64",
            ]
        )
        == 0
    )
    assert data.load(out2).X.dtype == np.float64


# ------------------------------------------------------------------ bad input


BAD = [
    (["--d", "0"], "d must be an integer >= 1"),
    (["--p", "1.5"], "p must be a probability in [0, 1]"),
    (["--m", "2", "--d", "3"], "m (observed dimension, 2) must be >= d"),
    (["--design", "random", "--design-param", "K=0"], "K must be an integer >= 1"),
    (["--design", "random", "--design-param", "q=1"], "design 'random' has no parameter 'q'"),
    (["--design-param", "K"], "--design-param expects KEY=VALUE"),
    (["--design-param", "targets=[[0,1"], "cannot parse --design-param targets as YAML"),
    (["--design", "paper-example"], "design 'paper-example' is defined for d = 3"),
    (["--edges", "0-1,1-0"], "cycle"),
    (["--edges", "0_1"], "--edges: cannot read '0_1'"),
    (["--mechanism", "scm2"], "mechanism 'scm2' is defined only on the paper's graph"),
    (
        ["--graph", "paper-nonlinear", "--mechanism", "scm2", "--observational", "--n", "100"],
        "node 2 (Z3 in the paper's 1-based names) in environment 6",
    ),
    (["--noise-std", "0"], "noise_std must be a number > 0"),
    (["--condition", "0.5"], "condition must be a number >= 1"),
    (["--seed", "-1"], "--seed must be a non-negative integer"),
    (["--mixing-seed", "-2"], "mixing_seed must be an integer >= 0"),
    (["--design", "blocks", "--design-param", "size=1"], "size must be an integer >= 2"),
]


@pytest.mark.parametrize("flags,message", BAD, ids=[b[1][:30] for b in BAD])
def test_bad_values_exit_2_with_one_line_and_write_nothing(tmp_path, capsys, flags, message):
    out = tmp_path / "out.npz"
    code = run(["simulate", "--out", str(out), "--n", "50", *flags])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert err.startswith("mncrl simulate: error: ") and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == [], "nothing written, no temp file left"


ARGPARSE_BAD = [
    (["--design", "nope"], "argument --design: invalid choice: 'nope'"),
    (["--d", "three"], "argument --d: invalid int value: 'three'"),
    (["--mixing", "sparse"], "argument --mixing: invalid choice"),
    (["--intervention", "hard"], "argument --intervention: invalid choice"),
    (["--bogus"], "unrecognized arguments: --bogus"),
]


@pytest.mark.parametrize("flags,message", ARGPARSE_BAD)
def test_usage_errors_exit_2(tmp_path, capsys, flags, message):
    out = tmp_path / "out.npz"
    assert run(["simulate", "--out", str(out), *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_missing_out_is_a_usage_error(capsys):
    assert run(["simulate", "--d", "3"]) == 2
    assert "the following arguments are required: --out" in capsys.readouterr().err


@pytest.mark.parametrize(
    "config,message",
    [
        ("d: 3\nedge_prob: 0.2\n", "unknown scenario key 'edge_prob'; allowed keys: d, m, n"),
        ("- 1\n- 2\n", "must contain a mapping of scenario keys, got list"),
        ("d: [1, 2\n", "cannot parse config file"),
        ("d: 3\nmechanism: tanh\n", "mechanism must be one of linear, scm1, scm2; got 'tanh'"),
        ("design_params: 3\n", "design_params must be a mapping"),
    ],
)
def test_bad_config_files(tmp_path, capsys, config, message):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(config)
    out = tmp_path / "out.npz"
    extra = ["--design-param", "k=1"] if "design_params" in config else []
    assert run(["simulate", "--config", str(cfg), "--out", str(out), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not out.exists()


def test_missing_config_and_bad_out(tmp_path, capsys):
    assert (
        run(["simulate", "--config", str(tmp_path / "no.yaml"), "--out", str(tmp_path / "o.npz")])
        == 2
    )
    assert "config file not found" in capsys.readouterr().err
    assert run(["simulate", "--out", str(tmp_path / "o.parquet")]) == 2
    assert "--out must end in .npz or .csv, got 'o.parquet'" in capsys.readouterr().err
    assert run(["simulate", "--out", str(tmp_path)]) == 2
    assert list(tmp_path.iterdir()) == []


def test_existing_output_is_untouched_on_error(tmp_path):
    out = tmp_path / "keep.npz"
    out.write_bytes(b"old")
    assert run(["simulate", "--out", str(out), "--d", "0"]) == 2
    assert out.read_bytes() == b"old"


# ------------------------------------------------------------------ docs


def test_every_flag_is_documented():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices["simulate"]
    flags = {opt for a in sub._actions for opt in a.option_strings if opt.startswith("--")}
    flags.discard("--help")
    documented = set(re.findall(r"`(--[a-z0-9-]+)", DOCS.read_text()))
    assert flags <= documented, sorted(flags - documented)


# ------------------------------------------------------------------ the installed script


def test_installed_script(tmp_path):
    script = shutil.which("mncrl", path=str(Path(sys.executable).parent)) or shutil.which("mncrl")
    assert script, "the mncrl console script is not installed"
    out = tmp_path / "d.npz"
    ok = subprocess.run(
        [script, "simulate", "--out", str(out), "--d", "3", "--n", "20"],
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0, ok.stderr
    assert data.load(out).X.shape == (60, 3)
    bad = subprocess.run(
        [script, "simulate", "--out", str(tmp_path / "x.npz"), "--p", "2"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2
    assert bad.stderr.strip() == (
        "mncrl simulate: error: scenario: p must be a probability in [0, 1], got 2.0"
    )
    assert not (tmp_path / "x.npz").exists()
