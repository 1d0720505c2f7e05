#!/usr/bin/env python
"""Strip outputs, execution counts and run metadata from notebooks, so git holds only their source.

    python scripts/strip_notebooks.py                 # every notebooks/*.ipynb, in place
    python scripts/strip_notebooks.py a.ipynb b.ipynb
    python scripts/strip_notebooks.py --check         # exit 1 (listing them) if any notebook has outputs
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from common.atomic import atomic_write_text  # noqa: E402
from common.cli_format import Parser  # noqa: E402
from common.cli_types import path_str  # noqa: E402

KEEP_CELL_METADATA = ("tags", "jupyter", "editable", "deletable")


def strip(nb: dict) -> dict:
    """A copy of a notebook dict without outputs, execution counts or per-cell execution metadata."""
    out = json.loads(json.dumps(nb))
    for cell in out.get("cells", []):
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
        cell["metadata"] = {k: v for k, v in cell.get("metadata", {}).items() if k in KEEP_CELL_METADATA}
    meta = out.get("metadata", {})
    out["metadata"] = {k: meta[k] for k in ("kernelspec", "language_info") if k in meta}
    if "language_info" in out["metadata"]:
        out["metadata"]["language_info"] = {"name": out["metadata"]["language_info"].get("name", "python")}
    return out


def is_stripped(nb: dict) -> bool:
    return strip(nb) == nb


def _dump(nb: dict) -> str:
    return json.dumps(nb, indent=1, ensure_ascii=False, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = Parser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", type=path_str, nargs="*", help="notebooks (default: notebooks/*.ipynb)")
    ap.add_argument("--check", action="store_true", help="only report notebooks that still have outputs")
    args = ap.parse_cli(argv)
    paths = [Path(p) for p in args.paths] or sorted((REPO / "notebooks").glob("*.ipynb"))
    dirty = []
    for p in paths:
        try:
            nb = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            print(f"error: {p}: cannot read notebook ({e})", file=sys.stderr)
            return 2
        if args.check:
            if not is_stripped(nb):
                dirty.append(p)
            continue
        text = _dump(strip(nb))
        if p.read_text(encoding="utf-8") != text:
            atomic_write_text(p, text, mkdir=False)
            print(f"stripped {p}")
    if dirty:
        print("notebooks with outputs (run scripts/strip_notebooks.py):", *map(str, dirty), sep="\n  ")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
