"""Wall time of ``make run``'s Snakemake part against a fixed yardstick, measured in one run.

Machines here differ several-fold in speed from one day to the next (and other jobs share
the cores), so a pipeline time alone says little. This script runs, in order:

1. the yardstick (:mod:`benchmarks._harness`): a fixed small CNN (defined there, so that changes
   to the package never change it) trained for a fixed number of Adam steps on fixed random
   images, one thread;
2. the pipeline: ``snakemake --cores CORES --configfile CONFIG`` of a repository (the one
   this file lives in, or ``--repo``), in a fresh working directory;
3. the yardstick again;

and prints the pipeline's seconds, the yardstick's seconds (mean of before and after) and
their ratio, the figure to quote: ``ratio = pipeline seconds / yardstick seconds``. Beside
the wall-clock figures it gives CPU seconds (the pipeline's: every job's user + system time,
from ``getrusage``) and their ratio, which other processes on the machine disturb less.
It also sums the rules' ``benchmark:`` files, so the output says where the time went, and
records the load average (``os.getloadavg``) at each stage.

Usage (from the repository root)::

    python -m benchmarks.bench_pipeline [--repo PATH] [--cores all] [--configfile FILE]
                                        [--workdir DIR] [--out FILE.json]

Compare two versions by running it on each back to back (``--repo`` of a worktree of the
other commit); the yardstick code is the same for both, since it is this checkout's.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

from benchmarks._harness import REPO, YARDSTICK, between_yardsticks, yardstick_line


def children_cpu_seconds() -> float:
    """User + system CPU seconds of every finished child process (and theirs) so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_pipeline(repo: Path, workdir: Path, configfile: Path, cores: str) -> tuple[float, float]:
    """Wall and CPU seconds (all jobs together) of ``snakemake --cores CORES --configfile CONFIG`` of
    ``repo`` in ``workdir``."""
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(repo / "Snakefile"),
               "--directory", str(workdir), "--configfile", str(configfile), "--cores", cores]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (str(repo), os.environ.get("PYTHONPATH"))))}
    start, cpu = time.perf_counter(), children_cpu_seconds()
    with open(workdir / "snakemake.log", "w") as log:
        result = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=env, check=False)
    seconds, cpu = time.perf_counter() - start, children_cpu_seconds() - cpu
    if result.returncode != 0:
        raise RuntimeError(f"the pipeline failed (exit {result.returncode}); see {workdir / 'snakemake.log'}")
    return seconds, cpu


def rule_seconds(workdir: Path) -> pd.DataFrame:
    """Per rule: jobs and summed wall seconds from the ``benchmark:`` files of a run."""
    rows = []
    for path in sorted((workdir / "results" / "benchmarks").glob("*/*.tsv")):
        seconds = float(pd.read_csv(path, sep="\t")["s"].iloc[0])
        rows.append({"rule": path.parent.name, "job": path.stem, "seconds": seconds})
    if not rows:
        return pd.DataFrame(columns=["rule", "jobs", "seconds"])
    table = pd.DataFrame(rows).groupby("rule")["seconds"].agg(jobs="count", seconds="sum").reset_index()
    return table.sort_values("seconds", ascending=False).reset_index(drop=True)


def git_commit(repo: Path) -> str:
    result = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            check=False)
    return result.stdout.strip() or "unknown"


def bench(repo: Path, configfile: Path, workdir: Path, cores: str = "all", yardstick: dict = YARDSTICK) -> dict:
    """Yardstick, pipeline, yardstick; returns every figure as a JSON-ready dict."""
    (pipeline, pipeline_cpu), stick = between_yardsticks(lambda: run_pipeline(repo, workdir, configfile, cores),
                                                         yardstick, stage="pipeline")
    return {
        "date": datetime.datetime.now().isoformat(timespec="seconds"), "repo": str(repo), "commit": git_commit(repo),
        "configfile": str(configfile), "cores": cores, "cpu_count": os.cpu_count(), "torch": torch.__version__,
        "pipeline_seconds": pipeline, "pipeline_cpu_seconds": pipeline_cpu,
        "load_average": stick.pop("load_average"), "yardstick": stick,
        "ratio": pipeline / stick["seconds"], "cpu_ratio": pipeline_cpu / stick["cpu_seconds"],
        "rules": rule_seconds(workdir).to_dict("records"),
    }


def report(results: dict) -> str:
    """Human-readable summary of :func:`bench`'s results."""
    stick, load = results["yardstick"], results["load_average"]
    lines = [
        f"repo {results['repo']} (commit {results['commit']}), config {results['configfile']}, "
        f"--cores {results['cores']}",
        f"pipeline (Snakemake part): {results['pipeline_seconds']:.1f} s wall, "
        f"{results['pipeline_cpu_seconds']:.1f} s CPU "
        "(all jobs)",
        yardstick_line(stick),
        f"ratio pipeline / yardstick: {results['ratio']:.1f} (wall), {results['cpu_ratio']:.1f} (CPU)",
        "load average (1 min): " + ", ".join(f"{k} {v[0]:.2f}" for k, v in load.items()),
        "rule job seconds (summed over jobs; jobs run in parallel up to --cores):",
    ]
    lines += [f"  {row['rule']:<26} {row['jobs']:3d} jobs {row['seconds']:8.1f} s" for row in results["rules"]]
    return "\n".join(lines)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", type=Path, default=REPO, help="repository whose pipeline to run (default: this one)")
    parser.add_argument("--configfile", type=Path, help="config (default: REPO/config/config.yaml)")
    parser.add_argument("--cores", default="all", help="snakemake --cores (default: all, as make run)")
    parser.add_argument("--workdir", type=Path, help="fresh working directory (default: a temporary one, removed)")
    parser.add_argument("--out", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    repo = args.repo.resolve()
    configfile = (args.configfile or repo / "config" / "config.yaml").resolve()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench_pipeline_"))
    workdir.mkdir(parents=True, exist_ok=True)
    results = bench(repo, configfile, workdir.resolve(), args.cores)
    print(report(results))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2))
    if args.workdir is None:
        shutil.rmtree(workdir)
    return results


if __name__ == "__main__":
    main()
