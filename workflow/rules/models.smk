localrules:
    acquire_model,


rule train_model:
    input:
        data=DATA_FILES,
    output:
        model="results/models/{model}/model.pt",
        history="results/models/{model}/training.parquet",
    log:
        "logs/train_model/{model}.log",
    benchmark:
        "results/benchmarks/train_model/{model}.tsv"
    wildcard_constraints:
        model=_alternatives(TRAINED),
    conda:
        "../envs/gpu.yaml"
    threads: 1
    resources:
        gpu=GPU,
        mem_mb=mem_mb(4000),
        runtime=240,
    params:
        spec=model_spec,
        training=config["training"],
        device=config["device"],
    script:
        "../scripts/train_model.py"


rule acquire_model:
    output:
        model="results/models/{model}/model.pt",
    log:
        "logs/acquire_model/{model}.log",
    wildcard_constraints:
        model=_alternatives(ACQUIRED),
    conda:
        "../envs/cpu.yaml"
    resources:
        mem_mb=mem_mb(8000),
        runtime=60,
    params:
        spec=model_spec,
        resources_dir="resources",
        offline=config["offline"],
        dataset=config["dataset"],
    script:
        "../scripts/acquire_model.py"


rule evaluate_model:
    input:
        data=DATA_FILES,
        model="results/models/{model}/model.pt",
    output:
        summary="results/models/{model}/summary.parquet",
    log:
        "logs/evaluate_model/{model}.log",
    benchmark:
        "results/benchmarks/evaluate_model/{model}.tsv"
    conda:
        "../envs/gpu.yaml"
    threads: 1
    resources:
        gpu=GPU,
        mem_mb=mem_mb(4000),
        runtime=60,
    params:
        spec=model_spec,
        robust_eval=config["analysis"]["robust_eval"],
        device=config["device"],
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
