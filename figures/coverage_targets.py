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
# # What the subspace estimator reports, and how well it recovers the targets (ours)
# The closed-form `subspace` estimator (docs/subspace.md) either returns an unmixing and the
# estimated intervention targets, or raises "not identifiable" when the signatures it finds
# violate Assumption 4. Per latent dimension d (rows), number of environments K (columns) and
# targets per environment k: the fraction of random designs x seeds it recovers (Amari distance
# <= the `recovered` threshold, green), reports as not identifiable (grey) or answers wrongly
# (returns an unmixing that is not recovered, red). Black line: the fraction of the designs
# that satisfy Assumption 4 (the theory: green should follow it). Orange crosses: the mean F1
# score of the estimated targets over the designs where it returned an answer.

# %% tags=["parameters"]
metrics = {"coverage": "results/coverage/metrics.csv"}
figure = "coverage_targets"  # the figure name (unused: no paper values for our figures)
claims_file = "paper/claims.yaml"
out_stem = "figures/coverage_targets"
headline_metric = "mcc_paper"
estimators = {}
estimator = "subspace"

# %%
import numpy as np

from mncrl import plots
from mncrl.experiments import coverage_tables as coverage

plots.setup()
table = plots.load_metrics(metrics)
recovered, strict = coverage.thresholds_of(table)
problems = table[
    (table["level"].fillna("problem") == "problem") & (table["estimator"] == estimator)
]
wide = coverage.problems_wide(problems)
wide["recovered"] = wide["amari"].to_numpy(float) <= recovered
wide["reported"] = np.nan_to_num(wide["not_identifiable"].to_numpy(float)) > 0
wide["wrong"] = ~wide["recovered"] & ~wide["reported"]
random = wide[wide["design"] == "random"]
outcomes = (
    random.groupby(["d", "K", "k"])
    .agg(
        problems=("recovered", "size"),
        recovered=("recovered", "mean"),
        reported=("reported", "mean"),
        wrong=("wrong", "mean"),
        a4=("a4_satisfied", "mean"),
        target_f1=("target_f1", "mean"),
    )
    .reset_index()
)
ds = sorted(outcomes["d"].unique())
Ks = {d: sorted(outcomes[outcomes["d"] == d]["K"].unique()) for d in ds}
name = estimators.get(estimator, estimator)
outcomes.head()

# %%
colours = {"recovered": "#2ca02c", "reported": "#9a9a9a", "wrong": "#d62728"}
texts = {
    "recovered": f"recovered (Amari <= {recovered:g})",
    "reported": "reported not identifiable",
    "wrong": "wrong answer",
}
fig, panels = plots.dk_panels(ds, Ks, "fraction of designs")
for ax, d, K in panels:
    o = outcomes[(outcomes["d"] == d) & (outcomes["K"] == K)].sort_values("k")
    bottom = np.zeros(len(o))
    for key in ("recovered", "reported", "wrong"):
        ax.bar(o["k"], o[key], bottom=bottom, color=colours[key], width=0.85, label=texts[key])
        bottom += o[key].to_numpy(float)
    ax.step(
        o["k"], o["a4"], where="mid", color="black", lw=1.4, label="designs satisfying Assumption 4"
    )
    ax.plot(
        o["k"], o["target_f1"], "x", color="#ff7f0e", ms=5, label="target F1 (answered designs)"
    )
    ax.set_ylim(0, 1.05)
    ax.set_xlim(0.4, d - 0.6)
plots.finish_panels(fig, f"{name}: outcome per design and target recovery", ncol=3, legend_y=-0.01)
plots.save_figure(fig, out_stem)

# %%
summary = (
    wide.assign(family=np.where(wide["design"] == "random", "random", wide["design"]))
    .groupby(["d", "family"])
    .agg(
        problems=("recovered", "size"),
        a4=("a4_satisfied", "mean"),
        recovered=("recovered", "mean"),
        reported=("reported", "mean"),
        wrong=("wrong", "mean"),
        target_f1=("target_f1", "mean"),
    )
    .reset_index()
)
a4_only = wide[wide["a4_satisfied"]]
strict_rate = (a4_only["amari"].to_numpy(float) <= strict).mean() if len(a4_only) else np.nan
lines = [
    f"# {name}: outcomes and target recovery",
    "",
    f"Recovered: Amari <= {recovered:g}. On designs satisfying Assumption 4: "
    f"{100 * strict_rate:.1f}% recovered with Amari <= {strict:g} "
    f"({len(a4_only)} problems).",
    "",
    "| d | designs | problems | A4 | recovered | reported not identifiable | wrong | target F1 |",
    "|---|---|---|---|---|---|---|---|",
]
for r in summary.itertuples():
    f1 = "-" if r.target_f1 != r.target_f1 else f"{r.target_f1:.3f}"
    lines.append(
        f"| {r.d} | {r.family} | {r.problems} | {r.a4:.2f} | {r.recovered:.3f} | "
        f"{r.reported:.3f} | {r.wrong:.3f} | {f1} |"
    )
text = "\n".join(lines) + "\n"
plots.save_text(text, f"{out_stem}.md")
print(text)
