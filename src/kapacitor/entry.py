"""The ``kapacitor`` command's entry point.

``kapacitor hook EVENT`` runs on every agent action, so it goes straight to the
stdlib-only hook without importing click, rich, orjson or the normalizer (see
``python -X importtime``); ``kapacitor mcp`` goes straight to its server (the
agent waits for it to connect); everything else is the click CLI.
"""

from __future__ import annotations

import os
import sys


def main() -> int | None:
    if sys.argv[1:2] == ["hook"] and "--help" not in sys.argv:
        try:
            from kapacitor.capture.hook import main as hook_main
        except ImportError as exc:  # e.g. no fcntl (Windows): the agent must not notice
            from kapacitor.capture.client_config import log_failure

            log_failure(f"hook cannot run here: {exc}")
            os._exit(0)
        code = hook_main(sys.argv[2:])
        sys.stdout.flush()
        os._exit(code)  # skip interpreter teardown: nothing is left to clean up, and it costs ms
    if sys.argv[1:] == ["mcp"]:  # started by the agent at its start: skip loading every command
        from kapacitor.memory.mcp_server import serve

        serve()
        return None
    from kapacitor.cli import main as cli_main

    return cli_main()
