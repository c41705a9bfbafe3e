"""Shared command-line plumbing of the ``tools/`` scripts: parse, load config, fail clearly."""
from __future__ import annotations

import argparse
import sys
from typing import Callable


def config_parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cfg", required=True, metavar="FILE", help="YAML config (overrides the defaults)")
    p.add_argument("opts", nargs=argparse.REMAINDER, metavar="KEY VALUE",
                   help="config overrides, e.g. TRAIN.MAX_STEPS 100 DATASET.ROOT data/x")
    return p


def run_cli(main: Callable[[], object]) -> None:
    """Run ``main``; a known kind of failure prints one line ``error: ...`` and exits 2."""
    from pyanomaly.config import ConfigError
    from pyanomaly.datasets.base import DatasetError
    from pyanomaly.engine.checkpoint import CheckpointError
    from pyanomaly.engine.hooks import NonFiniteLossError
    from pyanomaly.registry import RegistryError
    known = (ConfigError, DatasetError, CheckpointError, RegistryError, NonFiniteLossError,
             FileNotFoundError, ModuleNotFoundError, PermissionError, OSError, ValueError)
    try:
        main()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except known as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
