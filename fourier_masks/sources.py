"""Parse-time checks of what a config needs from outside: zoo names and staged files."""

from __future__ import annotations

from .errors import InputError

__all__ = ["check_sources"]


def check_sources(config: dict, resources_dir="resources") -> None:
    """Fail before any job on a wrong zoo name, or, with ``offline: true``, on unstaged files.

    Zoo names are checked whenever the config has RobustBench models (with the closest
    names suggested). Offline, every missing model or dataset file is listed with where to
    stage it, in one :class:`InputError`.
    """
    acquired = any(model["source"] != "train" for model in config["models"])
    if not acquired and not config["offline"]:
        return
    missing = []
    if acquired:
        from .zoo import missing_files

        missing = [f"{path}  (model {name})" for name, path in missing_files(config, resources_dir)]
    if not config["offline"]:
        return
    from .external_data import missing_files as missing_data

    missing += [f"{path}  (dataset {config['dataset']['name']})"
                for path in missing_data(config["dataset"], resources_dir)]
    if missing:
        listing = "\n  ".join(missing)
        raise InputError(
            f"offline: true, but {len(missing)} file(s) are not staged:\n  {listing}\n"
            f"Copy them to these paths (RobustBench models in its own layout under {resources_dir}/robustbench, "
            f"datasets under {resources_dir}/data), or set offline: false to download them."
        )
