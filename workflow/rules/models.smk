localrules:
    acquire_model,


rule train_model:
    input:
        DATA_FILES,
    output:
        model="results/models/{model}/model.pt",
        history="results/models/{model}/training.parquet",
    wildcard_constraints:
        model=_alternatives(TRAINED),
    params:
        spec=model_spec,
        training=config["training"],
        device=config["device"],
        data=DATA,
    log:
        "logs/train_model/{model}.log",
    benchmark:
        "results/benchmarks/train_model/{model}.tsv"
    threads: 2
    conda:
        "../envs/gpu.yaml"
    resources:
        mem_mb=mem_mb(4000),
        runtime=240,
    script:
        "../scripts/train_model.py"


rule acquire_model:
    output:
        model="results/models/{model}/model.pt",
    wildcard_constraints:
        model=_alternatives(ACQUIRED),
    params:
        spec=model_spec,
        resources_dir="resources",
        offline=config["offline"],
    log:
        "logs/acquire_model/{model}.log",
    conda:
        "../envs/cpu.yaml"
    resources:
        mem_mb=mem_mb(8000),
        runtime=60,
    script:
        "../scripts/acquire_model.py"


rule evaluate_model:
    input:
        DATA_FILES,
        model="results/models/{model}/model.pt",
    output:
        summary="results/models/{model}/summary.parquet",
    params:
        spec=model_spec,
        robust_eval=config["analysis"]["robust_eval"],
        device=config["device"],
        data=DATA,
    log:
        "logs/evaluate_model/{model}.log",
    benchmark:
        "results/benchmarks/evaluate_model/{model}.tsv"
    threads: 1
    conda:
        "../envs/gpu.yaml"
    resources:
        mem_mb=mem_mb(4000),
        runtime=60,
    script:
        "../scripts/evaluate_model.py"


rule models_table:
    input:
        expand("results/models/{model}/summary.parquet", model=MODELS),
    output:
        report(
            "results/tables/models.parquet",
            caption="../report/models.rst",
            category="Tables",
        ),
    log:
        "logs/models_table.log",
    conda:
        "../envs/cpu.yaml"
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../scripts/concat_tables.py"
