"""Headless Chromium for the viewer tests: run it on a page, or drive a page with an injected script."""

from __future__ import annotations

import html as html_lib
import json
import re
import shutil
import subprocess
from pathlib import Path

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
NO_CHROMIUM = "chromium not installed (apt-get install -y chromium)"


def run_chromium(args: list[str], tmp: Path, timeout: int = 90) -> subprocess.CompletedProcess:
    """Headless Chromium with a throw-away profile under ``tmp``, offline-friendly flags, then ``args``."""
    base = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={tmp / 'chrome-profile'}", "--virtual-time-budget=8000"]
    return subprocess.run(base + args, check=False, capture_output=True, text=True, timeout=timeout)


def drive_page(path: Path, driver: str, tmp: Path, fragment: str = "") -> dict:
    """Open ``path`` (1280x800) with the ``driver`` script injected before ``</body>``; the driver leaves a JSON
    log in ``body[data-test]``, returned here (a driver error or an unfinished driver fails the test)."""
    page = path.with_name("driven.html")
    page.write_text(path.read_text().replace("</body>", driver + "</body>"))
    r = run_chromium(["--window-size=1280,800", "--dump-dom", page.as_uri() + fragment], tmp)
    assert r.returncode == 0, r.stderr[-500:]
    m = re.search(r'data-test="([^"]*)"', r.stdout)
    assert m, "the driver did not finish (plotly.min.js not loaded?)"
    log = json.loads(html_lib.unescape(m.group(1)))
    assert "error" not in log, log
    return log
