"""The demo's repositories as they are before each scripted session: small but
real projects whose tests, scripts and git history the recorded sessions run.

Each is ``{path: text}``; ``scripts/make-demo`` writes one into a fresh git
repository (owner/repo remote on GitHub, the developer's name and email) and
commits it before the client starts.
"""

from __future__ import annotations

PYTEST = '[tool.pytest.ini_options]\npythonpath = ["."]\n'


def pyproject(name: str, version: str) -> str:
    return f'[project]\nname = "{name}"\nversion = "{version}"\nrequires-python = ">=3.11"\n\n{PYTEST}'


PAYMENTS = {
    "pyproject.toml": pyproject("acme-payments", "2.3.0"),
    "README.md": "# payments\n\nInvoice and ledger helpers used by the billing service.\n\n```bash\npip install -e . && pytest -q\n```\n",
    "payments/__init__.py": "",
    "payments/invoice.py": '''"""Invoice arithmetic: line totals, tax and the amount we charge."""

from decimal import Decimal


def line_total(quantity: int, unit_price: Decimal) -> Decimal:
    return quantity * unit_price


def invoice_total(lines: list[tuple[int, Decimal]], tax_rate: Decimal) -> Decimal:
    """The amount charged: the lines' sum plus tax, to the cent."""
    subtotal = sum((line_total(q, p) for q, p in lines), Decimal(0))
    return round(float(subtotal * (1 + tax_rate)), 2)
''',
    "payments/ledger.py": '''"""Append-only ledger entries for charges and refunds."""

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class Entry:
    account: str
    amount: Decimal
    memo: str = ""


def balance(entries: list[Entry], account: str) -> Decimal:
    return sum((e.amount for e in entries if e.account == account), Decimal(0))
''',
    "tests/test_invoice.py": '''from decimal import Decimal

from payments.invoice import invoice_total, line_total


def test_line_total():
    assert line_total(3, Decimal("19.99")) == Decimal("59.97")


def test_invoice_total_with_tax():
    assert invoice_total([(3, Decimal("19.99"))], Decimal("0.20")) == Decimal("71.96")


def test_half_cent_rounds_up():
    assert invoice_total([(1, Decimal("0.125"))], Decimal("0")) == Decimal("0.13")
''',
    "tests/test_ledger.py": '''from decimal import Decimal

from payments.ledger import Entry, balance


def test_balance_sums_one_account():
    entries = [Entry("acme", Decimal("10")), Entry("acme", Decimal("-2.5")), Entry("other", Decimal("99"))]
    assert balance(entries, "acme") == Decimal("7.5")
''',
    "requirements.txt": "requests==2.31.0\npydantic==2.7.1\n",
}

API_SERVER = {
    "pyproject.toml": pyproject("acme-api-server", "1.14.2"),
    "README.md": "# api-server\n\nThe public HTTP API. `python -m api.app` serves it on :8080.\n",
    "api/__init__.py": "",
    "api/config.py": '''"""Settings from the environment."""

import os

DATABASE_URL = os.environ.get("DATABASE_URL", "sqlite:///dev.db")
REQUEST_TIMEOUT = float(os.environ.get("REQUEST_TIMEOUT", "10"))
DEBUG = os.environ.get("DEBUG", "0") == "1"
''',
    "api/db.py": '''from api import config


def connect_args() -> dict:
    return {"url": config.DATABASE_URL, "echo": config.DEBUG}
''',
    "api/client.py": '''from api import config


def upstream_options() -> dict:
    return {"timeout": config.REQUEST_TIMEOUT, "retries": 2}
''',
    "api/app.py": '''"""A tiny WSGI app: GET /health and GET /v1/items."""

import json

from api import config


def app(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    if path == "/health":
        return _json(start_response, "200 OK", {"ok": True, "debug": config.DEBUG})
    if path == "/v1/items":
        return _json(start_response, "200 OK", {"items": []})
    return _json(start_response, "404 Not Found", {"error": "not found"})


def _json(start_response, status, body, headers=()):
    start_response(status, [("Content-Type", "application/json"), *headers])
    return [json.dumps(body).encode()]
''',
    "tests/test_config.py": '''import importlib

from api import config


def test_debug_from_env(monkeypatch):
    monkeypatch.setenv("DEBUG", "1")
    importlib.reload(config)
    assert config.DEBUG is True


def test_timeout_default(monkeypatch):
    monkeypatch.delenv("REQUEST_TIMEOUT", raising=False)
    importlib.reload(config)
    assert config.REQUEST_TIMEOUT == 10.0
''',
    "tests/test_app.py": '''from api.app import app


def call(path):
    seen = {}
    body = app({"PATH_INFO": path}, lambda status, headers: seen.update(status=status, headers=dict(headers)))
    return seen["status"], b"".join(body)


def test_health():
    status, body = call("/health")
    assert status == "200 OK" and b'"ok": true' in body


def test_unknown_path_is_404():
    assert call("/nope")[0] == "404 Not Found"
''',
}

WIDGETS = {
    "pyproject.toml": pyproject("acme-widgets", "0.9.1"),
    "README.md": "# widgets\n\nInventory reports for the warehouse team: `python -m widgets report`.\n",
    "widgets/__init__.py": "",
    "widgets/__main__.py": "from widgets.cli import main\n\nmain()\n",
    "widgets/report.py": '''"""The stock report: one row per SKU, rendered as a table."""

SAMPLE = [
    {"sku": "W-100", "name": "Sprocket", "on_hand": 42, "unit_cost": 1.25},
    {"sku": "W-200", "name": "Flange, large", "on_hand": 7, "unit_cost": 12.5},
    {"sku": "W-300", "name": "Gasket", "on_hand": 0, "unit_cost": 0.4},
]


def build_rows(items: list[dict]) -> list[list[str]]:
    rows = []
    for item in sorted(items, key=lambda i: i["sku"]):
        value = item["on_hand"] * item["unit_cost"]
        rows.append([item["sku"], item["name"], str(item["on_hand"]), f"{value:.2f}"])
    return rows


def render_table(rows: list[list[str]]) -> str:
    header = ["SKU", "Name", "On hand", "Value"]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in [header, *rows]]
    return "\\n".join(lines)
''',
    "widgets/cli.py": '''import argparse

from widgets.report import SAMPLE, build_rows, render_table


def main(argv=None):
    parser = argparse.ArgumentParser(prog="widgets")
    sub = parser.add_subparsers(dest="command", required=True)
    report = sub.add_parser("report", help="print the stock report")
    report.add_argument("--format", choices=["table"], default="table")
    args = parser.parse_args(argv)
    if args.command == "report":
        print(render_table(build_rows(SAMPLE)))
''',
    "tests/test_report.py": '''from widgets.report import build_rows, render_table


def test_rows_are_sorted_and_valued():
    rows = build_rows([{"sku": "B", "name": "b", "on_hand": 2, "unit_cost": 1.5},
                       {"sku": "A", "name": "a", "on_hand": 1, "unit_cost": 3}])
    assert rows == [["A", "a", "1", "3.00"], ["B", "b", "2", "3.00"]]


def test_table_has_a_header():
    assert render_table([["A", "a", "1", "3.00"]]).splitlines()[0].startswith("SKU")
''',
}

INFRA = {
    "README.md": "# infra\n\nDeploy manifests and scripts. `make deploy ENV=staging`.\n",
    "Makefile": "deploy:\n\t./deploy.sh $(ENV)\n",
    "deploy.sh": '''#!/usr/bin/env bash
set -euo pipefail
ENV=${1:?usage: deploy.sh ENV}
helm upgrade --install api charts/api --kube-context "$KUBE_CONTEXT" -f "values/$ENV.yaml"
''',
    "scripts/wait-for-healthy.sh": '''#!/usr/bin/env bash
# Poll the environment's health endpoint until it answers.
ENV=${1:?usage: wait-for-healthy.sh ENV}
for attempt in $(seq 1 60); do
  echo "waiting for $ENV api to become healthy (attempt $attempt/60)"
  sleep 2
done
echo "gave up on $ENV" >&2
exit 1
''',
    "charts/api/Chart.yaml": "apiVersion: v2\nname: api\nversion: 1.14.2\n",
    "values/staging.yaml": "replicaCount: 2\nimage:\n  repository: ghcr.io/acme/api-server\n  tag: 1.14.2\n",
    "values/production.yaml": "replicaCount: 6\nimage:\n  repository: ghcr.io/acme/api-server\n  tag: 1.14.0\n",
}

WEB_APP = {
    "README.md": "# web-app\n\nThe marketing site and sign-up flow.\n",
    "src/signup.html": '''<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Sign up – Acme</title><link rel="stylesheet" href="site.css"></head>
<body>
  <h1>Sign up fro a free trial</h1>
  <form action="/signup" method="post">
    <label>Work email <input type="email" name="email" required></label>
    <button>Start my trail</button>
  </form>
</body>
</html>
''',
    "src/pricing.html": '''<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Pricing – Acme</title><link rel="stylesheet" href="site.css"></head>
<body><h1>Pricing</h1><p>Free for teams up to five. Team plan: $12 per seat.</p></body>
</html>
''',
    "src/site.css": "body { font: 16px/1.5 system-ui, sans-serif; margin: 2rem auto; max-width: 40rem; }\n",
}

NOTES = {
    "incident-2026-11-12.md": '''# Incident review: checkout 502s (Nov 12)

- 14:05 deploy of api-server 1.14.1 started; pods restarted in one batch
- 14:07 502s on /checkout, pager fired; Bilal on call
- 14:19 rollback to 1.14.0, errors stop by 14:22
- cause: readiness probe pointed at /healthz (404) so new pods never became ready,
  and maxUnavailable was 100%
- we only noticed because of the pager; no dashboard alert on 5xx rate
- Dana: staging has the same probe config
- nobody knew who owns the deployment manifests
''',
}
