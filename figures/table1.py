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
# # Table 1: nonlinear SCMs 1 and 2 (d = 6)
# The paper reports only its own method (SCM 2 is undefined observationally, so no ICA).
# Cells: mean ± standard error over seeds of the headline MCC; the paper's values alongside.

# %% tags=["parameters"]
figure = "table1"
metrics = {"table1": "results/table1/metrics.csv"}
claims_file = "paper/claims.yaml"
out_stem = "figures/table1"
headline_metric = "mcc_paper"
estimators = {}
roles = {}

# %%
import matplotlib.pyplot as plt

from mncrl import plots
from mncrl.claims import load_claims

plots.setup()
table = plots.load_metrics(metrics)
labels = plots.ordered_labels(table["estimator"], list(estimators))
names = {lab: estimators.get(lab, lab) for lab in labels}
stats = plots.summary(table, ["mechanism", "estimator"], headline_metric)
_, claims = load_claims(claims_file)
paper = {(c.estimator, c.select.get("mechanism")): c.statement or f"{c.paper:.2f}"
         for c in claims if c.figure == figure and c.source == "paper"}
mechanisms = sorted(stats["mechanism"].unique())
stats

# %%
header = ["estimator"] + [f"SCM {m[-1]}" for m in mechanisms]
rows = []
for lab in labels:
    row = [names[lab]]
    for mech in mechanisms:
        s = stats[(stats["mechanism"] == mech) & (stats["estimator"] == lab)]
        row.append(f"{s['mean'].iloc[0]:.3f} ± {s['se'].iloc[0]:.3f}" if len(s) else "-")
    rows.append(row)
    if any((lab, mech) in paper for mech in mechanisms):
        rows.append(["  reported in the paper"]
                    + [paper.get((lab, mech), "-").split(":")[-1].strip().replace("+-", "±")
                       for mech in mechanisms])
md = ["# Table 1: MCC on the nonlinear SCMs (d = 6)", "",
      "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
md += ["| " + " | ".join(r) + " |" for r in rows]
text = "\n".join(md) + "\n"
plots.save_text(text, f"{out_stem}.md")
print(text)

# %%
fig, ax = plt.subplots(figsize=(7.2, 0.36 * (len(rows) + 1) + 0.3))
ax.axis("off")
widths = [0.46] + [0.54 / len(mechanisms)] * len(mechanisms)
tab = ax.table(cellText=rows, colLabels=header, loc="center", cellLoc="left", colLoc="left",
               colWidths=widths)
tab.auto_set_font_size(False)
tab.set_fontsize(9)
tab.scale(1.0, 1.4)
for (r, _c), cell in tab.get_celld().items():
    if r == 0:
        cell.set_text_props(weight="bold")
    elif rows[r - 1][0].startswith("  reported"):
        cell.set_facecolor("#eeeeee")
ax.set_title("Table 1: MCC on the nonlinear SCMs (grey rows: the paper)", fontsize=10)
plots.save_figure(fig, out_stem)
