"""common.allocator: freed blocks stay in the process (no page faults when a batch reallocates them)."""

import platform
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = """
import resource, sys
sys.path.insert(0, {repo!r})
import numpy as np
from common.allocator import retain_freed_memory
applied = retain_freed_memory()
faults = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_minflt
np.ones(8 << 20)
a = faults()
for _ in range(10):  # a 64 MB block freed and allocated again, as a traced batch does
    x = np.ones(8 << 20)
    del x
print(applied, faults() - a)
"""


def _run(env_value: str | None) -> tuple[bool, int]:
    import os

    env = {k: v for k, v in os.environ.items() if k != "RECURSE_MALLOC"}
    if env_value is not None:
        env["RECURSE_MALLOC"] = env_value
    out = subprocess.run([sys.executable, "-c", SCRIPT.format(repo=str(REPO))], capture_output=True, text=True,
                         env=env, check=True).stdout.split()
    return out[0] == "True", int(out[1])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the thresholds are glibc's")
def test_retained_memory_is_reused_without_page_faults_and_can_be_turned_off():
    applied, retained = _run(None)
    default_applied, default = _run("default")
    assert applied and not default_applied
    assert retained < 100, retained  # served from the heap the previous block was freed to
    assert default > 10 * max(retained, 10), (default, retained)  # glibc's own thresholds fault the block back in


def test_interp_command_sets_the_allocator(monkeypatch, tmp_path, capsys):
    import interp.cli as cli

    calls = []
    monkeypatch.setattr(cli, "retain_freed_memory", lambda: calls.append(1))
    assert cli.main(["show", str(tmp_path / "missing")]) == 2
    assert calls == [1]
    assert "error:" in capsys.readouterr().err
