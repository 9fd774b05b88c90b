"""The demo's sessions: who works where and when, what they type, and what the
scripted model answers (tests/e2e/fake_model.py plays it to the real client).

The model's turns are written for the repository they run in (scripts/demo/repos.py):
the commands, reads and edits are real and their outputs are the real ones,
so each turn's text says what that output will be. ``{CWD}`` is the working
directory. A turn index counts the assistant messages of one conversation;
after ``/compact`` the conversation starts again from its summary, which is
how a script names its continuation (``after_compact``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from repos import API_SERVER, INFRA, NOTES, PAYMENTS, WEB_APP, WIDGETS

SUMMARY_REQUEST = "create a detailed summary of the conversation so far"
OFF_SCRIPT = "(no scripted turn for this request)"
"""What the model answers past the end of a script: scripts/make-demo refuses a recording that has it."""


@dataclass
class Prompt:
    text: str
    pause: float = 90.0
    """Seconds the developer took before typing it (reading, testing by hand)."""
    interrupt_at: str = ""
    """Interrupt the turn ``interrupt_after`` seconds into the tool call whose input has this text."""
    interrupt_after: float = 5.0


@dataclass
class Session:
    name: str
    user: str
    repo: str | None
    """GitHub ``owner/repo``, or None for a plain directory."""
    directory: str
    """Where it lives under the developer's home (``src/payments``, ``notes``)."""
    files: dict[str, str]
    branch: str
    model: str
    day: int
    """Days before the demo's 'now' it happened."""
    start: str
    """Local start time, ``HH:MM``."""
    prompts: list[Prompt]
    main: list[dict[str, Any]]
    subagents: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    summary: str = ""
    """The /compact summary the model writes (when a prompt is /compact)."""
    after_compact: list[dict[str, Any]] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    prepare: list[str] = field(default_factory=list)
    """Shell commands run in the repository after its first commit (local changes)."""

    def scenario(self) -> dict[str, Any]:
        """The fake model's scenario (tests/e2e/fake_model.py)."""
        subagents = dict(self.subagents)
        overrides = []
        if self.summary:
            overrides.append({"match": SUMMARY_REQUEST, "text": self.summary})
            # The first request after /compact already holds one assistant message
            # (the client sends the command's output as one): the script starts at turn 1.
            subagents[self.summary_marker] = [turn(say("")), *self.after_compact]
        return {"usage": "cached", "side_text": "OK", "fallback_text": OFF_SCRIPT, "overrides": overrides,
                "main": self.main, "subagents": subagents}

    @property
    def summary_marker(self) -> str:
        """A line of the summary: the conversation after /compact starts with it."""
        return next(line for line in self.summary.splitlines() if "Primary Request" in line)


def turn(*blocks: dict[str, Any], fail_first: int | None = None) -> dict[str, Any]:
    step: dict[str, Any] = {"content": list(blocks)}
    if fail_first:
        step["fail_first"] = fail_first
    return step


def say(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text.strip()}


def think(text: str) -> dict[str, Any]:
    return {"type": "thinking", "thinking": text.strip()}


def tool(name: str, **args: Any) -> dict[str, Any]:
    return {"type": "tool_use", "name": name, "input": args}


def bash(command: str, description: str) -> dict[str, Any]:
    return tool("Bash", command=command, description=description)


def read(path: str) -> dict[str, Any]:
    return tool("Read", file_path="{CWD}/" + path)


def edit(path: str, old: str, new: str) -> dict[str, Any]:
    return tool("Edit", file_path="{CWD}/" + path, old_string=old, new_string=new)


def write(path: str, content: str) -> dict[str, Any]:
    return tool("Write", file_path="{CWD}/" + path, content=content)


def agent(description: str, kind: str, prompt: str) -> dict[str, Any]:
    return tool("Agent", description=description, subagent_type=kind, prompt=prompt, run_in_background=False)


TODO_TOOLS = {"CLAUDE_CODE_ENABLE_TODO_TOOLS": "1"}


def task(subject: str, description: str, active: str) -> dict[str, Any]:
    return tool("TaskCreate", subject=subject, description=description, activeForm=active)


def task_status(number: int, status: str) -> dict[str, Any]:
    return tool("TaskUpdate", taskId=str(number), status=status)


INVOICE_FIX = '''def invoice_total(lines: list[tuple[int, Decimal]], tax_rate: Decimal) -> Decimal:
    """The amount charged: the lines' sum plus tax, to the cent (half a cent rounds up)."""
    subtotal = sum((line_total(q, p) for q, p in lines), Decimal(0))
    return (subtotal * (1 + tax_rate)).quantize(CENT, rounding=ROUND_HALF_UP)
'''

BUG_FIX = Session(
    name="bug-fix", user="alice", repo="acme/payments", directory="src/payments", files=PAYMENTS,
    branch="fix/invoice-rounding", model="claude-sonnet-4-5", day=19, start="09:42",
    prompts=[
        Prompt("Customers are being charged a cent off on some invoices (PAY-412). "
               "tests/test_invoice.py has two failing tests that reproduce it. Can you find the cause and fix it?"),
        Prompt("Looks right. Commit it with a message that references PAY-412.", pause=140),
    ],
    main=[
        turn(think("Start from the failing tests: run them to see the exact assertion, then read the implementation."),
             say("I'll start by running the invoice tests to see exactly how they fail."),
             bash("pytest -q tests/test_invoice.py", "Run the invoice tests")),
        turn(say("Two failures, both in `invoice_total`:\n\n"
                 "- `test_invoice_total_with_tax` gets the float `71.96` where it expects `Decimal('71.96')`\n"
                 "- `test_half_cent_rounds_up` gets `0.12` instead of `0.13`\n\n"
                 "Let me look at the implementation."),
             read("payments/invoice.py")),
        turn(say("Found it. `invoice_total` converts the `Decimal` amount to `float` and rounds with `round()`:\n\n"
                 "```python\nreturn round(float(subtotal * (1 + tax_rate)), 2)\n```\n\n"
                 "That is wrong twice over:\n\n"
                 "1. **Binary floats can't represent most cent amounts**, so the result is never equal to the `Decimal` "
                 "the rest of the ledger uses, and it drifts by a cent when it is converted back.\n"
                 "2. **`round()` uses banker's rounding** (half to even), so `0.125` becomes `0.12`, while our invoices "
                 "round half a cent *up*.\n\n"
                 "I'll keep the arithmetic in `Decimal` and quantize to the cent with `ROUND_HALF_UP`."),
             edit("payments/invoice.py", "from decimal import Decimal\n",
                  "from decimal import ROUND_HALF_UP, Decimal\n\nCENT = Decimal(\"0.01\")\n")),
        turn(edit("payments/invoice.py",
                  '''def invoice_total(lines: list[tuple[int, Decimal]], tax_rate: Decimal) -> Decimal:
    """The amount charged: the lines' sum plus tax, to the cent."""
    subtotal = sum((line_total(q, p) for q, p in lines), Decimal(0))
    return round(float(subtotal * (1 + tax_rate)), 2)
''', INVOICE_FIX)),
        turn(say("Now the whole suite, to make sure nothing else depended on the float result:"),
             bash("pytest -q", "Run all tests")),
        turn(bash("git diff --stat", "Show the size of the change")),
        turn(say("All 4 tests pass now.\n\n"
                 "## What was wrong\n\n"
                 "`invoice_total` rounded a `float` with Python's `round()`, which\n\n"
                 "- returned a `float` instead of a `Decimal` (so `71.96 != Decimal('71.96')`), and\n"
                 "- rounds half to even, so a total of `0.125` was charged as `0.12`.\n\n"
                 "## The fix (`payments/invoice.py`)\n\n"
                 "```python\nCENT = Decimal(\"0.01\")\n\n"
                 "return (subtotal * (1 + tax_rate)).quantize(CENT, rounding=ROUND_HALF_UP)\n```\n\n"
                 "The amount now stays a `Decimal` end to end and half a cent rounds up, as finance expects. "
                 "Invoices already issued with the wrong amount are not corrected by this change: "
                 "you may want a one-off query for totals ending in a half cent since the float version shipped.")),
        turn(bash('git add payments/invoice.py && git commit -q -m "Round invoice totals in Decimal, half up (PAY-412)" && git log --oneline -1',
                  "Commit the fix")),
        turn(say("Committed on `fix/invoice-rounding`:\n\n"
                 "```\nRound invoice totals in Decimal, half up (PAY-412)\n```\n\n"
                 "Push it with `git push -u origin fix/invoice-rounding` when you're ready to open the PR.")),
    ],
)

SETTINGS = '''"""Settings from the environment, read once per process."""

import os
from dataclasses import dataclass
from functools import cache


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite:///dev.db"
    request_timeout: float = 10.0
    debug: bool = False


@cache
def get_settings() -> Settings:
    """The process's settings. Tests that change the environment call
    ``get_settings.cache_clear()``."""
    return Settings(
        database_url=os.environ.get("DATABASE_URL", Settings.database_url),
        request_timeout=float(os.environ.get("REQUEST_TIMEOUT", Settings.request_timeout)),
        debug=os.environ.get("DEBUG", "0") == "1",
    )
'''

SETTINGS_TESTS = '''import pytest

from api.config import get_settings


@pytest.fixture(autouse=True)
def fresh_settings():
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_debug_from_env(monkeypatch):
    monkeypatch.setenv("DEBUG", "1")
    assert get_settings().debug is True


def test_timeout_default(monkeypatch):
    monkeypatch.delenv("REQUEST_TIMEOUT", raising=False)
    assert get_settings().request_timeout == 10.0


def test_settings_are_frozen():
    with pytest.raises(AttributeError):
        get_settings().debug = True
'''

SURVEY = "Find every place in this repository that reads DATABASE_URL, REQUEST_TIMEOUT or DEBUG"

REFACTOR = Session(
    name="refactor", user="bilal", repo="acme/api-server", directory="src/api-server", files=API_SERVER,
    branch="refactor/settings", model="claude-opus-4-5", day=15, start="14:10",
    prompts=[Prompt("Refactor api/config.py: replace the module-level globals with a frozen `Settings` dataclass "
                    "that `get_settings()` loads once, and update every caller. Keep the environment variable names.")],
    main=[
        turn(think("A refactor of globals: first find every reader, including tests that reload the module. "
                   "An Explore agent can sweep the repo while I keep the context small."),
             say("I'll map every reader of the config globals first, so the refactor doesn't miss one."),
             agent("Find config readers", "Explore",
                   SURVEY + " from api/config.py, including tests that reload the module. "
                   "Report file, line and how each value is used.")),
        turn(say("The survey found four readers: `api/db.py`, `api/client.py`, `api/app.py` and "
                 "`tests/test_config.py` (which reloads the module to re-read the environment). "
                 "Let me read them all."),
             read("api/config.py"), read("api/db.py"), read("api/client.py"), read("api/app.py"),
             read("tests/test_config.py")),
        turn(say("Plan:\n\n"
                 "| before | after |\n|---|---|\n"
                 "| `config.DATABASE_URL` | `get_settings().database_url` |\n"
                 "| `config.REQUEST_TIMEOUT` | `get_settings().request_timeout` |\n"
                 "| `config.DEBUG` | `get_settings().debug` |\n\n"
                 "`get_settings()` is cached with `functools.cache`, so the environment is read once per process; "
                 "the tests clear that cache instead of reloading the module."),
             write("api/config.py", SETTINGS)),
        turn(edit("api/db.py", 'from api import config\n\n\ndef connect_args() -> dict:\n    return {"url": config.DATABASE_URL, "echo": config.DEBUG}\n',
                  'from api.config import get_settings\n\n\ndef connect_args() -> dict:\n    settings = get_settings()\n'
                  '    return {"url": settings.database_url, "echo": settings.debug}\n'),
             edit("api/client.py", 'from api import config\n\n\ndef upstream_options() -> dict:\n    return {"timeout": config.REQUEST_TIMEOUT, "retries": 2}\n',
                  'from api.config import get_settings\n\n\ndef upstream_options() -> dict:\n    return {"timeout": get_settings().request_timeout, "retries": 2}\n')),
        turn(edit("api/app.py", "from api import config\n", "from api.config import get_settings\n")),
        turn(edit("api/app.py", '{"ok": True, "debug": config.DEBUG}', '{"ok": True, "debug": get_settings().debug}')),
        turn(say("Now the tests: they reloaded the module to pick up environment changes; with a cached "
                 "`get_settings()` an autouse fixture clearing the cache does the same, and I'll add a test that "
                 "the settings are frozen."),
             write("tests/test_config.py", SETTINGS_TESTS)),
        turn(bash("pytest -q", "Run the test suite")),
        turn(bash("git status --short", "List the changed files")),
        turn(say("Done. All 5 tests pass.\n\n"
                 "### Changes\n\n"
                 "- **`api/config.py`**: a frozen `Settings` dataclass (`database_url`, `request_timeout`, `debug`) "
                 "and `get_settings()`, cached, reading the same variables `DATABASE_URL`, `REQUEST_TIMEOUT` and `DEBUG`.\n"
                 "- **`api/db.py`, `api/client.py`, `api/app.py`**: read `get_settings()` instead of module globals.\n"
                 "- **`tests/test_config.py`**: an autouse fixture clears the cache instead of `importlib.reload`, "
                 "plus `test_settings_are_frozen`.\n\n"
                 "One behaviour change to be aware of: settings are now read on first use rather than at import time, "
                 "so a process that changes `os.environ` after startup must call `get_settings.cache_clear()`.")),
    ],
    subagents={SURVEY: [
        turn(bash('grep -rn "config\\.\\(DATABASE_URL\\|REQUEST_TIMEOUT\\|DEBUG\\)\\|reload(config)" --include=*.py .',
                  "Find reads of the config globals")),
        turn(read("tests/test_config.py")),
        turn(say("## Readers of `api/config.py` globals\n\n"
                 "| file | line | use |\n|---|---|---|\n"
                 "| `api/db.py` | 5 | `config.DATABASE_URL` as the connection URL, `config.DEBUG` as `echo` |\n"
                 "| `api/client.py` | 5 | `config.REQUEST_TIMEOUT` as the upstream timeout |\n"
                 "| `api/app.py` | 11 | `config.DEBUG` in the `/health` response |\n"
                 "| `tests/test_config.py` | 8, 14 | `importlib.reload(config)` after `monkeypatch.setenv`, then reads "
                 "`config.DEBUG` and `config.REQUEST_TIMEOUT` |\n\n"
                 "No other module imports `api.config`; nothing writes to the globals.")),
    ]},
)

REPORT_CSV = '''def render_csv(rows: list[list[str]]) -> str:
    """The rows as CSV with a header (names with commas are quoted)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\\n")
    writer.writerow(["sku", "name", "on_hand", "value"])
    writer.writerows(rows)
    return out.getvalue().rstrip("\\n")


def render_table('''

FEATURE = Session(
    name="feature", user="chen", repo="acme/widgets", directory="src/widgets", files=WIDGETS,
    branch="feat/csv-export", model="claude-sonnet-4-5", day=12, start="10:15", env=TODO_TOOLS,
    prompts=[
        Prompt("Finance wants the stock report as CSV so they can paste it into a spreadsheet. "
               "Add `--format csv` to `widgets report`. Plan it first, then build it with a test."),
        Prompt("Nice. Can the delimiter be configurable? The Munich office's Excel wants semicolons.", pause=210),
    ],
    main=[
        turn(say("## Plan\n\n"
                 "1. **`widgets/report.py`**: add `render_csv(rows)` next to `render_table`, using the `csv` module "
                 "so names like `Flange, large` are quoted correctly.\n"
                 "2. **`widgets/cli.py`**: accept `--format csv` and pick the renderer.\n"
                 "3. **`tests/test_report.py`**: a test for the quoting and the header.\n\n"
                 "I'll track these as tasks."),
             task("Add render_csv to widgets/report.py", "CSV renderer using the csv module, same columns as the table", "Adding render_csv"),
             task("Add --format csv to the CLI", "Accept csv in widgets report --format and choose the renderer", "Wiring up --format csv"),
             task("Test the CSV output", "Header and quoting of names with commas; run the suite", "Testing the CSV output")),
        turn(task_status(1, "in_progress"), read("widgets/report.py"), read("widgets/cli.py"), read("tests/test_report.py")),
        turn(edit("widgets/report.py", '"""The stock report: one row per SKU, rendered as a table."""\n',
                  '"""The stock report: one row per SKU, rendered as a table or as CSV."""\n\nimport csv\nimport io\n')),
        turn(edit("widgets/report.py", "def render_table(", REPORT_CSV)),
        turn(task_status(1, "completed"), task_status(2, "in_progress"),
             edit("widgets/cli.py", "from widgets.report import SAMPLE, build_rows, render_table\n",
                  "from widgets.report import SAMPLE, build_rows, render_csv, render_table\n")),
        turn(edit("widgets/cli.py",
                  '    report.add_argument("--format", choices=["table"], default="table")\n    args = parser.parse_args(argv)\n'
                  '    if args.command == "report":\n        print(render_table(build_rows(SAMPLE)))\n',
                  '    report.add_argument("--format", choices=["table", "csv"], default="table")\n    args = parser.parse_args(argv)\n'
                  '    if args.command == "report":\n        render = render_csv if args.format == "csv" else render_table\n'
                  '        print(render(build_rows(SAMPLE)))\n')),
        turn(task_status(2, "completed"), task_status(3, "in_progress"),
             edit("tests/test_report.py", "from widgets.report import build_rows, render_table\n",
                  "from widgets.report import build_rows, render_csv, render_table\n")),
        turn(edit("tests/test_report.py", "def test_table_has_a_header():",
                  'def test_csv_has_a_header_and_quotes_commas():\n    out = render_csv([["W-200", "Flange, large", "7", "87.50"]])\n'
                  '    assert out.splitlines() == ["sku,name,on_hand,value", \'W-200,"Flange, large",7,87.50\']\n\n\n'
                  "def test_table_has_a_header():")),
        turn(bash("pytest -q", "Run the tests")),
        turn(bash("python -m widgets report --format csv", "Try the CSV report")),
        turn(task_status(3, "completed")),
        turn(say("`widgets report --format csv` works:\n\n"
                 "```csv\nsku,name,on_hand,value\nW-100,Sprocket,42,52.50\nW-200,\"Flange, large\",7,87.50\nW-300,Gasket,0,0.00\n```\n\n"
                 "- `render_csv` in `widgets/report.py` uses `csv.writer`, so the comma in *Flange, large* is quoted "
                 "and a spreadsheet keeps it in one cell.\n"
                 "- The table stays the default; `--format table` still works.\n"
                 "- New test `test_csv_has_a_header_and_quotes_commas`; all 3 tests pass.")),
        turn(edit("widgets/report.py",
                  'def render_csv(rows: list[list[str]]) -> str:\n    """The rows as CSV with a header (names with commas are quoted)."""\n'
                  '    out = io.StringIO()\n    writer = csv.writer(out, lineterminator="\\n")\n',
                  'def render_csv(rows: list[list[str]], delimiter: str = ",") -> str:\n'
                  '    """The rows as CSV with a header (fields containing the delimiter are quoted)."""\n'
                  '    out = io.StringIO()\n    writer = csv.writer(out, delimiter=delimiter, lineterminator="\\n")\n')),
        turn(edit("widgets/cli.py",
                  '    args = parser.parse_args(argv)\n    if args.command == "report":\n'
                  '        render = render_csv if args.format == "csv" else render_table\n        print(render(build_rows(SAMPLE)))\n',
                  '    report.add_argument("--delimiter", default=",", help="CSV field separator (e.g. \';\' for Excel in Germany)")\n'
                  '    args = parser.parse_args(argv)\n    if args.command == "report":\n        rows = build_rows(SAMPLE)\n'
                  '        print(render_csv(rows, args.delimiter) if args.format == "csv" else render_table(rows))\n')),
        turn(bash("python -m widgets report --format csv --delimiter ';'", "Try a semicolon delimiter")),
        turn(bash("pytest -q", "Run the tests")),
        turn(say("Done: `--delimiter` sets the separator.\n\n"
                 "```console\n$ python -m widgets report --format csv --delimiter ';'\nsku;name;on_hand;value\n"
                 "W-100;Sprocket;42;52.50\nW-200;Flange, large;7;87.50\nW-300;Gasket;0;0.00\n```\n\n"
                 "With `;` the comma in *Flange, large* no longer needs quoting. Note that German Excel also expects "
                 "a decimal comma (`52,50`); if finance needs that too, it is a separate `--decimal-comma` option.")),
    ],
)

DEPLOY_CHECKS = '''ENV=${1:?usage: deploy.sh ENV}
if [[ -z "${KUBE_CONTEXT:-}" ]]; then
  echo "deploy.sh: set KUBE_CONTEXT to the cluster's kube context (e.g. staging-eu1)" >&2
  exit 2
fi
if ! command -v helm >/dev/null; then
  echo "deploy.sh: helm is not installed (https://helm.sh/docs/intro/install/)" >&2
  exit 2
fi
'''

GOES_WRONG = Session(
    name="goes-wrong", user="dana", repo="acme/infra", directory="src/infra", files=INFRA,
    branch="fix/deploy-staging", model="claude-sonnet-4-5", day=8, start="16:20",
    prompts=[
        Prompt("`./deploy.sh staging` fails on my machine. Figure out why and get the staging deploy out.",
               interrupt_at="wait-for-healthy", interrupt_after=7),
        Prompt("Stop, don't wait on it: staging is being rebuilt today and won't come up. Just make deploy.sh fail "
               "early with a clear message when KUBE_CONTEXT or helm is missing.", pause=35),
    ],
    main=[
        turn(say("Let me reproduce it first."), bash("./deploy.sh staging", "Run the staging deploy"), fail_first=529),
        turn(say("`KUBE_CONTEXT` isn't set, and the script runs with `set -u`. Let me see whether you have a kubeconfig."),
             bash("ls ~/.kube", "Look for a kubeconfig")),
        turn(say("No `~/.kube` either. The Makefile may set the context up:"),
             bash("make deploy ENV=staging", "Deploy through the Makefile")),
        turn(say("Same error: the Makefile just calls the script. Let me try with the context set explicitly."),
             bash("KUBE_CONTEXT=staging ./deploy.sh staging", "Deploy with an explicit context")),
        turn(bash("helm version --short", "Check the helm install")),
        turn(say("`helm` isn't installed on this machine, so no deploy can run from here yet. "
                 "Before setting it up, let me check that staging is up at all:"),
             bash("./scripts/wait-for-healthy.sh staging", "Wait for staging to become healthy")),
        turn(read("deploy.sh")),
        turn(edit("deploy.sh", "ENV=${1:?usage: deploy.sh ENV}\n", DEPLOY_CHECKS)),
        turn(bash("./deploy.sh staging; echo \"exit $?\"; KUBE_CONTEXT=staging-eu1 ./deploy.sh staging",
                  "Check both error messages")),
        turn(say("`deploy.sh` now stops before doing anything, with a message that says what to fix:\n\n"
                 "```console\n$ ./deploy.sh staging\ndeploy.sh: set KUBE_CONTEXT to the cluster's kube context (e.g. staging-eu1)\n"
                 "$ KUBE_CONTEXT=staging-eu1 ./deploy.sh staging\ndeploy.sh: helm is not installed (https://helm.sh/docs/intro/install/)\n```\n\n"
                 "Both exit with status 2, so `make deploy` fails the same way. To actually deploy once staging is back, "
                 "you'll need `helm` and a kubeconfig with the `staging-eu1` context on this machine.")),
    ],
)

RATELIMIT = '''"""Per-client token buckets: each key may make ``rate`` requests a minute."""

import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Bucket:
    tokens: float
    updated: float


@dataclass
class RateLimiter:
    rate: int = 100
    """Requests per minute per key."""
    clock: Callable[[], float] = time.monotonic
    buckets: dict[str, Bucket] = field(default_factory=dict)

    def allow(self, key: str) -> bool:
        now = self.clock()
        bucket = self.buckets.setdefault(key, Bucket(self.rate, now))
        bucket.tokens = min(self.rate, bucket.tokens + (now - bucket.updated) * self.rate / 60)
        bucket.updated = now
        if bucket.tokens < 1:
            return False
        bucket.tokens -= 1
        return True

    def retry_after(self, key: str) -> int:
        """Seconds until ``key`` may make its next request."""
        bucket = self.buckets[key]
        return int((1 - bucket.tokens) * 60 / self.rate)
'''

RATELIMIT_TESTS = '''from api.ratelimit import RateLimiter


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_allows_up_to_the_rate_then_refuses():
    limiter = RateLimiter(rate=3, clock=Clock())
    assert [limiter.allow("k") for _ in range(4)] == [True, True, True, False]


def test_keys_have_their_own_buckets():
    limiter = RateLimiter(rate=1, clock=Clock())
    assert limiter.allow("a") and limiter.allow("b") and not limiter.allow("a")


def test_tokens_refill_over_time():
    clock = Clock()
    limiter = RateLimiter(rate=60, clock=clock)
    for _ in range(60):
        limiter.allow("k")
    assert not limiter.allow("k")
    clock.now += 1.0
    assert limiter.allow("k")


def test_retry_after_is_at_least_one_second():
    limiter = RateLimiter(rate=100, clock=Clock())
    while limiter.allow("k"):
        pass
    assert limiter.retry_after("k") >= 1
'''

LIMIT_CHECK = '''    path = environ.get("PATH_INFO", "/")
    client = environ.get("HTTP_X_API_KEY") or environ.get("REMOTE_ADDR", "unknown")
    if path != "/health" and not LIMITER.allow(client):
        retry = str(LIMITER.retry_after(client))
        return _json(start_response, "429 Too Many Requests", {"error": "rate limited"}, [("Retry-After", retry)])
'''

PLANS = '''"""Which plan each API key is on, and the request rate each plan gets."""

RATES = {"free": 60, "team": 600}
"""Requests per minute."""

PLANS = {"key_live_team_acme": "team"}
"""API key -> plan; keys not listed are on the free plan. (Moves to the accounts table later.)"""


def rate_for(key: str) -> int:
    return RATES[PLANS.get(key, "free")]
'''

COMPACTION = Session(
    name="compaction", user="emeka", repo="acme/api-server", directory="src/api-server", files=API_SERVER,
    branch="feat/rate-limit", model="claude-opus-4-5", day=0, start="09:30",
    prompts=[
        Prompt("Add per-client rate limiting to the API: 100 requests per minute per API key (the X-Api-Key header), "
               "token bucket, in memory for now."),
        Prompt("Wire it into the app: 429 with a Retry-After header when a client is over its limit. "
               "Requests without a key are limited by client IP.", pause=260),
        Prompt("/compact", pause=45),
        Prompt("Now make the limit depend on the key's plan: free keys get 60/min, team keys 600/min. "
               "Put the plans in api/plans.py as a dict for now.", pause=120),
    ],
    main=[
        turn(think("Token bucket per key: capacity = rate, refill rate/60 per second. Keep the clock injectable "
                   "so tests don't sleep. Read the app first to see how requests are handled."),
             say("I'll look at how the app handles requests, then add a small token-bucket limiter with an "
                 "injectable clock so the tests don't have to sleep."),
             read("api/app.py")),
        turn(write("api/ratelimit.py", RATELIMIT)),
        turn(write("tests/test_ratelimit.py", RATELIMIT_TESTS)),
        turn(bash("pytest -q tests/test_ratelimit.py", "Run the rate limiter tests")),
        turn(say("One failure: `retry_after` truncates. With 100 requests a minute the next token is 0.6 s away, and "
                 "`int(0.6)` is `0`, so a client would be told to retry immediately. It should round **up**."),
             edit("api/ratelimit.py", "import time\n", "import math\nimport time\n")),
        turn(edit("api/ratelimit.py", "return int((1 - bucket.tokens) * 60 / self.rate)",
                  "return math.ceil((1 - bucket.tokens) * 60 / self.rate)")),
        turn(bash("pytest -q", "Run all tests")),
        turn(say("All 8 tests pass. `api/ratelimit.py` has `RateLimiter(rate=100)` with `allow(key)` and "
                 "`retry_after(key)`; buckets live in memory, one per key, refilled continuously.")),
        turn(say("I'll check the limiter before routing (except `/health`, which load balancers poll) and key it by "
                 "`X-Api-Key`, falling back to the client address."),
             edit("api/app.py", "from api import config\n",
                  "from api import config\nfrom api.ratelimit import RateLimiter\n\nLIMITER = RateLimiter()\n"),
             read("tests/test_app.py")),
        turn(edit("api/app.py", '    path = environ.get("PATH_INFO", "/")\n', LIMIT_CHECK)),
        turn(edit("tests/test_app.py", 'def test_unknown_path_is_404():\n    assert call("/nope")[0] == "404 Not Found"\n',
                  'def test_unknown_path_is_404():\n    assert call("/nope")[0] == "404 Not Found"\n\n\n'
                  'def test_over_the_limit_is_429(monkeypatch):\n    from api import app as module\n'
                  '    from api.ratelimit import RateLimiter\n\n'
                  '    monkeypatch.setattr(module, "LIMITER", RateLimiter(rate=1))\n'
                  '    assert call("/v1/items")[0] == "200 OK"\n'
                  '    assert call("/v1/items")[0] == "429 Too Many Requests"\n')),
        turn(bash("pytest -q", "Run all tests")),
        turn(say("Wired in:\n\n"
                 "```python\nclient = environ.get(\"HTTP_X_API_KEY\") or environ.get(\"REMOTE_ADDR\", \"unknown\")\n"
                 "if path != \"/health\" and not LIMITER.allow(client):\n"
                 "    retry = str(LIMITER.retry_after(client))\n"
                 "    return _json(start_response, \"429 Too Many Requests\", {\"error\": \"rate limited\"}, [(\"Retry-After\", retry)])\n```\n\n"
                 "9 tests pass, including a new one for the 429. `/health` is never limited. Behind a proxy, "
                 "`REMOTE_ADDR` is the proxy's address, so keyless clients would share one bucket: worth reading "
                 "`X-Forwarded-For` once we know which proxies we trust.")),
    ],
    summary=("<analysis>\nThe user asked for per-client rate limiting and then for it to be wired into the app.\n</analysis>\n\n"
             "<summary>\n1. Primary Request and Intent: per-client rate limiting for the API (100 requests/minute per "
             "X-Api-Key, token bucket, in memory), returning 429 with Retry-After; keyless requests limited by client IP.\n"
             "2. Key Technical Concepts: token bucket refilled continuously; injectable clock for tests; "
             "retry_after rounds up (math.ceil).\n"
             "3. Files and Code Sections:\n   - api/ratelimit.py: RateLimiter(rate=100, clock=time.monotonic) with "
             "allow(key) and retry_after(key)\n   - api/app.py: module-level LIMITER checked before routing, "
             "except /health\n   - tests/test_ratelimit.py (4 tests), tests/test_app.py (test_over_the_limit_is_429)\n"
             "4. Errors and fixes: retry_after truncated 0.6 s to 0; fixed with math.ceil.\n"
             "5. Pending Tasks: none.\n6. Current Work: all 9 tests pass.\n</summary>"),
    after_compact=[
        turn(say("I'll re-read the limiter, the app and its tests, then add `api/plans.py` and pass each key's rate "
                 "to the limiter."),
             read("api/ratelimit.py"), read("api/app.py"), read("tests/test_app.py")),
        turn(write("api/plans.py", PLANS)),
        turn(edit("api/ratelimit.py",
                  "    def allow(self, key: str) -> bool:\n        now = self.clock()\n"
                  "        bucket = self.buckets.setdefault(key, Bucket(self.rate, now))\n"
                  "        bucket.tokens = min(self.rate, bucket.tokens + (now - bucket.updated) * self.rate / 60)\n",
                  "    def allow(self, key: str, rate: int | None = None) -> bool:\n        \"\"\"Whether ``key`` may make a request now, at ``rate`` a minute (default: the limiter's).\"\"\"\n"
                  "        rate = rate or self.rate\n        now = self.clock()\n"
                  "        bucket = self.buckets.setdefault(key, Bucket(rate, now))\n"
                  "        bucket.tokens = min(rate, bucket.tokens + (now - bucket.updated) * rate / 60)\n")),
        turn(edit("api/ratelimit.py",
                  "    def retry_after(self, key: str) -> int:\n        \"\"\"Seconds until ``key`` may make its next request.\"\"\"\n"
                  "        bucket = self.buckets[key]\n        return math.ceil((1 - bucket.tokens) * 60 / self.rate)",
                  "    def retry_after(self, key: str, rate: int | None = None) -> int:\n        \"\"\"Seconds until ``key`` may make its next request.\"\"\"\n"
                  "        bucket = self.buckets[key]\n        return math.ceil((1 - bucket.tokens) * 60 / (rate or self.rate))")),
        turn(edit("api/app.py", "from api.ratelimit import RateLimiter\n", "from api.plans import rate_for\nfrom api.ratelimit import RateLimiter\n")),
        turn(edit("api/app.py",
                  "    if path != \"/health\" and not LIMITER.allow(client):\n        retry = str(LIMITER.retry_after(client))\n",
                  "    rate = rate_for(client)\n    if path != \"/health\" and not LIMITER.allow(client, rate):\n"
                  "        retry = str(LIMITER.retry_after(client, rate))\n")),
        turn(bash("pytest -q", "Run all tests")),
        turn(say("`test_over_the_limit_is_429` fails now: it swaps in a limiter with `rate=1`, but the app passes the "
                 "plan's rate (60 for a keyless client) on every call, which overrides it. The test should pin the "
                 "plan's rate instead."),
             edit("tests/test_app.py", '    monkeypatch.setattr(module, "LIMITER", RateLimiter(rate=1))\n',
                  '    monkeypatch.setattr(module, "LIMITER", RateLimiter())\n'
                  '    monkeypatch.setattr(module, "rate_for", lambda key: 1)\n')),
        turn(bash("pytest -q", "Run all tests")),
        turn(say("Limits now follow the plan:\n\n| plan | requests / minute |\n|---|---|\n| free (default) | 60 |\n| team | 600 |\n\n"
                 "- `api/plans.py`: `RATES`, `PLANS` (key → plan) and `rate_for(key)`; unknown keys and IP-keyed "
                 "clients are on the free plan.\n"
                 "- `RateLimiter.allow` and `retry_after` take the rate per call, so one limiter serves every plan.\n\n"
                 "All 9 tests pass. Next step when you're ready: load `PLANS` from the accounts table instead of the dict.")),
    ],
)

EXPLAIN = Session(
    name="explain", user="chen", repo="acme/widgets", directory="src/widgets", files=WIDGETS,
    branch="main", model="claude-haiku-4-5", day=17, start="15:30",
    prompts=[Prompt("I'm new to this repo. What does widgets/report.py do, and how would I add a column?")],
    main=[
        turn(read("widgets/report.py")),
        turn(say("`widgets/report.py` builds the warehouse **stock report**:\n\n"
                 "- `SAMPLE`: three example items (`sku`, `name`, `on_hand`, `unit_cost`) the CLI uses for now.\n"
                 "- `build_rows(items)`: sorts by SKU and turns each item into strings: SKU, name, quantity on hand "
                 "and **value** (`on_hand * unit_cost`, two decimals).\n"
                 "- `render_table(rows)`: pads every column to its widest cell and prints a header.\n\n"
                 "### Adding a column\n\nSay you want the unit cost. Add it in both places, in the same position:\n\n"
                 "```python\n# build_rows\nrows.append([item[\"sku\"], item[\"name\"], str(item[\"on_hand\"]),\n"
                 "             f\"{item['unit_cost']:.2f}\", f\"{value:.2f}\"])\n\n"
                 "# render_table\nheader = [\"SKU\", \"Name\", \"On hand\", \"Unit cost\", \"Value\"]\n```\n\n"
                 "The widths are computed from the data, so nothing else changes. "
                 "`tests/test_report.py::test_rows_are_sorted_and_valued` compares whole rows, so update its expected "
                 "lists too.")),
    ],
)

COMMIT_MESSAGE = Session(
    name="commit-message", user="alice", repo="acme/payments", directory="src/payments", files=PAYMENTS,
    branch="chore/bump-requests", model="claude-haiku-4-5", day=10, start="11:20",
    prepare=["sed -i 's/requests==2.31.0/requests==2.32.3/' requirements.txt", "git add requirements.txt"],
    prompts=[Prompt("write a commit message for what I've staged")],
    main=[
        turn(bash("git diff --staged", "Show the staged changes")),
        turn(say("```\nBump requests to 2.32.3\n\n2.31.0 is affected by CVE-2024-35195 (a Session that once made a\n"
                 "request with verify=False keeps skipping certificate checks for\nthat host). 2.32.3 fixes it; no API changes affect us.\n```")),
    ],
)

CI_CHECK = Session(
    name="ci-check", user="bilal", repo="acme/api-server", directory="src/api-server", files=API_SERVER,
    branch="main", model="claude-sonnet-4-5", day=6, start="09:05",
    prepare=["git commit -q --allow-empty -m 'Merge pull request #212 from acme/reload-config-in-tests'"],
    prompts=[Prompt("CI went red on main after last night's merge. Do the tests pass locally?")],
    main=[
        turn(bash("pytest -q", "Run the test suite")),
        turn(bash("git log --oneline -3", "Recent commits")),
        turn(say("They pass locally: **4 passed**, at the merge of #212 (*reload-config-in-tests*).\n\n"
                 "So the failure is specific to CI, and #212 touched exactly the fragile part. The usual suspects:\n\n"
                 "1. **Environment**: `tests/test_config.py` reloads `api.config`; if CI sets `DEBUG` or "
                 "`REQUEST_TIMEOUT` globally, `test_timeout_default` only unsets one of them.\n"
                 "2. **Test order**: the reload leaves `config.DEBUG = True` behind for later tests when run in "
                 "another order (e.g. with `pytest-randomly` or `-p xdist`).\n\n"
                 "Can you paste the failing test's output from the CI log? Then I can tell which one it is.")),
    ],
)

ACTION_ITEMS = '''# Action items: checkout 502s (Nov 12)

- [ ] **Bilal**: point the api readiness probe at `/health` (it checks `/healthz`, which is a 404)
- [ ] **Dana**: same fix for staging, which has the same probe config
- [ ] **Dana**: set `maxUnavailable: 25%` so a rollout never takes every pod down at once
- [ ] **Emeka**: alert on the 5xx rate of /checkout, not only the pager
- [ ] **Alice**: name an owner for the deployment manifests in CODEOWNERS
'''

NOTES_SESSION = Session(
    name="action-items", user="dana", repo=None, directory="notes", files=NOTES,
    branch="", model="claude-sonnet-4-5", day=13, start="17:40",
    prompts=[Prompt("Turn my notes from the Nov 12 incident review into action items with owners, "
                    "as a markdown checklist in action-items.md")],
    main=[
        turn(read("incident-2026-11-12.md")),
        turn(write("action-items.md", ACTION_ITEMS)),
        turn(say("Wrote `action-items.md` with five items. Two owners are my guess, please check them:\n\n"
                 "- the **5xx alert** went to Emeka (he owns the dashboards), and\n"
                 "- the **CODEOWNERS** entry to Alice, since the notes say nobody knew who owns the manifests.")),
    ],
)

TYPO = Session(
    name="typo", user="emeka", repo="acme/web-app", directory="src/web-app", files=WEB_APP,
    branch="fix/signup-typos", model="claude-haiku-4-5", day=1, start="16:45",
    prompts=[Prompt("There's a typo in the signup page heading. Fix it and check the rest of the site for others.")],
    main=[
        turn(read("src/signup.html")),
        turn(say("Two typos on this page: *fro* in the heading and *trail* on the button."),
             edit("src/signup.html", "<h1>Sign up fro a free trial</h1>", "<h1>Sign up for a free trial</h1>")),
        turn(edit("src/signup.html", "<button>Start my trail</button>", "<button>Start my trial</button>")),
        turn(bash("grep -rniE '\\bfro\\b|trail|teh|recieve' src/ || echo 'no other matches'", "Look for more typos")),
        turn(say("Fixed both in `src/signup.html`: the heading now reads **Sign up for a free trial** and the button "
                 "**Start my trial**. No other common typos in `src/`.")),
    ],
)


CHANGELOG = '''# Changelog

## 2.4.0 (unreleased)

- Invoice totals are computed in `Decimal` and rounded half up to the cent;
  they were a cent off for some amounts (PAY-412).
- requests 2.32.3 (CVE-2024-35195).
'''

RELEASE = Session(
    name="release", user="alice", repo="acme/payments", directory="src/payments", files=PAYMENTS,
    branch="release/2.4.0", model="claude-sonnet-4-5", day=4, start="14:05",
    prepare=["git commit -q --allow-empty -m 'Round invoice totals in Decimal, half up (PAY-412)'",
             "git commit -q --allow-empty -m 'Bump requests to 2.32.3'"],
    prompts=[Prompt("Prepare release 2.4.0: bump the version and start a CHANGELOG with what changed since 2.3.0.")],
    main=[
        turn(say("Let me see what landed since the last release."), bash("git log --oneline -5", "Recent commits")),
        turn(read("pyproject.toml")),
        turn(edit("pyproject.toml", 'version = "2.3.0"', 'version = "2.4.0"')),
        turn(write("CHANGELOG.md", CHANGELOG)),
        turn(say("Version bumped to **2.4.0** in `pyproject.toml`, and a new `CHANGELOG.md`:\n\n```markdown\n"
                 + CHANGELOG.split("\n", 2)[2] + "```\n\nI marked the section *unreleased*; put the date in when you tag it "
                 "(`git tag -a v2.4.0`).")),
    ],
)

REFUND = '''

def refund(entry: Entry, memo: str = "refund") -> Entry:
    """The entry that cancels ``entry``: same account, opposite amount."""
    return Entry(entry.account, -entry.amount, memo)
'''

REFUNDS = Session(
    name="refunds", user="bilal", repo="acme/payments", directory="src/payments", files=PAYMENTS,
    branch="feat/refunds", model="claude-sonnet-4-5", day=3, start="13:40",
    prompts=[Prompt("Add a refund(entry) helper to payments/ledger.py that books the opposite amount, with a test.")],
    main=[
        turn(read("payments/ledger.py"), read("tests/test_ledger.py")),
        turn(say("The ledger is append-only, so a refund is a new entry with the negated amount rather than a deletion."),
             edit("payments/ledger.py", "    return sum((e.amount for e in entries if e.account == account), Decimal(0))\n",
                  "    return sum((e.amount for e in entries if e.account == account), Decimal(0))\n" + REFUND)),
        turn(edit("tests/test_ledger.py", "from payments.ledger import Entry, balance\n", "from payments.ledger import Entry, balance, refund\n")),
        turn(edit("tests/test_ledger.py", '    assert balance(entries, "acme") == Decimal("7.5")\n',
                  '    assert balance(entries, "acme") == Decimal("7.5")\n\n\n'
                  'def test_a_refund_cancels_its_entry():\n    charge = Entry("acme", Decimal("19.99"), "invoice 1042")\n'
                  '    assert balance([charge, refund(charge)], "acme") == 0\n    assert refund(charge).memo == "refund"\n')),
        turn(bash("pytest -q tests/test_ledger.py", "Run the ledger tests")),
        turn(say("Added `refund(entry, memo=\"refund\")` to `payments/ledger.py`:\n\n```python\n"
                 + REFUND.strip() + "\n```\n\n`test_a_refund_cancels_its_entry` checks that a charge and its refund "
                 "balance to zero; both ledger tests pass.")),
    ],
)

PRICING_FAQ = '''<body><h1>Pricing</h1><p>Free for teams up to five. Team plan: $12 per seat.</p>
<section class="faq">
  <h2>Questions</h2>
  <details><summary>What counts as a seat?</summary><p>Anyone who signs in during the month. Guests who only view shared links are free.</p></details>
  <details><summary>Can we pay yearly?</summary><p>Yes: yearly billing is two months free ($120 per seat a year).</p></details>
</section>
</body>
'''

FAQ_CSS = edit("src/site.css", "body { font: 16px/1.5 system-ui, sans-serif; margin: 2rem auto; max-width: 40rem; }\n",
               "body { font: 16px/1.5 system-ui, sans-serif; margin: 2rem auto; max-width: 40rem; }\n"
               ".faq details { border-top: 1px solid #ddd; padding: .5rem 0; }\n.faq summary { cursor: pointer; font-weight: 600; }\n")

FAQ = Session(
    name="pricing-faq", user="chen", repo="acme/web-app", directory="src/web-app", files=WEB_APP,
    branch="feat/pricing-faq", model="claude-sonnet-4-5", day=2, start="15:15",
    prompts=[Prompt("Add a short FAQ to the pricing page: what counts as a seat, and can we pay yearly "
                    "(yes, two months free).")],
    main=[
        turn(read("src/pricing.html")),
        turn(edit("src/pricing.html", "<body><h1>Pricing</h1><p>Free for teams up to five. Team plan: $12 per seat.</p></body>\n",
                  PRICING_FAQ)),
        turn(FAQ_CSS),  # not read yet: the client refuses the edit
        turn(say("I have to read the stylesheet first."), read("src/site.css")),
        turn(FAQ_CSS),
        turn(say("Added a **Questions** section to `src/pricing.html` with two `<details>` items (no JavaScript needed), "
                 "and two rules in `site.css` for the borders and clickable summaries.\n\n"
                 "I wrote *Anyone who signs in during the month* for a seat. Check that this matches billing; it is the "
                 "usual definition, but I could not find ours in the repository.")),
    ],
)

PROMOTE = Session(
    name="promote", user="emeka", repo="acme/infra", directory="src/infra", files=INFRA,
    branch="chore/promote-1.14.2", model="claude-haiku-4-5", day=9, start="12:30",
    prompts=[Prompt("promote api 1.14.2 to production")],
    main=[
        turn(read("values/production.yaml"), read("values/staging.yaml")),
        turn(edit("values/production.yaml", "  tag: 1.14.0\n", "  tag: 1.14.2\n")),
        turn(bash("git diff", "Show the change")),
        turn(say("Production now uses `ghcr.io/acme/api-server:1.14.2`, the tag staging runs. "
                 "Nothing is deployed yet: merge this and run `make deploy ENV=production`.")),
    ],
)

SESSIONS = [BUG_FIX, EXPLAIN, REFACTOR, NOTES_SESSION, FEATURE, COMMIT_MESSAGE, PROMOTE, GOES_WRONG, CI_CHECK,
            RELEASE, REFUNDS, FAQ, TYPO, COMPACTION]
"""Oldest first; the names are what ``make-demo --only`` takes."""
