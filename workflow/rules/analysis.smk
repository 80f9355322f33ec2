rule evaluate_masks:
    input:
        data=DATA_FILES,
        model="results/models/{model}/model.pt",
        masks=mask_files(),
    output:
        transfer="results/analysis/{model}/transfer.parquet",
        controls="results/analysis/{model}/controls.parquet",
    log:
        "logs/evaluate_masks/{model}.log",
    benchmark:
        "results/benchmarks/evaluate_masks/{model}.tsv"
    conda:
        "../envs/gpu.yaml"
    threads: 1
    resources:
        gpu=GPU,
        mem_mb=mem_mb(4000),
        runtime=120,
    params:
        sources=[(model, seed) for model in MODELS for seed in SEEDS],
        threshold=config["analysis"]["binarize_threshold"],
        random_shuffles=config["analysis"]["random_shuffles"],
        device=config["device"],
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
    log:
        "logs/masks_table.log",
    conda:
        "../envs/cpu.yaml"
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        models=list(MODELS),
        seeds=SEEDS,
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
    log:
        "logs/profiles.log",
    conda:
        "../envs/cpu.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        sources=[(model, seed) for model in MODELS for seed in SEEDS],
        analysis=config["analysis"],
    script:
        "../scripts/profiles.py"


rule frequency_bias_stats:
    input:
        bias="results/tables/frequency_bias.parquet",
        angular="results/tables/angular_profile.parquet",
    output:
        report(
            "results/tables/frequency_bias_stats.parquet",
            caption="../report/frequency_bias_stats.rst",
            category="Tables",
        ),
    log:
        "logs/frequency_bias_stats.log",
    conda:
        "../envs/cpu.yaml"
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        reference=config["reference_model"],
        statistics=config["analysis"]["statistics"],
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
    log:
        "logs/provenance.log",
    conda:
        "../envs/cpu.yaml"
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        config=config,
    script:
        "../scripts/provenance.py"
