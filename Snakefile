# fourier-masks: learn the essential input frequencies of trained classifiers and compare
# them across training regimes (Karantzas et al. 2022). See README.md.
from snakemake.utils import min_version

min_version("9.27")  # pathvars


# The embedded default, unless --configfile names another (schema defaults fill the gaps).
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/models.smk"
include: "workflow/rules/masks.smk"
include: "workflow/rules/analysis.smk"
include: "workflow/rules/validation.smk"
include: "workflow/rules/tables.smk"
include: "workflow/rules/figures.smk"


rule all:
    default_target: True
    input:
        final_outputs(),


onsuccess:
    warn_unconverged(f"{OUTPUT}/tables/masks.parquet")
