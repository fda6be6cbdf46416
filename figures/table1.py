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

# %%
from mncrl import plots

plots.setup()
data = plots.figure_summary(
    metrics, ["mechanism"], headline_metric, estimators, claims_file, figure
)
data.stats

# %%
mechanisms = sorted(data.stats["mechanism"].unique())
paper = plots.paper_statements(claims_file, figure, "mechanism")
header = ["estimator"] + [f"SCM {m[-1]}" for m in mechanisms]
rows = plots.estimator_rows(data, "mechanism", mechanisms, paper)
fig = plots.table_plot(header, rows, "Table 1: MCC on the nonlinear SCMs (grey rows: the paper)")
text = plots.rows_markdown(header, rows, "Table 1: MCC on the nonlinear SCMs (d = 6)")
print(plots.write_outputs(fig, text, out_stem))
