"""docs/architecture.md is the one map of the code: its module list matches the tree.

Every module (``*.py``) and package folder (a folder with ``__init__.py``) of the project packages, scripts and
benchmarks must be named on the page, and every path the page's module list names must exist. The list is the
``## Modules`` section: one bullet per path, written as `` - `path`: ... ``.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "architecture.md"
PACKAGES = ("common", "tasks", "models", "training", "probes", "interp")
SCRIPT_FOLDERS = ("scripts", "benchmarks")
BULLET = re.compile(r"^\s*-\s+`([^`]+)`")


def modules_in_tree() -> set[str]:
    """Repository-relative paths of every module and package folder (``pkg/sub/``) that the page must name."""
    found: set[str] = set()
    for top in PACKAGES + SCRIPT_FOLDERS:
        base = ROOT / top
        if top in SCRIPT_FOLDERS:
            found.add(f"{top}/")
        for path in sorted(base.rglob("*.py")):
            if "__pycache__" in path.parts:
                continue
            rel = path.relative_to(ROOT).as_posix()
            found.add(rel.removesuffix("__init__.py") if path.name == "__init__.py" else rel)
    return found


def modules_on_page(text: str) -> list[str]:
    """The paths named by the bullets of the page's ``## Modules`` section, in page order."""
    section = text.split("\n## Modules", 1)[1].split("\n## ", 1)[0]
    return [m.group(1) for line in section.splitlines() if (m := BULLET.match(line))]


def test_module_list_matches_tree():
    named = modules_on_page(PAGE.read_text(encoding="utf-8"))
    tree = modules_in_tree()
    duplicated = sorted({p for p in named if named.count(p) > 1})
    missing = sorted(tree - set(named))
    extra = sorted(p for p in set(named) - tree if not (ROOT / p).exists())
    unexpected = sorted(p for p in set(named) - tree if (ROOT / p).exists())
    problems = []
    if missing:
        problems.append("modules not named on docs/architecture.md (add a line each):\n  " + "\n  ".join(missing))
    if extra:
        problems.append("docs/architecture.md names paths that do not exist (remove or rename):\n  "
                        + "\n  ".join(extra))
    if unexpected:
        problems.append("docs/architecture.md lists paths that are not modules or package folders:\n  "
                        + "\n  ".join(unexpected))
    if duplicated:
        problems.append("docs/architecture.md names these more than once:\n  " + "\n  ".join(duplicated))
    assert not problems, "\n".join(problems)


def test_page_states_the_layer_order():
    text = PAGE.read_text(encoding="utf-8")
    assert "`common` < `tasks` < `models` < `training`, `probes` < `interp` < `scripts`, `benchmarks`" in text
