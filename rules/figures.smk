# One jupytext notebook per output (figures/<name>.py): converted to .ipynb and executed by
# papermill with the `python3` kernel; the executed notebook is kept under results/notebooks/.


rule figure:
    input:
        unpack(figure_inputs),
    output:
        pdf=f"{FIGURES}/{{figure}}.pdf",
        png=report(
            f"{FIGURES}/{{figure}}.png",
            caption="report/figure.rst",
            category="Figures",
            labels={"figure": "{figure}"},
        ),
        md=f"{FIGURES}/{{figure}}.md",
        notebook=f"{RESULTS}/notebooks/{{figure}}.ipynb",
    log:
        f"{RESULTS}/logs/figures/{{figure}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/figures/{{figure}}.tsv"
    # a notebook kernel can fail to start when several start at once (jupyter port race,
    # "Kernel died before replying to kernel_info"): retry the job instead of failing the run
    retries: 2
    conda:
        "../envs/mncrl.yaml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=15,
    params:
        parameters=figure_parameters,
        tmp=lambda wildcards, output: f"{output.notebook}.tmp",
    shell:
        "(python -m jupytext --to ipynb --output {params.tmp}.in.ipynb {input.notebook} && "
        "python -m papermill {params.tmp}.in.ipynb {params.tmp}.out.ipynb -k python3 --cwd . "
        "-y {params.parameters:q} && "
        "mv {params.tmp}.out.ipynb {output.notebook} && rm -f {params.tmp}.in.ipynb"
        ") > {log} 2>&1"


rule figures:
    input:
        [f"{FIGURES}/{name}.png" for name in figure_names()],
