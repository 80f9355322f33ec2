"""Where a model entry's file and code come from; files fetched by URL, kept only when their SHA-256 matches.

A model entry with ``url:`` and ``sha256:`` is downloaded to
``{resources_dir}/models/{model name}/{file name of the URL}`` (:func:`model_file`) by
:func:`download`, which writes to a hidden partial file and renames it only once the
SHA-256 matches, so a partial or wrong download never looks complete. No torch: Snakemake
reads :func:`model_file`, :func:`imports_of` and :func:`entry_digest` when it builds the job graph.
"""

from __future__ import annotations

import hashlib
import urllib.request
from pathlib import Path
from urllib.parse import unquote, urlparse

from ..atomic import write_atomic
from ..digests import sha256_of, tree_digest
from ..errors import InputError

__all__ = ["model_file", "imports_of", "entry_digest", "verify_sha256", "download"]

#: Seconds a download waits for the server before giving up.
DOWNLOAD_TIMEOUT = 60


def model_file(spec: dict, resources_dir="resources") -> Path:
    """The local model file of a checkpoint, torchscript or exported entry: ``path``, or where ``url`` lands.

    Raises :class:`InputError` for a URL whose path does not end in a file name.
    """
    if spec.get("path"):
        return Path(spec["path"])
    name = unquote(urlparse(spec["url"]).path).rsplit("/", 1)[-1]
    if name in ("", ".", ".."):
        raise InputError(f"models[{spec['name']}].url = {spec['url']!r} does not end in a file name; the download "
                         f"is saved under {resources_dir}/models/{spec['name']}/ by the last part of the URL's path "
                         "(e.g. .../resnet20.th). Give the file's own URL.")
    return Path(resources_dir) / "models" / spec["name"] / name


def imports_of(models: list[dict]) -> dict[str, list[str]]:
    """``{arch: python_path}`` of the ``import:`` architectures named by config ``models`` entries.

    What :func:`fourier_masks.models.files.load_model` may import when the workflow rebuilds these models.
    """
    imports = {}
    for spec in models:
        arch = spec.get("arch")  # robustbench and program entries have none
        if arch and arch.startswith("import:"):
            folders = imports.setdefault(spec["arch"], [])
            folders += [f for f in spec.get("python_path") or [] if f not in folders]
    return imports


def entry_digest(spec: dict, resources_dir="resources") -> str | None:
    """Content digest of what a checkpoint, torchscript or exported entry reads: its model file and code.

    The model file (where present) and every ``.py`` file under the entry's ``python_path``
    folders (the architecture's source), by :func:`fourier_masks.digests.tree_digest`. A
    rule given this as a param reruns when any of them changes, even with its old size and
    modification time. ``None`` for other sources.
    """
    if spec["source"] not in ("checkpoint", "torchscript", "exported"):
        return None
    path = model_file(spec, resources_dir)
    parts = [tree_digest([path], path.parent) if path.is_file() else "absent"]
    for folder in map(Path, spec.get("python_path") or []):
        parts.append(tree_digest(sorted(folder.rglob("*.py")), folder) if folder.is_dir() else "absent")
    return "/".join(parts)


def verify_sha256(path, expected: str, where: str) -> None:
    """Raise :class:`InputError` with both digests unless the file ``path`` has SHA-256 ``expected``."""
    found = sha256_of(path)
    if found != expected.lower():
        raise InputError(f"{where}.sha256: {path} has SHA-256 {found}, but the entry expects {expected.lower()}. "
                         "The file is corrupt, truncated or another version: delete it and fetch it again, or "
                         "correct sha256 if the new file is the one you mean.")


def download(url: str, sha256: str, output, where: str = "models[?]") -> None:
    """Fetch ``url`` to ``output``, kept only if its SHA-256 is ``sha256`` (hex).

    The bytes go to a hidden ``.part`` file beside ``output``, renamed into place after the
    check (:func:`~fourier_masks.atomic.write_atomic`); on any failure (server unreachable,
    connection cut, wrong hash) nothing is left under ``output`` and :class:`InputError` names
    the URL and how to stage the file by hand. Partial files of earlier downloads that were
    killed are removed first.
    """
    output = Path(output)
    for stale in output.parent.glob(f".{output.name}.part*"):  # left by a download that was killed
        stale.unlink(missing_ok=True)
    with write_atomic(output, suffix=".part") as partial:
        digest, received = hashlib.sha256(), 0
        try:
            with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT) as response, open(partial, "wb") as file:
                for block in iter(lambda: response.read(1 << 20), b""):
                    digest.update(block)
                    file.write(block)
                    received += len(block)
                promised = response.headers.get("Content-Length")
                if promised is not None and int(promised) != received:
                    raise ConnectionError(f"the connection closed after {received} of {promised} bytes")
        except Exception as error:  # urllib raises URLError, HTTPError, IncompleteRead, timeouts
            raise InputError(f"{where}.url: {url} could not be downloaded ({type(error).__name__}: {error}). Check "
                             f"the URL and the network, or download it elsewhere and put it at {output} (set "
                             "offline: true to stop trying).") from error
        if digest.hexdigest() != sha256.lower():
            raise InputError(f"{where}.sha256: {url} has SHA-256 {digest.hexdigest()}, but the entry expects "
                             f"{sha256.lower()}; the download was discarded. Correct sha256 if the file changed on "
                             "purpose, else the server sent something else (an error page, another version).")
