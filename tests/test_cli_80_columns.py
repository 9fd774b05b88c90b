"""The CLI's tables in an 80-column terminal: ids whole on one line (they are
copied into other commands), the text columns given the room, long paths
broken only where they must be. The real CLI in a subprocess, a real store."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

TEXT = "run the billing tests with make check-billing before every commit to main"


def kapacitor(store: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kapacitor", "--store", store, *args], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "COLUMNS": "80", **(env or {})})


def test_memory_list_keeps_fact_ids_whole_and_gives_the_text_the_room(tmp_path):
    store = f"sqlite://{tmp_path / 'm.db'}"
    for n in range(2):
        assert kapacitor(store, "memory", "add", f"{TEXT} ({n})", "--repo", "acme/payments-service").returncode == 0
    out = kapacitor(store, "memory", "list").stdout
    lines = out.splitlines()
    assert max(map(len, lines)) <= 80
    for fact in json.loads(kapacitor(store, "memory", "list", "--json").stdout):
        [line] = [line for line in lines if fact["fact_id"] in line]  # the id whole, on one line
        assert line.split()[0] == fact["fact_id"]
    assert f"{TEXT} (0)" in " ".join(out.split())  # the text wraps at spaces, never mid-word
    assert any(line.rstrip().endswith(" run the billing tests with make") for line in lines)  # 35 columns and more


def test_doctor_keeps_check_names_whole_and_folds_only_what_must(tmp_path):
    home = Path(tempfile.mkdtemp(prefix="h", dir="/tmp"))  # a home path as short as a person's
    (home / ".claude").mkdir(parents=True)
    (home / ".claude" / "settings.json").write_text("{}")
    out = kapacitor(f"sqlite://{tmp_path / 'd.db'}", "doctor",
                    env={"HOME": str(home), "KAPACITOR_SERVER": "http://127.0.0.1:9"}).stdout
    lines = out.splitlines()
    assert max(map(len, lines)) <= 80
    checks = json.loads(kapacitor(f"sqlite://{tmp_path / 'd.db'}", "doctor", "--json",
                                  env={"HOME": str(home), "KAPACITOR_SERVER": "http://127.0.0.1:9"}).stdout)
    for check in checks:
        assert any(line.split("  ")[0].strip() == check["name"] for line in lines), check["name"]  # one line each
    settings = str(home / ".claude" / "settings.json")
    shutil.rmtree(home)
    assert len(settings) < 45 and any(settings in line for line in lines)  # a path that fits is never broken
