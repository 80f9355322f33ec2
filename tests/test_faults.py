"""Hostile and careless input through the real workflow: nothing runs code from a file, nothing
passes silently, and every failure ends in one paragraph naming the key or file, no traceback."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from fourier_masks.atomic import write_atomic
from fourier_masks.config import TEMPLATES_OPT_IN
from fourier_masks.masks.learning import learn_masks

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "tests" / "configs" / "tiny.yaml"
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile")]
TRACEBACK_SIGNS = ("Traceback (most recent call last)", 'File "')


def run(workdir, text, *args, env=None, wrap=()):
    """``snakemake --configfile`` of the config ``text`` in ``workdir``; (returncode, console output)."""
    (workdir / "config.yaml").write_text(text)
    command = [*wrap, *SNAKEMAKE, "--directory", str(workdir), "--configfile", str(workdir / "config.yaml"),
               "--cores", "1", *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False,
                            env={**os.environ, **(env or {})})
    return result.returncode, result.stdout + result.stderr


def tiny(**changes):
    """The tiny config as YAML text; ``changes`` update its sections (a dataset with a name replaces it)."""
    config = yaml.safe_load(TINY.read_text())
    for key, value in changes.items():
        merge = isinstance(value, dict) and "name" not in value
        config[key] = {**config[key], **value} if merge else value
    return yaml.safe_dump(config, sort_keys=False)


def assert_one_paragraph(code, output, *parts):
    assert code != 0, output[-3000:]
    for part in parts:
        assert part in output, output[-3000:]
    for sign in TRACEBACK_SIGNS:
        assert sign not in output, output[-3000:]


@pytest.mark.slow
def test_yte_template_is_refused(tmp_path):
    """Snakemake renders a template while it reads --configfile, before any workflow code: the
    guard ``make`` installs in the venv (fourier_masks.template_guard) refuses it first."""
    marker = tmp_path / "MARKER"
    text = f'__use_yte__: true\ndevice: ?__import__("pathlib").Path({str(marker)!r}).write_text("x") and "cpu"\n'
    code, output = run(tmp_path, text, "-n")
    assert_one_paragraph(code, output, "config.yaml sets __use_yte__: true", TEMPLATES_OPT_IN)
    assert "Job stats" not in output and not (tmp_path / "results").exists()
    assert not marker.exists(), "the template's code ran"


@pytest.mark.slow
def test_yte_template_runs_with_the_documented_opt_in(tmp_path):
    text = "__use_yte__: true\n" + tiny(seeds="?[s for s in range(3, 5)]")
    code, output = run(tmp_path, text, "-n", env={TEMPLATES_OPT_IN: "1"})
    assert code == 0, output[-3000:]
    assert "results/masks/standard/seed3.npy" in output and "seed1.npy" not in output


@pytest.mark.slow
def test_repeated_key_in_a_config_file_names_both_lines(tmp_path):
    text = tiny() + "seeds: [7]\n"
    line = tiny().splitlines().index("seeds:") + 1
    code, output = run(tmp_path, text, "-n")
    assert_one_paragraph(code, output, f"key 'seeds' is given twice, at line {line} and at line")


@pytest.mark.slow
@pytest.mark.parametrize(
    "changes, expected",
    [
        ({"mask": {"keep_threshold": float("nan")}}, "mask.keep_threshold = nan is not a finite number"),
        ({"training": {"lr": float("inf")}}, "training.lr = inf is not a finite number"),
        ({"seeds": [1, 2**64]}, "seeds[1] = 18446744073709551616 does not fit in a signed 64-bit integer"),
        ({"dataset": {"n_test": 2}}, "dataset.n_test = 2 is smaller than dataset.n_classes = 3"),
        ({"dataset": {"name": "planted", "image_size": 4096, "n_train": 2000, "n_test": 500}},
         "needs about 1500.0 GiB of memory"),
        ({"models": [{"name": "standard"}, {"name": "a" * 300}]}, "is 300 characters long; at most 64"),
        ({"models": [{"name": "standard"}, {"name": "STANDARD"}]}, "(compared ignoring case)"),
        ({"models": [{"name": "standard"}, {"name": "x" + "ab" * 30}]}, "Snakemake refuses such names"),
    ],
    ids=["nan", "inf", "seed-64-bits", "n-test", "image-size-memory", "long-name", "case-name", "periodic-name"],
)
def test_bad_values_stop_the_dry_run_with_a_paragraph(tmp_path, changes, expected):
    text = tiny(**changes)
    code, output = run(tmp_path, text, "-n")
    assert_one_paragraph(code, output, "Invalid config: ", expected)
    assert "Job stats" not in output


@pytest.mark.slow
def test_failed_job_prints_one_paragraph_and_logs_the_traceback(tmp_path):
    """A fault only the job can see (an image that is not one) ends the run in one paragraph."""
    for split in ("train", "test"):
        for name in ("a", "b"):
            (tmp_path / "images" / split / name).mkdir(parents=True)
            (tmp_path / "images" / split / name / "0.png").write_bytes(b"not an image")
    dataset = {"name": "folder", "root": str(tmp_path / "images"), "image_size": 16, "channels": 1}
    code, output = run(tmp_path, tiny(dataset=dataset), "results/data/classes.parquet")
    assert code != 0
    assert "Job failed: " in output and "0.png" in output.split("Job failed: ")[1].splitlines()[0]
    assert "Traceback (most recent call last)" not in output
    assert "Traceback (most recent call last)" in (tmp_path / "results" / "logs" / "prepare_dataset.log").read_text()


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA GPU is present")
def test_absent_gpu_stops_the_run_before_any_job(tmp_path):
    code, output = run(tmp_path, tiny(device="cuda"))
    assert_one_paragraph(code, output, "device = 'cuda' was asked for, but no CUDA GPU is visible")
    assert not (tmp_path / "results").exists()
    assert not list((tmp_path / ".snakemake" / "locks").glob("*")), "the refused run left its lock"


def _read_only(folder: Path):
    """Command prefix under which ``folder`` is read-only, or None where that cannot be arranged."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        return ()
    unshare = shutil.which("unshare")
    probe = [unshare, "-m", "sh", "-c", f"mount --bind -o ro {folder} {folder}"] if unshare else None
    if not probe or subprocess.run(probe, capture_output=True, check=False).returncode:
        return None
    return (unshare, "-m", "sh", "-c", f'mount --bind -o ro {folder} {folder} && exec "$0" "$@"')


@pytest.mark.slow
def test_read_only_results_stop_the_run_before_any_job(tmp_path):
    (tmp_path / "results").mkdir()
    wrap = _read_only(tmp_path / "results")
    if wrap is None:
        pytest.skip("cannot make a folder read-only for root here (no mount namespace)")
    try:
        code, output = run(tmp_path, tiny(), wrap=wrap)
    finally:
        (tmp_path / "results").chmod(0o755)
    assert_one_paragraph(code, output, "cannot write the outputs of this run: results is not a writable folder")
    assert not list((tmp_path / "results").iterdir())


def test_mask_seeds_up_to_2_63_learn(tiny_model, tiny_data):
    """The largest seed the config accepts reaches every generator without overflow."""
    images, labels = tiny_data[0][:16], tiny_data[1][:16]
    masks, history = learn_masks(tiny_model, images, labels, seeds=[2**63 - 1, 1], epochs=1, batch_size=8)
    assert masks.shape == (2, 1, 16, 16) and history["seed"].tolist() == [2**63 - 1, 1]


@pytest.mark.slow
def test_results_that_is_a_file_stops_the_run_before_any_job(tmp_path):
    (tmp_path / "results").write_text("not a folder")
    code, output = run(tmp_path, tiny())
    assert_one_paragraph(code, output, f"output_dir = 'results' ({tmp_path / 'results'}) is not a folder")
    assert (tmp_path / "results").read_text() == "not a folder"


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full (a device whose writes fail: disk full)")
@pytest.mark.parametrize("job", ["fails", "succeeds"])
def test_a_full_disk_ends_a_job_in_one_paragraph_even_where_its_log_cannot_be_written(job):
    script = ("from fourier_masks.io import logged\nfrom fourier_masks.errors import InputError\n"
              "with logged('/dev/full') as log:\n    log.info('starting')\n"
              + ("    raise InputError(\"dataset.root = 'x' has no images.\")\n" if job == "fails" else ""))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.startswith("Job failed: ") and len(done.stderr.strip().splitlines()) == 1
    assert "/dev/full could not be written (No space left on device): free disk space" in done.stderr
    assert ("dataset.root = 'x' has no images." in done.stderr) == (job == "fails")


def test_an_atomic_write_replaces_its_file_only_when_the_block_succeeds(tmp_path):
    target = tmp_path / "new folder" / "table.txt"
    with write_atomic(target) as tmp:
        tmp.write_text("first")
    with pytest.raises(ZeroDivisionError), write_atomic(target) as tmp:
        tmp.write_text("half")
        raise ZeroDivisionError
    assert target.read_text() == "first" and [p.name for p in target.parent.iterdir()] == ["table.txt"]


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full (a device whose writes fail: disk full)")
def test_a_full_disk_during_an_atomic_write_names_the_output_in_one_paragraph(tmp_path):
    """A write that fails with ENOSPC (here to /dev/full) leaves no file and names the output, not its temporary."""
    target, log = tmp_path / "mask.npy", tmp_path / "job.log"
    script = ("from fourier_masks.atomic import write_atomic\nfrom fourier_masks.io import logged\n"
              f"with logged({str(log)!r}), write_atomic({str(target)!r}) as tmp:\n"
              "    tmp.write_bytes(b'started')\n    with open('/dev/full', 'wb') as full:\n        full.write(b'x')\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 1 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert done.stderr.startswith(f"Job failed: cannot write or read {target}: No space left on device; free disk "
                                  "space and rerun"), done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["job.log"]
