rule figure_mask_grid:
    input:
        masks=mask_files(),
        histories=history_files(),
    output:
        png=report(
            "<results>/figures/mask_grid.png",
            caption="../report/mask_grid.rst",
            category="Figures",
        ),
        pdf="<results>/figures/mask_grid.pdf",
    log:
        "<logs>/figures/mask_grid.log",
    conda:
        "../envs/cpu.yaml"
    resources:
        mem_mb=2000,
        runtime=runtime_min(10),
    params:
        models=list(MODELS),
        seeds=SEEDS,
        sources=MASK_SOURCES,
    script:
        "../scripts/figure_mask_grid.py"


rule figure_profiles:
    input:
        radial=rules.profiles.output.radial,
        angular=rules.profiles.output.angular,
        stats=rules.frequency_bias_stats.output.stats,
    output:
        png=report(
            "<results>/figures/profiles.png",
            caption="../report/profiles_figure.rst",
            category="Figures",
        ),
        pdf="<results>/figures/profiles.pdf",
    log:
        "<logs>/figures/profiles.log",
    conda:
        "../envs/cpu.yaml"
    resources:
        mem_mb=2000,
        runtime=runtime_min(10),
    params:
        reference=lookup(dpath="reference_model", within=config),
    script:
        "../scripts/figure_profiles.py"


rule figure_frequency_bias:
    input:
        bias=rules.profiles.output.bias,
        masks=rules.masks_table.output.table,
    output:
        png=report(
            "<results>/figures/frequency_bias.png",
            caption="../report/frequency_bias_figure.rst",
            category="Figures",
        ),
        pdf="<results>/figures/frequency_bias.pdf",
    log:
        "<logs>/figures/frequency_bias.log",
    conda:
        "../envs/cpu.yaml"
    resources:
        mem_mb=2000,
        runtime=runtime_min(10),
    params:
        reference=lookup(dpath="reference_model", within=config),
    script:
        "../scripts/figure_frequency_bias.py"


rule figure_transfer:
    input:
        transfer=rules.transfer_table.output.table,
    output:
        png=report(
            "<results>/figures/transfer.png",
            caption="../report/transfer_figure.rst",
            category="Figures",
        ),
        pdf="<results>/figures/transfer.pdf",
    log:
        "<logs>/figures/transfer.log",
    conda:
        "../envs/cpu.yaml"
    resources:
        mem_mb=2000,
        runtime=runtime_min(10),
    script:
        "../scripts/figure_transfer.py"


rule figure_examples:
    input:
        data=rules.prepare_dataset.output,
        masks=mask_files(seeds=SEEDS[:1]),
    output:
        png=report(
            "<results>/figures/examples.png",
            caption="../report/examples.rst",
            category="Figures",
        ),
        pdf="<results>/figures/examples.pdf",
    log:
        "<logs>/figures/examples.log",
    conda:
        "../envs/cpu.yaml"
    resources:
        mem_mb=2000,
        runtime=runtime_min(10),
    params:
        models=list(MODELS),
        n_images=lookup(dpath="analysis/example_images", within=config),
        threshold=lookup(dpath="analysis/binarize_threshold", within=config),
        data_folder=data_folder,
    script:
        "../scripts/figure_examples.py"


# One figure per analysis table, drawn by the named function of fourier_masks.figures.
for figure, table, function in (
    (
        "fourier_heatmap",
        rules.fourier_heatmap_table.output.table,
        "fourier_heatmap_grid",
    ),
    ("cutoff_curves", rules.cutoff_curves_table.output.table, "cutoff_curves_figure"),
    (
        "single_image_bands",
        rules.single_image_bands.output.table,
        "single_image_band_shares",
    ),
    (
        "single_image_decoding",
        rules.single_image_decoding.output.table,
        "single_image_decoding_figure",
    ),
    ("retrain", rules.retrain_table.output.table, "retrain_figure"),
):

    rule:
        name:
            f"figure_{figure}"
        input:
            table=table,
        output:
            png=report(
                f"<results>/figures/{figure}.png",
                caption=f"../report/{figure}_figure.rst",
                category="Figures",
            ),
            pdf=f"<results>/figures/{figure}.pdf",
        log:
            f"<logs>/figures/{figure}.log",
        conda:
            "../envs/cpu.yaml"
        resources:
            mem_mb=2000,
            runtime=runtime_min(10),
        params:
            function=function,
        script:
            "../scripts/figure_validation.py"
