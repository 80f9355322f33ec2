from fourier_masks.data.preflight import source_digest


# Downloads (CIFAR, when absent) run where the workflow runs: compute nodes often have no internet.
localrules:
    prepare_dataset,


rule prepare_dataset:
    output:
        DATA_FILES,
    log:
        "<logs>/prepare_dataset.log",
    benchmark:
        "<benchmarks>/prepare_dataset.tsv"
    conda:
        "../envs/cpu.yaml"
    resources:
        mem_mb=mem_mb(4000),
        runtime=runtime_min(60),
    params:
        dataset=lookup(dpath="dataset", within=config),
        resources_dir="resources",
        # the dataset's image files (paths and contents) as read now: a change reruns the data
        source_digest=source_digest(config["dataset"], "resources"),
        data_folder=lambda wildcards, output: os.path.dirname(output[0]),
    script:
        "../scripts/prepare_dataset.py"
