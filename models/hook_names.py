"""Hook names, built and parsed in one place: ``seg3.h1.l0.hook_z_L``, ``pass0.step3.hook_fast``.

A name is a path of ``<key><index>`` parts (where in the step grid the value
was computed) and ``hook_<state>`` (what it is), like TransformerLens's
``get_act_name`` (``blocks.3.hook_resid_pre``). The model files build names
with :func:`act_name`; ``interp`` reads them back with :func:`parse_act_name`.

    act_name("z_L", seg=3, h=1, l=0)        -> "seg3.h1.l0.hook_z_L"
    act_name("fast", pass_=0, step=3)       -> "pass0.step3.hook_fast"   (``pass`` is a keyword)
    parse_act_name("seg3.h1.l0.hook_z_L")   -> ActName(where=(("seg", 3), ("h", 1), ("l", 0)), state="z_L")
    hook_state("seg3.h1.l0.hook_z_L")       -> "z_L"
    layer_state("pattern", 2)               -> "pattern.layer2"   (a trace's per-layer state name)
    parse_layer_state("pattern.layer2")     -> ("pattern", 2)

TransformerLens-style aliases (:func:`hook_aliases`, :func:`expand_aliases`) name the same hook
points the way TransformerLens users expect, where the mapping is one to one: ``step.{t}`` counts
the recurrent state updates of a forward in the order they run (every segment, every cycle), so

    step.{t}.hook_resid_post               -> the state written by update t (HRM ``seg0.h0.l1.hook_z_L``, TRM ``seg0.t0.n1.hook_z``,
                                              a looped model's ``seg0.step{t}.hook_<state>``)
    step.{t}.hook_resid_pre                -> a looped model's input of call t (``seg0.step{t}.hook_<state>_in``)
    step.{t}.blocks.{k}.attn.hook_pattern  -> that update's layer-k attention (``seg0.h0.l1.layer{k}.hook_pattern``)
    seg{s}.blocks.{k}.hook_resid_post      -> the transformer baseline's ``seg{s}.layer{k}.hook_resid``

Our names stay the primary ones (traces, caches and files use them); an alias is accepted wherever
a model takes a hook name or filter (``hook_names``, ``hooks``, ``run_with_hooks``, ``run_with_cache``).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

_PART = re.compile(r"^([A-Za-z_]+?)(\d+)$")


def act_prefix(**where: int) -> str:
    """``act_prefix(pass_=0, step=3)`` -> ``"pass0.step3"`` (keyword order is name order; a trailing ``_`` is dropped)."""
    return ".".join(f"{key.rstrip('_')}{int(index)}" for key, index in where.items())


def act_name(state: str, prefix: str = "", **where: int) -> str:
    """The hook name of ``state`` at ``where`` (after an optional ``prefix`` from :func:`act_prefix`)."""
    parts = [p for p in (prefix, act_prefix(**where)) if p]
    return ".".join([*parts, f"hook_{state}"])


@dataclass(frozen=True)
class ActName:
    """A parsed hook name: ``where`` is the ``(key, index)`` path, ``state`` what the hook holds."""

    where: tuple[tuple[str, int], ...]
    state: str

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(key for key, _ in self.where)

    @property
    def indices(self) -> tuple[int, ...]:
        return tuple(index for _, index in self.where)


def parse_act_name(name: str) -> ActName | None:
    """The parts of a hook name, or None when ``name`` is not ``<key><i>. ... .hook_<state>``."""
    *parts, last = name.split(".")
    if not last.startswith("hook_") or len(last) == len("hook_"):
        return None
    where = []
    for part in parts:
        m = _PART.match(part)
        if m is None:
            return None
        where.append((m.group(1), int(m.group(2))))
    return ActName(tuple(where), last[len("hook_"):])


def hook_state(name: str) -> str | None:
    """What a hook name holds (``"z_L"`` for ``seg3.h1.l0.hook_z_L``), or None when ``name`` is not a hook name."""
    a = parse_act_name(name)
    return a.state if a is not None else None


def layer_state(state: str, layer: int) -> str:
    """The trace's name of ``state`` recorded per layer: ``layer_state("pattern", 2)`` -> ``"pattern.layer2"``."""
    return f"{state}.layer{int(layer)}"


def parse_layer_state(name: str) -> tuple[str, int] | None:
    """``(state, layer)`` of a per-layer state name (``"pattern.layer2"`` -> ``("pattern", 2)``), else None."""
    state, _, last = name.rpartition(".")
    m = _PART.match(last)
    if not state or m is None or m.group(1) != "layer":
        return None
    return state, int(m.group(2))


# ----- TransformerLens-style aliases -------------------------------------------------------------
STEP_STATES = frozenset({"z_L", "z_H", "z", "y"})  # the recurrent states, one per update: HRM / HRM-Text z_L, z_H; TRM z, y; UT z
ALIAS_MARKERS = ("step.", "blocks.")
LOOPED_KEYS = ("seg", "step")  # ``seg0.step{k}.hook_<state>[_in]``: the k-th call of a looped model's loop module


def _run_order(a: ActName) -> tuple[float, ...]:
    """Execution order of a step state: by its indices, an absent inner index (the outer update) after all inner ones."""
    return tuple(float(i) for i in a.indices) + (float("inf"),) * (4 - len(a.indices))


def hook_aliases(names: Iterable[str]) -> dict[str, str]:
    """TransformerLens-style alias -> our hook name, for a model's hook names (see the module docstring)."""
    parsed = {n: a for n in names if (a := parse_act_name(n)) is not None}
    steps = sorted((a for a in parsed.values() if a.state in STEP_STATES and "layer" not in a.keys
                    and a.keys != LOOPED_KEYS), key=_run_order)
    where_step = {a.where: t for t, a in enumerate(steps)}
    out: dict[str, str] = {}
    for name, a in parsed.items():
        if a.keys == LOOPED_KEYS:  # a looped model's k-th loop call (models.looped): its output, and its input
            out[f"step.{a.indices[1]}.hook_resid_{'pre' if a.state.endswith('_in') else 'post'}"] = name
        elif a.where in where_step and a.state in STEP_STATES:
            out[f"step.{where_step[a.where]}.hook_resid_post"] = name
        elif a.state == "pattern" and a.keys[-1:] == ("layer",) and a.where[:-1] in where_step:
            out[f"step.{where_step[a.where[:-1]]}.blocks.{a.indices[-1]}.attn.hook_pattern"] = name
        elif a.state == "resid" and a.keys == ("seg", "layer"):
            out[f"seg{a.indices[0]}.blocks.{a.indices[1]}.hook_resid_post"] = name
    return dict(sorted(out.items(), key=lambda kv: [int(x) for x in re.findall(r"\d+", kv[0])]))  # run order


def is_alias_pattern(pattern: str) -> bool:
    """Whether a hook name or glob is written in the alias form (``step.3.hook_resid_post``, ``step.*.blocks.*``)."""
    return pattern.startswith(ALIAS_MARKERS) or ".blocks." in pattern


def expand_aliases(names_filter: Any, names: Iterable[str]) -> Any:
    """``names_filter`` with every alias name or glob replaced by the hook names it stands for.

    Filters that are not strings (predicates, None) and patterns in our own form pass unchanged.
    """
    if isinstance(names_filter, str):
        patterns, single = [names_filter], True
    elif isinstance(names_filter, (list, tuple)) and all(isinstance(p, str) for p in names_filter):
        patterns, single = list(names_filter), False
    else:
        return names_filter
    if not any(is_alias_pattern(p) for p in patterns):
        return names_filter
    table = hook_aliases(names)
    out: list[str] = []
    for p in patterns:
        if not is_alias_pattern(p):
            out.append(p)
            continue
        hits = [ours for alias, ours in table.items() if fnmatch.fnmatchcase(alias, p)]
        out.extend(hits or [p])  # no hit: keep the pattern, so the caller's "no hook point matches" names it
    return out[0] if single and len(out) == 1 else out


__all__ = ["ALIAS_MARKERS", "LOOPED_KEYS", "STEP_STATES", "expand_aliases", "hook_aliases", "is_alias_pattern",
           "ActName", "act_name", "act_prefix", "hook_state", "layer_state", "parse_act_name", "parse_layer_state"]
