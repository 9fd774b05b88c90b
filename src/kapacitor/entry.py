"""The ``kapacitor`` command's entry point.

``kapacitor hook EVENT`` runs on every agent action, so it goes straight to the
stdlib-only hook without importing click, rich, orjson or the normalizer (see
``python -X importtime``); everything else is the click CLI.
"""

from __future__ import annotations

import sys


def main() -> int | None:
    if sys.argv[1:2] == ["hook"] and "--help" not in sys.argv:
        from kapacitor.capture.hook import main as hook_main

        return hook_main(sys.argv[2:])
    from kapacitor.cli import main as cli_main

    return cli_main()
