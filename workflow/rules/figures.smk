rule figure_mask_grid:
    input:
        masks=mask_files(),
    output:
        png=report(
            "results/figures/mask_grid.png",
            caption="../report/mask_grid.rst",
            category="Figures",
        ),
        pdf="results/figures/mask_grid.pdf",
    log:
        "logs/figures/mask_grid.log",
    conda:
        "../envs/cpu.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        models=list(MODELS),
        seeds=SEEDS,
    script:
        "../scripts/figure_mask_grid.py"


rule figure_profiles:
    input:
        radial="results/tables/radial_profile.parquet",
        angular="results/tables/angular_profile.parquet",
        stats="results/tables/frequency_bias_stats.parquet",
    output:
        png=report(
            "results/figures/profiles.png",
            caption="../report/profiles_figure.rst",
            category="Figures",
        ),
        pdf="results/figures/profiles.pdf",
    log:
        "logs/figures/profiles.log",
    conda:
        "../envs/cpu.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        reference=config["reference_model"],
    script:
        "../scripts/figure_profiles.py"


rule figure_frequency_bias:
    input:
        bias="results/tables/frequency_bias.parquet",
        masks="results/tables/masks.parquet",
    output:
        png=report(
            "results/figures/frequency_bias.png",
            caption="../report/frequency_bias_figure.rst",
            category="Figures",
        ),
        pdf="results/figures/frequency_bias.pdf",
    log:
        "logs/figures/frequency_bias.log",
    conda:
        "../envs/cpu.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        reference=config["reference_model"],
    script:
        "../scripts/figure_frequency_bias.py"


rule figure_transfer:
    input:
        transfer="results/tables/transfer.parquet",
    output:
        png=report(
            "results/figures/transfer.png",
            caption="../report/transfer_figure.rst",
            category="Figures",
        ),
        pdf="results/figures/transfer.pdf",
    log:
        "logs/figures/transfer.log",
    conda:
        "../envs/cpu.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/figure_transfer.py"


rule figure_examples:
    input:
        data=DATA_FILES,
        masks=mask_files(seeds=SEEDS[:1]),
    output:
        png=report(
            "results/figures/examples.png",
            caption="../report/examples.rst",
            category="Figures",
        ),
        pdf="results/figures/examples.pdf",
    log:
        "logs/figures/examples.log",
    conda:
        "../envs/cpu.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        models=list(MODELS),
        n_images=config["analysis"]["example_images"],
        threshold=config["analysis"]["binarize_threshold"],
    script:
        "../scripts/figure_examples.py"
