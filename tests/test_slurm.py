"""The execution profiles: profiles/slurm on a real single-node SLURM cluster, and the
GPU pool of profiles/local-gpu.

The cluster (tests/slurm.py, tests/start_slurm.sh) has no GPUs and no accounting, so
the run adds `--slurm-status-command squeue` and uses the tiny config, whose `device: cpu`
makes the rules ask for no GPU; every other resource comes from the profile and the rules
unchanged. Whether a job went
through SLURM is judged from both sides: Snakemake's log (non-local jobs are printed
as "rule x:", local ones as "localrule x:"; the plugin logs each submission with its
SLURM job id) and SLURM itself (`squeue --states=all` keeps finished jobs for
MinJobAge = 600 s; the plugin puts "rule_<name>..." in each job's comment).
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml
from slurm import Cluster, ClusterUnavailable, slurm_submissions, snakemake_jobs

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
SLURM_PROFILE = REPO / "profiles" / "slurm"
LOCAL_GPU_PROFILE = REPO / "profiles" / "local-gpu"
GPU_RULES = {"learn_masks", "train_model", "evaluate_model", "evaluate_masks", "fourier_heatmap", "cutoff_curves",
             "retrain"}
TINY = REPO / "tests" / "configs" / "tiny.yaml"
# evaluate_masks and what it needs (data, training, masks): every GPU rule family but
# evaluate_model, in under three minutes on two cores. The whole DAG takes about four.
UNTIL = "evaluate_masks"


def profile(directory: Path) -> dict:
    return yaml.safe_load((directory / "profile.yaml").read_text())


@pytest.mark.parametrize("directory", [SLURM_PROFILE, LOCAL_GPU_PROFILE], ids=lambda p: p.name)
def test_profile_and_config_yaml_are_identical(directory):
    assert (directory / "profile.yaml").read_text() == (directory / "config.yaml").read_text()


@pytest.mark.parametrize("device, form, asks", [("auto", "gpus", {"gpu": "1"}), ("cpu", "gpus", {}),
                                                   ("auto", "gres", {"gres": "gpu:1"}), ("cuda", "none", {})])
def test_slurm_profile_requests_one_gpu_for_gpu_rules_only(tmp_path, device, form, asks):
    """Dry run of the tiny workflow: the resources Snakemake would hand to sbatch, by cluster.gpu_request."""
    assert profile(SLURM_PROFILE)["executor"] == "slurm"
    done = subprocess.run(
        [*SNAKEMAKE, "--profile", str(SLURM_PROFILE), "--slurm-status-command", "squeue",
         "--configfile", str(TINY), "--config", f"device={device}", f"cluster={{gpu_request: {form}}}",
         "--directory", str(tmp_path), "--dry-run"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    jobs = [job for job in snakemake_jobs(done.stdout + done.stderr) if not job.local]
    assert {job.rule for job in jobs} >= GPU_RULES
    for job in jobs:
        asked = {key: job.resources[key] for key in ("gpu", "gres") if key in job.resources}
        assert asked == (asks if job.rule in GPU_RULES else {}), job
        assert int(job.resources["mem_mb"]) > 0 and int(job.resources["runtime"]) > 0, job
        assert "cpus_per_task" in job.resources, job


# --- profiles/local-gpu: at most `gpu` GPU jobs at a time ------------------------------

GPU_POOL_SNAKEFILE = """
rule all:
    input: expand("done/{name}_{i}", name=["learn_masks", "train_model", "cpu"], i=range(2))

rule learn_masks:
    output: "done/learn_masks_{i}"
    resources: gpu=1
    shell: "echo $(date +%s.%N) > {output}; sleep 2; echo $(date +%s.%N) >> {output}"

use rule learn_masks as train_model with:
    output: "done/train_model_{i}"

rule cpu:
    output: "done/cpu_{i}"
    shell: "echo $(date +%s.%N) > {output}; sleep 2; echo $(date +%s.%N) >> {output}"
"""


def intervals(workdir: Path, prefix: str) -> list[tuple[float, float]]:
    return [tuple(map(float, path.read_text().split()))
            for path in sorted((workdir / "done").glob(f"{prefix}*"))]


def overlapping(spans: list[tuple[float, float]]) -> int:
    """Most spans running at the same instant."""
    events = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    running = most = 0
    for _, step in events:
        running += step
        most = max(most, running)
    return most


@pytest.mark.parametrize("pool", [1, 2])
def test_local_gpu_profile_caps_concurrent_gpu_jobs(tmp_path, pool):
    (tmp_path / "Snakefile").write_text(GPU_POOL_SNAKEFILE)
    subprocess.run(
        [*SNAKEMAKE, "--profile", str(LOCAL_GPU_PROFILE), "--cores", "6",
         "--resources", f"gpu={pool}", "--snakefile", str(tmp_path / "Snakefile"),
         "--directory", str(tmp_path)],
        check=True, capture_output=True, timeout=120,
    )
    gpu_jobs = intervals(tmp_path, "learn_masks") + intervals(tmp_path, "train_model")
    assert len(gpu_jobs) == 4
    assert overlapping(gpu_jobs) == pool
    # CPU jobs are not held back by the pool: they run beside the GPU jobs.
    assert overlapping(gpu_jobs + intervals(tmp_path, "cpu")) > pool


# --- profiles/slurm on a real cluster -----------------------------------------------------


@pytest.fixture(scope="session")
def slurm_cluster():
    try:
        cluster = Cluster.start()
    except ClusterUnavailable as reason:
        pytest.skip(f"no SLURM cluster on this machine: {reason}")
    yield cluster
    cluster.stop()


def run_on(cluster, command: list[str], timeout: int) -> str:
    """Run a Snakemake command that submits to ``cluster``; its log (stdout and stderr). A run that
    fails fails the test; one that times out cancels its jobs first."""
    try:
        done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        cluster.cancel_all()
        raise
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-6000:]
    return log


@pytest.fixture(scope="module")
def slurm_run(slurm_cluster, tmp_path_factory):
    """The tiny workflow, until evaluate_masks, through profiles/slurm."""
    workdir = tmp_path_factory.mktemp("slurm")
    before = slurm_cluster.last_job_id()
    command = [
        *SNAKEMAKE, "--profile", str(SLURM_PROFILE),
        "--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "1",
        "--slurm-keep-successful-logs",
        "--configfile", str(TINY), "--directory", str(workdir), "--until", UNTIL,
    ]
    start = time.monotonic()
    log = run_on(slurm_cluster, command, timeout=600)
    jobs = [job for job in slurm_cluster.jobs() if job.id > before]
    print(f"\nSLURM run took {time.monotonic() - start:.0f} s; SLURM jobs:")
    for job in jobs:
        print(f"  {job}")
    return workdir, log, jobs


def test_every_non_local_job_ran_as_a_completed_slurm_job(slurm_run):
    workdir, log, slurm_jobs = slurm_run
    jobs = list(snakemake_jobs(log))
    remote = [job for job in jobs if not job.local]
    submitted = slurm_submissions(log)
    assert {job.rule for job in remote} >= {"train_model", "learn_masks", "evaluate_masks"}
    assert {job.rule for job in jobs if job.local} >= {"prepare_dataset"}, "it downloads: never on a compute node"
    # Same jobs seen from both sides: Snakemake's non-local jobs, and SLURM's.
    assert Counter(job.rule for job in remote) == Counter(job.rule for job in slurm_jobs)
    assert sorted(submitted) == sorted(job.jobid for job in remote)
    assert sorted(submitted.values()) == sorted(job.id for job in slurm_jobs)
    assert {job.state for job in slurm_jobs} == {"COMPLETED"}
    # The plugin's per-job log is SLURM's --output; it holds the job's own Snakemake run.
    for job in slurm_jobs:
        logs = list((workdir / ".snakemake" / "slurm_logs").glob(f"rule_{job.rule}/**/{job.id}.log"))
        assert len(logs) == 1 and "--executor slurm-jobstep" in logs[0].read_text(), job
    assert list((workdir / "results" / "analysis").glob("*/controls.parquet"))


def test_slurm_jobs_got_the_resources_snakemake_asked_for(slurm_run):
    _, log, slurm_jobs = slurm_run
    by_id = {job.id: job for job in slurm_jobs}
    submitted = slurm_submissions(log)
    for job in snakemake_jobs(log):
        if job.local:
            continue
        slurm_job = by_id[submitted[job.jobid]]
        assert slurm_job.mem_mb == int(job.resources["mem_mb"]), (job, slurm_job)
        assert slurm_job.time_limit_min == int(job.resources["runtime"]), (job, slurm_job)
        assert slurm_job.cpus == int(job.resources["cpus_per_task"]), (job, slurm_job)


@pytest.mark.parametrize("form, option, tres", [("gpus", "--gpus=1", "TresPerJob=gres:gpu:1"),
                                                ("gres", "--gres=gpu:1", "TresPerNode=gres:gpu:1")])
def test_gpu_request_reaches_sbatch_in_either_form(slurm_cluster, tmp_path, form, option, tres):
    """One GPU job (train_model) through profiles/slurm on the cluster, whose node has a GPU as GRES:
    the sbatch call carries the form cluster.gpu_request names and no other, and SLURM ran the job
    with the GPU allocated that way."""
    command = [
        *SNAKEMAKE, "--profile", str(SLURM_PROFILE), "--verbose",
        "--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "1",
        "--configfile", str(TINY), "--config", "device=auto", f"cluster={{gpu_request: {form}}}",
        "--directory", str(tmp_path), "results/models/standard/model.pt",
    ]
    log = run_on(slurm_cluster, command, timeout=300)
    calls = [line.split("sbatch call:", 1)[1].strip() for line in log.splitlines() if "sbatch call:" in line]
    print(f"\ncluster.gpu_request: {form}\n  sbatch call: {calls}")
    assert len(calls) == 1 and "rule_train_model" in calls[0], calls
    other = {"--gpus=1": "--gres", "--gres=gpu:1": "--gpus"}[option]
    assert option in calls[0].split() and other not in calls[0], calls[0]
    (job_id,) = slurm_submissions(log).values()
    shown = subprocess.run(["scontrol", "show", "job", str(job_id)], capture_output=True, text=True, check=True)
    assert tres in shown.stdout.split() and "JobState=COMPLETED" in shown.stdout.split(), shown.stdout
