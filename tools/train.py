#!/usr/bin/env python
"""`pyanomaly train`: see `pyanomaly/commands/train.py` (or `python tools/train.py --help`)."""
from pyanomaly.commands.train import main

if __name__ == "__main__":
    main()
