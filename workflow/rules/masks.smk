# Masks of all seeds of a model are learned in one pass (mask.vectorize_seeds: true), or
# one job per model and seed. Checkpoints live outside the declared outputs, so a killed
# job resumes from its last epoch instead of starting over.
if config["mask"]["vectorize_seeds"]:

    rule learn_masks:
        input:
            data=DATA_FILES,
            model="results/models/{model}/model.pt",
        output:
            masks=expand("results/masks/{{model}}/seed{seed}.npy", seed=SEEDS),
            histories=expand(
                "results/masks/{{model}}/seed{seed}_history.parquet", seed=SEEDS
            ),
        log:
            "logs/learn_masks/{model}.log",
        benchmark:
            "results/benchmarks/learn_masks/{model}.tsv"
        conda:
            "../envs/gpu.yaml"
        threads: 1
        resources:
            gpu=GPU,
            mem_mb=mem_mb(4000),
            runtime=240,
        params:
            seeds=SEEDS,
            mask=config["mask"],
            device=config["device"],
            checkpoint="results/checkpoints/masks/{model}/all_seeds.pt",
        script:
            "../scripts/learn_masks.py"

else:

    rule learn_masks:
        input:
            data=DATA_FILES,
            model="results/models/{model}/model.pt",
        output:
            masks=["results/masks/{model}/seed{seed}.npy"],
            histories=["results/masks/{model}/seed{seed}_history.parquet"],
        log:
            "logs/learn_masks/{model}_seed{seed}.log",
        benchmark:
            "results/benchmarks/learn_masks/{model}_seed{seed}.tsv"
        conda:
            "../envs/gpu.yaml"
        threads: 1
        resources:
            gpu=GPU,
            mem_mb=mem_mb(4000),
            runtime=240,
        params:
            seeds=lambda wildcards: [int(wildcards.seed)],
            mask=config["mask"],
            device=config["device"],
            checkpoint="results/checkpoints/masks/{model}/seed{seed}.pt",
        script:
            "../scripts/learn_masks.py"
