"""`mncrl fit` / `mncrl evaluate`: round trip, output file, errors (one line, exit 2, no file),
the compilation cache and what a fit imports and reads."""

import json
import os
import subprocess
import sys
import types
from pathlib import Path

import jax
import numpy as np
import pytest
from jax.experimental.compilation_cache import compilation_cache

from mncrl import cache, estimators
from mncrl.cli import main
from mncrl.cli.fit import parse_overrides
from mncrl.data import Dataset, save
from mncrl.errors import NotIdentifiableError
from mncrl.estimators.base import Estimator

SHORT = ["--preset", "reference", "--set", "epochs=2"]  # a short sparse-variance fit
# ... too short to converge: its latents can be nearly collinear (degenerate), which these tests
# of files, caching and imports allow
FIT = [*SHORT, "--allow-degenerate"]
CACHE_VARS = (
    "MNCRL_CACHE_DIR",
    "JAX_COMPILATION_CACHE_DIR",
    "JAX_ENABLE_COMPILATION_CACHE",
    "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS",
    "XDG_CACHE_HOME",
)
JAX_SETTINGS = (
    "jax_enable_compilation_cache",
    "jax_compilation_cache_dir",
    "jax_persistent_cache_min_compile_time_secs",
)


@pytest.fixture(autouse=True)
def cache_home(tmp_path_factory, monkeypatch):
    """`mncrl fit` in this process sets this process's compilation cache: each test gets its
    own XDG_CACHE_HOME, and the environment and JAX's settings are restored afterwards."""
    for var in CACHE_VARS:
        monkeypatch.delenv(var, raising=False)
    home = tmp_path_factory.mktemp("xdg")
    monkeypatch.setenv("XDG_CACHE_HOME", str(home))
    saved = {name: getattr(jax.config, name) for name in JAX_SETTINGS}
    yield home
    for name, value in saved.items():
        jax.config.update(name, value)
    compilation_cache.reset_cache()


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "data.npz"
    assert (
        main(
            [
                "simulate",
                "--out",
                str(path),
                "--d",
                "3",
                "--n",
                "3000",
                "--seed",
                "1",
                "--observational",
            ]
        )
        == 0
    )
    return path


def _one_error_line(capsys, match):
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert match in lines[0], lines[0]


def test_round_trip_simulate_fit_evaluate(data, tmp_path, capsys):
    out = tmp_path / "fit.npz"
    capsys.readouterr()
    assert main(["fit", str(data), "--seed", "2", "--out", str(out), "--set", "restarts=12"]) == 0
    assert "wrote" in capsys.readouterr().out
    with np.load(out) as f:
        W, Zhat = f["W"], f["Zhat"]
        info = json.loads(f["info_json"].item())
        assert f["estimator"].item() == "sparse-variance" and f["preset"].item() == "best"
        assert f["seed"].item() == 2 and f["latent_dim"].item() == 3
        assert "targets" not in f.files
    with np.load(data) as d:
        X = d["X"]
    assert W.shape == (3, 3) and Zhat.shape == (X.shape[0], 3)
    np.testing.assert_allclose(Zhat, X @ W.astype(np.float32), rtol=1e-4, atol=1e-4)
    assert info["observational_envs"] == [3] and info["hparams"]["restarts"] == 12

    assert main(["evaluate", str(out), str(data)]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert {"mcc", "mcc_paper", "mcc_spearman", "amari", "rows"} <= set(metrics)
    assert metrics["mcc_paper"] > 0.98 and metrics["amari"] < 0.1  # accuracy: other tests
    assert metrics["rows"] == 9000  # the three interventional environments

    assert main(["evaluate", str(out), str(data), "--rows", "observational", "--no-spearman"]) == 0
    obs = json.loads(capsys.readouterr().out)
    assert obs["rows"] == 3000 and "mcc_spearman" not in obs


def test_same_seed_same_output_and_quiet_stderr(data, tmp_path, capsys):
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    capsys.readouterr()
    for out in (a, b):
        main(["fit", str(data), "--estimator", "sparse-variance", "--out", str(out), *FIT])
    assert capsys.readouterr().err == ""  # no progress bar when stderr is not a terminal
    with np.load(a) as fa, np.load(b) as fb:
        assert np.array_equal(fa["W"], fb["W"]) and np.array_equal(fa["Zhat"], fb["Zhat"])


def test_baselines_and_observational_flag(data, tmp_path, capsys):
    out = tmp_path / "ica.npz"
    assert main(["fit", str(data), "--estimator", "ica", "--out", str(out)]) == 0
    with np.load(out) as f:
        assert json.loads(f["info_json"].item())["fitted_on"] == "observational"
    with np.load(data) as d:
        plain = tmp_path / "plain.npz"
        save(Dataset(X=d["X"], env=d["env"]), plain)
    assert (
        main(
            ["fit", str(plain), "--estimator", "ica", "--observational-env", "3", "--out", str(out)]
        )
        == 0
    )
    with np.load(out) as f:
        info = json.loads(f["info_json"].item())
        assert info["fitted_on"] == "observational" and info["observational_envs"] == [3]
    capsys.readouterr()
    assert main(["evaluate", str(out), str(plain)]) == 2
    _one_error_line(capsys, "no ground truth")


def test_csv_input(tmp_path, capsys):
    rng = np.random.default_rng(0)
    Z = rng.standard_normal((600, 2))
    X = Z @ np.array([[2.0, 1.0], [0.5, 3.0]])
    env = np.repeat([0, 1, 2], 200)
    X[env == 1] += 1.0
    path = tmp_path / "data.csv"
    save(Dataset(X=X, env=env), path)
    out = tmp_path / "fit.npz"
    assert (
        main(["fit", str(path), "--estimator", "icrl", "--latent-dim", "2", "--out", str(out)]) == 0
    )
    with np.load(out) as f:
        assert f["W"].shape == (2, 2) and f["Zhat"].shape == (600, 2)


@pytest.mark.parametrize(
    "args,match",
    [
        (["--estimator", "nope"], "unknown estimator 'nope'"),
        (["--preset", "fastest"], "unknown preset 'fastest'"),
        (["--set", "lr"], "expects KEY=VALUE"),
        (["--set", "foo=1"], "unknown hyper-parameter 'foo'"),
        (["--set", "lr=fast"], "lr must be a number"),
        (["--latent-dim", "7"], "latent_dim must be between 1 and m = 3"),
        (["--seed", "-3"], "--seed"),
        (["--observational-env", "9"], "--observational-env 9"),
        (["--set", "lr=1e30", "--set", "steps=50"], "diverged"),
        (["--bootstrap", "-1"], "--bootstrap must be an integer >= 0"),
        (["--block", "5"], "--block needs --bootstrap"),
        (["--bootstrap", "2", "--block", "0"], "--block must be a positive integer"),
        (["--bootstrap", "2", "--block", "5000"], "longer than the smallest environment"),
    ],
)
def test_errors_are_one_line_exit_2_no_file(data, tmp_path, capsys, args, match):
    out = tmp_path / "fit.npz"
    capsys.readouterr()
    assert main(["fit", str(data), "--out", str(out)] + args) == 2
    _one_error_line(capsys, match)
    assert not out.exists() and not list(tmp_path.iterdir())


def test_bad_data_files(tmp_path, capsys):
    out = tmp_path / "fit.npz"
    bad = tmp_path / "nan.npz"
    X = np.random.default_rng(0).standard_normal((30, 2))
    X[3, 1] = np.nan
    np.savez(bad, X=X, env=np.repeat([0, 1, 2], 10))
    few = tmp_path / "few.npz"
    np.savez(few, X=np.ones((5, 3)), env=np.array([0, 0, 1, 1, 1]))
    one = tmp_path / "one.npz"
    np.savez(one, X=np.ones((5, 2)), env=np.zeros(5, dtype=int))
    cases = [
        (bad, "NaN/Inf"),
        (few, "fewer than its 3 features"),
        (one, "at least 2"),
        (tmp_path / "missing.npz", "not found"),
    ]
    for path, match in cases:
        capsys.readouterr()
        assert main(["fit", str(path), "--out", str(out)]) == 2
        _one_error_line(capsys, match)
        assert not out.exists()
    assert main(["fit", str(bad), "--out", str(tmp_path / "fit.txt")]) == 2
    _one_error_line(capsys, "must end in .npz")


@pytest.fixture(scope="module")
def stochastic(tmp_path_factory):
    """Stochastic interventions, same shapes as ``data``'s interventional environments (the
    short sparse-variance fit compiles once): no environment has a zero-variance direction."""
    path = tmp_path_factory.mktemp("cli") / "stochastic.npz"
    args = ["--d", "3", "--n", "3000", "--seed", "1", "--intervention", "stochastic"]
    assert main(["simulate", "--out", str(path), *args]) == 0
    return path


def test_degenerate_fit_is_one_line_exit_2_no_file(stochastic, tmp_path, capsys):
    out = tmp_path / "fit.npz"
    capsys.readouterr()
    assert main(["fit", str(stochastic), "--out", str(out), *SHORT]) == 2
    _one_error_line(capsys, "mncrl fit: error: sparse-variance: degenerate fit: ")
    assert not out.exists() and not list(tmp_path.iterdir())
    capsys.readouterr()
    main(["fit", str(stochastic), "--out", str(out), *SHORT])
    line = capsys.readouterr().err
    assert "near-zero-variance direction" in line and "--allow-degenerate" in line


def test_allow_degenerate_writes_the_diagnosis(stochastic, tmp_path, capsys):
    out = tmp_path / "fit.npz"
    capsys.readouterr()
    assert main(["fit", str(stochastic), "--out", str(out), "--allow-degenerate", *SHORT]) == 0
    printed = capsys.readouterr()
    assert printed.err == ""
    assert printed.out.splitlines()[0].startswith("wrote ")
    assert printed.out.splitlines()[1].startswith("DEGENERATE fit, written because of")
    with np.load(out) as f:
        assert f["degenerate"].item() is True
        info = json.loads(f["info_json"].item())
    assert info["degenerate"] is True and "no_null_direction" in info["diagnosis"]["fired"]
    assert info["diagnosis"]["thresholds"]["do_null_rtol"] == 0.02
    assert info["diagnosis"]["message"] in printed.out


def test_bootstrap_summary_and_output_file(data, tmp_path, capsys):
    out = tmp_path / "fit.npz"
    capsys.readouterr()
    args = ["fit", str(data), "--estimator", "subspace", "--out", str(out), "--bootstrap", "4"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "bootstrap: 4 resamples (i.i.d. rows within each environment, seed 0)" in printed
    assert "4 fitted, 0 failed" in printed and "full-data target matrix in 4/4" in printed
    assert "DEGENERATE" not in printed
    with np.load(out) as f:
        info = json.loads(f["info_json"].item())
        assert f["degenerate"].item() is False
    boot = info["bootstrap"]
    assert boot["fitted"] == 4 and boot["failed"] == 0 and boot["mcc_min"] > 0.999
    assert np.shape(boot["target_frequency"]) == (3, 3) and boot["same_targets_share"] == 1.0
    assert info["diagnosis"]["fired"] == [] and info["degenerate"] is False
    assert main([*args, "--block", "100", "--seed", "1"]) == 0
    assert "moving blocks of 100" in capsys.readouterr().out


def test_not_identifiable_is_one_line(data, tmp_path, capsys, monkeypatch):
    def refuse(envs, *, latent_dim=None, **seed):
        raise NotIdentifiableError(
            "the design violates Assumption 4: (0, 1) not separated", unseparated=[(0, 1)]
        )

    module = types.ModuleType("_mncrl_test_refusing")
    module.ESTIMATOR = Estimator(name="refusing", fit=refuse, description="test")
    monkeypatch.setitem(sys.modules, "_mncrl_test_refusing", module)
    monkeypatch.setitem(estimators._MODULES, "refusing", "_mncrl_test_refusing")
    out = tmp_path / "fit.npz"
    capsys.readouterr()
    assert main(["fit", str(data), "--estimator", "refusing", "--out", str(out)]) == 2
    _one_error_line(capsys, "violates Assumption 4")
    assert not out.exists()


def test_real_entry_point_and_help(data, tmp_path):
    out = tmp_path / "fit.npz"
    run = subprocess.run(
        [sys.executable, "-m", "mncrl", "fit", str(data), "--out", str(out), "--estimator", "nope"],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.count("\n") == 1 and "unknown estimator" in run.stderr
    helps = subprocess.run(
        [sys.executable, "-m", "mncrl", "fit", "--help"], capture_output=True, text=True
    )
    for flag in (
        "--out",
        "--estimator",
        "--preset",
        "--latent-dim",
        "--seed",
        "--set",
        "--env-column",
        "--observational-env",
        "--allow-degenerate",
        "--bootstrap",
        "--block",
        "--cache-dir",
        "--no-cache",
        "MNCRL_CACHE_DIR",
    ):
        assert flag in helps.stdout
    helps = subprocess.run(
        [sys.executable, "-m", "mncrl", "evaluate", "--help"], capture_output=True, text=True
    )
    for flag in ("--rows", "--chunk", "--no-spearman", "--env-column"):
        assert flag in helps.stdout


def test_parse_overrides():
    assert parse_overrides(
        [
            "lr=1e-3",
            "mode=moments",
            "restarts=4",
            "steps=null",
            "batch-size=512",
            "x=2.0",
            "flag=true",
        ]
    ) == {
        "lr": 1e-3,
        "mode": "moments",
        "restarts": 4,
        "steps": None,
        "batch_size": 512,
        "x": 2.0,
        "flag": True,
    }


# ------------------------------------------------------------------ compilation cache, imports


HEAVY = (
    "pandas",
    "scipy",
    "sklearn",
    "matplotlib",
    "mncrl.metrics",
    "mncrl.simulation",
    "mncrl.interventions",
    "mncrl.cli.simulate",
    "mncrl.cli.evaluate",
)
SPY = (
    "import sys; from mncrl.cli import main; code = main(sys.argv[1:]); "
    f"print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r} "
    f"or m in {HEAVY!r})), file=sys.stderr); sys.exit(code)"
)


def _cli(args, spy=True, **env):
    """`mncrl ARGS` in a fresh process; with ``spy`` stderr's last line lists the heavy modules
    it imported, else it runs as `python -m mncrl` (which ends the process itself)."""
    environ = {k: v for k, v in os.environ.items() if k not in CACHE_VARS} | env
    command = ["-c", SPY] if spy else ["-m", "mncrl"]
    return subprocess.run(
        [sys.executable, *command, *map(str, args)], capture_output=True, text=True, env=environ
    )


def _W(path):
    with np.load(path) as f:
        return f["W"]


def test_cache_dir_is_created_filled_and_reused(data, tmp_path):
    cache_dir = tmp_path / "new" / "cache"
    first = _cli(
        ["fit", data, "--out", tmp_path / "a.npz", "--cache-dir", cache_dir, *FIT],
        MNCRL_CACHE_DIR=str(tmp_path / "unused"),
    )
    assert first.returncode == 0, first.stderr
    assert first.stderr.strip() == "", f"heavy imports or warnings: {first.stderr}"
    entries = sorted(p.name for p in cache_dir.iterdir() if p.name.endswith("-cache"))
    assert entries and not (tmp_path / "unused").exists()  # the flag beats the variable
    second = _cli(
        ["fit", data, "--out", tmp_path / "b.npz", *FIT], spy=False, MNCRL_CACHE_DIR=str(cache_dir)
    )
    assert second.returncode == 0 and second.stdout.startswith("wrote "), second.stderr
    assert sorted(p.name for p in cache_dir.iterdir() if p.name.endswith("-cache")) == entries
    assert np.array_equal(_W(tmp_path / "a.npz"), _W(tmp_path / "b.npz"))


def test_cache_directory_choice(tmp_path, monkeypatch, cache_home):
    assert cache.cache_dir() == cache_home / "mncrl" / "jax"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache.cache_dir() == Path.home() / ".cache" / "mncrl" / "jax"
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", str(tmp_path / "jax"))
    assert cache.cache_dir() == tmp_path / "jax"  # the workflow's setting is respected
    monkeypatch.setenv("MNCRL_CACHE_DIR", str(tmp_path / "mncrl"))
    assert cache.cache_dir() == tmp_path / "mncrl"
    assert cache.cache_dir(tmp_path / "flag") == tmp_path / "flag"


def test_in_process_fit_uses_the_default_cache_and_no_cache_disables_it(
    data, tmp_path, cache_home, capsys, monkeypatch
):
    assert main(["fit", str(data), "--out", str(tmp_path / "a.npz"), *FIT]) == 0
    assert (cache_home / "mncrl" / "jax").is_dir()
    assert jax.config.jax_compilation_cache_dir == str(cache_home / "mncrl" / "jax")
    assert jax.config.jax_persistent_cache_min_compile_time_secs == 0
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", str(tmp_path / "jax"))
    assert main(["fit", str(data), "--out", str(tmp_path / "b.npz"), "--no-cache", *FIT]) == 0
    assert not jax.config.jax_enable_compilation_cache and not (tmp_path / "jax").exists()
    assert capsys.readouterr().err == ""
    assert np.array_equal(_W(tmp_path / "a.npz"), _W(tmp_path / "b.npz"))


def test_unwritable_cache_dir_falls_back_with_one_warning(data, tmp_path, capsys):
    (tmp_path / "file").write_text("not a directory")
    out = tmp_path / "fit.npz"
    capsys.readouterr()
    assert (
        main(
            [
                "fit",
                str(data),
                "--out",
                str(out),
                "--cache-dir",
                str(tmp_path / "file" / "cache"),
                *FIT,
            ]
        )
        == 0
    )
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(
        "mncrl fit: warning: cannot use the compilation cache"
    ), err
    assert "compiling without a cache" in err and "Traceback" not in err
    assert not jax.config.jax_enable_compilation_cache and out.exists()


def test_cache_settings_reach_jax_imported_later(tmp_path):
    """Before jax is imported the settings go through the variables jax reads at import."""
    code = (
        "import sys; from pathlib import Path; from mncrl import cache; "
        "cache.configure(sys.argv[1]); assert 'jax' not in sys.modules; import jax; "
        "print(jax.config.jax_compilation_cache_dir, "
        "jax.config.jax_persistent_cache_min_compile_time_secs, "
        "jax.config.jax_enable_compilation_cache)"
    )
    environ = {k: v for k, v in os.environ.items() if k not in CACHE_VARS}
    run = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "c")],
        capture_output=True,
        text=True,
        env=environ,
    )
    assert run.stdout.split() == [str(tmp_path / "c"), "0.0", "True"], run.stderr


def test_cache_flags_are_exclusive(data, tmp_path, capsys):
    assert (
        _exit_code(
            [
                "fit",
                str(data),
                "--out",
                str(tmp_path / "f.npz"),
                "--no-cache",
                "--cache-dir",
                str(tmp_path),
            ]
        )
        == 2
    )
    _one_error_line(capsys, "not allowed with argument")
    assert not (tmp_path / "f.npz").exists()


def _exit_code(argv):
    try:
        return main(argv)
    except SystemExit as exc:  # argparse's own errors
        return exc.code


def test_fit_reads_no_ground_truth_and_gives_the_same_fit(data, tmp_path):
    """A file without Z and L fits to the same W: the fit reads only X, env and targets."""
    with np.load(data) as f:
        stripped = tmp_path / "stripped.npz"
        np.savez(stripped, X=f["X"], env=f["env"], targets=f["targets"])
        broken = tmp_path / "broken.npz"  # a Z that validation would refuse: never read
        np.savez(broken, X=f["X"], env=f["env"], targets=f["targets"], Z=np.ones(3))
    outs = [tmp_path / f"{name}.npz" for name in ("full", "stripped", "broken")]
    for source, out in zip((data, stripped, broken), outs, strict=True):
        assert main(["fit", str(source), "--out", str(out), *FIT]) == 0
    assert all(np.array_equal(_W(outs[0]), _W(out)) for out in outs[1:])
