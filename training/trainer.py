"""The training loop: deep supervision for puzzles, multi-pass loss for text.

``Trainer(cfg, out_dir).train()`` runs ``cfg.steps`` optimiser steps and
writes into ``out_dir``:

* ``last/`` (every ``ckpt_interval`` steps, at every evaluation and at the end),
  ``step_N/`` copies, ``best/`` (best evaluation so far); see
  ``training.checkpointing`` for the files inside,
* ``metrics.jsonl``: one JSON record per log interval / evaluation / event.

Resuming (``resume=True``) reloads ``last`` (weights, EMA, optimiser, RNG
states, data-stream position, ACT carry) and continues to bit-identical
weights. A non-finite loss or gradient norm is reported, the weights,
EMA and optimiser roll back to ``last``, the offending batch is skipped
(the data stream moves on) and the carry restarts; ``max_failures``
consecutive failures abort the run.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from common.atomic import atomic_write_json
from common.outputs import check_replaceable, ensure_out_not_symlink, record_outputs
from common.untrusted import read_json
from models.checkpoint import (
    CheckpointError,
    checkpoint_dir,
    load_state,
    read_checkpoint_config,
    recover_checkpoint_dirs,
    remove_stale_checkpoint_temporaries,
    save_checkpoint,
    state_tensors,
)
from models.config import ConfigError, config_from_dict
from models.registry import build_model

from . import distributed as D
from .act import ACTCarry, act_train_step, initial_carry, reset_halted
from .cgar import depth_at
from .checkpointing import (
    check_optimizer_tensors,
    copy_checkpoint,
    load_optimizer,
    optimizer_tensors,
    read_tensors,
    restore_rng,
    rng_tensors,
)
from .config import TrainConfig, check_family
from .data import (
    DataError,
    PuzzleStream,
    load_puzzle_split,
    load_text_dataset,
    resolve_data,
    text_batch,
    text_eval_windows,
)
from .evaluate import evaluate
from .lm import evaluate_lm, lm_loss
from .metrics_file import jsonable, truncate_metrics
from .optim import EMA, build_optimizer, lr_at, set_lr
from .state_checks import check_training_state, suspect_state


class TrainingDiverged(RuntimeError):
    """Raised after ``max_failures`` consecutive non-finite steps."""


def model_config_for_data(model: dict[str, Any], task: str, meta: dict[str, Any]) -> dict[str, Any]:
    """Fill vocab_size / seq_len / num_puzzle_identifiers from the dataset; reject contradictions."""
    m = dict(model)
    check_family(m, task)
    if task == "text":
        vocab = int(meta["vocab_size"])
        m.setdefault("vocab_size", vocab)
        if m["vocab_size"] < vocab:
            raise ConfigError(f"model.vocab_size {m['vocab_size']} is smaller than the dataset's {vocab}")
        return m
    for key in ("vocab_size", "seq_len"):
        if key in meta:
            m.setdefault(key, int(meta[key]))
            if m[key] != int(meta[key]):
                raise ConfigError(f"model.{key} = {m[key]} but the dataset has {key} = {meta[key]}")
    if "num_puzzle_identifiers" in meta:
        m.setdefault("num_puzzle_identifiers", int(meta["num_puzzle_identifiers"]))
        if m["num_puzzle_identifiers"] < int(meta["num_puzzle_identifiers"]):
            raise ConfigError(
                f"model.num_puzzle_identifiers {m['num_puzzle_identifiers']} < the dataset's {meta['num_puzzle_identifiers']}"
            )
    return m


def data_spec(task: dict[str, Any]) -> Any:
    """``task.data``; a sudoku/maze generator spec inherits ``size`` from ``task.grid_size``."""
    data = task.get("data")
    if isinstance(data, dict) and data.get("generate") in ("sudoku", "maze") and "size" not in data and task.get("grid_size"):
        data = {**data, "size": int(task["grid_size"])}
    return data


class Trainer:
    """One training run; see the module docstring."""

    def __init__(self, cfg: TrainConfig, out_dir: str | os.PathLike, resume: bool = False, progress: bool = True):
        cfg.validate()
        self.cfg = cfg
        self.out = ensure_out_not_symlink(out_dir, ConfigError)
        self.progress = progress
        self._check_out_dir(resume)
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.device = D.pick_device(cfg.device, local_rank)
        self.dist = D.init_distributed(self.device)
        if resume and self.dist.is_main:
            recover_checkpoint_dirs(self.out)  # a crash between the two renames of a save leaves only `last.old`
            remove_stale_checkpoint_temporaries(self.out)  # `.last.tmp-*` folders of a killed save
        if cfg.batch_size % self.dist.world_size:
            raise ConfigError(f"batch_size {cfg.batch_size} is not divisible by the {self.dist.world_size} ranks")
        self.local_batch = cfg.batch_size // self.dist.world_size
        self.task = cfg.task["name"]
        self.is_lm = self.task == "text"
        self.autocast = (lambda: torch.autocast(self.device.type, dtype=torch.bfloat16)) if cfg.dtype == "bf16" else None
        self._seed_all(cfg.seed)

        meta = self._load_data(progress)
        self._configure_model(meta)
        self._build_model()
        self._acc: dict[str, float] = {}
        self._tb = None
        self.resumed_from: int | None = None
        if resume and (self.out / "last").exists():
            self._load(self.out / "last", full=True)
            self.resumed_from = self.step

    # ----- setup helpers ----------------------------------------------------------
    def _check_out_dir(self, resume: bool) -> None:
        """Refuse an output folder holding another run (unless resuming it), a stray metrics.jsonl, or a
        checkpoint folder that is a symbolic link (``--resume`` would load and then replace what it points at)."""
        for name in ("last", "best", "last.old"):
            if (self.out / name).is_symlink():
                raise ConfigError(f"{self.out / name} is a symbolic link; a run's checkpoints are folders this tool "
                                  "wrote: remove the link or choose another --out")
        if not resume and checkpoint_dir(self.out / "last").exists():
            raise ConfigError(f"{self.out} already holds a run; pass --resume to continue it or choose another --out")
        if not resume:  # a new run never writes among a user's files
            check_replaceable(self.out, ConfigError, "training run")
        if (self.out / "metrics.jsonl").exists() and not checkpoint_dir(self.out / "last").exists():
            raise ConfigError(f"{self.out} holds a metrics.jsonl this run did not write; choose another --out")

    def _load_data(self, progress: bool) -> dict[str, Any]:
        """Resolve and load the dataset (rank 0 builds generated data, the others wait for it); returns its meta."""
        cfg = self.cfg
        spec = data_spec(cfg.task)
        if self.dist.is_main:
            self.data_root = resolve_data(spec, build=True, progress=progress)
        D.barrier(self.dist)
        if not self.dist.is_main:
            self.data_root = resolve_data(spec, build=False)
        if self.is_lm:
            seq_len = config_from_dict(dict(cfg.model)).seq_len  # the family's default when not given
            self.text = load_text_dataset(self.data_root, seq_len)
            meta = self.text.meta
        else:
            self.train_data = load_puzzle_split(self.data_root, "train")
            try:
                self.test_data = load_puzzle_split(self.data_root, "test")
            except DataError:
                self.test_data = None
            meta = self.train_data.meta
        return meta

    def _configure_model(self, meta: dict[str, Any]) -> None:
        """The model config fitted to the dataset, checked against the task; the task record saved in checkpoints."""
        cfg = self.cfg
        self.model_cfg = config_from_dict(model_config_for_data(cfg.model, self.task, meta))
        if cfg.cgar.pdc and self.model_cfg.family not in ("hrm", "trm"):
            raise ConfigError(f"cgar.pdc needs an hrm or trm model, not {self.model_cfg.family!r}")
        if cfg.task.get("grid_size") and meta.get("grid_size") and int(cfg.task["grid_size"]) != int(meta["grid_size"]):
            raise ConfigError(f"task.grid_size is {cfg.task['grid_size']} but the dataset has grid_size {meta['grid_size']}")
        self.task_meta = {**cfg.task, "data_dir": str(self.data_root)}
        for key in ("grid_size", "vocab_size", "seq_len", "tokenizer"):
            if key in meta and key not in self.task_meta:
                self.task_meta[key] = meta[key]

    def _build_model(self) -> None:
        """Model, optimiser, EMA, halting rule, step counters and the training stream (seeded from ``cfg.seed``)."""
        cfg = self.cfg
        torch.manual_seed(cfg.seed)
        self.model = build_model(self.model_cfg).to(self.device)
        D.broadcast_module(self.model, self.dist)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.opt = build_optimizer(self.model, cfg.optim)
        self.ema = EMA(self.model, cfg.ema_decay) if cfg.ema_decay > 0 else None
        self.halting = cfg.resolved_halting()
        self.total_steps = self._total_steps()
        self.gen = torch.Generator().manual_seed(cfg.seed * 7919 + self.dist.rank + 1)
        self.step = 0
        self.text_position = 0
        self.best: float | None = None
        self.failures = 0
        self.injected: list[int] = []
        self.last_eval: dict[str, Any] | None = None
        if self.is_lm:
            self.stream = None
            self.carry = None
            fn = self.model.forward_passes
        else:
            self.stream = PuzzleStream(self.train_data, cfg.seed, self.dist.rank, self.dist.world_size)
            self.carry = initial_carry(self.model, self.local_batch, self.device)
            fn = self.model.segment
        self.step_fn = torch.compile(fn) if cfg.compile else fn

    @staticmethod
    def _seed_all(seed: int) -> None:
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.manual_seed(seed)

    def _total_steps(self) -> int:
        if self.cfg.steps:
            return self.cfg.steps
        if self.is_lm:
            per_epoch = len(self.text.train) / (self.cfg.batch_size * self.model_cfg.seq_len)
        else:
            per_epoch = self.train_data.num_groups / self.cfg.batch_size
        return max(1, math.ceil(self.cfg.epochs * per_epoch))

    @property
    def eval_model(self):
        return self.ema.shadow if self.ema is not None else self.model

    # ----- one optimiser step ---------------------------------------------------------
    def _ctx(self):
        return self.autocast() if self.autocast is not None else contextlib.nullcontext()

    def train_step(self) -> bool:
        """One optimiser step; False (and no update) when the loss or gradient is not finite."""
        cfg = self.cfg
        step = self.step + 1
        set_lr(self.opt, lr_at(step, self.total_steps, cfg.optim))
        self.model.train()
        if self.is_lm:
            w = torch.from_numpy(
                text_batch(self.text.train, self.model_cfg.seq_len, self.local_batch, cfg.seed, self.text_position, self.dist.rank)
            ).to(self.device)
            self.text_position += 1  # batches drawn; unlike ``step`` it does not go back on a rollback
            with self._ctx():
                loss, metrics = lm_loss(self.model, w[:, :-1], w[:, 1:], cfg.loss, forward_fn=self.step_fn)
            loss = loss / self.dist.world_size
            new_carry = None
        else:
            n_new = int(self.carry.halted.sum())
            x, y, pid = self.stream.batch(self.stream.take(n_new), self.device)
            carry = reset_halted(self.model, self.carry, x, y, pid)
            cycles = None
            if cfg.cgar.pdc:
                cycles = depth_at(self.step / self.total_steps, self.model_cfg.H_cycles, self.model_cfg.L_cycles)
            hsw = (cfg.cgar.hsw_form, cfg.cgar.hsw_lambda) if cfg.cgar.hsw else None
            with self._ctx():
                res = act_train_step(
                    self.model, carry, halting=self.halting, loss_kind=cfg.loss, q_loss_weight=cfg.q_loss_weight,
                    cycles=cycles, generator=self.gen, norm=cfg.batch_size, hsw=hsw, segment_fn=self.step_fn,
                )
            loss, metrics, new_carry = res.loss, res.metrics, res.carry
        if self.injected.count(step) < cfg.inject_nan_steps.count(step):
            self.injected.append(step)
            loss = loss * float("nan")
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        D.all_reduce_grads(self.params, self.dist)
        clip = cfg.optim.grad_clip if cfg.optim.grad_clip > 0 else float("inf")
        grad_norm = torch.nn.utils.clip_grad_norm_(self.params, clip)
        bad = (~torch.isfinite(loss.detach())).float() + (~torch.isfinite(grad_norm)).float()
        if float(D.all_reduce_sum(bad, self.dist)) > 0:
            self._bad = (float(loss.detach()), float(grad_norm))
            return False
        self.opt.step()
        if self.ema is not None:
            self.ema.update(self.model)
        if new_carry is not None:
            self.carry = new_carry
        self.step = step
        self._accumulate(metrics, float(loss.detach()) * (self.dist.world_size if self.is_lm else 1), float(grad_norm))
        return True

    # ----- metrics -------------------------------------------------------------------------
    def _accumulate(self, metrics: dict[str, torch.Tensor], loss: float, grad_norm: float) -> None:
        a = self._acc
        a["n_steps"] = a.get("n_steps", 0) + 1
        a["loss"] = a.get("loss", 0.0) + loss
        a["grad_norm"] = a.get("grad_norm", 0.0) + grad_norm
        for k, v in metrics.items():
            a["m." + k] = a.get("m." + k, 0.0) + float(v)

    def _flush_metrics(self) -> dict[str, Any] | None:
        a, self._acc = self._acc, {}
        if not a:
            return None
        n = a["n_steps"]
        rec: dict[str, Any] = {
            "step": self.step, "split": "train", "loss": a["loss"] / n, "grad_norm": a["grad_norm"] / n,
            "lr": self.opt.param_groups[0]["lr"],
        }
        if self.is_lm:
            for k, v in a.items():
                if k.startswith("m.") and k != "m.loss":
                    rec[k[2:]] = v / n
        else:
            rows = max(a.get("m.rows", 1.0), 1.0)
            rec["lm_loss"] = a["m.lm_loss"] / rows
            rec["q_halt_loss"] = a["m.q_halt_loss"] / rows
            rec["q_continue_loss"] = a["m.q_continue_loss"] / rows
            count = a.get("m.count", 0.0)
            rec["halted"] = int(count)
            if count:
                for k in ("accuracy", "exact_accuracy", "q_halt_accuracy", "steps"):
                    rec[k] = a["m." + k] / count
            rec["epoch"] = self.stream.epoch * 1.0
        return rec

    def _log(self, rec: dict[str, Any]) -> None:
        if not self.dist.is_main:
            return
        rec = {**rec, "time": round(time.time(), 3)}
        with open(self.out / "metrics.jsonl", "a") as f:
            f.write(json.dumps(jsonable(rec)) + "\n")
            f.flush()
        if self._tb is not None:
            for k, v in rec.items():
                if isinstance(v, (int, float)) and k not in ("step", "time"):
                    self._tb.add_scalar(f"{rec.get('split', 'train')}/{k}", v, self.step)

    # ----- evaluation ---------------------------------------------------------------------
    def run_eval(self) -> dict[str, Any] | None:
        """Evaluate the EMA (or live) weights on rank 0; returns the metrics or None without test data."""
        res = None
        if self.dist.is_main:
            bs = self.cfg.eval_batch_size or self.cfg.batch_size
            if self.is_lm:
                windows = text_eval_windows(self.text.val, self.model_cfg.seq_len, self.cfg.eval_n or 64)
                res = evaluate_lm(self.eval_model, windows, bs, self.device, self.autocast)
            elif self.test_data is not None:
                res = evaluate(
                    self.eval_model, self.test_data, batch_size=bs, n=self.cfg.eval_n or None, halting=self.halting,
                    loss_kind=self.cfg.loss, device=self.device, autocast=self.autocast, n_boot=200,
                )
            if res is not None:
                self._log({"step": self.step, "split": "eval", **res})
        D.barrier(self.dist)
        self.last_eval = res
        return res

    def _score(self, res: dict[str, Any] | None) -> float | None:
        if res is None:
            return None
        return -res["val_loss"] if self.is_lm else res["exact_accuracy"] + 1e-3 * res["token_accuracy"]

    # ----- checkpoints ------------------------------------------------------------------------
    def save(self, name: str = "last") -> Path:
        """Write the full training state to ``out/name`` (collective under DDP; rank 0 writes)."""
        tensors: dict[str, dict[str, torch.Tensor]] = {}
        if self.dist.enabled:  # every rank must hold the same weights; a mismatch is a bug, not bad luck
            sums = D.all_gather_stack(torch.stack([p.detach().double().sum() for p in self.params]).sum().view(1), self.dist)
            if not torch.all(sums == sums[0]):
                raise RuntimeError(f"DDP ranks hold different weights at step {self.step} (checksums {sums.view(-1).tolist()})")
        gens = D.all_gather_stack(self.gen.get_state(), self.dist)
        if self.carry is not None:
            tensors["carry"] = {k: D.all_gather_stack(v.contiguous(), self.dist).cpu() for k, v in self.carry.to_tensors().items()}
            positions = D.all_gather_stack(torch.tensor([self.stream.position]), self.dist).view(-1).tolist()
        else:
            positions = []
        path = self.out / name
        if self.dist.is_main:
            opt_t, groups = optimizer_tensors(self.model, self.opt)
            tensors["optimizer"] = {k: v.cpu() for k, v in opt_t.items()}
            rng = rng_tensors()
            rng["explore"] = gens
            tensors["rng"] = rng
            if self.ema is not None:
                tensors["live"] = {k: v.cpu() for k, v in state_tensors(self.model).items()}
            state = {
                "step": self.step, "total_steps": self.total_steps, "world_size": self.dist.world_size,
                "stream_positions": positions, "text_position": self.text_position, "best": self.best, "injected": self.injected,
                "weights": "ema" if self.ema is not None else "live", "optimizer_groups": groups,
                "eval": jsonable(self.last_eval) if self.last_eval else None,
            }
            extra = {"task": self.task_meta, "train": self.cfg.to_dict(), "state": state}
            save_checkpoint(path, self.eval_model, extra=extra, tensors=tensors)
        D.barrier(self.dist)
        return path

    def _load(self, path: Path, full: bool) -> None:
        """Reload weights, EMA and optimiser (and with ``full`` also counters, RNG, carry and stream)."""
        meta = read_checkpoint_config(path)
        if "state" not in meta:
            raise CheckpointError(f"{path} is not a training checkpoint (config.json has no 'state')")
        if meta["model"] != self.model_cfg.to_dict():
            raise CheckpointError(f"{path} was trained with a different model config; start a new --out directory")
        st = meta["state"]
        check_training_state(st, path, self.dist.rank if self.carry is not None and full else None)
        main = read_tensors(path, "model")
        if st.get("weights") == "ema":
            load_state(self.model, read_tensors(path, "live"), where=f"{path}/live.safetensors")
            if self.ema is not None:
                load_state(self.ema.shadow, main, where=f"{path}/model.safetensors")
        else:
            load_state(self.model, main, where=f"{path}/model.safetensors")
            if self.ema is not None:
                load_state(self.ema.shadow, main, where=f"{path}/model.safetensors")
        self.model.to(self.device)
        # (Optimizer.load_state_dict moves the moments to each parameter's device and keeps ``step`` where it belongs)
        opt_t = read_tensors(path, "optimizer")
        check_optimizer_tensors(self.model, self.opt, opt_t, f"{path}/optimizer.safetensors")
        try:
            load_optimizer(self.model, self.opt, opt_t, st["optimizer_groups"])
        except (KeyError, RuntimeError, ValueError, TypeError, IndexError) as e:
            raise CheckpointError(f"{path}/optimizer.safetensors does not fit this run ({_one_line(e)}); "
                                  "resume from another checkpoint") from None
        self.step = int(st["step"])
        self.best = st.get("best")
        if not full:
            return
        if int(st["world_size"]) != self.dist.world_size:
            raise CheckpointError(f"{path} was written by {st['world_size']} ranks; resume with the same number ({self.dist.world_size} now)")
        rng = read_tensors(path, "rng")
        try:
            restore_rng(rng)
            self.gen.set_state(rng["explore"][self.dist.rank].clone())
        except (KeyError, RuntimeError, ValueError, TypeError, IndexError) as e:
            raise CheckpointError(f"{path}/rng.safetensors does not fit this run ({_one_line(e)}); "
                                  "resume from another checkpoint") from None
        self.injected = list(st.get("injected", []))
        self.text_position = int(st.get("text_position", self.step))
        self.last_eval = st.get("eval")
        if self.carry is not None:
            carry = read_tensors(path, "carry")
            want = {k: tuple(v.shape) for k, v in self.carry.to_tensors().items()}
            got = {k: tuple(v.shape[1:]) for k, v in carry.items() if v.dim() >= 1 and v.shape[0] > self.dist.rank}
            if got != want:
                bad = sorted(set(want) ^ set(got)) or sorted(k for k in want if want[k] != got.get(k))
                raise CheckpointError(f"{path}/carry.safetensors does not fit this run (missing, extra or wrong-shape "
                                      f"{', '.join(bad[:4])}); resume from another checkpoint")
            self.carry = ACTCarry.from_tensors({k: v[self.dist.rank] for k, v in carry.items()}, self.device)
            self.stream.position = int(st["stream_positions"][self.dist.rank])

    def _count_rollback(self) -> None:
        """Count rollbacks to the current ``last`` (persisted in ``rollbacks.json``, so resumes count too);
        past the bound the run stops, naming the bad state instead of looping."""
        if not self.dist.is_main:
            return
        path = self.out / ROLLBACKS
        counts: dict[str, int] = {}
        if path.exists():
            try:
                raw = read_json(path, ValueError, max_bytes=1 << 20)
                counts = {str(k): int(v) for k, v in raw.items()} if isinstance(raw, dict) else {}
            except (OSError, ValueError, TypeError):
                counts = {}
        last = read_checkpoint_config(self.out / "last")["state"]["step"]
        key = str(last)
        counts[key] = counts.get(key, 0) + 1
        atomic_write_json(path, counts)
        limit = self.cfg.max_failures
        if counts[key] > limit or sum(counts.values()) > MAX_TOTAL_ROLLBACKS:
            raise TrainingDiverged(
                f"{counts[key]} rollbacks to {self.out / 'last'} (step {last}) without getting past it; "
                f"the saved state is bad ({suspect_state(self.out / 'last')}); resume from an earlier checkpoint")

    def _rollback(self) -> None:
        loss, gnorm = getattr(self, "_bad", (float("nan"), float("nan")))
        self._count_rollback()
        self.failures += 1
        msg = (
            f"divergence at step {self.step + 1}: loss {loss}, grad norm {gnorm}; "
            f"rolling back to {self.out / 'last'} and skipping the batch ({self.failures}/{self.cfg.max_failures})"
        )
        if self.dist.is_main:
            print(f"warning: {msg}", file=sys.stderr, flush=True)
        self._log({"step": self.step, "split": "event", "event": "divergence", "loss": loss, "grad_norm": gnorm, "failures": self.failures})
        if self.failures >= self.cfg.max_failures:
            raise TrainingDiverged(f"{self.failures} consecutive non-finite steps (last at step {self.step + 1}); aborting")
        self._load(self.out / "last", full=False)
        if self.carry is not None:
            self.carry = initial_carry(self.model, self.local_batch, self.device)
        self._acc = {}

    # ----- the loop --------------------------------------------------------------------------
    def train(self, stop_at: int | None = None) -> dict[str, Any]:
        """Run to ``total_steps`` (or stop after step ``stop_at`` without saving, like a kill)."""
        cfg = self.cfg
        if self.dist.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            if self.resumed_from is not None:
                truncate_metrics(self.out / "metrics.jsonl", self.resumed_from)
            if cfg.tensorboard:
                try:
                    from torch.utils.tensorboard import SummaryWriter

                    self._tb = SummaryWriter(str(self.out / "tb"))
                except ImportError:
                    print("warning: tensorboard is not installed; logging to metrics.jsonl only", file=sys.stderr)
        D.barrier(self.dist)
        if self.resumed_from is None and self.step == 0:
            self.save("last")  # a rollback target from step 0 on
        from common.progress import Progress

        bar = Progress(self.total_steps, "train", unit="step", initial=self.step,
                       enabled=bool(self.progress and self.dist.is_main))
        t0 = time.time()
        try:
            while self.step < self.total_steps:
                if stop_at is not None and self.step >= stop_at:
                    return {"step": self.step, "stopped": True}
                if not self.train_step():
                    self._rollback()
                    bar.goto(self.step)
                    continue
                self.failures = 0
                bar.update(1)
                end = self.step == self.total_steps
                if self.step % max(1, cfg.log_interval) == 0 or end:
                    rec = self._flush_metrics()
                    if rec is not None:
                        rec["elapsed"] = round(time.time() - t0, 3)
                        self._log(rec)
                        bar.set_postfix(_postfix(rec))
                do_eval = end or (cfg.eval_interval and self.step % cfg.eval_interval == 0)
                do_ckpt = cfg.ckpt_interval and self.step % cfg.ckpt_interval == 0
                if do_eval:
                    res = self.run_eval()
                    score = self._score(res)
                    improved = score is not None and (self.best is None or score > self.best)
                    if improved:
                        self.best = score
                    self.save("last")
                    if improved and self.dist.is_main:
                        copy_checkpoint(self.out / "last", self.out / "best")
                    if bar.enabled and res is not None:
                        bar.write(f"step {self.step}: " + _summary(res))
                elif do_ckpt:
                    self.save("last")
                if do_ckpt and cfg.keep_step_ckpts and self.dist.is_main:
                    copy_checkpoint(self.out / "last", self.out / f"step_{self.step}")
                D.barrier(self.dist)
            bar.close()
        finally:
            bar.close(ok=False)  # after an error or a stop: the bar goes, no closing line
            if self._tb is not None:
                self._tb.close()
        if self.dist.is_main:  # the finished run's files, each with its SHA-256 (common.outputs)
            record_outputs(self.out, {"command": "training", "step": self.step})
        return {"step": self.step, "eval": self.last_eval, "out": str(self.out)}


ROLLBACKS = "rollbacks.json"
MAX_TOTAL_ROLLBACKS = 100


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())[:200] or type(e).__name__


def _postfix(rec: dict[str, Any]) -> dict[str, str]:
    keys = ("loss", "accuracy", "exact_accuracy", "steps", "ce_last")
    return {k: f"{rec[k]:.3g}" for k in keys if isinstance(rec.get(k), (int, float))}


def _summary(res: dict[str, Any]) -> str:
    if "val_loss" in res:
        return f"val_loss {res['val_loss']:.4f} nats (ppl {res['val_ppl']:.2f})"
    lo, hi = res["exact_accuracy_ci"]
    return (
        f"exact {res['exact_accuracy']:.4f} [{lo:.4f}, {hi:.4f}]  token {res['token_accuracy']:.4f}  "
        f"halt steps {res['avg_halt_steps']:.2f}  (n={res['n']})"
    )


__all__ = ["Trainer", "TrainingDiverged", "model_config_for_data"]
