rule evaluate_masks:
    input:
        DATA_FILES,
        model="results/models/{model}/model.pt",
        masks=mask_files(),
    output:
        transfer="results/analysis/{model}/transfer.parquet",
        controls="results/analysis/{model}/controls.parquet",
    params:
        sources=[(model, seed) for model in MODELS for seed in SEEDS],
        analysis=config["analysis"],
        device=config["device"],
        data=DATA,
    log:
        "logs/evaluate_masks/{model}.log",
    benchmark:
        "results/benchmarks/evaluate_masks/{model}.tsv"
    threads: 1
    conda:
        "../envs/gpu.yaml"
    resources:
        mem_mb=mem_mb(4000),
        runtime=120,
    script:
        "../scripts/evaluate_masks.py"


rule masks_table:
    input:
        histories=history_files(),
        controls=expand("results/analysis/{model}/controls.parquet", model=MODELS),
        masks=mask_files(),
    output:
        report(
            "results/tables/masks.parquet",
            caption="../report/masks.rst",
            category="Tables",
        ),
    params:
        models=list(MODELS),
        seeds=SEEDS,
    log:
        "logs/masks_table.log",
    conda:
        "../envs/cpu.yaml"
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../scripts/masks_table.py"


rule profiles:
    input:
        masks=mask_files(),
    output:
        radial=report(
            "results/tables/radial_profile.parquet",
            caption="../report/profiles.rst",
            category="Tables",
        ),
        angular=report(
            "results/tables/angular_profile.parquet",
            caption="../report/profiles.rst",
            category="Tables",
        ),
        bias=report(
            "results/tables/frequency_bias.parquet",
            caption="../report/frequency_bias.rst",
            category="Tables",
        ),
    params:
        sources=[(model, seed) for model in MODELS for seed in SEEDS],
        analysis=config["analysis"],
    log:
        "logs/profiles.log",
    conda:
        "../envs/cpu.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/profiles.py"


rule frequency_bias_stats:
    input:
        bias="results/tables/frequency_bias.parquet",
    output:
        report(
            "results/tables/frequency_bias_stats.parquet",
            caption="../report/frequency_bias_stats.rst",
            category="Tables",
        ),
    params:
        reference=config["reference_model"],
        statistics=config["analysis"]["statistics"],
    log:
        "logs/frequency_bias_stats.log",
    conda:
        "../envs/cpu.yaml"
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../scripts/frequency_bias_stats.py"


rule transfer_table:
    input:
        expand("results/analysis/{model}/transfer.parquet", model=MODELS),
    output:
        report(
            "results/tables/transfer.parquet",
            caption="../report/transfer.rst",
            category="Tables",
        ),
    log:
        "logs/transfer_table.log",
    conda:
        "../envs/cpu.yaml"
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../scripts/concat_tables.py"


rule provenance:
    output:
        "results/provenance.json",
    params:
        config=config,
    log:
        "logs/provenance.log",
    conda:
        "../envs/cpu.yaml"
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "../scripts/provenance.py"
