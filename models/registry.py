"""Family name -> model class, and ``build_model(config)``."""

from __future__ import annotations

from typing import Any

from torch import nn

from .config import BaseConfig, config_from_dict


def _classes() -> dict[str, type[nn.Module]]:
    from .hrm import HRM
    from .trm import TRM

    classes: dict[str, type[nn.Module]] = {"hrm": HRM, "trm": TRM}
    try:
        from .baselines import TransformerBaseline, UniTF

        classes.update({"unitf": UniTF, "transformer": TransformerBaseline})
    except ImportError:  # pragma: no cover - during bring-up
        pass
    try:
        from .hrm_lm import HRMLM

        classes["hrm_lm"] = HRMLM
    except ImportError:  # pragma: no cover - during bring-up
        pass
    return classes


def build_model(config: BaseConfig | dict[str, Any]) -> nn.Module:
    """Instantiate the model a config describes (a config object or its ``to_dict()``)."""
    cfg = config_from_dict(config) if isinstance(config, dict) else config
    cfg.validate()
    classes = _classes()
    if cfg.family not in classes:
        raise ValueError(f"model family {cfg.family!r} is not available")
    return classes[cfg.family](cfg)
