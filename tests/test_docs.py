"""The documentation works as printed.

* Every code block in README.md and docs/*.md preceded by the marker line ``<!-- runnable -->`` (invisible on
  GitHub and on the site) is run in a temporary copy of the repository: ``bash`` blocks with
  ``bash -euo pipefail``, ``python`` blocks as a script. ``<!-- runnable timeout=600 -->`` raises the per-block
  limit (default 480 s; the machine the suite runs on may be shared). Blocks run in file order in one copy, so a
  block may use what an earlier block of the same file wrote. ``interp`` resolves to ``python -m interp`` of the
  copy, and datasets are cached in a temporary directory.
* Commands in any code block that name a shipped file (``data/...``) name one that exists.
* ``mkdocs build --strict`` succeeds (broken links, anchors, nav entries and API pages fail it).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOC_FILES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
MARKER = re.compile(r"^<!--\s*runnable(?:\s+timeout=(\d+))?\s*-->\s*$")
FENCE = re.compile(r"^```(\w+)")
DEFAULT_TIMEOUT = 480


@dataclass
class Block:
    path: Path
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    timeout: int
    runnable: bool

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(REPO)}:{self.line}"


def code_blocks(path: Path) -> list[Block]:
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks, i, pending = [], 0, None
    while i < len(lines):
        m = MARKER.match(lines[i].strip())
        if m:
            pending = int(m.group(1) or DEFAULT_TIMEOUT)
            i += 1
            continue
        f = FENCE.match(lines[i]) if lines[i].startswith("```") else None
        if lines[i].startswith("```"):
            start, lang = i, (f.group(1) if f else "")
            j = i + 1
            while j < len(lines) and not lines[j].startswith("```"):
                j += 1
            blocks.append(Block(path, start + 1, lang, "\n".join(lines[i + 1:j]) + "\n",
                                pending or DEFAULT_TIMEOUT, pending is not None))
            pending, i = None, j + 1
            continue
        if lines[i].strip() and pending is not None:
            raise AssertionError(f"{path.name}:{i + 1}: a runnable marker must be followed by a code block")
        i += 1
    return blocks


ALL_BLOCKS = [b for p in DOC_FILES for b in code_blocks(p)]
RUNNABLE = [b for b in ALL_BLOCKS if b.runnable]


def test_runnable_blocks_are_marked():
    assert len([b for b in RUNNABLE if b.path.name == "README.md"]) >= 3, "README lost its runnable commands"
    for b in RUNNABLE:
        assert b.lang in ("bash", "python"), f"{b.id}: runnable blocks are bash or python, not {b.lang!r}"


SHIPPED = re.compile(r"(?<![\w./-])(data/(?:sudoku|maze)/[\w.-]+)")


def test_commands_name_shipped_files_that_exist():
    missing = [f"{b.id}: {m}" for b in ALL_BLOCKS for m in SHIPPED.findall(b.code) if not (REPO / m).is_file()]
    assert not missing, "documented commands name missing files:\n" + "\n".join(missing)
    for b in ALL_BLOCKS:
        assert "../shared" not in b.code, f"{b.id}: commands must not depend on a folder outside the clone"


@pytest.fixture(scope="module")
def repo_copy(tmp_path_factory) -> Path:
    """The repository's files (tracked + untracked, not ignored) copied to a temporary directory."""
    dst = tmp_path_factory.mktemp("clone") / "repo"
    try:
        out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO,
                             capture_output=True, check=True).stdout.decode()
        files = [f for f in out.split("\0") if f]
    except (OSError, subprocess.CalledProcessError):
        files = None
    if files is None:
        shutil.copytree(REPO, dst, symlinks=True,
                        ignore=shutil.ignore_patterns(".git", "out", "runs", "traces", "site", "__pycache__"))
        return dst
    for f in files:
        src, tgt = REPO / f, dst / f
        if not src.exists() and not src.is_symlink():
            continue  # deleted in the work tree but not yet committed
        tgt.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            os.symlink(os.readlink(src), tgt)
        else:
            shutil.copy2(src, tgt)
    return dst


@pytest.fixture(scope="module")
def doc_env(repo_copy, tmp_path_factory) -> dict[str, str]:
    bindir = tmp_path_factory.mktemp("bin")
    shim = bindir / "interp"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m interp "$@"\n')
    shim.chmod(0o755)
    env = dict(os.environ)
    env.update(PATH=f"{bindir}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
               PYTHONPATH=str(repo_copy), RECURSE_INTERP_CACHE=str(tmp_path_factory.mktemp("cache")),
               MPLBACKEND="Agg", OMP_NUM_THREADS="1", NO_COLOR="1", PYTHONDONTWRITEBYTECODE="1")
    return env


@pytest.mark.slow
@pytest.mark.parametrize("block", RUNNABLE, ids=[b.id for b in RUNNABLE])
def test_runnable_block(block: Block, repo_copy: Path, doc_env: dict[str, str], tmp_path: Path):
    if block.lang == "bash":
        cmd = ["bash", "-euo", "pipefail", "-c", block.code]
    else:
        script = tmp_path / "block.py"
        script.write_text(block.code)
        cmd = [sys.executable, str(script)]
    try:
        proc = subprocess.run(cmd, cwd=repo_copy, env=doc_env, capture_output=True, text=True,
                              timeout=block.timeout)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"{block.id}: still running after {block.timeout} s\n{block.code}\n{(e.stdout or '')[-3000:]}")
    assert proc.returncode == 0, (f"{block.id} failed (exit {proc.returncode}):\n{block.code}\n"
                                  f"--- stdout (tail)\n{proc.stdout[-3000:]}\n--- stderr (tail)\n{proc.stderr[-3000:]}")


def test_mkdocs_build_strict(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    pytest.importorskip("material")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1", PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(REPO / "mkdocs.yml"),
                           "-d", str(tmp_path / "site")], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    assert (tmp_path / "site" / "api" / "models" / "index.html").is_file()
