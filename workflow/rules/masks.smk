# Masks of all seeds of a model are learned in one job and one pass (mask.vectorize_seeds:
# true), or one job per model and seed; MASK_JOB names the job's files either way.
# Checkpoints live outside the declared outputs, so a killed job resumes from its last one
# instead of starting over.
MASK_JOB = (
    {"name": "{model}", "seeds": SEEDS, "checkpoint": "{model}/all_seeds"}
    if config["mask"]["vectorize_seeds"]
    else {
        "name": "{model}_seed{seed}",
        "seeds": ["{seed}"],
        "checkpoint": "{model}/seed{seed}",
    }
)
# The mask keys the job reads (eval_batch_size serves the analyses, vectorize_seeds the wiring).
MASK_SETTINGS = {
    key: value
    for key, value in config["mask"].items()
    if key not in ("eval_batch_size", "vectorize_seeds")
}


rule learn_masks:
    input:
        data=rules.prepare_dataset.output,
        model=MODEL_FILE,
    output:
        masks=expand("<results>/masks/{{model}}/seed{seed}.npy", seed=MASK_JOB["seeds"]),
        histories=expand(
            "<results>/masks/{{model}}/seed{seed}_history.parquet",
            seed=MASK_JOB["seeds"],
        ),
    log:
        f"<logs>/learn_masks/{MASK_JOB['name']}.log",
    benchmark:
        f"<benchmarks>/learn_masks/{MASK_JOB['name']}.tsv"
    conda:
        NETWORK_ENV
    threads: 1
    resources:
        **GPU_REQUEST,
        mem_mb=mem_mb(4000),
        runtime=runtime_min(240),
    params:
        # the seed in the job's name, or every seed
        seeds=lambda wildcards: (
            [int(wildcards.seed)] if "seed" in wildcards.keys() else SEEDS
        ),
        mask=MASK_SETTINGS,
        device=lookup(dpath="device", within=config),
        imports=model_imports,
        checkpoint=f"{OUTPUT}/checkpoints/masks/{MASK_JOB['checkpoint']}.pt",
        data_folder=data_folder,
    script:
        "../scripts/learn_masks.py"
