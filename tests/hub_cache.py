"""Build a Hugging Face Hub cache on disk, in the layout ``huggingface_hub`` itself uses, for offline tests.

    <cache>/models--ORG--NAME/
        blobs/<sha256 of the file>
        refs/main                      # the commit hash (also refs/<tag>)
        snapshots/<commit>/<path>      # symlinks ../../blobs/<sha256>
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def add_to_hub_cache(cache: Path, repo_id: str, files: dict[str, bytes | Path], refs: tuple[str, ...] = ("main",),
                     commit: str | None = None) -> str:
    """Store ``files`` (repo path -> bytes or a file to copy) as one commit of ``repo_id``; returns the commit hash."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    contents = {k: (v.read_bytes() if isinstance(v, Path) else v) for k, v in sorted(files.items())}
    if commit is None:
        h = hashlib.sha1()
        for k, v in contents.items():
            h.update(k.encode() + b"\0" + hashlib.sha256(v).digest())
        commit = h.hexdigest()
    snap = repo / "snapshots" / commit
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    for name, data in contents.items():
        digest = hashlib.sha256(data).hexdigest()
        blob = repo / "blobs" / digest
        if not blob.exists():
            blob.write_bytes(data)
        link = snap / name
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.exists() or link.is_symlink():
            link.unlink()
        os.symlink(os.path.relpath(blob, link.parent), link)
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    for ref in refs:
        (repo / "refs" / ref).parent.mkdir(parents=True, exist_ok=True)
        (repo / "refs" / ref).write_text(commit)
    return commit


def folder_files(folder: Path, prefix: str = "") -> dict[str, Path]:
    """Every file under ``folder`` as ``{prefix + relative path: path}``."""
    return {prefix + str(f.relative_to(folder)): f for f in sorted(folder.rglob("*")) if f.is_file()}
