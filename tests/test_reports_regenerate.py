"""The tables of the committed reports are what the code builds from the committed table inputs.

``interp report`` writes each table's tidy input to ``data/tables/<name>_input.csv`` and the table to
``tables/<name>.{md,tex,csv}`` (and into ``report.md``). Rebuilding every table of every committed report
(``reports/*.yaml`` and the folder of the same name) from its input must give the committed files byte for byte,
so a change to the table or interval code that would change a published number fails here. The traces, training
runs and figures behind the inputs are not re-run (minutes to hours; see docs/reports.md).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from interp.report.config import load_config
from interp.report.run import build_table

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted(p for p in (ROOT / "reports").glob("*.yaml") if (p.with_suffix("") / "tables").is_dir())


def test_there_are_committed_reports():
    assert len(CONFIGS) >= 3, [p.name for p in CONFIGS]


@pytest.mark.parametrize("config", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_committed_tables_rebuild_identically(config: Path):
    cfg = load_config(config)
    out = config.with_suffix("")
    assert cfg.tables, f"{config.name} has no tables"
    for spec in cfg.tables:
        df = pd.read_csv(out / "data" / "tables" / f"{spec.name}_input.csv")
        table = build_table(spec, df, cfg.alpha)
        tables = out / "tables"
        assert table.markdown() == (tables / f"{table.name}.md").read_text(), f"{out.name}/tables/{table.name}.md"
        tex = "% requires \\usepackage{booktabs}\n" + table.latex()
        assert tex == (tables / f"{table.name}.tex").read_text(), f"{out.name}/tables/{table.name}.tex"
        assert table.numbers.to_csv(index=False) == (tables / f"{table.name}.csv").read_text(), \
            f"{out.name}/tables/{table.name}.csv"
        assert table.markdown() in (out / "report.md").read_text(), f"{out.name}/report.md: table {table.name}"
