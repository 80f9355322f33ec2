rule evaluate_masks:
    input:
        data=rules.prepare_dataset.output,
        model=MODEL_FILE,
        masks=mask_files(),
    output:
        transfer="<results>/analysis/{model}/transfer.parquet",
        controls="<results>/analysis/{model}/controls.parquet",
    log:
        "<logs>/evaluate_masks/{model}.log",
    benchmark:
        "<benchmarks>/evaluate_masks/{model}.tsv"
    conda:
        NETWORK_ENV
    threads: 1
    resources:
        **GPU_REQUEST,
        mem_mb=mem_mb(4000),
        runtime=runtime_min(120),
    params:
        sources=MASK_SOURCES,
        threshold=lookup(dpath="analysis/binarize_threshold", within=config),
        random_shuffles=lookup(dpath="analysis/random_shuffles", within=config),
        batch_size=lookup(dpath="mask/eval_batch_size", within=config),
        device=lookup(dpath="device", within=config),
        imports=model_imports,
        data_folder=data_folder,
    script:
        "../scripts/evaluate_masks.py"


rule masks_table:
    input:
        histories=history_files(),
        controls=expand(rules.evaluate_masks.output.controls, model=MODELS),
        masks=mask_files(),
    output:
        table=report(
            "<results>/tables/masks.parquet",
            caption="../report/masks.rst",
            category="Tables",
        ),
        agreement=report(
            "<results>/tables/seed_agreement.parquet",
            caption="../report/seed_agreement.rst",
            category="Tables",
        ),
    log:
        "<logs>/masks_table.log",
    conda:
        "../envs/cpu.yaml"
    resources:
        mem_mb=1000,
        runtime=runtime_min(10),
    params:
        sources=MASK_SOURCES,
        low_freq_cutoff=lookup(dpath="analysis/low_freq_cutoff", within=config),
    script:
        "../scripts/masks_table.py"


rule profiles:
    input:
        masks=mask_files(),
    output:
        radial=report(
            "<results>/tables/radial_profile.parquet",
            caption="../report/profiles.rst",
            category="Tables",
        ),
        angular=report(
            "<results>/tables/angular_profile.parquet",
            caption="../report/profiles.rst",
            category="Tables",
        ),
        bias=report(
            "<results>/tables/frequency_bias.parquet",
            caption="../report/frequency_bias.rst",
            category="Tables",
        ),
    log:
        "<logs>/profiles.log",
    conda:
        "../envs/cpu.yaml"
    resources:
        mem_mb=2000,
        runtime=runtime_min(10),
    params:
        sources=MASK_SOURCES,
        radial_bands=lookup(dpath="analysis/radial_bands", within=config),
        angular_bands=lookup(dpath="analysis/angular_bands", within=config),
        low_freq_cutoff=lookup(dpath="analysis/low_freq_cutoff", within=config),
    script:
        "../scripts/profiles.py"


rule frequency_bias_stats:
    input:
        bias=rules.profiles.output.bias,
        angular=rules.profiles.output.angular,
    output:
        stats=report(
            "<results>/tables/frequency_bias_stats.parquet",
            caption="../report/frequency_bias_stats.rst",
            category="Tables",
        ),
    log:
        "<logs>/frequency_bias_stats.log",
    conda:
        "../envs/cpu.yaml"
    resources:
        mem_mb=1000,
        runtime=runtime_min(10),
    params:
        reference=lookup(dpath="reference_model", within=config),
        bootstrap=lookup(dpath="analysis/statistics/bootstrap", within=config),
        permutations=lookup(dpath="analysis/statistics/permutations", within=config),
    script:
        "../scripts/frequency_bias_stats.py"


rule provenance:
    output:
        "<results>/provenance.json",
    log:
        "<logs>/provenance.log",
    conda:
        "../envs/cpu.yaml"
    resources:
        mem_mb=1000,
        runtime=runtime_min(5),
    params:
        config=config,
    script:
        "../scripts/provenance.py"
