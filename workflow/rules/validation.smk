# Analyses that validate the masks against the literature and test what they claim, each
# behind its config switch (analysis.<section>.enabled; common.smk adds their outputs):
# Fourier heat maps and cut-off curves (anchors), single-image masks of clean and PGD
# images, and retraining on images seen through a model's mask.
rule fourier_heatmap:
    input:
        data=DATA_FILES,
        model="results/models/{model}/model.pt",
    output:
        "results/validation/{model}/fourier_heatmap.parquet",
    log:
        "logs/fourier_heatmap/{model}.log",
    benchmark:
        "results/benchmarks/fourier_heatmap/{model}.tsv"
    conda:
        "../envs/gpu.yaml"
    threads: 1
    resources:
        gpu=GPU,
        mem_mb=mem_mb(4000),
        runtime=120,
    params:
        norm=config["analysis"]["fourier_heatmap"]["norm"],
        noise=config["analysis"]["fourier_heatmap"]["noise"],
        n_images=config["analysis"]["fourier_heatmap"]["n_images"],
        stride=config["analysis"]["fourier_heatmap"]["stride"],
        batch_size=config["mask"]["eval_batch_size"],
        device=config["device"],
    script:
        "../scripts/anchors.py"


rule cutoff_curves:
    input:
        data=DATA_FILES,
        model="results/models/{model}/model.pt",
    output:
        "results/validation/{model}/cutoff_curves.parquet",
    log:
        "logs/cutoff_curves/{model}.log",
    benchmark:
        "results/benchmarks/cutoff_curves/{model}.tsv"
    conda:
        "../envs/gpu.yaml"
    threads: 1
    resources:
        gpu=GPU,
        mem_mb=mem_mb(4000),
        runtime=60,
    params:
        n_radii=config["analysis"]["cutoff_curves"]["n_radii"],
        n_images=config["analysis"]["cutoff_curves"]["n_images"],
        batch_size=config["mask"]["eval_batch_size"],
        device=config["device"],
    script:
        "../scripts/anchors.py"


rule single_image_masks:
    input:
        data=DATA_FILES,
        model="results/models/{model}/model.pt",
    output:
        masks="results/validation/{model}/single_image_masks.npz",
        images="results/validation/{model}/single_image_masks.parquet",
    log:
        "logs/single_image_masks/{model}.log",
    benchmark:
        "results/benchmarks/single_image_masks/{model}.tsv"
    conda:
        "../envs/gpu.yaml"
    threads: 1
    resources:
        gpu=GPU,
        mem_mb=mem_mb(4000),
        runtime=240,
    params:
        n_images=config["analysis"]["single_image"]["n_images"],
        lam=config["analysis"]["single_image"]["lambda"],
        lr=config["analysis"]["single_image"]["lr"],
        steps=config["analysis"]["single_image"]["steps"],
        patience=config["analysis"]["single_image"]["patience"],
        robust_eval=config["analysis"]["robust_eval"],
        device=config["device"],
    script:
        "../scripts/single_image_masks.py"


rule retrain:
    input:
        data=DATA_FILES,
        model="results/models/{model}/model.pt",
        mask=f"results/masks/{{model}}/seed{SEEDS[0]}.npy",
    output:
        model="results/validation/{model}/retrained_model.pt",
        history="results/validation/{model}/retrained_training.parquet",
        summary="results/validation/{model}/retrain.parquet",
    log:
        "logs/retrain/{model}.log",
    benchmark:
        "results/benchmarks/retrain/{model}.tsv"
    wildcard_constraints:
        model=_alternatives(RETRAIN),
    conda:
        "../envs/gpu.yaml"
    threads: 1
    resources:
        gpu=GPU,
        mem_mb=mem_mb(4000),
        runtime=240,
    params:
        spec=model_spec,
        mask_seed=SEEDS[0],
        training=config["training"],
        batch_size=config["mask"]["eval_batch_size"],
        device=config["device"],
    script:
        "../scripts/retrain.py"


rule fourier_heatmap_table:
    input:
        expand("results/validation/{model}/fourier_heatmap.parquet", model=MODELS),
    output:
        report(
            "results/tables/fourier_heatmap.parquet",
            caption="../report/fourier_heatmap.rst",
            category="Tables",
        ),
    log:
        "logs/fourier_heatmap_table.log",
    conda:
        "../envs/cpu.yaml"
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../scripts/concat_tables.py"


rule cutoff_curves_table:
    input:
        expand("results/validation/{model}/cutoff_curves.parquet", model=MODELS),
    output:
        report(
            "results/tables/cutoff_curves.parquet",
            caption="../report/cutoff_curves.rst",
            category="Tables",
        ),
    log:
        "logs/cutoff_curves_table.log",
    conda:
        "../envs/cpu.yaml"
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../scripts/concat_tables.py"


rule retrain_table:
    input:
        expand("results/validation/{model}/retrain.parquet", model=RETRAIN),
    output:
        report(
            "results/tables/retrain.parquet",
            caption="../report/retrain.rst",
            category="Tables",
        ),
    log:
        "logs/retrain_table.log",
    conda:
        "../envs/cpu.yaml"
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../scripts/concat_tables.py"


rule single_image_bands:
    input:
        masks=expand("results/validation/{model}/single_image_masks.npz", model=MODELS),
    output:
        report(
            "results/tables/single_image_bands.parquet",
            caption="../report/single_image_bands.rst",
            category="Tables",
        ),
    log:
        "logs/single_image_bands.log",
    conda:
        "../envs/cpu.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        models=list(MODELS),
        reference=config["reference_model"],
        radial_bands=config["analysis"]["single_image"]["radial_bands"],
    script:
        "../scripts/single_image_bands.py"


rule single_image_decoding:
    input:
        masks=expand("results/validation/{model}/single_image_masks.npz", model=MODELS),
        images=expand(
            "results/validation/{model}/single_image_masks.parquet", model=MODELS
        ),
    output:
        report(
            "results/tables/single_image_decoding.parquet",
            caption="../report/single_image_decoding.rst",
            category="Tables",
        ),
    log:
        "logs/single_image_decoding.log",
    conda:
        "../envs/cpu.yaml"
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        models=list(MODELS),
    script:
        "../scripts/single_image_decoding.py"


rule figure_fourier_heatmap:
    input:
        table="results/tables/fourier_heatmap.parquet",
    output:
        png=report(
            "results/figures/fourier_heatmap.png",
            caption="../report/fourier_heatmap_figure.rst",
            category="Figures",
        ),
        pdf="results/figures/fourier_heatmap.pdf",
    log:
        "logs/figures/fourier_heatmap.log",
    conda:
        "../envs/cpu.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        function="fourier_heatmap_grid",
    script:
        "../scripts/figure_validation.py"


rule figure_cutoff_curves:
    input:
        table="results/tables/cutoff_curves.parquet",
    output:
        png=report(
            "results/figures/cutoff_curves.png",
            caption="../report/cutoff_curves_figure.rst",
            category="Figures",
        ),
        pdf="results/figures/cutoff_curves.pdf",
    log:
        "logs/figures/cutoff_curves.log",
    conda:
        "../envs/cpu.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        function="cutoff_curves_figure",
    script:
        "../scripts/figure_validation.py"


rule figure_single_image_bands:
    input:
        table="results/tables/single_image_bands.parquet",
    output:
        png=report(
            "results/figures/single_image_bands.png",
            caption="../report/single_image_bands_figure.rst",
            category="Figures",
        ),
        pdf="results/figures/single_image_bands.pdf",
    log:
        "logs/figures/single_image_bands.log",
    conda:
        "../envs/cpu.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        function="single_image_band_shares",
    script:
        "../scripts/figure_validation.py"


rule figure_single_image_decoding:
    input:
        table="results/tables/single_image_decoding.parquet",
    output:
        png=report(
            "results/figures/single_image_decoding.png",
            caption="../report/single_image_decoding_figure.rst",
            category="Figures",
        ),
        pdf="results/figures/single_image_decoding.pdf",
    log:
        "logs/figures/single_image_decoding.log",
    conda:
        "../envs/cpu.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        function="single_image_decoding_figure",
    script:
        "../scripts/figure_validation.py"


rule figure_retrain:
    input:
        table="results/tables/retrain.parquet",
    output:
        png=report(
            "results/figures/retrain.png",
            caption="../report/retrain_figure.rst",
            category="Figures",
        ),
        pdf="results/figures/retrain.pdf",
    log:
        "logs/figures/retrain.log",
    conda:
        "../envs/cpu.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        function="retrain_figure",
    script:
        "../scripts/figure_validation.py"
