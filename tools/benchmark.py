#!/usr/bin/env python
"""`pyanomaly benchmark`: see `pyanomaly/commands/benchmark.py` (or `python tools/benchmark.py --help`)."""
from pyanomaly.commands.benchmark import main

if __name__ == "__main__":
    main()
