"""Shared command-line plumbing of the commands (``pyanomaly X`` and ``tools/``): parse, fail clearly."""
from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from typing import Callable, Sequence

from pyanomaly.errors import KNOWN_ERRORS

_CONFIG_KEY = re.compile(r"^[A-Z][A-Z0-9_]*(\.[A-Z0-9_]+)+$")  # an override's key, e.g. STREAM.FPS


class ConfigArgumentParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose options may also follow the ``KEY VALUE`` overrides.

    The overrides are collected with ``argparse.REMAINDER`` (so a value such as ``-1e-3`` is
    never mistaken for an option), which on its own would swallow an option written after
    them: ``--cfg x.yaml TRAIN.LR 0.1 --resume``. Options this parser knows are moved in
    front of the overrides first, wherever the user wrote them. An option with several values
    (``--video a.avi b.avi``, ``action="extend"``) takes the tokens up to the next option or the
    first ``SECTION.KEY`` override, passed on as ``--video=a.avi --video=b.avi``.
    """

    def parse_known_args(self, args: Sequence[str] | None = None, namespace=None):
        argv = list(sys.argv[1:] if args is None else args)
        return super().parse_known_args(self._options_first(argv), namespace)

    def _options_first(self, argv: list[str]) -> list[str]:
        options, rest, i = [], [], 0
        while i < len(argv):
            token = argv[i]
            action = self._option_string_actions.get(token.split("=", 1)[0]) if token.startswith("-") else None
            if action is None:
                rest.append(token)
                i += 1
                continue
            if action.nargs in ("+", "*") and "=" not in token:  # as OPTION=VALUE each (its action extends)
                i += 1
                while i < len(argv) and not argv[i].startswith("-") and not _CONFIG_KEY.match(argv[i]):
                    options.append(f"{token}={argv[i]}")
                    i += 1
                continue
            takes = 0 if "=" in token or action.nargs == 0 else 1  # other options take 0 or 1 value
            options += argv[i:i + 1 + takes]
            i += 1 + takes
        return options + rest


def plain_parser(description: str, prog: str | None = None) -> argparse.ArgumentParser:
    """A parser that prints ``description`` as written (``prog``: the command's name in usage lines)."""
    return argparse.ArgumentParser(prog=prog, description=description,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)


def config_parser(description: str, prog: str | None = None, cfg_help: str | None = None) -> argparse.ArgumentParser:
    """A parser with ``--cfg FILE`` and trailing ``KEY VALUE`` overrides (``args.cfg``, ``args.opts``);
    ``cfg_help``: ``--cfg`` is optional, with this help (``args.cfg`` None when not given)."""
    p = ConfigArgumentParser(prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cfg", required=cfg_help is None, metavar="FILE",
                   help=cfg_help or "YAML config (overrides the defaults)")
    p.add_argument("opts", nargs=argparse.REMAINDER, metavar="KEY VALUE",
                   help="config overrides, e.g. TRAIN.MAX_STEPS 100 DATASET.ROOT data/x")
    return p


def share_the_machine() -> None:
    """OpenMP threads that sleep when idle (``OMP_WAIT_POLICY=PASSIVE``) unless the environment says
    otherwise: spinning threads make two jobs on the same cores run about ten times slower each.
    Read by the OpenMP runtime when torch loads, so this runs before anything imports torch."""
    if "torch" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def run_cli(main: Callable[[], object]) -> None:
    """Run ``main`` (after :func:`share_the_machine`); a known kind of failure prints one line
    ``error: ...`` and exits 2.

    The line also goes to the run's ``log.txt`` when one is open, so a long run's log says
    why it ended.
    """
    share_the_machine()
    try:
        main()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except KNOWN_ERRORS as exc:
        message = "error: " + " ".join(line.strip() for line in str(exc).splitlines() if line.strip())  # one line
        _log_to_files(message)
        print(message, file=sys.stderr)
        sys.exit(2)


def _log_to_files(message: str) -> None:
    """Append ``message`` to the log files of the ``pyanomaly`` logger (not to the console)."""
    record = logging.makeLogRecord({"name": "pyanomaly", "levelno": logging.ERROR, "levelname": "ERROR",
                                    "msg": message})
    for handler in logging.getLogger("pyanomaly").handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)
