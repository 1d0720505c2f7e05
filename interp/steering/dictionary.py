"""A sparse-autoencoder dictionary file bound to the model and state it was trained on.

``sae.safetensors``: the tensors of a :class:`probes.sae.SparseAutoencoder` (``W_enc``, ``W_dec``, ``b_enc``,
``b_dec``, ``mean``, ``scale``) and, in the safetensors metadata, ``format``, ``state`` (the state name, e.g.
``y``), ``hook`` (a glob of the hook names it was fitted on, e.g. ``seg*.t*.hook_y``), ``d_in``,
``n_features``, ``k`` and ``model_sha256`` (:func:`interp.tracing.model_hash.model_sha256` of the weights).
:func:`load_dictionary` refuses, in one line, a file whose state, width or model digest does not match the
model it is used on (a dictionary trained on another model), or whose hook glob names no hook point of the
model, and reads tensors only (no pickle). A folder in the SAELens layout written by ``probes.sae_files`` (where
that module is installed) is read and checked the same way.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from interp.steering.directions import DirectionError
from interp.tracing.model_hash import model_sha256
from probes.sae import SparseAutoencoder

FORMAT = "recurse-interp-sae/1"
TENSORS = ("W_enc", "W_dec", "b_enc", "b_dec", "mean", "scale")
MAX_BYTES = 1 << 30


def save_dictionary(path: str | os.PathLike, sae: SparseAutoencoder, model: nn.Module, state: str,
                    hook: str = "") -> Path:
    """Write ``sae`` with the binding metadata (atomically)."""
    from safetensors.torch import save

    from common.atomic import atomic_write_bytes

    meta = {"format": FORMAT, "state": state, "hook": hook, "d_in": str(sae.W_dec.shape[1]),
            "n_features": str(sae.n_features), "k": "" if sae.k is None else str(sae.k),
            "model_sha256": model_sha256(model)}
    sd = {k: v.detach().contiguous().cpu() for k, v in sae.state_dict().items()}
    return atomic_write_bytes(path, save(sd, metadata=meta))


def load_dictionary(path: str | os.PathLike, model: nn.Module | None = None, state: str | None = None,
                    width: int | None = None) -> tuple[SparseAutoencoder, dict[str, str]]:
    """The SAE in ``path`` and its metadata, checked against ``model`` (digest), ``state`` and ``width``."""
    from safetensors import safe_open

    from common.untrusted import regular_file

    if Path(path).is_dir():
        return _load_folder(Path(path), model, state, width)
    p = regular_file(path, MAX_BYTES, DirectionError)
    try:
        with safe_open(str(p), framework="pt") as f:
            meta = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except DirectionError:
        raise
    except Exception as e:  # noqa: BLE001 - any parse failure of an untrusted file is one line
        raise DirectionError(f"{p}: not a safetensors dictionary file ({type(e).__name__})") from None
    if meta.get("format") != FORMAT or any(k not in tensors for k in TENSORS):
        raise DirectionError(f"{p}: not a {FORMAT} dictionary (missing format metadata or tensors)")
    W = tensors["W_dec"]
    if W.dim() != 2 or tensors["W_enc"].shape != W.T.shape:
        raise DirectionError(f"{p}: decoder and encoder shapes do not match")
    if state is not None and meta.get("state") != state:
        raise DirectionError(f"{p}: dictionary was trained on state {meta.get('state')!r} "
                             f"(hook {meta.get('hook') or '?'}), not {state!r}")
    if width is not None and W.shape[1] != width:
        raise DirectionError(f"{p}: dictionary width {W.shape[1]} does not match the model's state width {width}")
    hook = meta.get("hook") or ""
    if model is not None and hook and hasattr(model, "hook_names") and not model.hook_names(hook):
        raise DirectionError(f"{p}: dictionary was trained on hook {hook!r}, which this model does not have")
    if model is not None and meta.get("model_sha256") != model_sha256(model):
        raise DirectionError(f"{p}: dictionary was trained on another model (model hash "
                             f"{str(meta.get('model_sha256'))[:12]} differs from this checkpoint's)")
    k = meta.get("k") or None
    sae = SparseAutoencoder(W.shape[1], W.shape[0], k=int(k) if k else None)
    with torch.no_grad():
        for name in TENSORS:
            getattr(sae, name).copy_(tensors[name])
    if not all(bool(torch.isfinite(getattr(sae, n)).all()) for n in TENSORS):
        raise DirectionError(f"{p}: dictionary holds NaN or inf")
    return sae.eval(), meta


def _load_folder(folder: Path, model: nn.Module | None, state: str | None,
                 width: int | None) -> tuple[SparseAutoencoder, dict[str, str]]:
    """A SAELens-layout folder (``cfg.json`` + ``sae_weights.safetensors``, ``probes.sae_files``), checked the same
    way: width, hook name against the model's hooks of ``state``, model hash, recorded state."""
    try:
        from probes import sae_files
    except ImportError:
        raise DirectionError(f"{folder}: a dictionary folder needs probes.sae_files (SAELens layout), "
                             "which this installation lacks; pass a sae.safetensors file") from None
    from models.hook_names import hook_state

    try:
        module, cfg = sae_files.load_dictionary(folder)
        info = sae_files.dictionary_info(cfg)
        if not isinstance(module, SparseAutoencoder):
            raise DirectionError(f"{folder}: a {info['kind']} has one decoder per step; steer with one of its "
                                 "decoder rows (interp.steering.directions.decoder_direction)")
        if state is not None and info.get("state") and info["state"] != state:
            raise DirectionError(f"{folder}: dictionary was trained on state {info['state']!r} "
                                 f"(hook {info.get('hook_name')}), not {state!r}")
        if model is not None:
            hooks = [n for n in model.hook_names() if state is None or hook_state(n) == state]
            sae_files.check_dictionary(cfg, width if width is not None else info["d_in"], hooks,
                                       model_sha256(model), str(folder))
        elif width is not None and info["d_in"] != width:
            raise DirectionError(f"{folder}: dictionary width {info['d_in']} does not match the state width {width}")
    except sae_files.DictionaryError as e:
        raise DirectionError(str(e)) from None
    meta = {"format": "saelens-folder", "state": str(info.get("state") or state or ""),
            "hook": str(info.get("hook_name") or ""), "d_in": str(info["d_in"]),
            "n_features": str(info["n_features"]), "model_sha256": str(info.get("model_sha256") or "")}
    return module.eval(), meta


__all__ = ["FORMAT", "save_dictionary", "load_dictionary"]
