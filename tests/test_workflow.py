"""Real Snakemake runs of config/smoke.yaml in temporary copies of the workflow.

One full run (cells, tables, figures, claims, report) is shared by the module; two more runs
check determinism (--cores 1 vs --cores 2 give bit-identical metrics tables) and recovery
(a run killed with SIGKILL mid-way, then resumed, ends with the same tables and no partial
files). Everything runs on the smoke configuration (~1-2 minutes per run on 2 cores).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from mncrl import config as config_mod
from mncrl import experiments as ex
from mncrl.experiments import coverage_tables as ctab
from mncrl.simulation import Scenario

pytestmark = [pytest.mark.workflow, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
SMOKE = ["--configfile", "config/smoke.yaml"]
OUT = "results/smoke"
ITEMS = ("Snakefile", "rules", "config", "envs", "profiles", "figures", "paper")


def workflow_copy(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for item in ITEMS:
        src = ROOT / item
        if src.is_dir():
            shutil.copytree(
                src,
                dest / item,
                ignore=shutil.ignore_patterns(
                    "*.pdf", "*.png", "*.md", "__pycache__", ".ipynb_checkpoints"
                ),
            )
        else:
            shutil.copy(src, dest / item)
    shutil.copy(ROOT / "paper/claims.yaml", dest / "paper/claims.yaml")
    return dest


def snakemake(cwd: Path, *args, timeout=600, check=True):
    proc = subprocess.run(
        [SNAKEMAKE, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"snakemake {' '.join(args)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        )
    return proc


SMOKE_CONFIG = config_mod.load(ROOT / "config/config.yaml", ROOT / "config/smoke.yaml")
PAPER = ["fig2a", "fig2b", "fig2c", "table1", "fig4"]  # the paper's experiments (this DAG)


def experiments() -> list[str]:
    """Every configured experiment (extensions such as `coverage` included)."""
    return list(yaml.safe_load((ROOT / "config/config.yaml").read_text())["experiments"])


def metrics_tables(wf: Path, names=None) -> dict[str, pd.DataFrame]:
    out = {}
    for name in names or experiments():
        df = pd.read_csv(wf / OUT / name / "metrics.csv")
        out[name] = df.drop(columns=["seconds"])
    return out


def assert_same_tables(a: dict, b: dict):
    assert a.keys() == b.keys()
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name], check_exact=True, obj=name)


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    wf = workflow_copy(tmp_path_factory.mktemp("smoke-a"))
    start = time.perf_counter()
    proc = snakemake(wf, *SMOKE, "--cores", "2")
    elapsed = time.perf_counter() - start
    print(f"\nsmoke run (--cores 2, whole DAG): {elapsed:.1f} s")
    return wf, proc, elapsed


def test_smoke_run_produces_every_output(smoke_run):
    wf, proc, elapsed = smoke_run
    figures = yaml.safe_load((ROOT / "config/config.yaml").read_text())["figures"]
    for name in figures:
        for ext in ("pdf", "png", "md"):
            path = wf / OUT / "figures" / f"{name}.{ext}"
            assert path.stat().st_size > 100, path
        nb = json.loads((wf / OUT / "notebooks" / f"{name}.ipynb").read_text())
        assert not nb["metadata"]["papermill"].get("exception")
        assert any("parameters" in c["metadata"].get("tags", []) for c in nb["cells"])
        assert any("injected-parameters" in c["metadata"].get("tags", []) for c in nb["cells"])
    # smoke figures never overwrite the paper's figures
    assert not list((wf / "figures").glob("*.png"))
    tables = metrics_tables(wf)
    smoke = yaml.safe_load((ROOT / "config/smoke.yaml").read_text())
    for name in PAPER:
        df = tables[name]
        assert set(df["seed"]) == set(smoke["experiments"][name]["seeds"])
        assert (df["status"] == "ok").all(), df[df["status"] != "ok"]
        assert df["value"].notna().all()
    assert set(tables["fig2a"]["d"]) == {3, 5}
    assert set(tables["fig4"]["mixing_seed"]) == {1, 2}
    assert set(tables["table1"]["mechanism"]) == {"scm1", "scm2"}
    assert set(tables["fig2c"]["estimator"]) == {"sv-paper", "sv-best", "subspace"}
    assert set(tables["fig2a"]["estimator"]) == {
        "sv-paper",
        "icrl",
        "icrl-reference",
        "ica",
        "sv-best",
        "subspace",
    }
    sub = tables["fig2a"][
        (tables["fig2a"]["estimator"] == "subspace") & (tables["fig2a"]["metric"] == "mcc")
    ]
    assert sub["value"].min() > 0.999
    # claims: every claim evaluated; those about cells the smoke config lacks have no data
    claims = json.loads((wf / OUT / "claims.json").read_text())
    n_claims = len(yaml.safe_load((ROOT / "paper/claims.yaml").read_text())["claims"])
    assert len(claims["claims"]) == n_claims
    verdicts = {c["id"]: c["verdict"] for c in claims["claims"]}
    assert verdicts["fig2a-sv-paper-d30"] == "no data"
    assert verdicts["fig2a-icrl-d3"] != "no data"
    report = (wf / OUT / "claims-report.md").read_text()
    assert "## fig2a" in report and "Tolerance rule" in report
    # logs and benchmarks for every job (one estimate rule for every kind's cells)
    n_cells = sum(len(ex.cells(SMOKE_CONFIG, name)) for name in experiments())
    assert len(list((wf / OUT / "benchmarks" / "estimate").rglob("*.tsv"))) == n_cells
    for name in ("phase", "designs"):
        assert len(pd.read_csv(wf / OUT / "coverage" / f"{name}.csv")) > 0
    # the noise block (ours): both levels, every fit recorded with its outcome, never dropped
    for name in ("noise-sensor", "noise-linear"):
        df = tables[name]
        assert set(df["obs_noise_relative"]) == {0.0, 0.01}
        per_fit = df.groupby(["cell", "seed", "estimator"])["metric"].apply(set)
        assert len(per_fit) == 2 * 4 and all({"refused", "failed"} <= m for m in per_fit)
        outcome = df[df["metric"].isin(["refused", "failed"])]
        answered = outcome.groupby(["cell", "seed", "estimator"])["value"].sum() == 0
        ok = df.groupby(["cell", "seed", "estimator"])["status"].first() == "ok"
        assert answered.equals(ok)
    assert set(tables["noise-sensor"]["observation"]) == {"light-tunnel"}


FIXTURE = ROOT / "tests/fixtures/smoke"


def fixture_columns(table: pd.DataFrame, old: pd.DataFrame, name: str) -> pd.DataFrame:
    """The fixture's columns of a smoke table, in the fixture's order. Any other column must be
    a scenario key added since the fixture was written, at its default on every row (the rows
    are the same scenarios), e.g. ``observation`` and ``obs_noise_relative``."""
    defaults = Scenario().to_dict()
    for column in (c for c in table.columns if c not in old.columns):
        assert column in defaults, (name, column)
        values, default = table[column], defaults[column]
        assert values.isna().all() if default is None else (values == default).all(), column
    assert [c for c in table.columns if c in old.columns] == list(old.columns), name
    return table[list(old.columns)]


def test_smoke_matches_fixture(smoke_run):
    """Every number of the smoke run equals the fixture written before the engine refactor
    (tests/fixtures/smoke/README.md): metrics tables, phase table, and the claims' verdicts,
    numbers and rendered note fields. Rows of ``mcc_spearman`` (no longer recorded by
    default), the claims' prose and their provenance stamp (the commit) are not compared."""
    wf, _, _ = smoke_run
    for name, table in metrics_tables(wf).items():
        old = pd.read_csv(FIXTURE / f"{name}.csv")
        old = old[old["metric"] != "mcc_spearman"].reset_index(drop=True)
        table = fixture_columns(table, old, name)
        pd.testing.assert_frame_equal(table, old, check_exact=True, check_dtype=False, obj=name)
    phase = pd.read_csv(wf / OUT / "coverage" / "phase.csv")
    old = pd.read_csv(FIXTURE / "coverage-phase.csv")
    pd.testing.assert_frame_equal(
        phase[list(old.columns)], old, check_exact=True, check_dtype=False, obj="phase"
    )
    new_claims = json.loads((wf / OUT / "claims.json").read_text())
    old_claims = json.loads((FIXTURE / "claims.json").read_text())
    assert new_claims["summary"] == old_claims["summary"]
    assert len(new_claims["claims"]) == len(old_claims["claims"])
    assert new_claims["fields"] == old_claims["fields"]
    numbers = ("id", "verdict", "ours", "detail")
    for new, old in zip(new_claims["claims"], old_claims["claims"], strict=True):
        assert {k: new[k] for k in numbers} == {k: old[k] for k in numbers}, new["id"]


def test_archive_of_a_run_verifies_and_catches_a_changed_number(smoke_run, tmp_path):
    """`make archive` / `make verify` on the smoke run: the archive reproduces its own claims,
    a rerun's tables compare identical, and one changed digit is reported."""
    from mncrl import archive as arch
    from mncrl import provenance

    wf, _, _ = smoke_run
    config = config_mod.load(wf / "config/config.yaml", wf / "config/smoke.yaml")
    config["results_dir"] = str(wf / OUT)
    claims = wf / "paper/claims.yaml"
    archive = tmp_path / "archive"
    manifest = arch.write(config, archive, claims, {"wall_seconds": 90.0, "cores": 2})
    assert {"claims.json", "claims-inputs.csv", "manifest.json", "summary/fig2a.csv"} <= set(
        manifest["files"]
    )
    assert arch.compare(config, archive, claims) == []
    archived = json.loads((archive / "claims.json").read_text())
    run = json.loads((wf / OUT / "claims.json").read_text())
    assert archived["summary"] == run["summary"] and archived["fields"] == run["fields"]
    assert "90.0" not in arch.readme_block(archive) and "2 min" in arch.readme_block(archive)
    summary = pd.read_csv(archive / "summary/fig2a.csv")
    summary.loc[3, "mean"] += 1e-9
    summary.to_csv(archive / "summary/fig2a.csv", index=False)
    diffs = arch.compare(config, archive, claims)
    assert len(diffs) == 1 and "summary/fig2a.csv" in diffs[0] and "'mean'" in diffs[0]
    assert arch.compare(config, archive, claims, rtol=1e-6) == []
    assert arch.compare(config, archive, claims, experiments=["fig2b", "coverage"]) == []
    other = {**config, "max_batch_mb": config["max_batch_mb"] + 1}
    diffs = arch.compare(other, archive, claims)
    assert len(diffs) == len(config["experiments"])
    assert all("changed since the archive" in d for d in diffs)
    assert manifest["experiment_hashes"] == provenance.experiment_hashes(config)


def test_archive_is_valid_per_experiment(smoke_run, tmp_path):
    """An archive without the noise experiments: their claims are pending (not evaluated, not
    "no data"), listed in the README block, and neither they nor the config additions that
    introduced them make the archived experiments differ."""
    import copy

    from mncrl import archive as arch
    from mncrl import claims as cl

    wf, _, _ = smoke_run
    config = config_mod.load(wf / "config/config.yaml", wf / "config/smoke.yaml")
    config["results_dir"] = str(wf / OUT)
    claims = wf / "paper/claims.yaml"
    noise = [n for n in config["experiments"] if n.startswith("noise-")]
    assert noise
    older = {
        **config,
        "experiments": {n: b for n, b in config["experiments"].items() if n not in noise},
    }
    archive = tmp_path / "archive"
    manifest = arch.write(older, archive, claims, {"wall_seconds": 90.0, "cores": 2})
    assert set(manifest["experiment_hashes"]) == set(older["experiments"])
    stored = json.loads((archive / "claims.json").read_text())
    header, all_claims = cl.load_claims(claims)
    waiting = [c for c in all_claims if c.experiment in noise]
    assert waiting and len(stored["claims"]) == len(all_claims) - len(waiting)
    run = json.loads((wf / OUT / "claims.json").read_text())  # every claim, every experiment
    pending_ids = {c.id for c in waiting}
    assert {c["id"]: c["verdict"] for c in stored["claims"]} == {
        c["id"]: c["verdict"] for c in run["claims"] if c["id"] not in pending_ids
    }
    archived_fields = [n for n, f in header["fields"].items() if not set(f.experiment) & set(noise)]
    assert stored["fields"] == {n: run["fields"][n] for n in archived_fields}
    assert arch.pending(archive, claims, config) == (noise, waiting)
    block = arch.readme_block(archive, claims, config)
    assert f"Not yet archived: {', '.join(noise)} ({len(waiting)} claims)" in block
    assert arch.compare(config, archive, claims) == []
    assert "not in the archive" in arch.compare(config, archive, claims, experiments=noise)[0]
    changed = copy.deepcopy(config)
    changed["estimators"]["icrl-reference"]["preset"] = "default"
    diffs = arch.compare(changed, archive, claims)
    assert len(diffs) == 1 and "experiment fig2a changed since the archive" in diffs[0]
    assert "Changed since the archive" in arch.readme_block(archive, claims, changed)


def test_smoke_coverage_part(smoke_run):
    """The coverage part of the smoke run (the ``coverage`` target, which the run leaves with
    nothing to do): the cell tables, metrics (with summary rows), phase and design tables and
    the three figures."""
    wf, _, _ = smoke_run
    proc = snakemake(wf, *SMOKE, "-n", "--cores", "2", "coverage")
    assert "Nothing to be done" in proc.stdout + proc.stderr
    out = wf / OUT
    smoke = SMOKE_CONFIG["experiments"]["coverage"]
    for cell in ("d-6_K-6", "d-6_K-12", "d-6_structured"):
        assert (out / "coverage/cells" / f"{cell}.csv").stat().st_size > 0
        assert (out / "benchmarks/estimate/coverage" / f"{cell}.tsv").exists()
    table = pd.read_csv(out / "coverage/metrics.csv")
    problems = table[table["level"] == "problem"]
    assert set(problems["d"]) == {6} and set(problems["seed"]) == set(smoke["seeds"])
    assert set(problems["estimator"]) == set(smoke["estimators"])
    assert set(problems["status"]) <= {"ok", "NotIdentifiableError", "ConvergenceError"}
    sub = ctab.problems_wide(problems[problems["estimator"] == "subspace"])
    assert (sub["amari"][sub["a4_satisfied"]] <= 1e-3).all()
    assert (sub["not_identifiable"][~sub["a4_satisfied"]] == 1).all()
    summary = table[table["level"] == "summary"]
    assert {"rate_recovered_a4", "rate_reported_not_identifiable"} <= set(summary["metric"])
    phase = pd.read_csv(out / "coverage/phase.csv")
    assert set(phase["K"].dropna()) >= {6, 12} and "a4_probability" in phase.columns
    designs = pd.read_csv(out / "coverage/designs.csv")
    assert len(designs) == 2 * 5 * 2 + 2
    for name in ("coverage_phase", "coverage_sparsity", "coverage_targets"):
        for ext in ("pdf", "png", "md"):
            assert (out / "figures" / f"{name}.{ext}").stat().st_size > 100
        assert (out / "notebooks" / f"{name}.ipynb").exists()


def test_rerun_has_nothing_to_do(smoke_run):
    wf, _, _ = smoke_run
    proc = snakemake(wf, *SMOKE, "-n", "--cores", "2")
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_report_has_every_figure(smoke_run):
    wf, _, _ = smoke_run
    snakemake(wf, *SMOKE, "--report", "report.html")
    html = (wf / "report.html").read_text(errors="replace")
    for name in ("fig1", "fig2a", "fig2b", "fig2c", "table1", "fig3", "fig4", "noise"):
        assert f"{name}.png" in html
    assert "Example 1 of the paper" in html  # a caption from config.yaml


#: One experiment per engine path for the reruns below (the whole smoke DAG again would be
#: minutes of the suite): the paper's estimator on the grid kind (minibatch SGD, the most
#: thread-sensitive fit), the sensor-model observation path, the peers' estimators, and the
#: coverage, extrapolation and climate kinds. Every other experiment is one of these kinds
#: with another config.
RERUN = ["fig2a", "noise-sensor", "peers", "coverage", "extrapolation", "climate"]


def rerun_targets() -> list[str]:
    return [f"{OUT}/{name}/metrics.csv" for name in RERUN]


def test_cores_1_gives_identical_tables(smoke_run, tmp_path):
    wf_a, _, _ = smoke_run
    wf_b = workflow_copy(tmp_path / "smoke-b")
    snakemake(wf_b, *SMOKE, "--cores", "1", *rerun_targets())
    assert_same_tables(metrics_tables(wf_a, RERUN), metrics_tables(wf_b, RERUN))


def test_killed_run_resumes_to_identical_tables(smoke_run, tmp_path):
    wf_a, _, _ = smoke_run
    wf_c = workflow_copy(tmp_path / "smoke-c")
    proc = subprocess.Popen(
        [SNAKEMAKE, *SMOKE, "--cores", "2", *rerun_targets()],
        cwd=wf_c,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.time() + 300
    try:
        while time.time() < deadline and proc.poll() is None:
            if list((wf_c / OUT).glob("*/cells/*.csv")):
                break
            time.sleep(0.2)
        assert proc.poll() is None, "the run finished before it could be interrupted"
        os.killpg(proc.pid, signal.SIGKILL)  # the snakemake process and its running jobs
    finally:
        proc.wait(timeout=60)
    done = list((wf_c / OUT).glob("*/metrics.csv"))
    assert len(done) < len(RERUN)  # really interrupted mid-way
    snakemake(wf_c, *SMOKE, "--unlock")
    proc = snakemake(wf_c, *SMOKE, "--cores", "2", *rerun_targets())
    assert_same_tables(metrics_tables(wf_a, RERUN), metrics_tables(wf_c, RERUN))
    stray = [p for p in (wf_c / OUT).rglob(".*") if p.is_file()]
    assert stray == [], stray
    for table in (wf_c / OUT).glob("*/cells/*.csv"):
        assert len(pd.read_csv(table)) > 0


def test_dry_run_of_the_paper_config(tmp_path):
    wf = workflow_copy(tmp_path / "dry")
    proc = snakemake(wf, "-n", "--cores", "2")
    stats = {k: int(v) for k, v in re.findall(r"^(\w+)\s+(\d+)$", proc.stdout, flags=re.M)}
    figures = yaml.safe_load((ROOT / "config/config.yaml").read_text())["figures"]
    # the paper's grids: 4 + 6 + 5 + 2 + 16 cells, then the extensions' cells (same rule)
    config = config_mod.load(ROOT / "config/config.yaml")
    cells = {name: len(ex.cells(config, name)) for name in experiments()}
    points = {name: len({str(c.point) for c in ex.cells(config, name)}) for name in PAPER}
    assert [points[name] for name in PAPER] == [4, 6, 5, 2, 16]
    # the d = 30 cells (fig2a: 1, fig4: 4) run as one job per seed (5 seeds)
    assert [cells[name] for name in PAPER] == [4 + 4, 6, 5, 2, 16 + 4 * 4]
    assert stats["estimate"] == sum(cells.values()) and stats["aggregate"] == len(cells)
    assert stats["derived_table"] == sum(len(ex.derived_tables(config, n)) for n in cells)
    assert stats["figure"] == len(figures) and stats["claims"] == 1 and stats["all"] == 1
    assert stats["total"] == sum(v for k, v in stats.items() if k != "total")
    claims = snakemake(wf, "-n", "--cores", "2", "claims")
    assert "figure" not in dict(re.findall(r"^(\w+)\s+(\d+)$", claims.stdout, flags=re.M))


def test_lint_is_clean(tmp_path):
    wf = workflow_copy(tmp_path / "lint")
    proc = snakemake(wf, "--lint", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "Congratulations" in out, out
