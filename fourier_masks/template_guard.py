"""Stop Snakemake from evaluating a templated config file before the workflow can refuse it.

Snakemake renders YTE templates (a config file whose top level sets ``__use_yte__: true``)
while it reads ``--configfile``, before any workflow code can check the file, so the Python
in the template would run even on ``snakemake -n``. ``make`` writes a one-line ``.pth`` file
into the project's venv (:func:`write_pth`) that calls :func:`install` at interpreter start;
it wraps ``yte.process_yaml`` as soon as ``yte`` is imported, and a templated file is then
refused, with a one-paragraph message and exit status 1, unless the environment sets
``FOURIER_MASKS_TRUST_TEMPLATES=1`` (README, Configuration).

This module imports only the standard library at start-up: it runs in every Python process
of the venv.
"""

from __future__ import annotations

import functools
import importlib.abc
import importlib.util
import os
import sys
import sysconfig
from pathlib import Path

#: Environment variable that, set to 1, lets a config file switch on YTE templating.
TEMPLATES_OPT_IN = "FOURIER_MASKS_TRUST_TEMPLATES"

#: The ``.pth`` file written into the venv's site-packages (sorted after the editable finder).
PTH_NAME = "fourier_masks_template_guard.pth"


def templates_allowed() -> bool:
    """True where the user opted in to templated config files."""
    return os.environ.get(TEMPLATES_OPT_IN) == "1"


def refusal(path) -> str:
    """The one-paragraph message for a config file ``path`` that switches templating on."""
    return (
        f"Invalid config: {path} sets __use_yte__: true, which switches on YTE templating (Python code in the "
        "file is evaluated while Snakemake reads it). Config files hold plain values here: remove __use_yte__ "
        f"and write the values out, or, for a template you wrote yourself, set {TEMPLATES_OPT_IN}=1 (README, "
        "Configuration)."
    )


def _switches_templating_on(text: str) -> bool:
    """True if the YAML ``text`` sets ``__use_yte__`` at its top level (or cannot be read safely)."""
    import yaml

    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError:
        return "__use_yte__" in text
    return isinstance(document, dict) and bool(document.get("__use_yte__"))


def _guarded(process_yaml):
    """``process_yaml`` that refuses a templated document unless :func:`templates_allowed`."""

    @functools.wraps(process_yaml)
    def process(file_or_str, *args, **kwargs):
        text = file_or_str if isinstance(file_or_str, str) else file_or_str.read()
        if not templates_allowed() and _switches_templating_on(text):
            print(refusal(getattr(file_or_str, "name", "a config file")), file=sys.stderr)
            raise SystemExit(1)
        return process_yaml(text, *args, **kwargs)

    return process


class _GuardYte(importlib.abc.MetaPathFinder):
    """Finds ``yte`` like the other finders, then wraps its ``process_yaml`` once it is loaded."""

    def find_spec(self, name, path=None, target=None):
        if name != "yte":
            return None
        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(name)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None:
            return spec
        execute = spec.loader.exec_module

        def exec_module(module):
            execute(module)
            module.process_yaml = _guarded(module.process_yaml)

        spec.loader.exec_module = exec_module
        return spec


def install() -> None:
    """Guard ``yte.process_yaml`` in this process (at once if ``yte`` is already imported)."""
    if "yte" in sys.modules:
        module = sys.modules["yte"]
        if not hasattr(module.process_yaml, "__wrapped__"):
            module.process_yaml = _guarded(module.process_yaml)
    elif not any(isinstance(finder, _GuardYte) for finder in sys.meta_path):
        sys.meta_path.insert(0, _GuardYte())


def write_pth(site_packages=None) -> Path:
    """Write the ``.pth`` line that installs the guard at every start of this interpreter."""
    target = Path(site_packages or sysconfig.get_paths()["purelib"]) / PTH_NAME
    target.write_text("import fourier_masks.template_guard as guard; guard.install()\n")
    return target


if __name__ == "__main__":
    print(f"wrote {write_pth()}")
