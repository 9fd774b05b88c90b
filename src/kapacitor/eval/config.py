"""Where an eval's defaults come from when the command line does not say:
``KAPACITOR_JUDGE``, ``KAPACITOR_JUDGE_MODEL``, ``KAPACITOR_EVAL_CATALOG``,
``KAPACITOR_EVAL_MAX_COST``, else the ``[eval]`` table of
``~/.config/kapacitor/config.toml`` (``judge``, ``model``, ``catalog``,
``max_cost``, ``auto``), else the built-in defaults (judge ``anthropic``)."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

import platformdirs


@dataclass(frozen=True)
class EvalConfig:
    judge: str = "anthropic"
    model: str | None = None
    catalog: Path | None = None
    max_cost: float | None = None
    auto: bool = False
    """Evaluate each session when it ends (the server's durable queue)."""


def config_file() -> Path:
    return Path(platformdirs.user_config_dir("kapacitor", appauthor=False)) / "config.toml"


def load_config() -> EvalConfig:
    table: dict[str, object] = {}
    path = config_file()
    if path.exists():
        try:
            table = dict(tomllib.loads(path.read_text()).get("eval", {}))
        except (OSError, tomllib.TOMLDecodeError):
            table = {}
    env = os.environ

    def pick(var: str, key: str) -> object:
        return env.get(var) or table.get(key)

    catalog = pick("KAPACITOR_EVAL_CATALOG", "catalog")
    max_cost = pick("KAPACITOR_EVAL_MAX_COST", "max_cost")
    auto = pick("KAPACITOR_AUTO_EVAL", "auto")
    return EvalConfig(
        judge=str(pick("KAPACITOR_JUDGE", "judge") or "anthropic"),
        model=str(pick("KAPACITOR_JUDGE_MODEL", "model") or "") or None,
        catalog=Path(str(catalog)).expanduser() if catalog else None,
        max_cost=float(str(max_cost)) if max_cost else None,
        auto=str(auto).lower() in ("1", "true", "yes", "on") if auto else False,
    )
