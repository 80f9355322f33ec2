"""Where RobustBench keeps a zoo entry's weights, and a digest of them, with neither torch nor robustbench.

RobustBench's layout under ``{resources_dir}/robustbench`` (its ``model_dir``)::

    {dataset}/{threat_model}/{name}.pt          one network
    {dataset}/{threat_model}/{name}.pt_m{i}.pt  ensemble member i
    hub/checkpoints/{file}                      entries that timm or torchvision fetch by URL

When rule acquire_model downloads an entry, it records what it fetched in
``fetched/{dataset}/{threat_model}/{name}.json`` (:func:`record_fetch`). :func:`zoo_digest`,
a param of that rule, is then the same before the download and after it, so a finished
run stays finished; it changes once a user stages or replaces a file.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..atomic import write_atomic
from ..digests import tree_digest

__all__ = ["AS_FETCHED", "cache_path", "staged_files", "record_fetch", "zoo_digest"]

#: The digest of an entry whose files are absent, or exactly as acquire_model downloaded them.
AS_FETCHED = "as fetched by RobustBench"


def cache_path(resources_dir, dataset: str, threat_model: str, name: str) -> Path:
    """``{resources_dir}/robustbench/{dataset}/{threat_model}/{name}.pt`` (RobustBench's layout)."""
    return Path(resources_dir) / "robustbench" / dataset / threat_model / f"{name}.pt"


def _record_path(resources_dir, dataset: str, threat_model: str, name: str) -> Path:
    return Path(resources_dir) / "robustbench" / "fetched" / dataset / threat_model / f"{name}.json"


def _read_record(resources_dir, dataset: str, threat_model: str, name: str) -> dict | None:
    path = _record_path(resources_dir, dataset, threat_model, name)
    return json.loads(path.read_text()) if path.is_file() else None


def staged_files(resources_dir, dataset: str, threat_model: str, name: str) -> list[Path]:
    """Present files of entry ``name``: its network or ensemble members, and the hub files it was fetched as."""
    path = cache_path(resources_dir, dataset, threat_model, name)
    found = [path] if path.is_file() else []
    found += sorted(path.parent.glob(f"{path.name}_m*.pt"))
    record = _read_record(resources_dir, dataset, threat_model, name) or {"files": []}
    found += [f for f in (Path(resources_dir) / rel for rel in record["files"]) if f.is_file() and f not in found]
    return found


def record_fetch(resources_dir, dataset: str, threat_model: str, name: str, files: list[Path]) -> None:
    """Note that acquire_model downloaded ``files`` (paths under ``resources_dir``) for entry ``name``."""
    root = Path(resources_dir)
    record = {"files": [str(Path(f).relative_to(root)) for f in files], "digest": tree_digest(files, root)}
    with write_atomic(_record_path(resources_dir, dataset, threat_model, name)) as tmp:
        tmp.write_text(json.dumps(record, indent=1))


def zoo_digest(resources_dir, dataset: str, threat_model: str, name: str) -> str:
    """Content digest of the staged files of entry ``name``, or :data:`AS_FETCHED`.

    :data:`AS_FETCHED` when no file is there yet (acquire_model will download them) and when
    the files are exactly those acquire_model downloaded (:func:`record_fetch`).
    """
    present = staged_files(resources_dir, dataset, threat_model, name)
    if not present:
        return AS_FETCHED
    digest = tree_digest(present, Path(resources_dir))
    record = _read_record(resources_dir, dataset, threat_model, name)
    return AS_FETCHED if record and record["digest"] == digest else digest
