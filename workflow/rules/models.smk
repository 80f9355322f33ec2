from fourier_masks.models.sources import model_file

# Models whose file is fetched by URL (rule download_model).
DOWNLOADED = [name for name, model in MODELS.items() if model.get("url")]


localrules:
    download_model,
    acquire_model,


rule train_model:
    input:
        data=rules.prepare_dataset.output,
    output:
        model=MODEL_FILE,
        history="<results>/models/{model}/training.parquet",
    log:
        "<logs>/train_model/{model}.log",
    benchmark:
        "<benchmarks>/train_model/{model}.tsv"
    wildcard_constraints:
        model=_alternatives(TRAINED),
    conda:
        NETWORK_ENV
    threads: 1
    resources:
        **GPU_REQUEST,
        mem_mb=mem_mb(4000),
        runtime=runtime_min(240),
    params:
        spec=model_spec,
        training=regime_training,
        channels_last=lookup(dpath="channels_last", within=config),
        device=lookup(dpath="device", within=config),
        data_folder=data_folder,
    script:
        "../scripts/train_model.py"


rule download_model:
    output:
        "resources/models/{model}/{file}",
    log:
        "<logs>/download_model/{model}/{file}.log",
    wildcard_constraints:
        model=_alternatives(DOWNLOADED),
        file=r"[^/]+",
    conda:
        "../envs/cpu.yaml"
    resources:
        mem_mb=1000,
        runtime=runtime_min(120),
    params:
        spec=model_spec,
    script:
        "../scripts/download_model.py"


# The model file an acquired model is read from (RobustBench's loader finds its own files).
rule acquire_model:
    input:
        file=lambda wildcards: (
            []
            if MODELS[wildcards.model]["source"] == "robustbench"
            else [str(model_file(MODELS[wildcards.model], "resources"))]
        ),
    output:
        model=temp("<results>/models/{model}/acquired.pt"),
    log:
        "<logs>/acquire_model/{model}.log",
    wildcard_constraints:
        model=_alternatives(ACQUIRED),
    conda:
        "../envs/cpu.yaml"
    resources:
        mem_mb=mem_mb(8000),
        runtime=runtime_min(60),
    params:
        spec=model_spec,
        resources_dir="resources",
        offline=lookup(dpath="offline", within=config),
        dataset=lookup(dpath="dataset", within=config),
        channels_last=lookup(dpath="channels_last", within=config),
        # the model file and the architecture's source as read now: a change reruns the model
        content=model_content,
    script:
        "../scripts/acquire_model.py"


# An acquired model becomes results/models/{model}/model.pt only once its clean test accuracy
# shows that it sees the data as it was trained (chance level, expected_accuracy).
rule check_model:
    input:
        data=rules.prepare_dataset.output,
        model=rules.acquire_model.output.model,
    output:
        model=MODEL_FILE,
    log:
        "<logs>/check_model/{model}.log",
    benchmark:
        "<benchmarks>/check_model/{model}.tsv"
    wildcard_constraints:
        model=_alternatives(ACQUIRED),
    conda:
        NETWORK_ENV
    threads: 1
    resources:
        **GPU_REQUEST,
        mem_mb=mem_mb(4000),
        runtime=runtime_min(60),
    params:
        spec=model_spec,
        batch_size=lookup(dpath="mask/eval_batch_size", within=config),
        device=lookup(dpath="device", within=config),
        imports=model_imports,
        data_folder=data_folder,
    script:
        "../scripts/check_model.py"


rule evaluate_model:
    input:
        data=rules.prepare_dataset.output,
        model=MODEL_FILE,
    output:
        summary="<results>/models/{model}/summary.parquet",
    log:
        "<logs>/evaluate_model/{model}.log",
    benchmark:
        "<benchmarks>/evaluate_model/{model}.tsv"
    conda:
        NETWORK_ENV
    threads: 1
    resources:
        **GPU_REQUEST,
        mem_mb=mem_mb(4000),
        runtime=runtime_min(60),
    params:
        spec=model_spec,
        # this model's attack and budget (fourier_masks.models.threat): what it reads, so a change
        # reruns only the models whose threat it changes
        robust=model_threat,
        batch_size=lookup(dpath="mask/eval_batch_size", within=config),
        device=lookup(dpath="device", within=config),
        imports=model_imports,
        data_folder=data_folder,
    script:
        "../scripts/evaluate_model.py"
