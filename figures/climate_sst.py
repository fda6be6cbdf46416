# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # A real field, exploratory (ours): modes of Pacific winter SST and the epochs that shift them
# No ground truth. The Pacific SST anomalies shipped with eofs (NDJFM means of 50 winters,
# 1962/63-2011/12, checksum-pinned) are split into epochs by the calendar (never by a mode's
# own value, such as ENSO phase: docs/climate.md says why); the first epoch, the climate
# before the 1976/77 shift, is the reference (treated as observational) and the later epochs
# as regimes that may shift modes softly. `mncrl.field_io.fit_field` reduces the field to its
# leading EOFs and fits the estimator, exactly as `mncrl fit sst.nc` does. Left: the
# recovered patterns (regression maps). Right: the estimated targets of each epoch, each cell
# shaded by the share of moving-block bootstrap resamples (of the EOF scores; the EOFs are
# not resampled) whose targets contain that mode. Few winters per epoch: read the shading
# before the targets.

# %% tags=["parameters"]
metrics = {}
figure = "climate_sst"
claims_file = "paper/claims.yaml"
out_stem = "figures/climate_sst"
headline_metric = "mcc_paper"
estimators = {}
example = "sst_ndjfm_anom"  # an example field of mncrl.climate_data
var = "sst"
epochs = "1977,1990,2001"  # environments: epochs starting at these years
observational = "1963-1976"  # the reference epoch (its label)
latent_dim = 3  # modes (= EOFs kept)
estimator = "subspace-soft"
bootstrap = 200  # moving-block bootstrap resamples
block = 3  # winters per block
seed = 0

# %%
import matplotlib.pyplot as plt
import numpy as np

from mncrl import plots
from mncrl.climate_data import example_path
from mncrl.errors import MncrlError
from mncrl.field_io import fit_field

plots.setup()
try:
    result = fit_field(
        example_path(example),
        var,
        latent_dim=latent_dim,
        epochs=epochs,
        observational=[observational],
        estimator=estimator,
        seed=seed,
        bootstrap=bootstrap,
        block=block,
    )
    refusal = None
except MncrlError as exc:  # an estimator that cannot answer says so; the figure shows it
    result, refusal = None, str(exc)
print(refusal or f"fitted: {result.fitted_envs}, EOFs explain {result.reduction.explained:.3f}")


# %%
def maps_and_targets():
    fig = plt.figure(figsize=(11, 2.6 * latent_dim + 0.6), layout="constrained")
    if result is None:
        fig.text(0.5, 0.5, f"{estimator} gave no answer:\n{refusal}", ha="center", wrap=True)
        return fig
    ds = result.to_dataset()
    lat, lon = result.field.grid_lat.values, result.field.grid_lon.values
    vmax = np.nanmax(np.abs(result.patterns))
    grid = fig.add_gridspec(latent_dim, 2, width_ratios=[1.6, 1.0])
    maps = []
    for j in range(latent_dim):
        ax = fig.add_subplot(grid[j, 0])
        maps.append(ax)
        im = ax.pcolormesh(lon, lat, result.patterns[j], cmap="RdBu_r", vmin=-vmax, vmax=vmax)
        ax.set_title(f"mode {j + 1}: regression map", fontsize=9)
        ax.set_ylabel("latitude")
        if j == latent_dim - 1:
            ax.set_xlabel("longitude (degrees east)")
    fig.colorbar(im, ax=maps, location="bottom", shrink=0.6, label=f"{var} per unit mode")
    ax = fig.add_subplot(grid[:, 1])
    targets = np.asarray(result.fit.targets, dtype=float)
    freq = ds["bootstrap_target_frequency"].values if "bootstrap_target_frequency" in ds else None
    shade = freq if freq is not None else targets
    ax.imshow(shade, cmap="Greys", vmin=0, vmax=1, aspect="auto")
    for (i, j), t in np.ndenumerate(targets):
        text = ("shifted" if t else "-") + ("" if freq is None else f"\n{freq[i, j]:.2f}")
        colour = "white" if shade[i, j] > 0.5 else "black"
        ax.text(j, i, text, ha="center", va="center", fontsize=8, color=colour)
    ax.set_xticks(range(latent_dim), [f"mode {j + 1}" for j in range(latent_dim)])
    ax.set_yticks(range(len(result.fitted_envs)), result.fitted_envs)
    ax.yaxis.tick_right()
    ax.set_title(
        f"targets vs {observational}\n(shade: share of bootstrap fits with the mode shifted)",
        fontsize=9,
    )
    ax.grid(False)
    fig.suptitle(
        f"Pacific NDJFM SST (eofs example, exploratory): {estimator}, {latent_dim} modes, "
        f"epochs {epochs}",
        fontsize=10,
    )
    return fig


fig = maps_and_targets()

# %%
if result is None:
    rows = [["no answer", refusal]]
else:
    ds = result.to_dataset()
    rows = [
        ["environments fitted", ", ".join(result.fitted_envs)],
        ["reference (observational)", observational],
        ["winters per environment", ", ".join(f"{k} {v}" for k, v in result.envs.counts().items())],
        ["share of variance in the EOFs", f"{result.reduction.explained:.3f}"],
    ]
    if "bootstrap_corr_mean" in ds:
        rows.append(
            [
                "bootstrap: matched abs. correlation per mode, mean (min)",
                ", ".join(
                    f"{m:.2f} ({n:.2f})"
                    for m, n in zip(
                        ds["bootstrap_corr_mean"].values,
                        ds["bootstrap_corr_min"].values,
                        strict=True,
                    )
                ),
            ]
        )
        rows.append(
            [
                "bootstrap resamples fitted / failed",
                f"{ds.attrs['bootstrap_fitted']} / {ds.attrs['bootstrap_failed']}",
            ]
        )
    for env, row in zip(result.fitted_envs, np.asarray(result.fit.targets), strict=True):
        rows.append(
            [f"targets of {env}", ", ".join(f"mode {j + 1}" for j in np.flatnonzero(row)) or "none"]
        )
text = plots.rows_markdown(
    ["", ""],
    rows,
    f"Pacific NDJFM SST (exploratory, no ground truth): {estimator}, epochs {epochs}",
)
plots.write_outputs(fig, text, out_stem)
print(text)
