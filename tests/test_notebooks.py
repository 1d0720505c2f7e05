"""The notebooks run top to bottom (on the tiny untrained fallbacks) and are committed without outputs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
EXPECTED = ["01_quick_tour", "02_fixed_points_and_jumps", "03_slow_ablation_and_patching", "04_guess_scaling",
            "05_probes"]

sys.path.insert(0, str(REPO / "scripts"))
from strip_notebooks import is_stripped, strip  # noqa: E402


def test_all_notebooks_present():
    assert [p.stem for p in NOTEBOOKS] == EXPECTED


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_committed_notebooks_have_no_outputs(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code and all(c["outputs"] == [] and c["execution_count"] is None for c in code)
    assert is_stripped(nb), f"{path.name} has outputs or run metadata: python scripts/strip_notebooks.py"


def test_strip_removes_outputs_and_keeps_source():
    nb = {"cells": [{"cell_type": "code", "source": "1 + 1", "execution_count": 3, "id": "a",
                     "metadata": {"execution": {"x": 1}, "tags": ["t"]},
                     "outputs": [{"output_type": "execute_result", "data": {"text/plain": "2"}}]},
                    {"cell_type": "markdown", "source": "# hi", "id": "b", "metadata": {}}],
          "metadata": {"kernelspec": {"name": "python3"}, "widgets": {"big": 1}}, "nbformat": 4, "nbformat_minor": 5}
    out = strip(nb)
    assert out["cells"][0]["outputs"] == [] and out["cells"][0]["execution_count"] is None
    assert out["cells"][0]["metadata"] == {"tags": ["t"]} and out["cells"][0]["source"] == "1 + 1"
    assert out["metadata"] == {"kernelspec": {"name": "python3"}} and not is_stripped(nb) and is_stripped(out)


def test_static_png_beside_plotly_figures(monkeypatch):
    """``show`` emits the figure and a PNG; without kaleido the PNG is a matplotlib drawing."""
    import base64

    go = pytest.importorskip("plotly.graph_objects")
    pytest.importorskip("IPython")
    import interp.views.static as static

    fig = go.Figure([go.Scatter(x=[0, 1, 2], y=[1, None, 3], name="a"), go.Bar(x=[0, 1], y=[2, 1])])
    png = static.matplotlib_png(fig, 400, 300)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    monkeypatch.setattr(static, "_KALEIDO_OK", False)  # as if kaleido could not start a browser
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj, raw=False: shown.append(obj))
    static.show(fig)
    (bundle,) = shown
    assert base64.b64decode(bundle["image/png"])[:4] == b"\x89PNG"
    assert bundle["application/vnd.plotly.v1+json"]["data"][0]["name"] == "a"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(path, tmp_path, monkeypatch):
    """Each notebook runs top to bottom on CPU (~10-45 s each here); the zoo is hidden so the tiny
    untrained fallbacks are used and the run time does not depend on which checkpoints exist."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    monkeypatch.setenv("RECURSE_ZOO", str(tmp_path / "no-zoo"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(str(path), as_version=4)
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    # every interactive figure carries a static PNG beside it (GitHub and nbviewer show that one)
    plotly = [o for o in outputs if "application/vnd.plotly.v1+json" in o.get("data", {})]
    assert all("image/png" in o["data"] for o in plotly)
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    assert "TINY UNTRAINED" in text  # the fallback cell says which model it used
