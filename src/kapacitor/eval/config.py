"""Where an eval's defaults come from when the command line does not say:
``KAPACITOR_JUDGE``, ``KAPACITOR_JUDGE_MODEL``, ``KAPACITOR_EVAL_CATALOG``,
``KAPACITOR_EVAL_MAX_COST``, ``KAPACITOR_AUTO_EVAL``, ``KAPACITOR_EVAL_MAX_JOBS``,
else the ``[eval]`` table of ``~/.config/kapacitor/config.toml`` (``judge``,
``model``, ``catalog``, ``max_cost``, ``auto``, ``max_jobs``), else the built-in
defaults (judge ``anthropic``, ``MAX_JOBS``)."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

import platformdirs

MAX_JOBS = 5
"""Run eval jobs one person may have queued or running at once, unless configured:
enough to evaluate a few sessions back to back, not to queue the history (each
job asks the judge a dozen questions, on the server's key)."""


@dataclass(frozen=True)
class EvalConfig:
    judge: str = "anthropic"
    model: str | None = None
    catalog: Path | None = None
    max_cost: float | None = None
    auto: bool = False
    """Evaluate each session when it ends (the server's durable queue)."""
    max_jobs: int = 0
    """Run eval jobs one person may have queued or running on a server at once
    (their next is refused, 429); 0: ``MAX_JOBS``."""

    @property
    def jobs_per_person(self) -> int:
        return self.max_jobs if self.max_jobs > 0 else MAX_JOBS


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
    max_jobs = pick("KAPACITOR_EVAL_MAX_JOBS", "max_jobs")
    return EvalConfig(
        judge=str(pick("KAPACITOR_JUDGE", "judge") or "anthropic"),
        model=str(pick("KAPACITOR_JUDGE_MODEL", "model") or "") or None,
        catalog=Path(str(catalog)).expanduser() if catalog else None,
        max_cost=float(str(max_cost)) if max_cost else None,
        auto=str(auto).lower() in ("1", "true", "yes", "on") if auto else False,
        max_jobs=_count(max_jobs),
    )


def _count(value: object) -> int:
    """A configured count (``max_jobs``); 0 (the default) when unset or not a whole number ≥ 1."""
    try:
        return max(0, int(str(value))) if value else 0
    except ValueError:
        return 0
