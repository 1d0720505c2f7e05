"""The work of ``interp features`` (``interp.cli.features``): train or evaluate a dictionary, compare, write outputs.

``train_dictionary`` and ``evaluate_dictionary`` return a plain dict (kind, width, module, stats, step_fve, acts
[N, T, L, F], comparison rows); ``write_outputs`` writes the folder described in ``interp.cli.features``.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from common.atomic import atomic_write_json, atomic_write_text
from common.markdown import markdown_table
from common.outputs import TOOL_MARK, listed_files
from probes.crosscoder import StepCrosscoder, crosscoder_stats, crosscoder_step_acts, step_profiles, train_crosscoder
from probes.sae import SparseAutoencoder, encode_array, train_sae
from probes.step_saes import step_sae_decoders, track_features, train_step_saes

OUTPUTS = ["dictionary/cfg.json", "dictionary/sae_weights.safetensors", "features.csv", "comparison.csv", "summary.md",
           "settings.json", "features.html", "viewer.html", "plotly.min.js"]
"""The files ``interp features`` writes (its provenance.json lists them)."""


def _sae_step_fve(sae: SparseAutoencoder, states: np.ndarray) -> tuple[dict[str, float], np.ndarray]:
    """A (pooled) SAE on states [N, T, L, D]: overall fve, per-step fve [T], mean active features per sample, alive."""
    T, D = states.shape[1], states.shape[-1]
    sse, sst, l0, alive = np.zeros(T), np.zeros(T), 0.0, np.zeros(sae.n_features, bool)
    with torch.no_grad():
        for t in range(T):
            x = torch.from_numpy(np.ascontiguousarray(states[:, t].reshape(-1, D), dtype=np.float32))
            xh, a = sae(x)
            sse[t] = float((xh - x).pow(2).sum())
            sst[t] = float((x - x.mean(0)).pow(2).sum())
            l0 += float((a > 0).sum())
            alive |= (a > 0).any(0).numpy()
    n = states.shape[0] * T * states.shape[2]
    return ({"fve": float(1 - sse.sum() / max(sst.sum(), 1e-12)), "l0": l0 / n, "alive": float(alive.mean())},
            1 - sse / np.maximum(sst, 1e-12))


def _row(name: str, width: int, stats: dict[str, float], step_fve: np.ndarray, l0_traj: float, **extra: Any) -> dict:
    return {"dictionary": name, "width": width, "fve": round(stats["fve"], 4), "fve_min_step": round(float(step_fve.min()), 4),
            "fve_max_step": round(float(step_fve.max()), 4), "active_per_trajectory": round(l0_traj, 2),
            "alive": round(stats["alive"], 3), **extra}


def _profile_counts(prof: pd.DataFrame) -> dict[str, int]:
    return {k: int((prof["kind"] == k).sum()) for k in ("persistent", "appearing", "fading", "transient")}


def _alive(acts: np.ndarray) -> np.ndarray:
    return (acts.reshape(-1, acts.shape[-1]) > 0).any(0)


def train_dictionary(args: argparse.Namespace, states: np.ndarray, progress: bool = False) -> dict[str, Any]:
    """Train ``args.kind`` on states [N, T, L, D]; a crosscoder is compared with per-step SAEs and a pooled SAE
    of the same width, L1 and Adam budget (unless ``args.no_compare``)."""
    N, T, L, D = states.shape
    traj = np.ascontiguousarray(np.moveaxis(states, 1, 2).reshape(-1, T, D))
    opts = dict(l1=args.l1, k=args.topk, steps=args.train_steps, seed=args.seed, batch_size=args.batch_size)
    rows = []
    if args.kind == "crosscoder":
        res = train_crosscoder(traj, args.features, lr=args.lr, progress=progress, **opts)
        cc = res.crosscoder
        acts = crosscoder_step_acts(cc, states)
        prof = step_profiles(cc.decoder_norms().numpy(), _alive(acts), args.present)
        out = {"kind": "crosscoder", "width": cc.n_features, "module": cc, "stats": res.stats, "step_fve": res.step_fve,
               "acts": acts, "profiles": prof}
        rows.append(_row("crosscoder", cc.n_features, res.stats, res.step_fve, res.stats["l0"],
                         tracked=_profile_counts(prof)["persistent"], **_profile_counts(prof)))
        if not args.no_compare:
            ss = train_step_saes(traj, args.features, progress=progress, **opts)
            tr = track_features(step_sae_decoders(ss, alive_only_x=traj))
            rows.append(_row("per-step SAEs", args.features, ss.stats, ss.step_fve, ss.stats["l0"],
                             tracked=int(tr["tracked_first_to_last"]), n_first=int(tr["n_first"]),
                             mean_link_cos=round(tr["mean_link_cos"], 3)))
            pooled = train_sae(states.reshape(-1, D), args.features, lr=args.lr, **opts).sae
            st, sf = _sae_step_fve(pooled, states)
            pacts = encode_array(pooled, states)
            pprof = step_profiles((pacts > 0).mean((0, 2)).T, _alive(pacts), args.present)
            rows.append(_row("SAE pooled over steps", args.features, st, sf, st["l0"] * T,
                             tracked=_profile_counts(pprof)["persistent"], **_profile_counts(pprof)))
    else:
        sae = train_sae(states.reshape(-1, D), args.features, lr=args.lr, **opts).sae
        st, sf = _sae_step_fve(sae, states)
        acts = encode_array(sae, states)
        prof = step_profiles((acts > 0).mean((0, 2)).T, _alive(acts), args.present)
        out = {"kind": "sae", "width": sae.n_features, "module": sae, "stats": st, "step_fve": sf, "acts": acts,
               "profiles": prof}
        rows.append(_row("SAE pooled over steps", sae.n_features, st, sf, st["l0"] * T,
                         tracked=_profile_counts(prof)["persistent"], **_profile_counts(prof)))
    out["comparison"] = pd.DataFrame(rows).convert_dtypes()
    return out


def evaluate_dictionary(module: SparseAutoencoder | StepCrosscoder, states: np.ndarray, steps: np.ndarray,
                        matched: list[int], present: float = 0.25) -> dict[str, Any]:
    """A loaded dictionary on states [N, T, L, D] at trace ``steps``; ``matched``: the trace steps its hook names."""
    if isinstance(module, StepCrosscoder):
        if module.n_steps != len(steps) or sorted(matched) != sorted(int(s) for s in steps):
            raise ValueError(f"the crosscoder covers {module.n_steps} steps ({len(matched)} matched here); this trace "
                             f"writes the state at {len(steps)} steps: it was trained on another step structure")
        T, D = states.shape[1], states.shape[-1]
        stats, step_fve = crosscoder_stats(module, torch.from_numpy(np.ascontiguousarray(
            np.moveaxis(states, 1, 2).reshape(-1, T, D), dtype=np.float32)))
        acts = crosscoder_step_acts(module, states)
        prof = step_profiles(module.decoder_norms().numpy(), _alive(acts), present)
        kind = "crosscoder"
    else:
        keep = np.flatnonzero(np.isin(steps, matched))
        if keep.size == 0:
            raise ValueError("the dictionary's hook names none of the steps that write this state")
        states = states[:, keep]
        stats, step_fve = _sae_step_fve(module, states)
        acts = encode_array(module, states)
        prof = step_profiles((acts > 0).mean((0, 2)).T, _alive(acts), present)
        kind = "sae"
        steps = steps[keep]
    l0_traj = stats["l0"] * (1 if kind == "crosscoder" else states.shape[1])
    row = _row(f"{kind} (loaded)", module.n_features, stats, step_fve, l0_traj, **_profile_counts(prof))
    return {"kind": kind, "width": module.n_features, "module": module, "stats": stats, "step_fve": step_fve,
            "acts": acts, "profiles": prof, "comparison": pd.DataFrame([row]), "steps": steps, "loaded": True}


def decoder_directions(module: Any, prof: pd.DataFrame) -> np.ndarray:
    """[F, D] unit decoder directions in state space (a crosscoder: at each feature's peak step)."""
    with torch.no_grad():
        if isinstance(module, StepCrosscoder):
            w = module.W_dec.detach() * module.scale[None, :, None]
            peak = np.maximum(prof.sort_values("feature")["peak"].to_numpy(), 0)
            w = w[torch.arange(module.n_features), torch.as_tensor(peak)]
        else:
            w = module.W_dec.detach()
        return torch.nn.functional.normalize(w.float(), dim=-1).numpy()


def _answer_push(model: Any, dirs: np.ndarray, n_digits: int) -> np.ndarray | None:
    """[F, S]: logit change of digits 1..S per unit of each decoder direction, centred over the digits."""
    head = getattr(model, "lm_head", None) if model is not None else None
    if head is None or not hasattr(head, "weight"):
        return None
    w = head.weight.detach().float().cpu().numpy()[2:2 + n_digits]  # tokens 2..S+1 are digits 1..S
    if w.shape[1] != dirs.shape[1]:
        return None
    push = dirs @ w.T
    return push - push.mean(1, keepdims=True)


def _critical_note(sub: Any, steps: np.ndarray, prof: pd.DataFrame) -> list[str]:
    """Onsets of appearing features against the puzzles' critical steps (where the answer becomes right for good)."""
    from interp.analyses.jumps import critical_steps

    try:
        crit = critical_steps(sub)
    except Exception:  # noqa: BLE001 - an unlabelled trace has no critical step
        return []
    if "critical_step" not in crit:
        return []
    c = crit["critical_step"].to_numpy()
    c = c[c >= 0]
    app = prof[prof["kind"] == "appearing"]
    if not len(c):
        return ["No puzzle becomes right for good, so there is no critical step to compare onsets with."]
    med = int(np.median(c))
    k = int(np.clip(np.searchsorted(steps, med, side="right") - 1, 0, len(steps) - 1))  # the dictionary step in force
    onset = app["onset"].to_numpy()
    near = int((np.abs(onset - k) <= 1).sum())
    counts = pd.Series(steps[onset]).value_counts().sort_index() if len(app) else pd.Series(dtype=int)
    return [f"Critical step (answer right from then on) of {len(c)} of {len(crit)} puzzles: median trace step {med} "
            f"(range {int(c.min())}-{int(c.max())}). Appearing features by onset step: "
            + (", ".join(f"step {int(s)}: {int(n)}" for s, n in counts.items()) or "none")
            + f"; {near} of {len(app)} have their onset within one dictionary step of the median critical step "
              f"(trace step {int(steps[k])})."]


def write_outputs(args: argparse.Namespace, out: Path, sub: Any, model: Any, task: str | None, info: dict[str, Any],
                  result: dict[str, Any], steps: np.ndarray, inputs: np.ndarray, preds: np.ndarray) -> None:
    """Every output file of ``interp features`` (see ``interp.cli.features``)."""
    from interp.views.feature_pages import write_feature_pages
    from interp.views.trace_viewer import write_viewer
    from probes.sae_features import cell_targets, label_features
    from probes.sae_files import save_crosscoder, save_sae

    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "provenance.json", {"tool": TOOL_MARK, "command": "features", "files": OUTPUTS})
    if "steps" in result:  # a loaded SAE covers only the steps its hook names
        keep = np.isin(steps, result["steps"])
        steps, preds = steps[keep], preds[:, keep]
    acts, prof = result["acts"], result["profiles"].copy()
    F = acts.shape[-1]
    for col in ("onset", "offset", "peak"):
        prof[f"{col}_step"] = np.where(prof[col] >= 0, steps[np.maximum(prof[col], 0)], -1)
    sudoku = task == "sudoku" and math.isqrt(acts.shape[2]) ** 2 == acts.shape[2]
    labels = None
    if sudoku:
        y = sub.labels if sub.labelled else None
        labels = label_features(acts, cell_targets(inputs, preds, y), seed=args.seed)
    push = _answer_push(model, decoder_directions(result["module"], result["profiles"]), math.isqrt(acts.shape[2])) if sudoku else None
    flat = acts.reshape(-1, F)
    table = pd.DataFrame({"feature": np.arange(F), "firing_rate": (flat > 0).mean(0), "mean_activation": flat.mean(0)})
    table = table.merge(prof[["feature", "kind", "onset_step", "offset_step", "peak_step"]], on="feature")
    if labels is not None:
        table = table.merge(labels[["feature", "label", "best_target", "auc"]], on="feature")
    if push is not None:
        table["top_digit"] = push.argmax(1) + 1
    atomic_write_text(out / "features.csv", table.to_csv(index=False, float_format="%.5g"))
    if not result.get("loaded"):
        info = {**info, "extra": {"l1": args.l1, "k": args.topk, "train_steps": args.train_steps, "seed": args.seed}}
        if result["kind"] == "crosscoder":
            save_crosscoder(result["module"], out / "dictionary", info)
        else:
            save_sae(result["module"], out / "dictionary", {**info, "hook_names": info["hook_names"]})
    cmp = result["comparison"]
    atomic_write_text(out / "comparison.csv", cmp.to_csv(index=False))
    pages = list(args.feature) if args.feature else (
        table[table["firing_rate"] > 0].sort_values("mean_activation", ascending=False)["feature"].head(args.pages).tolist())
    if not pages:
        raise ValueError("no feature fires on these puzzles: nothing to draw (train longer or lower --l1)")
    nv = min(args.viewer_puzzles, acts.shape[0])
    page_prof = prof.assign(onset=prof["onset_step"], offset=prof["offset_step"])
    write_feature_pages(out / "features.html", acts, steps, inputs, preds, plotly_js=args.plotly, features=pages,
                        labels=labels, profiles=page_prof, push=push, n_top=args.top, lookup_puzzles=list(range(nv)),
                        title=f"{result['kind']} features of {info['model_name'] or 'model'} ({info['state']})",
                        puzzle_numbers=(np.asarray(sub.puzzle_index) + 1).tolist())
    write_viewer(sub, out / "viewer.html", puzzle=list(range(nv)), features_href="features.html", plotly_js=args.plotly)
    summary = _summary(result, info, acts.shape, steps, labels, table, _critical_note(sub, steps, result["profiles"]))
    atomic_write_text(out / "summary.md", summary)
    atomic_write_json(out / "settings.json", {k: v for k, v in vars(args).items() if k not in ("func",)},
                      default=str)
    files = sorted(set(OUTPUTS) | set(listed_files(out)) - {"provenance.json"})  # whatever the viewers wrote beside
    atomic_write_json(out / "provenance.json", {"tool": TOOL_MARK, "command": "features", "files": files})


def _summary(result: dict[str, Any], info: dict[str, Any], shape: tuple[int, ...], steps: np.ndarray,
             labels: pd.DataFrame | None, table: pd.DataFrame, critical: list[str]) -> str:
    N, T, L, F = shape
    lines = [f"## {result['kind']} features of {info['model_name'] or 'the model'} ({info['state']})", "",
             f"{N} puzzles x {T} steps that write {info['state']} (trace steps {int(steps[0])}..{int(steps[-1])}) x {L} "
             f"cells; {F} features. Variance explained per step, active features per (puzzle, cell) trajectory "
             "(a crosscoder has one activation per trajectory; per-step and pooled SAEs count every step), "
             "features alive, and how many features can be followed from the first step to the last "
             "(crosscoder and pooled SAE: present at every step; per-step SAEs: chains of best-cosine decoder "
             "matches >= 0.7 between consecutive steps, out of the first step's live features):", "",
             markdown_table(result["comparison"].astype(object).where(result["comparison"].notna(), "")), ""]
    counts = table["kind"].value_counts()
    lines += ["Step profiles of the live features: " + ", ".join(f"{k} {int(counts.get(k, 0))}" for k in
              ("persistent", "appearing", "fading", "transient")) + f" (dead {int(counts.get('dead', 0))}).", ""]
    lines += critical + ([""] if critical else [])
    if labels is not None:
        lab = table[table["label"] != ""]
        by = lab["label"].value_counts()
        lines += [f"Automatic labels (best target with AUC >= 0.75): {len(lab)} of {F} features labelled: "
                  + (", ".join(f"{k} {int(v)}" for k, v in by.items()) or "none") + ".", ""]
    return "\n".join(lines)


__all__ = ["train_dictionary", "evaluate_dictionary", "write_outputs", "decoder_directions"]
