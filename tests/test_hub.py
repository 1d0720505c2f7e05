"""Hub checkpoints (``hf:ORG/NAME[@REVISION][:SUBFOLDER]``), fully offline against a locally built Hub cache."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import torch
from hub_cache import add_to_hub_cache, folder_files
from test_official import reference_arch, reference_state, save_reference

from interp.cli import main as interp_main
from models import TRMConfig, build_model
from models.checkpoint import CheckpointError, save_checkpoint
from models.load import load_any
from models.hub import detect_layout, export_zoo, load_hub, main as hub_main, parse_hub_spec, resolve_hub

REPO = Path(__file__).resolve().parents[1]
SUDOKU = "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79"


@pytest.fixture
def hub(tmp_path, monkeypatch) -> Path:
    """An empty Hub cache under HF_HOME=tmp, offline: no test can reach the network."""
    home = tmp_path / "hf_home"
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    (home / "hub").mkdir(parents=True)
    return home / "hub"


def tiny_trm(seed: int = 0):
    torch.manual_seed(seed)
    return build_model(TRMConfig(vocab_size=11, seq_len=81, hidden_size=16, num_heads=2, num_layers=1,
                                 H_cycles=1, L_cycles=1, halt_max_steps=2, mlp_t=True))


def same_weights(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def one_line(e: pytest.ExceptionInfo) -> str:
    msg = str(e.value)
    assert "\n" not in msg and msg
    return msg


# ----------------------------------------------------------------------------- specs
@pytest.mark.parametrize("spec,want", [
    ("hf:org/name", ("org/name", None, None)),
    ("hf:org/name@v1.0", ("org/name", "v1.0", None)),
    ("hf:org/name@refs/pr/3", ("org/name", "refs/pr/3", None)),
    ("hf:org/name:sub/dir", ("org/name", None, "sub/dir")),
    ("hf:sapientinc/HRM-Text-1B@0123abcd:a_b/c.d", ("sapientinc/HRM-Text-1B", "0123abcd", "a_b/c.d")),
])
def test_parse_spec(spec, want):
    s = parse_hub_spec(spec)
    assert (s.repo_id, s.revision, s.subfolder) == want
    assert str(s) == spec


@pytest.mark.parametrize("spec", ["hf:", "hf:name", "hf:a/b/c", "hf:org/", "hf:/name", "hf:org/na me",
                                  "hf:org/name@", "hf:org/name:", "hf:org/name:../x", "hf:org/name:a//b",
                                  "hf:org/..", "org/name", "hf:org/name@a:b:c/../d"])
def test_malformed_specs_fail_in_one_line(spec):
    with pytest.raises(CheckpointError) as e:
        parse_hub_spec(spec)
    one_line(e)


# ----------------------------------------------------------------------------- layouts through the cache
def test_zoo_checkpoint_from_cache_with_revision_and_subfolder(tmp_path, hub):
    m0, m1 = tiny_trm(0), tiny_trm(1)
    save_checkpoint(tmp_path / "a", m0, extra={"task": {"name": "sudoku"}})
    save_checkpoint(tmp_path / "b", m1, extra={"task": {"name": "sudoku"}})
    add_to_hub_cache(hub, "me/tiny", folder_files(tmp_path / "a"), refs=("main",))
    c1 = add_to_hub_cache(hub, "me/tiny", {**folder_files(tmp_path / "b"), **folder_files(tmp_path / "a", "sub/")},
                          refs=("v2",))
    model, meta = load_any("hf:me/tiny")
    assert same_weights(model, m0) and meta["hub"]["layout"] == "zoo" and meta["hub"]["revision"] == "main"
    assert same_weights(load_any("hf:me/tiny@v2")[0], m1)
    assert same_weights(load_any(f"hf:me/tiny@{c1}")[0], m1)  # a commit hash
    model, meta = load_any("hf:me/tiny@v2:sub")
    assert same_weights(model, m0) and meta["hub"]["subfolder"] == "sub" and meta["hub"]["commit"] == c1


def test_official_hrm_release_layout(tmp_path, hub):
    arch = reference_arch("hrm")
    sd = reference_state(arch, vocab=6, seq_len=16, n_ids=5)
    run = save_reference(tmp_path, arch, sd, name="checkpoint")
    add_to_hub_cache(hub, "sapientinc/HRM-checkpoint-toy", folder_files(run))
    assert detect_layout(resolve_hub("hf:sapientinc/HRM-checkpoint-toy").path) == "official"
    model, meta = load_hub("hf:sapientinc/HRM-checkpoint-toy", seq_len=16)
    assert meta["format"] == "official" and meta["hub"]["layout"] == "official"
    assert torch.equal(model.lm_head.weight, sd["lm_head.weight"])


def test_trm_community_upload_layouts(tmp_path, hub):
    """Community TRM uploads: run folders of step_N files (latest wins) or one safetensors file, in subfolders."""
    from safetensors.torch import save_file

    arch = reference_arch("trm")
    sd = reference_state(arch, vocab=6, seq_len=16, n_ids=5)
    run = save_reference(tmp_path, arch, sd, name="step_200")
    old = {k: torch.zeros_like(v) for k, v in sd.items()}
    torch.save({"_orig_mod.model.inner." + k: v for k, v in old.items()}, run / "step_100")
    st = tmp_path / "st"
    st.mkdir()
    save_file({"model.inner." + k: v.contiguous() for k, v in sd.items()}, str(st / "model_ema.safetensors"))
    (st / "all_config.yaml").write_text((run / "all_config.yaml").read_text())
    add_to_hub_cache(hub, "someone/trm-model-toy", {**folder_files(run, "sudoku/"), **folder_files(st, "st/")})
    for spec in ("hf:someone/trm-model-toy:sudoku", "hf:someone/trm-model-toy:st"):
        model, meta = load_any(spec, seq_len=16)
        assert model.cfg.family == "trm" and torch.equal(model.lm_head.weight, sd["lm_head.weight"]), spec


def test_code_running_pickle_refused_in_one_line(tmp_path, hub):
    arch = reference_arch("hrm")
    run = save_reference(tmp_path, arch, reference_state(arch, vocab=6, seq_len=16, n_ids=5), name="checkpoint")
    with open(run / "checkpoint", "wb") as f:
        pickle.dump({"lm_head.weight": torch.zeros(2), "x": Exception("boom")}, f)
    add_to_hub_cache(hub, "evil/pickle", folder_files(run))
    with pytest.raises(CheckpointError, match="refusing to unpickle") as e:
        load_any("hf:evil/pickle", seq_len=16)
    one_line(e)


def test_errors_no_cache_unknown_layout_non_hrm_text(tmp_path, hub):
    with pytest.raises(CheckpointError, match="not in the Hugging Face cache") as e:
        load_any("hf:nobody/nothing")
    one_line(e)
    assert not (hub / "models--nobody--nothing").exists()
    add_to_hub_cache(hub, "me/odd", {"weights.npz": b"123", "notes.txt": b"hi"})
    with pytest.raises(CheckpointError, match="unknown checkpoint layout") as e:
        load_any("hf:me/odd")
    one_line(e)
    add_to_hub_cache(hub, "me/llama", {"config.json": json.dumps({"model_type": "llama"}).encode()})
    with pytest.raises(CheckpointError, match="not HRM-Text") as e:
        load_any("hf:me/llama")
    one_line(e)
    with pytest.raises(CheckpointError, match="no folder") as e:
        load_any("hf:me/odd:missing")
    one_line(e)


def test_cli_hub_trace_and_error_writes_nothing(tmp_path, hub, capsys, monkeypatch):
    m = tiny_trm(0)
    save_checkpoint(tmp_path / "ck", m, extra={"task": {"name": "sudoku"}})
    add_to_hub_cache(hub, "me/trm", folder_files(tmp_path / "ck"))
    out = tmp_path / "tr"
    assert interp_main(["trace", "--ckpt", "hf:me/trm", "--puzzle", SUDOKU, "--out", str(out), "--color", "never"]) == 0
    assert (out / "manifest.json").exists() or any(out.iterdir())
    capsys.readouterr()
    bad = tmp_path / "never"
    monkeypatch.chdir(tmp_path)
    assert interp_main(["trace", "--ckpt", "hf:nobody/nothing", "--puzzle", SUDOKU, "--out", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: hf:nobody/nothing") and err.count("\n") == 1
    assert not bad.exists() and not (tmp_path / "traces").exists()


# ----------------------------------------------------------------------------- export
def test_export_zoo_to_hub_folder_round_trips(tmp_path, hub, capsys):
    src = REPO / "zoo" / "trm-sudoku9"
    out = tmp_path / "export"
    assert hub_main(["export", str(src), str(out), "--repo", "me/trm-sudoku9"]) == 0
    card = (out / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: recurse-interp") and 'load_any("hf:me/trm-sudoku9")' in card
    assert {"model.safetensors", "config.json", "README.md"} <= {f.name for f in out.iterdir()}
    assert hub_main(["export", str(src), str(out)]) == 2  # not empty: refused
    assert "exists" in capsys.readouterr().err
    add_to_hub_cache(hub, "me/trm-sudoku9", folder_files(out))
    theirs, _ = load_any("hf:me/trm-sudoku9")
    ours, _ = load_any(src)
    assert same_weights(theirs, ours)


def test_export_refuses_bad_input_and_writes_nothing(tmp_path):
    with pytest.raises(CheckpointError):
        export_zoo(tmp_path / "missing", tmp_path / "out")
    with pytest.raises(CheckpointError):
        export_zoo(REPO / "zoo" / "trm-sudoku9", tmp_path / "out", repo="bad repo")
    assert not (tmp_path / "out").exists()
