"""``interp features`` on language models (HRM-LM zoo model, tiny HRM-Text folder): top examples against an
independent argmax, pushed tokens against the LM head computed by hand, planted features, bad input."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from interp.cli import main
from interp.views.text_feature_pages import auto_label, lm_push, text_feature_page_data, top_pushed

ROOT = Path(__file__).resolve().parents[1]
ZOO_LM = ROOT / "zoo" / "hrm-lm-pydoc"
V = 48


def _page(out: Path) -> dict:
    blob = re.search(r'id="feature-data">(.*?)</script>', (out / "features.html").read_text(), re.S).group(1)
    return json.loads(blob.replace("<\\/", "</"))


def _recomputed_acts(ckpt: str, tokens: np.ndarray, dictionary: Path, state: str) -> tuple[np.ndarray, object]:
    """The crosscoder's per-step strengths [N, T, L, F] of a fresh trace (independent of the command's path)."""
    from interp.tracing.tracer import trace
    from models.load import load_any
    from probes.crosscoder import crosscoder_step_acts
    from probes.sae_files import load_dictionary

    model, _ = load_any(ckpt)
    tr = trace(model, tokens, states=[state], confidence=False)
    upd = np.array([state in str(u).split("+") for u in tr.steps["updated"]])
    states = tr.states(state, drop_prefix=True)[:, np.flatnonzero(upd)]
    cc, _ = load_dictionary(dictionary)
    return crosscoder_step_acts(cc, states), (model, cc)


def _check_page_against_independent(out: Path, acts: np.ndarray, tokens: np.ndarray, head_w: torch.Tensor, cc) -> None:
    data = _page(out)
    prof = {r["id"]: r for r in data["features"]}
    import pandas as pd

    table = pd.read_csv(out / "features.csv")
    for f, rec in prof.items():
        a = acts[..., f]
        best = np.unravel_index(np.argmax(a.max(1)), (a.shape[0], a.shape[2]))  # (text, position) of the maximum
        top = rec["top"][0]
        assert (top["text"], top["pos"]) == (int(best[0]), int(best[1]))
        assert top["act"] == pytest.approx(float(a.max()), rel=1e-3, abs=1e-4)
        # the pushed tokens: the head times the unit decoder direction at the feature's peak step
        peak = int(np.flatnonzero(np.asarray(data["steps"]) == table.loc[f, "peak_step"])[0])
        d = cc.decoder_direction(f, peak)
        logits = (head_w @ d).numpy()
        want = np.argsort(-logits, kind="stable")[: len(rec["pushed"])]
        assert [p["id"] for p in rec["pushed"]] == want.tolist()


# ----------------------------------------------------------------------------- the Python path on planted data
def test_planted_feature_top_example_pushed_tokens_and_label():
    rng = np.random.default_rng(0)
    N, T, L, F, D = 3, 4, 10, 5, 8
    acts = rng.uniform(0, 0.5, (N, T, L, F)).astype(np.float32)
    acts[2, 1, 7, 3] = 5.0  # planted: feature 3 fires hardest at text 2, position 7, step index 1
    acts[0, 3, 2, 3] = 4.0
    tokens = rng.integers(0, V, (N, L))
    tokens[2, 7] = tokens[0, 2] = 11
    W = torch.randn(V, D)
    dirs = torch.nn.functional.normalize(torch.randn(F, D), dim=-1).numpy()
    push = lm_push(lambda d: d @ W.T, dirs)
    want = (torch.as_tensor(dirs) @ W.T).numpy()
    assert np.allclose(push, want - want.mean(1, keepdims=True), atol=1e-5)
    data = text_feature_page_data(acts, [10, 11, 12, 13], tokens, lambda ids: f"t{ids[0]}", features=[3], push=push,
                                  k=4, n_top=2, context=2)
    rec = data["features"][0]
    assert [(e["text"], e["step"], e["pos"]) for e in rec["top"]] == [(2, 11, 7), (0, 13, 2)]
    assert rec["top"][0]["token"] == "t11" and rec["top"][0]["before"] == [f"t{t}" for t in tokens[2, 5:7]]
    assert rec["top"][0]["after"] == [f"t{t}" for t in tokens[2, 8:10]]
    assert [p["id"] for p in rec["pushed"]] == np.argsort(-want[3])[:4].tolist()
    assert rec["label"] == "on 't11'"  # both top examples sit on token 11
    among = [1, 5, 9]
    assert top_pushed(push, 1, among)[3, 0] == among[int(np.argmax(push[3, among]))]
    assert auto_label([1, 2, 3], 7, lambda t: f"t{t}") == "pushes 't7'"


# ----------------------------------------------------------------------------- tiny HRM-Text (transformers folder)
def tiny_hrm_text_folder(path: Path, hidden: int = 32) -> Path:
    transformers = pytest.importorskip("transformers")
    if not hasattr(transformers, "HrmTextConfig"):
        pytest.skip("this transformers has no HRM-Text")
    torch.manual_seed(0)
    cfg = transformers.HrmTextConfig(vocab_size=V, hidden_size=hidden, intermediate_size=64, num_hidden_layers=2,
                                     num_attention_heads=2, head_dim=16, H_cycles=2, L_cycles=3,
                                     max_position_embeddings=64)
    hf = transformers.HrmTextForCausalLM(cfg).eval()
    with torch.no_grad():
        hf.model.z_L_init.normal_()
    hf.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def hrm_text(tmp_path_factory):
    return tiny_hrm_text_folder(tmp_path_factory.mktemp("hrmtext") / "m")


TOKENS = "3 7 9 12 5 30 31 2 8 8 14 40 41 6 9 12 5 30 1 2"


def test_tiny_hrm_text_pages_match_independent_argmax_and_lm_head(hrm_text, tmp_path):
    out = tmp_path / "out"
    assert main(["features", "--ckpt", str(hrm_text), "--tokens", TOKENS, "--context", "10", "--features", "12",
                 "--train-steps", "60", "--no-compare", "--push-among", "all", "--threads", "1", "--quiet",
                 "--out", str(out)]) == 0
    cfg = json.loads((out / "dictionary" / "cfg.json").read_text())
    meta = cfg["metadata"]
    assert cfg["architecture"] == "step_crosscoder" and cfg["d_in"] == 32 and cfg["d_sae"] == 12
    assert meta["recurse_interp"]["state"] == "z_H" and meta["hook_name"].endswith("hook_z_H")
    from interp.tracing.model_hash import model_sha256
    from models.load import load_any

    assert meta["recurse_interp"]["model_sha256"] == model_sha256(load_any(str(hrm_text))[0])
    tokens = np.asarray([int(t) for t in TOKENS.split()]).reshape(2, 10)
    acts, (model, cc) = _recomputed_acts(str(hrm_text), tokens, out / "dictionary", "z_H")
    _check_page_against_independent(out, acts, tokens, model.hf.lm_head.weight.detach().float(), cc)
    # the saved dictionary is refused on another model (other width)
    other = tiny_hrm_text_folder(tmp_path / "other", hidden=48)
    bad = tmp_path / "bad"
    assert main(["features", "--ckpt", str(other), "--tokens", TOKENS, "--dictionary", str(out / "dictionary"),
                 "--quiet", "--out", str(bad)]) == 2
    assert not bad.exists()


# ----------------------------------------------------------------------------- the zoo HRM-LM on a short text
TEXT = "def main(args):\n    return len(args) + 1\n\nclass P:\n    x = 0\n"


@pytest.mark.skipif(not ZOO_LM.is_dir(), reason="zoo/hrm-lm-pydoc is not shipped here")
def test_zoo_hrm_lm_pages_match_independent_argmax_and_embedding_readout(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["features", "--ckpt", str(ZOO_LM), "--text", TEXT, "--features", "16", "--train-steps", "80",
                 "--no-compare", "--threads", "1", "--quiet", "--out", str(out)]) == 0
    assert "crosscoder features of" in capsys.readouterr().out
    tokens = np.asarray([ord(c) for c in TEXT])[None]  # the byte tokenizer of the checkpoint
    acts, (model, cc) = _recomputed_acts(str(ZOO_LM), tokens, out / "dictionary", "fast")
    # HRM-LM reads out with rms_norm then the tied embedding: for a unit direction the ranking is E @ d; the
    # command ranks among the tokens of the text by default
    E = model.embed_tokens.embedding_weight.detach().float()
    seen = np.unique(tokens)
    mask = torch.full((E.shape[0],), float("-inf"))
    mask[torch.as_tensor(seen)] = 0.0
    data = _page(out)
    import pandas as pd

    table = pd.read_csv(out / "features.csv")
    for rec in data["features"]:
        f = rec["id"]
        a = acts[..., f]
        best = np.unravel_index(np.argmax(a.max(1)), (a.shape[0], a.shape[2]))
        assert (rec["top"][0]["text"], rec["top"][0]["pos"]) == (int(best[0]), int(best[1]))
        peak = int(np.flatnonzero(np.asarray(data["steps"]) == table.loc[f, "peak_step"])[0])
        logits = (E @ cc.decoder_direction(f, peak)) + mask
        want = torch.argsort(-logits, stable=True)[: len(rec["pushed"])].tolist()
        assert [p["id"] for p in rec["pushed"]] == want
        assert table.loc[f, "top_pushed_id"] == want[0]
    ctx = data["features"][0]["top"][0]
    assert ctx["token"] == TEXT[ctx["pos"]] and "".join(ctx["before"]) == TEXT[max(0, ctx["pos"] - 6):ctx["pos"]]


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("case, message", [
    ("puzzle_model", "needs a language model"),
    ("vocab", "outside the vocabulary"),
    ("missing_file", "no-such"),
    ("empty_file", "is empty"),
    ("one_token", "at least two tokens"),
    ("both", "not allowed with argument"),
    ("feature", "--feature 99 is out of range"),
])
def test_bad_text_input_is_one_line_and_writes_nothing(hrm_text, tmp_path, capsys, case, message):
    out = tmp_path / "out"
    args = ["features", "--ckpt", str(hrm_text), "--quiet", "--features", "8", "--out", str(out)]
    if case == "puzzle_model":
        from helpers.tiny_models import tiny_trm
        from models.checkpoint import save_checkpoint

        ck = save_checkpoint(tmp_path / "trm", tiny_trm(), extra={"task": {"name": "sudoku"}})
        args = ["features", "--ckpt", str(ck), "--tokens", "1 2 3", "--quiet", "--out", str(out)]
    elif case == "vocab":
        args += ["--tokens", f"1 2 {V}"]
    elif case == "missing_file":
        args += ["--text-file", str(tmp_path / "no-such.txt")]
    elif case == "empty_file":
        (tmp_path / "e.txt").write_text("  \n")
        args += ["--text-file", str(tmp_path / "e.txt")]
    elif case == "one_token":
        args += ["--tokens", "5"]
    elif case == "both":
        args += ["--tokens", "1 2 3", "--puzzle-file", "x.sdm"]
    elif case == "feature":
        args += ["--tokens", "1 2 3", "--feature", "99"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and message in err[0], err
    assert not out.exists()


_DRIVER = """<script>
(function () {
  window.__features.ready.then(function () {
    var hit = document.querySelector('#examples .hit');
    var ex = Array.prototype.map.call(document.querySelectorAll('#examples .ex'), function (e) { return e.getAttribute('data-example'); });
    document.body.setAttribute('data-test', JSON.stringify({feature: document.body.getAttribute('data-feature'),
      hit: hit ? hit.textContent : null, examples: ex, svg: !!document.querySelector('#chart svg'),
      pushed: document.querySelectorAll('#push td').length}));
  }).catch(function (e) { document.body.setAttribute('data-test', JSON.stringify({error: String(e)})); });
})();
</script>"""


def test_chromium_text_feature_page(tmp_path):
    from helpers.browser import CHROMIUM, drive_page
    from interp.views.text_feature_pages import write_text_feature_pages

    if CHROMIUM is None:
        pytest.skip("chromium not installed (apt-get install -y chromium)")
    acts = np.zeros((2, 3, 6, 4), np.float32)
    acts[1, 2, 4, 2], acts[0, 0, 1, 2] = 3.0, 1.0
    tokens = np.arange(12).reshape(2, 6)
    push = np.eye(4, 12, dtype=np.float32)
    path = write_text_feature_pages(tmp_path / "features.html", acts, [5, 6, 7], tokens, lambda ids: f"<w{ids[0]}>",
                                    push=push, k=3)
    log = drive_page(path, _DRIVER, tmp_path, "#feature=2")
    assert log["feature"] == "2" and log["hit"] == "<w10>" and log["svg"]  # escaped token text, highlighted
    assert log["examples"] == ["1,7,4", "0,5,1"] and log["pushed"] == 6


def test_next_token_match_against_a_hand_count():
    from interp.cli.features_text import next_token_match

    tokens = np.array([[1, 2, 3, 4], [5, 2, 9, 4]])
    tops = [[(0, 0, 0, 1.0), (1, 0, 0, 0.5)],  # next tokens 2, 2
            [(0, 0, 2, 1.0), (1, 0, 2, 0.5), (0, 0, 3, 0.1)],  # next tokens 4, 4 (the last position has none)
            []]
    pushed = np.array([2, 9, 7])
    m = next_token_match(tops, tokens, pushed, np.array([0, 1]))
    assert m["n"] == 2 and m["feature"].mean == pytest.approx(0.5)  # feature 0: 2/2, feature 1: 0/2
    assert m["control"].mean == pytest.approx(0.0)  # 9 never follows in feature 0's examples, 2 not in feature 1's
