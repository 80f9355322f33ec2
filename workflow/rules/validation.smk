# Analyses that validate the masks against the literature and test what they claim, each
# behind its config switch (analysis.<section>.enabled; common.smk adds their outputs,
# tables.smk stacks their per-model tables, figures.smk draws them): Fourier heat maps and
# cut-off curves (anchors), single-image masks of clean and PGD images, and retraining on
# images seen through a model's mask.
rule fourier_heatmap:
    input:
        data=rules.prepare_dataset.output,
        model=MODEL_FILE,
    output:
        table="<results>/validation/{model}/fourier_heatmap.parquet",
    log:
        "<logs>/fourier_heatmap/{model}.log",
    benchmark:
        "<benchmarks>/fourier_heatmap/{model}.tsv"
    conda:
        NETWORK_ENV
    threads: 1
    resources:
        **GPU_REQUEST,
        mem_mb=mem_mb(4000),
        runtime=runtime_min(120),
    params:
        norm=lookup(dpath="analysis/fourier_heatmap/norm", within=config),
        noise=lookup(dpath="analysis/fourier_heatmap/noise", within=config),
        n_images=lookup(dpath="analysis/fourier_heatmap/n_images", within=config),
        stride=lookup(dpath="analysis/fourier_heatmap/stride", within=config),
        batch_size=lookup(dpath="mask/eval_batch_size", within=config),
        device=lookup(dpath="device", within=config),
        imports=model_imports,
        data_folder=data_folder,
    script:
        "../scripts/fourier_heatmap.py"


rule cutoff_curves:
    input:
        data=rules.prepare_dataset.output,
        model=MODEL_FILE,
    output:
        table="<results>/validation/{model}/cutoff_curves.parquet",
    log:
        "<logs>/cutoff_curves/{model}.log",
    benchmark:
        "<benchmarks>/cutoff_curves/{model}.tsv"
    conda:
        NETWORK_ENV
    threads: 1
    resources:
        **GPU_REQUEST,
        mem_mb=mem_mb(4000),
        runtime=runtime_min(60),
    params:
        n_radii=lookup(dpath="analysis/cutoff_curves/n_radii", within=config),
        n_images=lookup(dpath="analysis/cutoff_curves/n_images", within=config),
        batch_size=lookup(dpath="mask/eval_batch_size", within=config),
        device=lookup(dpath="device", within=config),
        imports=model_imports,
        data_folder=data_folder,
    script:
        "../scripts/cutoff_curves.py"


rule single_image_masks:
    input:
        data=rules.prepare_dataset.output,
        model=MODEL_FILE,
    output:
        masks="<results>/validation/{model}/single_image_masks.npz",
        images="<results>/validation/{model}/single_image_masks.parquet",
    log:
        "<logs>/single_image_masks/{model}.log",
    benchmark:
        "<benchmarks>/single_image_masks/{model}.tsv"
    conda:
        NETWORK_ENV
    threads: 1
    resources:
        **GPU_REQUEST,
        mem_mb=mem_mb(4000),
        runtime=runtime_min(240),
    params:
        n_images=lookup(dpath="analysis/single_image/n_images", within=config),
        lam=lookup(dpath="analysis/single_image/lambda", within=config),
        lr=lookup(dpath="analysis/single_image/lr", within=config),
        steps=lookup(dpath="analysis/single_image/steps", within=config),
        patience=lookup(dpath="analysis/single_image/patience", within=config),
        # the PGD budget (robust_eval.n_images counts evaluate_model's images, not these)
        attack_norm=lookup(dpath="analysis/robust_eval/norm", within=config),
        attack_eps=lookup(dpath="analysis/robust_eval/eps", within=config),
        attack_steps=lookup(dpath="analysis/robust_eval/steps", within=config),
        device=lookup(dpath="device", within=config),
        imports=model_imports,
        data_folder=data_folder,
    script:
        "../scripts/single_image_masks.py"


rule retrain:
    input:
        data=rules.prepare_dataset.output,
        model=MODEL_FILE,
        mask=f"<results>/masks/{{model}}/seed{SEEDS[0]}.npy",
    output:
        model="<results>/validation/{model}/retrained_model.pt",
        history="<results>/validation/{model}/retrained_training.parquet",
        summary="<results>/validation/{model}/retrain.parquet",
    log:
        "<logs>/retrain/{model}.log",
    benchmark:
        "<benchmarks>/retrain/{model}.tsv"
    wildcard_constraints:
        model=_alternatives(RETRAIN),
    conda:
        NETWORK_ENV
    threads: 1
    resources:
        **GPU_REQUEST,
        mem_mb=mem_mb(4000),
        runtime=runtime_min(240),
    params:
        spec=model_spec,
        mask_seed=SEEDS[0],
        training=regime_training,
        channels_last=lookup(dpath="channels_last", within=config),
        batch_size=lookup(dpath="mask/eval_batch_size", within=config),
        device=lookup(dpath="device", within=config),
        data_folder=data_folder,
    script:
        "../scripts/retrain.py"


rule single_image_bands:
    input:
        masks=expand(rules.single_image_masks.output.masks, model=MODELS),
    output:
        table=report(
            "<results>/tables/single_image_bands.parquet",
            caption="../report/single_image_bands.rst",
            category="Tables",
        ),
    log:
        "<logs>/single_image_bands.log",
    conda:
        "../envs/cpu.yaml"
    resources:
        mem_mb=2000,
        runtime=runtime_min(10),
    params:
        models=list(MODELS),
        reference=lookup(dpath="reference_model", within=config),
        radial_bands=lookup(dpath="analysis/single_image/radial_bands", within=config),
    script:
        "../scripts/single_image_bands.py"


rule single_image_decoding:
    input:
        masks=expand(rules.single_image_masks.output.masks, model=MODELS),
        images=expand(rules.single_image_masks.output.images, model=MODELS),
    output:
        table=report(
            "<results>/tables/single_image_decoding.parquet",
            caption="../report/single_image_decoding.rst",
            category="Tables",
        ),
    log:
        "<logs>/single_image_decoding.log",
    conda:
        "../envs/cpu.yaml"
    resources:
        mem_mb=2000,
        runtime=runtime_min(30),
    params:
        models=list(MODELS),
    script:
        "../scripts/single_image_decoding.py"
