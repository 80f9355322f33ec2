"""A finished run's results in one call: ``fourier_masks.results.load("results")``.

>>> from fourier_masks.results import load
>>> run = load("results")  # doctest: +SKIP
>>> run.summary()[["model", "clean_acc", "density", "low_freq_fraction", "converged"]]  # doctest: +SKIP
>>> run.masks["standard", 1].shape  # doctest: +SKIP
(1, 32, 32)

Torch-free: tables are pandas, masks numpy arrays ``[C', H, W]`` (full unshifted layout,
values in ``[0, 1]``), the provenance a dict.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import InputError
from .io import load_mask, read_table

__all__ = ["Results", "load"]


@dataclasses.dataclass(frozen=True)
class Results:
    """Every table (``tables[name]``), every mask (``masks[model, seed]``) and the provenance of a run."""

    root: Path
    tables: dict[str, pd.DataFrame]
    masks: dict[tuple[str, int], np.ndarray]
    provenance: dict

    def summary(self) -> pd.DataFrame:
        """One row per model: the ``models`` table, the seeds' means of the ``masks`` and
        ``frequency_bias`` tables (``retention`` = masked / clean accuracy, also its least over
        seeds), and the ``seed_agreement`` row, with ``converged`` = seeds whose mask converged.
        """
        masks = self.tables["masks"].assign(retention=lambda t: t["masked_acc"] / t["clean_acc"])
        by_model = masks.groupby("model", sort=False)
        learned = by_model[["density", "masked_acc", "retention", "steps"]].mean()
        learned["retention_min"] = by_model["retention"].min()
        bias = self.tables["frequency_bias"].groupby("model")[["low_freq_fraction", "radial_centroid"]].mean()
        agreement = self.tables["seed_agreement"].set_index("model")[["seeds", "converged", "mask_correlation"]]
        models = self.tables["models"].set_index("model")
        return models.join([learned, bias, agreement]).reset_index()


def _mask_key(path: Path) -> tuple[str, int] | None:
    match = re.fullmatch(r"seed(\d+)\.npy", path.name)
    return (path.parent.name, int(match[1])) if match else None


def load(path) -> Results:
    """The results under ``path`` (a run's ``output_dir``, e.g. ``results``): tables, masks and provenance.

    Raises :class:`InputError` when ``path`` holds no finished run's tables.
    """
    root = Path(path)
    table_files = sorted((root / "tables").glob("*.parquet"))
    if not table_files:
        raise InputError(f"{root} holds no result tables (tables/*.parquet); give the results/ folder of a "
                         "finished run (snakemake writes it in its working directory).")
    tables = {file.stem: read_table(file) for file in table_files}
    masks = {key: load_mask(file) for file in sorted((root / "masks").glob("*/seed*.npy"))
             if (key := _mask_key(file)) is not None}
    provenance_file = root / "provenance.json"
    provenance = json.loads(provenance_file.read_text()) if provenance_file.is_file() else {}
    return Results(root, tables, masks, provenance)
