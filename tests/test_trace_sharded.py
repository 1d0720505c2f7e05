"""``torchrun --nproc_per_node=2 -m interp trace`` on CPU (gloo): the same files as one process, and resume after a kill."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from interp.cli import main
from interp.tracing.store import MANIFEST, read_manifest
from models.checkpoint import save_checkpoint
from helpers.tiny_models import tiny_trm

REPO = Path(__file__).resolve().parents[1]
N_PUZZLES, CHUNK = 9, 2  # five chunks: rank 0 traces 0, 2, 4 and rank 1 traces 1, 3

# run `interp trace` as a torchrun worker; with FAIL_ON_CALL=k, rank 1 dies (like kill -9) in its k-th chunk
WORKER = """
import os, sys
if os.environ.get("FAIL_ON_CALL") and os.environ.get("RANK") == "1":
    import interp.tracing.stream as s
    real, calls = s.compute_arrays, [0]
    def dying(*a, **k):
        calls[0] += 1
        if calls[0] == int(os.environ["FAIL_ON_CALL"]):
            os._exit(9)
        return real(*a, **k)
    s.compute_arrays = dying
from interp.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("sharded")
    torch.manual_seed(0)
    trm = tiny_trm()
    save_checkpoint(root / "trm", trm, extra={"task": {"name": "sudoku", "grid_size": 9}})
    lines = (REPO / "data" / "sudoku" / "generated_moderate.sdm").read_text().split()[:N_PUZZLES]
    (root / "p.sdm").write_text("\n".join(lines) + "\n")
    (root / "worker.py").write_text(WORKER)
    return root


def _args(root: Path, out: Path) -> list[str]:
    return ["trace", "--ckpt", str(root / "trm"), "--puzzle-file", str(root / "p.sdm"), "--out", str(out),
            "--chunk-size", str(CHUNK), "--batch-size", "2", "--state-puzzles", "3", "--show", "1",
            "--color", "never", "--viewer-puzzles", "1", "--plotly", "cdn"]


def _torchrun(root: Path, out: Path, **env: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO), **env}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(root / "worker.py"), *_args(root, out)]
    return subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=120)


def _same_files(a: Path, b: Path) -> None:
    chunks = sorted(p.name for p in a.glob("chunk_*.safetensors"))
    assert chunks == sorted(p.name for p in b.glob("chunk_*.safetensors")) and len(chunks) == 5
    for name in chunks:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    ma, mb = (json.loads((d / MANIFEST).read_text()) for d in (a, b))
    for m in (ma, mb):  # timestamps (and the metadata hash, which covers the creation time)
        m.pop("updated"), m["meta"].pop("created"), m.pop("integrity")
    assert ma == mb  # chunk sizes and SHA-256s, fingerprint, metadata, step table: all the same


@pytest.mark.slow
def test_two_ranks_write_the_one_process_trace_and_resume_after_a_kill(setup, tmp_path, capsys):
    root = setup
    ref = tmp_path / "one"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the torchrun workers (OMP_NUM_THREADS=1): the same float sums
    try:
        assert main(_args(root, ref)) == 0
    finally:
        torch.set_num_threads(threads)
    capsys.readouterr()

    out = tmp_path / "two"
    p = _torchrun(root, out)
    assert p.returncode == 0, p.stderr[-3000:]
    assert p.stdout.count("trace written to") == 1 and p.stdout.count("=== ") == 1  # rank 0 alone reports
    assert "error" not in p.stderr.lower()
    _same_files(ref, out)

    killed = tmp_path / "killed"  # rank 1 dies in its second chunk (chunk 3); torchrun stops rank 0
    p = _torchrun(root, killed, FAIL_ON_CALL="2")
    assert p.returncode != 0
    man = read_manifest(killed)
    assert man["complete"] is False and [c["index"] for c in man["chunks"]] == [0, 1]
    p = _torchrun(root, killed)  # the same command again resumes: chunks 2..4 only
    assert p.returncode == 0, p.stderr[-3000:]
    _same_files(ref, killed)
