"""A real single-node SLURM cluster for tests, and what it and Snakemake report.

`Cluster.start()` runs tests/start_slurm.sh (install if needed, configure, start, wait
until the node is idle); `ClusterUnavailable` means this machine cannot have one (not
root, no apt, a foreign slurm.conf) and carries the reason. Finished jobs stay visible
to `squeue --states=all` for MinJobAge = 600 s, which is what `Cluster.jobs` reads: the
test cluster has no accounting database.
"""

from __future__ import annotations

import dataclasses
import getpass
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

SCRIPT = Path(__file__).with_name("start_slurm.sh")
UNAVAILABLE = 77  # start_slurm.sh's exit status for "no cluster possible here"


class ClusterUnavailable(RuntimeError):
    pass


@dataclasses.dataclass(frozen=True)
class SlurmJob:
    id: int
    rule: str  # from the plugin's --comment "rule_<name>[_wildcards_<values>]"
    state: str
    mem_mb: int
    time_limit_min: int | None  # None: no limit
    cpus: int


class Cluster:
    def __init__(self, script: Path = SCRIPT):
        self.script = script

    @classmethod
    def start(cls, script: Path = SCRIPT) -> Cluster:
        cluster = cls(script)
        done = subprocess.run(
            ["bash", str(script), "start"], capture_output=True, text=True, timeout=900
        )
        if done.returncode == UNAVAILABLE:
            raise ClusterUnavailable(done.stderr.strip())
        if done.returncode != 0:
            raise RuntimeError(f"{script} start failed:\n{done.stdout}\n{done.stderr}")
        return cluster

    def stop(self) -> None:
        subprocess.run(["bash", str(self.script), "stop"], check=True, timeout=120)

    def jobs(self) -> list[SlurmJob]:
        out = subprocess.run(
            ["squeue", "--states=all", "--noheader", "--format=%i|%k|%T|%m|%l|%C"],
            capture_output=True, text=True, check=True,
        ).stdout
        return [parse_squeue_line(line) for line in out.splitlines() if line.strip()]

    def last_job_id(self) -> int:
        return max((job.id for job in self.jobs()), default=0)

    def cancel_all(self) -> None:
        subprocess.run(["scancel", "--user", getpass.getuser()], check=False)


def parse_squeue_line(line: str) -> SlurmJob:
    job_id, comment, state, mem, limit, cpus = line.strip().split("|")
    return SlurmJob(
        id=int(job_id),
        rule=re.sub(r"^rule_", "", comment).split("_wildcards_")[0],
        state=state,
        mem_mb=parse_mem_mb(mem),
        time_limit_min=parse_minutes(limit),
        cpus=int(cpus),
    )


def parse_mem_mb(text: str) -> int:
    """squeue's %m: '4000M', '4G', '1T'."""
    number, unit = re.fullmatch(r"([\d.]+)([KMGT]?)", text).groups()
    return round(float(number) * {"K": 1 / 1024, "M": 1, "": 1, "G": 1024, "T": 1024**2}[unit])


def parse_minutes(text: str) -> int | None:
    """squeue's %l: 'UNLIMITED', 'MM:SS', 'HH:MM:SS', 'D-HH:MM:SS' (whole minutes)."""
    if text in ("UNLIMITED", "INFINITE", "NOT_SET"):
        return None
    days, _, clock = text.rpartition("-")
    parts = [int(p) for p in clock.split(":")]
    while len(parts) < 3:
        parts.insert(0, 0)
    hours, minutes, seconds = parts
    return (int(days or 0) * 24 + hours) * 60 + minutes + seconds // 60


@dataclasses.dataclass(frozen=True)
class SnakemakeJob:
    """One job header of Snakemake's log ('rule x:' or 'localrule x:' and its fields)."""

    rule: str
    local: bool
    jobid: int
    resources: dict[str, str]


def snakemake_jobs(log: str) -> Iterator[SnakemakeJob]:
    header = re.compile(r"^(local)?rule (\w+):$")
    lines = log.splitlines()
    for i, line in enumerate(lines):
        match = header.match(line)
        if not match:
            continue
        fields = {}
        for field in lines[i + 1 :]:
            if not field.startswith("    "):
                break
            key, _, value = field.strip().partition(": ")
            fields[key] = value
        resources = dict(
            item.split("=", 1) for item in fields.get("resources", "").split(", ") if "=" in item
        )
        yield SnakemakeJob(match[2], bool(match[1]), int(fields["jobid"]), resources)


def slurm_submissions(log: str) -> dict[int, int]:
    """Snakemake job id -> SLURM job id, from the plugin's 'has been submitted' lines."""
    pattern = r"^Job (\d+) has been submitted with SLURM jobid (\d+) "
    return {int(a): int(b) for a, b in re.findall(pattern, log, flags=re.MULTILINE)}
