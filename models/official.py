"""Load checkpoints written by the reference HRM and TRM training code.

The reference repositories (sapientinc/HRM ``hrm_act_v1``, SamsungSAILMontreal/
TinyRecursiveModels ``trm`` and its ``hrm`` port, and forks of either) save a
checkpoint as::

    <run dir>/step_26040          # torch.save(state_dict), no extension
    <run dir>/all_config.yaml     # the training config (``arch:`` holds the model)

(the published Hugging Face checkpoints call the weights file ``checkpoint``).
State-dict keys carry the wrappers' prefixes, ``_orig_mod.`` (torch.compile)
and ``model.inner.`` (loss head, ACT wrapper); below them the names equal ours
(``embed_tokens.embedding_weight``, ``L_level.layers.0.self_attn.qkv_proj.weight``, ...).

The YAML does not hold ``seq_len``, ``vocab_size`` or ``num_puzzle_identifiers``
(the reference reads them from the dataset). They are taken, in this order,
from keyword overrides, the tensors' shapes (vocab and puzzle count always;
sequence length from learned positions or the token-mixing MLP), a
``dataset.json`` (``dataset=`` or the YAML's ``data_path`` when it exists), and
finally the well-known task of the YAML's ``data_path`` (Sudoku 81, Maze NxN,
ARC 900). ``meta["inferred"]`` says where each value came from.

The same loader reads the other public containers of the family through
``models.formats`` (the ARC Prize verification runs, EqR ``.pth`` with its EMA
copy and stored config, URM ``step_N.pt`` with ``config.yaml`` beside it,
Lightning ``model.ckpt``); ``weights="ema"|"raw"`` picks between EMA and raw
weights where a file holds both, and ``meta["source"]["checkpoint"]`` reports
the format, the wrapper prefix and the weights used.

Weights are read with ``torch.load(weights_only=True)`` only: no pickled code
is ever executed. Anything that does not fit raises a one-line
``CheckpointError``.

Command line::

    python -m models.official info    <weights file or run dir>
    python -m models.official convert <weights file or run dir> <out dir> [--seq-len N] [--weights ema|raw]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from common.cli_format import Parser, UsageError, examples, print_error
from common.cli_types import nonempty_str, path_str, positive_int
from common.outputs import ensure_out_not_symlink
from common.untrusted import parse_json, read_json, safe_load_yaml

from .checkpoint import CheckpointError, build_fitting_model, load_state, save_checkpoint
from .formats import WEIGHT_CHOICES, CheckpointFile, find_weights_file, read_checkpoint_file, split_wrapper
from .config import ConfigError, HRMConfig, PuzzleConfig, TRMConfig, check_field_type, numeric_strings

CONFIG_YAML = "all_config.yaml"
CONFIG_NAMES = (CONFIG_YAML, "config.yaml")  # the reference repos / URM write these beside the weights

# reference class name -> (our family, repository); the module part tells the HRM ports apart
SUPPORTED_ARCHS = {
    "hrm.hrm_act_v1@HierarchicalReasoningModel_ACTV1": ("hrm", "sapientinc/HRM"),
    "recursive_reasoning.hrm@HierarchicalReasoningModel_ACTV1": ("hrm", "SamsungSAILMontreal/TinyRecursiveModels"),
    "recursive_reasoning.trm@TinyRecursiveReasoningModel_ACTV1": ("trm", "SamsungSAILMontreal/TinyRecursiveModels"),
    "trm@TRMModel": ("trm", "locuslab/EqR"),  # EqR's TRM baseline: no puzzle embedding
    "trm.trm@TRM": ("trm", "UbiquantAI/URM"),
}

# reference architectures we read but cannot map onto our models, and what our models lack for them
UNMAPPABLE_ARCHS = {
    "eqr@EqRModel": "EqR's damped noisy update z <- (1 - lambda_) z + lambda_ f(z, x) + N(0, noise_scale^2) and its random "
                    "initial states (H_init/L_init are not saved) have no counterpart in our TRM",
    "urm.urm@URM": "URM's universal-transformer loop over `layers.i` with ConvSwiGLU (`mlp.dwconv`) and `init_hidden` "
                   "has no counterpart in our models",
    "recursive_reasoning.trm_singlez@TinyRecursiveReasoningModel_ACTV1": "TRM's single-z variant is not implemented here",
    "recursive_reasoning.trm_hier6@TinyRecursiveReasoningModel_ACTV1": "TRM's hier6 variant is not implemented here",
}

# arch fields copied unchanged into our config
_COMMON_FIELDS = (
    "hidden_size", "num_heads", "expansion", "rms_norm_eps", "rope_theta", "pos_encodings",
    "halt_max_steps", "halt_exploration_prob", "puzzle_emb_ndim", "H_cycles", "L_cycles",
)

# task keyword of the dataset path -> (vocab_size, seq_len) of the reference builders
_KNOWN_TASKS = {"sudoku": (11, 81), "maze": (6, 900), "arc": (12, 900)}


# ----- files ------------------------------------------------------------------
def find_official_files(path: str | os.PathLike, config_yaml: str | os.PathLike | None = None) -> tuple[Path, Path | None]:
    """(weights file, config YAML or None) for a weights file or a run directory.

    A directory gives its weights file (``checkpoint``, the latest ``step_N``, else one ``*.safetensors``,
    ``*.pt``, ``*.pth`` or ``*.ckpt``); the YAML is ``config_yaml``, else ``all_config.yaml`` beside the
    weights, else URM's ``config.yaml`` beside them; None when there is none (the file may hold its config).
    """
    p = Path(path)
    if not p.exists():
        raise CheckpointError(f"official checkpoint not found: {p}")
    if p.is_dir():
        weights = find_weights_file(p)
        if weights is None:
            raise CheckpointError(f"{p} holds no official weights file (`checkpoint`, `step_N`, *.safetensors, *.pt, *.pth, *.ckpt)")
    else:
        weights = p
    if config_yaml is not None:
        yml = Path(config_yaml)
        if not yml.is_file():
            raise CheckpointError(f"config YAML not found: {yml}")
        return weights, yml
    for name in CONFIG_NAMES:
        if (weights.parent / name).is_file():
            return weights, weights.parent / name
    return weights, None


def read_official_state(path: str | os.PathLike, weights: str | None = None) -> dict[str, torch.Tensor]:
    """The state dict of any supported checkpoint file (``models.formats``), prefixes removed; never unpickles code."""
    return read_checkpoint_file(path, weights).state


def strip_prefixes(key: str) -> str:
    """``_orig_mod.model.inner.lm_head.weight`` -> ``lm_head.weight`` (``models.formats.split_wrapper``)."""
    return split_wrapper(key)[1]


def read_official_yaml(path: str | os.PathLike) -> dict[str, Any]:
    """The YAML as a dict with an ``arch`` mapping (a bare ``config/arch/*.yaml`` is accepted too)."""
    p = Path(path)
    try:
        doc = safe_load_yaml(p, CheckpointError)
    except OSError as e:
        raise CheckpointError(f"{p} is not readable YAML ({type(e).__name__})") from None
    return official_doc(doc, str(p))


def official_doc(doc: Any, where: str) -> dict[str, Any]:
    """A training config (YAML, or the one EqR / Lightning store in the checkpoint) with a checked ``arch`` mapping."""
    if not isinstance(doc, dict):
        raise CheckpointError(f"{where} is not a mapping")
    if "arch" not in doc and "name" in doc:  # an arch file on its own
        doc = {"arch": doc}
    arch = doc.get("arch")
    if not isinstance(arch, dict) or "name" not in arch:
        raise CheckpointError(f"{where} has no `arch:` section with a `name` (is it an HRM/TRM all_config.yaml?)")
    return {**doc, "arch": _resolve_interpolations(arch, Path(where))}


def _resolve_interpolations(arch: dict[str, Any], where: Path) -> dict[str, Any]:
    """Resolve hydra's ``${.field}`` (as in the raw arch YAMLs; all_config.yaml is already resolved)."""
    out = dict(arch)
    for key, value in arch.items():
        if isinstance(value, str) and (m := re.fullmatch(r"\$\{\.(\w+)\}", value.strip())):
            if m.group(1) not in arch:
                raise CheckpointError(f"{where}: {key} refers to missing field {m.group(1)!r}")
            out[key] = arch[m.group(1)]
    return out


# ----- config -----------------------------------------------------------------
def official_config(
    doc: dict[str, Any],
    tensors: dict[str, torch.Tensor],
    overrides: dict[str, Any] | None = None,
    dataset: str | os.PathLike | None = None,
    base_dir: Path | None = None,
) -> tuple[PuzzleConfig, dict[str, Any]]:
    """Our config for a reference ``all_config.yaml`` + its tensors; returns (config, provenance info)."""
    overrides = dict(overrides or {})
    arch = doc["arch"]
    name = str(arch["name"])
    if name in UNMAPPABLE_ARCHS:
        raise CheckpointError(f"architecture {name!r} is not supported (it cannot be mapped onto our models: {UNMAPPABLE_ARCHS[name]})")
    if name not in SUPPORTED_ARCHS:
        raise CheckpointError(
            f"architecture {name!r} is not supported (supported: {', '.join(sorted(SUPPORTED_ARCHS))})"
        )
    family, repo = SUPPORTED_ARCHS[name]
    cls: type[PuzzleConfig] = HRMConfig if family == "hrm" else TRMConfig
    inferred: dict[str, str] = {}

    kinds = {f.name: str(f.type) for f in dataclasses.fields(cls)}
    arch = numeric_strings(cls, arch)
    try:  # types first: a list or a string where a number belongs is one line, not a traceback below
        for k, v in list(arch.items()) + list(overrides.items()):
            if k in kinds and k in (*_COMMON_FIELDS, "H_layers", "L_layers", "puzzle_emb_len", "mlp_t"):
                check_field_type(k, v, kinds[k], f"{name} config")
            elif k == "L_layers":
                check_field_type(k, v, "int", f"{name} config")
    except ConfigError as e:
        raise CheckpointError(str(e)) from None
    fields: dict[str, Any] = {k: arch[k] for k in _COMMON_FIELDS if k in arch}
    missing = [k for k in ("hidden_size", "num_heads", "H_cycles", "L_cycles") if k not in fields and k not in overrides]
    if missing:
        raise CheckpointError(f"{name}: the YAML lacks {', '.join(missing)}")
    if family == "hrm":
        if arch.get("mlp_t"):
            raise CheckpointError(
                "official HRM checkpoints with mlp_t=True (token-MLP mixing) are not supported; "
                "only the attention HRM is checked against the reference"
            )
        for k in ("H_layers", "L_layers"):
            if k in arch:
                fields[k] = arch[k]
        if fields.get("pos_encodings", "rope") not in ("rope", "learned"):
            raise CheckpointError(f"HRM pos_encodings {fields['pos_encodings']!r} is not rope or learned")
    else:
        if "L_layers" in arch:
            fields["num_layers"] = arch["L_layers"]  # TRM's single network; H_layers is ignored
        fields["mlp_t"] = bool(arch.get("mlp_t", False))
        if repo == "locuslab/EqR":  # EqR's TRM has no puzzle embedding and more position encodings than ours
            if arch.get("pos_encodings") not in ("rope", "learned", "none", None):
                raise CheckpointError(f"{name}: pos_encodings {arch.get('pos_encodings')!r} (EqR) is not supported; ours are rope, learned, none")
            arch = {**arch, "puzzle_emb_len": 0, "puzzle_emb_ndim": 0}
            fields["puzzle_emb_ndim"] = 0
        # TRM pads the puzzle embedding to puzzle_emb_len tokens (default 16; 0 = ceil(ndim / hidden))
        fields["puzzle_emb_len"] = int(arch.get("puzzle_emb_len", 16))
        if "puzzle_emb_len" not in arch:
            inferred["puzzle_emb_len"] = "TRM default 16 (absent from the YAML)"
        if fields.get("pos_encodings", "rope") not in ("rope", "learned"):
            fields["pos_encodings"] = "none"  # TRM treats any other value as no positional encoding
    used = {"H_layers", "L_layers"} if family == "hrm" else {"L_layers", "mlp_t", "puzzle_emb_len"}
    fields.setdefault("puzzle_emb_ndim", 0)
    fields["grad_mode"] = "one_step" if family == "hrm" else "last_recursion"

    # sizes the YAML does not hold
    D = int(overrides.get("hidden_size", fields.get("hidden_size")))
    emb = tensors.get("embed_tokens.embedding_weight")
    if emb is not None and emb.dim() == 2:
        fields["vocab_size"] = int(emb.shape[0])
        inferred["vocab_size"] = "embed_tokens.embedding_weight rows"
    pe = tensors.get("puzzle_emb.weights")
    ndim = int(overrides.get("puzzle_emb_ndim", fields["puzzle_emb_ndim"]))
    if pe is not None and pe.dim() == 2:
        fields["num_puzzle_identifiers"] = int(pe.shape[0])
        inferred["num_puzzle_identifiers"] = "puzzle_emb.weights rows"
    elif ndim == 0:
        fields["num_puzzle_identifiers"] = 1
    plen_field = int(overrides.get("puzzle_emb_len", fields.get("puzzle_emb_len", 0)))
    prefix = plen_field if plen_field else (-(-ndim // D) if ndim else 0)
    if family == "trm" and prefix and ndim == 0:
        raise CheckpointError("TRM with puzzle_emb_len > 0 needs puzzle_emb_ndim > 0 (the reference cannot run it)")
    if ndim > prefix * D:
        raise CheckpointError(f"puzzle_emb_ndim {ndim} does not fit in {prefix} prefix tokens of width {D}")
    seq_len, how = _infer_seq_len(tensors, prefix, fields.get("vocab_size"), doc, dataset, base_dir)
    if seq_len is not None:
        fields["seq_len"] = seq_len
        inferred["seq_len"] = how

    for k, v in overrides.items():
        fields[k] = v
        inferred[k] = "argument"
    if "seq_len" not in fields:
        raise CheckpointError(
            "cannot infer seq_len (RoPE checkpoints do not store it): pass seq_len=N, "
            "e.g. 81 for Sudoku 9x9, 900 for Maze 30x30 / ARC, or dataset=<dir with dataset.json>"
        )
    try:
        cfg = cls.from_dict(fields)
    except (ConfigError, TypeError) as e:
        raise CheckpointError(f"cannot build a {family} config from {name}: {e}") from None
    info = {
        "arch_name": name,
        "repository": repo,
        "inferred": inferred,
        "ignored_fields": {k: v for k, v in arch.items() if k not in _COMMON_FIELDS and k not in used},
    }
    return cfg, info


def _infer_seq_len(
    tensors: dict[str, torch.Tensor],
    prefix: int,
    vocab: int | None,
    doc: dict[str, Any],
    dataset: str | os.PathLike | None,
    base_dir: Path | None,
) -> tuple[int | None, str]:
    pos = tensors.get("embed_pos.embedding_weight")
    if pos is not None and pos.dim() == 2:
        return int(pos.shape[0]) - prefix, "embed_pos.embedding_weight rows minus the prefix"
    tok_mlp = tensors.get("L_level.layers.0.mlp_t.gate_up_proj.weight")
    if tok_mlp is not None and tok_mlp.dim() == 2:
        return int(tok_mlp.shape[1]) - prefix, "mlp_t input width minus the prefix"
    meta = _dataset_json(dataset, doc, base_dir)
    if meta is not None:
        where, d = meta
        if not isinstance(d, dict):
            raise CheckpointError(f"{where}: not a JSON object")
        if "seq_len" in d:
            seq_len = check_field_type("seq_len", d["seq_len"], "int", where)  # a list or a string: one line
            if vocab is not None and "vocab_size" in d and check_field_type("vocab_size", d["vocab_size"], "int",
                                                                            where) != vocab:
                raise CheckpointError(f"{where}: vocab_size {d['vocab_size']} != the checkpoint's {vocab}")
            return seq_len, f"{where}"
    data_path = str(doc.get("data_path") or (doc.get("data_paths") or [""])[0])
    name = Path(data_path).name.lower()
    for task, (task_vocab, task_len) in _KNOWN_TASKS.items():
        if task in name and vocab == task_vocab:
            grid = re.search(r"(\d+)x(\d+)", name)
            if task == "maze" and grid:
                task_len = int(grid.group(1)) * int(grid.group(2))
            return task_len, f"guessed from data_path {data_path!r} ({task}, vocab {vocab})"
    return None, ""


def _dataset_json(
    dataset: str | os.PathLike | None, doc: dict[str, Any], base_dir: Path | None
) -> tuple[str, dict[str, Any]] | None:
    candidates: list[Path] = []
    if dataset is not None:
        candidates.append(Path(dataset))
    else:
        data_path = doc.get("data_path") or (doc.get("data_paths") or [None])[0]
        if isinstance(data_path, str) and data_path and base_dir is not None:
            # the YAML may only point inside the run directory the user passed, never at arbitrary files
            inside = (base_dir / data_path).resolve()
            if inside.is_relative_to(base_dir.resolve()):
                candidates.append(inside)
    for root in candidates:
        for f in (root, root / "dataset.json", root / "train" / "dataset.json", root / "test" / "dataset.json"):
            if f.is_file() and f.name == "dataset.json":
                return str(f), read_json(f, CheckpointError)
    if dataset is not None:
        raise CheckpointError(f"no dataset.json under {dataset}")
    return None


# ----- public API -------------------------------------------------------------
def load_official(
    path: str | os.PathLike,
    config_yaml: str | os.PathLike | None = None,
    dataset: str | os.PathLike | None = None,
    weights: str | None = None,
    **overrides: Any,
) -> tuple[nn.Module, dict[str, Any]]:
    """Build our HRM/TRM from a reference-family checkpoint; returns ``(model in eval mode, meta)``.

    ``path``: the weights file (``step_N``, ``checkpoint``, EqR ``*.pth``, URM ``step_N.pt``, Lightning
    ``model.ckpt``, ...) or its run directory. ``weights``: ``"ema"`` or ``"raw"`` where the file holds both
    (default EMA); ``meta["source"]["checkpoint"]`` says which format, prefix and weights were used.
    ``overrides``: config fields (``seq_len=81``, ``halt_max_steps=16``, ...) that win over the YAML.
    """
    weights_file, yml = find_official_files(path, config_yaml)
    ckpt = read_checkpoint_file(weights_file, weights)
    doc, config_from = checkpoint_doc(ckpt, yml, config_yaml is not None)
    tensors = ckpt.state
    cfg, info = official_config(doc, tensors, overrides, dataset=dataset, base_dir=weights_file.parent)
    where = f"official checkpoint {weights_file}"
    model = build_fitting_model(cfg, {k: tuple(v.shape) for k, v in tensors.items()}, where)
    load_state(model, tensors, where=where)
    model.eval()
    train = {k: v for k, v in doc.items() if k != "arch" and isinstance(v, (int, float, str, bool, list, type(None)))}
    meta = {
        "format": "official",
        "model": cfg.to_dict(),
        "source": {"weights": str(weights_file), "config_yaml": config_from, "checkpoint": ckpt.describe(), **info},
        "step": ckpt.step,
        "train": train,
    }
    return model, meta


def checkpoint_doc(ckpt: CheckpointFile, yml: Path | None, explicit: bool) -> tuple[dict[str, Any], str]:
    """The training config of a checkpoint and where it came from: an explicit YAML, else the config stored
    in the file (EqR, Lightning), else the YAML beside it; none of them is one line naming what is missing."""
    if yml is not None and (explicit or ckpt.config is None):
        return read_official_yaml(yml), str(yml)
    if ckpt.config is not None:
        return official_doc(ckpt.config, f"{ckpt.path} (its stored config)"), f"{ckpt.path} (stored config)"
    raise CheckpointError(
        f"{ckpt.path} ({ckpt.format} format) holds no config and there is no {' or '.join(CONFIG_NAMES)} beside it; "
        "pass config_yaml=<path> (or --config-yaml)"
    )


def convert_official(
    path: str | os.PathLike,
    out_dir: str | os.PathLike,
    config_yaml: str | os.PathLike | None = None,
    dataset: str | os.PathLike | None = None,
    overwrite: bool = False,
    weights: str | None = None,
    **overrides: Any,
) -> Path:
    """Write a reference checkpoint in our format (safetensors + config.json); returns the directory.

    A non-empty ``out_dir`` is refused unless it holds only a checkpoint and ``overwrite`` is set.
    """
    out = ensure_out_not_symlink(out_dir, CheckpointError)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        ours = (out / "config.json").is_file() and (out / "model.safetensors").is_file()
        foreign = sorted(p.name for p in out.iterdir() if p.name not in ("config.json", "model.safetensors")) \
            if out.is_dir() else [out.name]
        if not overwrite or not ours or foreign:
            raise CheckpointError(
                f"refusing to write to {out}: it exists and is not empty"
                + (" (pass --overwrite to replace the checkpoint there)" if ours and not foreign else
                   "; it holds files this tool did not write, choose another directory"))
    model, meta = load_official(path, config_yaml=config_yaml, dataset=dataset, weights=weights, **overrides)
    extra = {"source": meta["source"], "step": meta["step"], "train": meta["train"]}
    return save_checkpoint(out_dir, model, extra=_jsonable(extra))


def _jsonable(x: Any) -> Any:
    return json.loads(json.dumps(x, default=str))


# ----- command line -----------------------------------------------------------
def _parse_overrides(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if args.seq_len is not None:
        out["seq_len"] = args.seq_len
    for item in args.set or []:
        if "=" not in item:
            raise CheckpointError(f"--set expects FIELD=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        try:
            out[key] = parse_json(value, CheckpointError, f"--set {key[:60]}", max_bytes=1 << 16, max_depth=8)
        except CheckpointError as e:
            if "not valid JSON" not in str(e):
                raise
            out[key] = value
    return out


def build_parser() -> Parser:
    """The ``python -m models.official`` command line (``info`` and ``convert``)."""
    parser = Parser(prog="python -m models.official", description=__doc__.split("\n\n")[0],
                    epilog=examples("python -m models.official info tests/fixtures/checkpoint_formats/hrm_step --seq-len 16",
                                    "python -m models.official convert tests/fixtures/checkpoint_formats/urm_trm out/urm-trm --seq-len 16"))
    sub = parser.add_subparsers(dest="cmd", required=True)
    for cmd in ("info", "convert"):
        sp = sub.add_parser(cmd, epilog=examples(
            f"python -m models.official {cmd} tests/fixtures/checkpoint_formats/eqr_trm/eqr.pth"
            + (" out/eqr-trm" if cmd == "convert" else "") + " --seq-len 16 --weights raw"))
        sp.add_argument("path", type=path_str, help="weights file (step_N, checkpoint, *.pth, *.pt, model.ckpt) or its run directory")
        if cmd == "convert":
            sp.add_argument("out_dir", type=path_str, help="where to write our checkpoint directory (new or empty)")
            sp.add_argument("--overwrite", action="store_true", help="replace a checkpoint already in out_dir")
        sp.add_argument("--config-yaml", type=path_str, default=None, help=f"the run's {CONFIG_YAML} if not beside the weights nor in the file")
        sp.add_argument("--dataset", type=path_str, default=None, help="dataset directory with dataset.json (gives seq_len)")
        sp.add_argument("--seq-len", type=positive_int, default=None, help="sequence length (RoPE checkpoints do not store it)")
        sp.add_argument("--weights", choices=WEIGHT_CHOICES, default=None, help="EMA or raw weights where the file holds both (default: EMA)")
        sp.add_argument("--set", type=nonempty_str, action="append", metavar="FIELD=VALUE", help="override a config field")
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        overrides = _parse_overrides(args)
        if args.cmd == "info":
            model, meta = load_official(args.path, args.config_yaml, args.dataset, weights=args.weights, **overrides)
            meta["parameters"] = sum(p.numel() for p in model.parameters())
            print(json.dumps(_jsonable(meta), indent=2))
        else:
            out = convert_official(args.path, args.out_dir, args.config_yaml, args.dataset,
                                   overwrite=args.overwrite, weights=args.weights, **overrides)
            print(f"wrote {out}")
    except (CheckpointError, ConfigError, UsageError, ValueError, OSError) as e:
        return print_error(e)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
