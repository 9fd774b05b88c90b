"""What masking a 30 MB batch costs the hook and the follower (stdlib only).

A hook carrying a 30 MB tool output (or the follower reading the transcript
line that holds it) masks it before sending or spooling, with the standard
library only: the keywords are found by a ``KeywordScan`` (about 20 trie
regexes). Measured in the same run, on the same text:

  stdlib      ``shipper._mask`` on the batch (JSON-dumping the payload,
              lowercasing, the keyword scan, the rules that trigger, markers)
  in-loop     the keyword prefilter alone done the plain way, one ``in`` per
              keyword (what the stdlib engine did before ``KeywordScan``)
  accelerated the same batch masked by the Aho-Corasick engine
              (``ahocorasick_rs``: import, ingest, scrub)

for build output (the text of tests/test_live_capture_limits.py) and for
random base64 (the worst case for a scan by first character).

    python bench/redact_big.py [--mb 30]
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import time

from kapacitor.capture import shipper
from kapacitor.normalize import redact


def texts(mb: int) -> dict[str, str]:
    lines = mb * 1_000_000 // 84
    build = "".join(f"line {i}: build output with \"quotes\", a tab\tand /home/dev/src/widgets/f_{i}.py\n" for i in range(lines))
    noise = base64.b64encode(random.Random(1).randbytes(mb * 750_000)).decode("ascii")
    return {"build output": build, "base64": noise}


def cpu(work) -> float:  # noqa: ANN001
    started = time.process_time()
    work()
    return time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=30, help="size of the tool output (default 30)")
    args = parser.parse_args()
    plain, fast = redact.load_rules(key=b"bench"), redact.load_rules(key=b"bench", accelerate=True)
    redact._DEFAULT[False] = plain  # what shipper._mask uses
    words = [*plain._lower, *(k[1:].lower() for k in plain._exact)]
    for name, output in texts(args.mb).items():
        invented = "".join(random.Random(2).choices("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", k=36))
        output += f"\nexport GITHUB_TOKEN=ghp_{invented}\n"  # an invented token: the rules must find it
        payload = {"session_id": "s", "tool_name": "Bash", "tool_response": {"stdout": output}}
        text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
        low = redact.ascii_lower(text)
        hook = {"event": "PostToolUse", "at": "2026-11-29T00:00:00Z", "payload": payload}
        stdlib = cpu(lambda: shipper._mask(hook, None, [], "/home/dev/src/widgets", None))  # noqa: B023
        assert "[REDACTED github-pat #" in hook["payload"]["tool_response"]["stdout"]
        in_loop = cpu(lambda: [w for w in words if w in low])  # noqa: B023
        accelerated = cpu(lambda: fast.redact(text))  # noqa: B023
        print(f"{name:12} {len(text) / 1e6:5.1f} MB   stdlib mask {stdlib:5.2f} s CPU   prefilter by `in` alone {in_loop:5.2f} s"
              f"   accelerated mask {accelerated:5.2f} s")


if __name__ == "__main__":
    main()
