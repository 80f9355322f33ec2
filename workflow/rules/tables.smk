# Per-model tables stacked into one results/tables/{table}.parquet each (those of the
# optional analyses are made only when the default target asks for them).
for table, per_model in (
    ("models", expand(rules.evaluate_model.output.summary, model=MODELS)),
    ("transfer", expand(rules.evaluate_masks.output.transfer, model=MODELS)),
    ("fourier_heatmap", expand(rules.fourier_heatmap.output.table, model=MODELS)),
    ("cutoff_curves", expand(rules.cutoff_curves.output.table, model=MODELS)),
    ("retrain", expand(rules.retrain.output.summary, model=RETRAIN)),
):

    rule:
        name:
            f"{table}_table"
        input:
            tables=per_model,
        output:
            table=report(
                f"<results>/tables/{table}.parquet",
                caption=f"../report/{table}.rst",
                category="Tables",
            ),
        log:
            f"<logs>/{table}_table.log",
        conda:
            "../envs/cpu.yaml"
        resources:
            mem_mb=1000,
            runtime=runtime_min(10),
        script:
            "../scripts/concat_tables.py"
