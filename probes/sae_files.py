"""SAE and crosscoder files in the SAELens layout: ``cfg.json`` + ``sae_weights.safetensors`` in one folder.

SAELens (v6) loads a folder with ``SAE.load_from_disk(folder)``: ``cfg.json`` holds ``d_in``, ``d_sae``,
``dtype``, ``device``, ``apply_b_dec_to_input``, ``normalize_activations``, ``reshape_activations``,
``architecture`` (``standard``, ``topk`` + ``k``, ...) and ``metadata`` (``hook_name``, ``model_name``,
``sae_lens_version``, any other key); the weights are ``W_enc`` [d_in, d_sae], ``W_dec`` [d_sae, d_in],
``b_enc`` [d_sae], ``b_dec`` [d_in]. Encoding is ``relu((x - b_dec) @ W_enc + b_enc)`` (TopK: the k largest
pre-activations, then relu), decoding ``f @ W_dec + b_dec``.

Our ``SparseAutoencoder`` normalises inputs first (``(x - mean) / scale``); :func:`save_sae` folds that
into the weights exactly (``W_enc / scale``, ``W_dec * scale``, ``b_dec * scale + mean``), so the saved SAE
computes the same features with ``normalize_activations: "none"``. What ties a dictionary to a model is in
``metadata``: ``hook_name`` (see :func:`hook_for_steps`), ``model_name`` and our block ``recurse_interp``
(``model_sha256``, ``state``, ``steps``, ``hook_names``, ``kind``). :func:`check_dictionary` refuses a
dictionary made for another hook, width or model in one line.

A crosscoder (``probes.crosscoder``) has no SAELens architecture; it is saved in the same folder layout
with ``architecture: "step_crosscoder"``, ``n_steps``, per-step weights ``W_enc`` [T, d_in, d_sae],
``W_dec`` [d_sae, T, d_in], ``b_dec`` [T, d_in] and its per-step normalisation ``norm_mean`` [T, d_in],
``norm_scale`` [T]; only :func:`load_dictionary` reads it.
"""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path
from typing import Any

import torch

from common.atomic import atomic_write_json, atomic_write_bytes
from common.untrusted import read_json, regular_file
from models.hook_names import hook_aliases, is_alias_pattern
from probes.crosscoder import StepCrosscoder
from probes.sae import SparseAutoencoder

CFG_FILE = "cfg.json"
WEIGHTS_FILE = "sae_weights.safetensors"
LAYOUT_VERSION = "6.0.0"  # the SAELens config version whose layout these files follow (hook_name in metadata)
SAE_ARCHITECTURES = ("standard", "topk")
MAX_WEIGHTS_BYTES = 2 << 30


class DictionaryError(ValueError):
    """A dictionary folder that cannot be read, or that does not fit the model/hook it is used on (one line)."""


def hook_for_steps(hook_names: list[str]) -> str:
    """The ``hook_name`` of a dictionary trained on these step hooks: the one name, or a glob over them
    (``*.hook_y`` for TRM's answer state at every step it is updated)."""
    names = list(dict.fromkeys(hook_names))
    if len(names) == 1:
        return names[0]
    state = {n.rsplit(".", 1)[-1] for n in names}
    return f"*.{state.pop()}" if len(state) == 1 else "*"


def _meta(info: dict[str, Any], kind: str, n_features: int) -> dict[str, Any]:
    hooks = [str(h) for h in info.get("hook_names", [])]
    return {"sae_lens_version": LAYOUT_VERSION, "sae_lens_training_version": None,
            "hook_name": info.get("hook_name") or (hook_for_steps(hooks) if hooks else None),
            "model_name": info.get("model_name"), "hook_head_index": None, "prepend_bos": False,
            "context_size": info.get("context_size"), "dataset_path": info.get("dataset_path"),
            "recurse_interp": {"kind": kind, "n_features": n_features, "model_sha256": info.get("model_sha256"),
                               "state": info.get("state"), "steps": [int(s) for s in info.get("steps", [])],
                               "hook_names": hooks, **info.get("extra", {})}}


def _write(folder: Path, cfg: dict[str, Any], tensors: dict[str, torch.Tensor]) -> Path:
    from safetensors.torch import save

    folder.mkdir(parents=True, exist_ok=True)
    blob = save({k: v.detach().to(torch.float32).contiguous().cpu() for k, v in tensors.items()})
    atomic_write_bytes(folder / WEIGHTS_FILE, blob)
    atomic_write_json(folder / CFG_FILE, cfg)
    return folder


def save_sae(sae: SparseAutoencoder, folder: str | os.PathLike, info: dict[str, Any] | None = None) -> Path:
    """Write ``sae`` as a SAELens-loadable folder (normalisation folded in); ``info``: hook_names, steps, state,
    model_sha256, model_name (see module docstring). Returns the folder."""
    info = info or {}
    with torch.no_grad():
        scale, mean = sae.scale.detach().float(), sae.mean.detach().float()
        tensors = {"W_enc": sae.W_enc / scale, "W_dec": sae.W_dec * scale, "b_enc": sae.b_enc.clone(),
                   "b_dec": sae.b_dec * scale + mean}
    arch = "standard" if sae.k is None else "topk"
    cfg: dict[str, Any] = {"d_in": int(sae.W_dec.shape[1]), "d_sae": int(sae.n_features), "dtype": "float32",
                           "device": "cpu", "apply_b_dec_to_input": True, "normalize_activations": "none",
                           "reshape_activations": "none", "architecture": arch,
                           "metadata": _meta(info, "sae", sae.n_features)}
    if sae.k is not None:
        cfg.update(k=int(sae.k), rescale_acts_by_decoder_norm=False)
    return _write(Path(folder), cfg, tensors)


def save_crosscoder(cc: StepCrosscoder, folder: str | os.PathLike, info: dict[str, Any] | None = None) -> Path:
    """Write a crosscoder in the same folder layout (``architecture: step_crosscoder``; not SAELens-loadable)."""
    cfg: dict[str, Any] = {"d_in": cc.d_in, "d_sae": cc.n_features, "n_steps": cc.n_steps, "dtype": "float32",
                           "device": "cpu", "architecture": "step_crosscoder", "k": cc.k,
                           "metadata": _meta(info or {}, "crosscoder", cc.n_features)}
    tensors = {"W_enc": cc.W_enc, "W_dec": cc.W_dec, "b_enc": cc.b_enc, "b_dec": cc.b_dec,
               "norm_mean": cc.mean, "norm_scale": cc.scale}
    return _write(Path(folder), cfg, tensors)


def _int_field(cfg: dict[str, Any], key: str, where: str) -> int:
    v = cfg.get(key)
    if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= 10**7:
        raise DictionaryError(f"{where}: '{key}' must be a whole number in [1, 10000000], got {v!r}")
    return v


def read_cfg(folder: str | os.PathLike) -> dict[str, Any]:
    """The checked ``cfg.json`` of a dictionary folder, SAELens < 6 keys (``hook_point`` at top level) moved to
    ``metadata``."""
    where = str(Path(folder) / CFG_FILE)
    if not Path(folder).is_dir():
        raise DictionaryError(f"{folder}: not a dictionary folder (expected {CFG_FILE} and {WEIGHTS_FILE})")
    cfg = read_json(Path(folder) / CFG_FILE, DictionaryError, where=where, max_bytes=1 << 20)
    if not isinstance(cfg, dict):
        raise DictionaryError(f"{where}: expected a JSON object")
    meta = cfg.get("metadata") if isinstance(cfg.get("metadata"), dict) else {}
    meta = dict(meta)
    for old in ("hook_name", "hook_point", "model_name"):
        if old in cfg and cfg[old] is not None:
            meta.setdefault("hook_name" if old == "hook_point" else old, cfg[old])
    cfg["metadata"] = meta
    arch = cfg.get("architecture", "standard")
    if arch not in (*SAE_ARCHITECTURES, "step_crosscoder"):
        raise DictionaryError(f"{where}: architecture {arch!r} is not supported (standard, topk, step_crosscoder)")
    cfg["architecture"] = arch
    _int_field(cfg, "d_in", where)
    _int_field(cfg, "d_sae", where)
    if arch == "topk" or (arch == "step_crosscoder" and cfg.get("k") is not None):
        _int_field(cfg, "k", where)
    if arch != "step_crosscoder":
        if cfg.get("normalize_activations", "none") not in ("none", None):
            raise DictionaryError(f"{where}: normalize_activations {cfg['normalize_activations']!r} is not supported "
                                  "(only 'none'; fold the normalisation into the weights first)")
        if cfg.get("reshape_activations", "none") not in ("none", None):
            raise DictionaryError(f"{where}: reshape_activations {cfg['reshape_activations']!r} is not supported")
        if cfg.get("rescale_acts_by_decoder_norm"):
            raise DictionaryError(f"{where}: rescale_acts_by_decoder_norm is not supported")
    else:
        _int_field(cfg, "n_steps", where)
    return cfg


def _weights(folder: Path, shapes: dict[str, tuple[int, ...]]) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    path = regular_file(folder / WEIGHTS_FILE, MAX_WEIGHTS_BYTES, DictionaryError)
    try:
        t = load_file(str(path))
    except Exception as e:  # noqa: BLE001 - a damaged file: one line
        raise DictionaryError(f"{path}: not a readable safetensors file ({type(e).__name__})") from None
    for k, shape in shapes.items():
        if k not in t:
            raise DictionaryError(f"{path}: tensor {k} is missing")
        if tuple(t[k].shape) != shape:
            raise DictionaryError(f"{path}: {k} has shape {list(t[k].shape)}, cfg.json implies {list(shape)}")
        if not torch.isfinite(t[k]).all():
            raise DictionaryError(f"{path}: {k} holds NaN or inf")
    return {k: t[k].float() for k in shapes}


def load_dictionary(folder: str | os.PathLike) -> tuple[SparseAutoencoder | StepCrosscoder, dict[str, Any]]:
    """A dictionary folder (ours or SAELens-format, standard/topk) -> (module, cfg). Our SAEs come back with
    ``mean = 0`` and ``scale = 1`` (the normalisation is in the weights); their features equal the saved ones."""
    folder = Path(folder)
    cfg = read_cfg(folder)
    d, f = cfg["d_in"], cfg["d_sae"]
    if cfg["architecture"] == "step_crosscoder":
        T = cfg["n_steps"]
        w = _weights(folder, {"W_enc": (T, d, f), "W_dec": (f, T, d), "b_enc": (f,), "b_dec": (T, d),
                              "norm_mean": (T, d), "norm_scale": (T,)})
        cc = StepCrosscoder(T, d, f, k=cfg.get("k"))
        with torch.no_grad():
            for k in ("W_enc", "W_dec", "b_enc", "b_dec"):
                getattr(cc, k).copy_(w[k])
            cc.mean.copy_(w["norm_mean"])
            cc.scale.copy_(w["norm_scale"])
        return cc, cfg
    w = _weights(folder, {"W_enc": (d, f), "W_dec": (f, d), "b_enc": (f,), "b_dec": (d,)})
    sae = SparseAutoencoder(d, f, k=cfg.get("k") if cfg["architecture"] == "topk" else None)
    b_enc = w["b_enc"]
    if cfg.get("apply_b_dec_to_input", True) is False:  # relu(x W + b) = relu((x - b_dec) W + (b + b_dec W))
        b_enc = b_enc + w["b_dec"] @ w["W_enc"]
    with torch.no_grad():
        sae.W_enc.copy_(w["W_enc"])
        sae.W_dec.copy_(w["W_dec"])
        sae.b_enc.copy_(b_enc)
        sae.b_dec.copy_(w["b_dec"])
    return sae, cfg


def dictionary_info(cfg: dict[str, Any]) -> dict[str, Any]:
    """What ties a dictionary to a model, from its checked cfg: kind, hook_name, d_in (width of the state),
    n_features, model_sha256, state, steps and hook_names (per step, in order), when recorded."""
    ours = cfg["metadata"].get("recurse_interp")
    ours = ours if isinstance(ours, dict) else {}
    return {"kind": "crosscoder" if cfg["architecture"] == "step_crosscoder" else "sae",
            "hook_name": cfg["metadata"].get("hook_name"), "d_in": cfg["d_in"], "n_features": cfg["d_sae"],
            "model_sha256": ours.get("model_sha256"), "state": ours.get("state"), "steps": ours.get("steps", []),
            "hook_names": ours.get("hook_names", [])}


def resolve_hook(hook_name: str, step_hooks: list[str]) -> list[int]:
    """Indices into ``step_hooks`` (a trace's hook per step) that ``hook_name`` names: one of our names, a glob
    over them (``*.hook_y``), or a TransformerLens-style alias (``step.7.hook_resid_post``, ``step.*.hook_resid_post``)."""
    names = [str(h) for h in step_hooks]
    pats = [hook_name]
    if is_alias_pattern(hook_name):
        aliases = hook_aliases(names)
        pats = [aliases[a] for a in aliases if fnmatch.fnmatchcase(a, hook_name)]
    return [i for i, n in enumerate(names) if any(fnmatch.fnmatchcase(n, p) for p in pats)]


def check_dictionary(cfg: dict[str, Any], d_in: int, step_hooks: list[str], model_sha256: str | None = None,
                     where: str = "dictionary") -> list[int]:
    """Refuse (one line) a dictionary made for another model: width ``d_in``, hook name (must name some of
    ``step_hooks``), model hash (when both sides know it). Returns the matched step indices."""
    if cfg["d_in"] != d_in:
        raise DictionaryError(f"{where}: width d_in={cfg['d_in']} does not match the state's width {d_in}")
    hook = cfg["metadata"].get("hook_name")
    if not isinstance(hook, str) or not hook:
        raise DictionaryError(f"{where}: cfg.json names no hook (metadata.hook_name)")
    idx = resolve_hook(hook, step_hooks)
    if not idx:
        raise DictionaryError(f"{where}: hook {hook!r} names none of this model's step hooks "
                              f"({', '.join(dict.fromkeys(step_hooks[:3]))} ...)")
    ours = cfg["metadata"].get("recurse_interp") or {}
    saved = ours.get("model_sha256") if isinstance(ours, dict) else None
    if saved and model_sha256 and saved != model_sha256:
        raise DictionaryError(f"{where}: trained on another model (model_sha256 {str(saved)[:12]}..., this model "
                              f"{model_sha256[:12]}...)")
    return idx


def load_for_model(folder: str | os.PathLike, d_in: int, step_hooks: list[str], model_sha256: str | None = None,
                   state: str | None = None) -> tuple[SparseAutoencoder | StepCrosscoder, dict[str, Any], list[int]]:
    """A dictionary folder checked against the model it is used on, before its weights are read: recorded
    ``state`` (when both sides name one), then :func:`check_dictionary` (width, hook name, model hash).
    Returns (module, cfg, matched step indices into ``step_hooks``)."""
    cfg = read_cfg(folder)
    info = dictionary_info(cfg)
    if state is not None and info.get("state") and info["state"] != state:
        raise DictionaryError(f"{folder}: dictionary was trained on state {info['state']!r} "
                              f"(hook {info.get('hook_name')}), not {state!r}")
    matched = check_dictionary(cfg, d_in, step_hooks, model_sha256, where=str(folder))
    module, cfg = load_dictionary(folder)
    return module, cfg, matched


__all__ = ["DictionaryError", "save_sae", "save_crosscoder", "load_dictionary", "load_for_model", "read_cfg",
           "check_dictionary",
           "dictionary_info", "resolve_hook", "hook_for_steps", "CFG_FILE", "WEIGHTS_FILE"]
