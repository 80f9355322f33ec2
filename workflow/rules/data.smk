rule prepare_dataset:
    output:
        DATA_FILES,
    log:
        "logs/prepare_dataset.log",
    benchmark:
        "results/benchmarks/prepare_dataset.tsv"
    conda:
        "../envs/cpu.yaml"
    resources:
        mem_mb=mem_mb(4000),
        runtime=60,
    params:
        dataset=config["dataset"],
        resources_dir="resources",
    script:
        "../scripts/prepare_dataset.py"
