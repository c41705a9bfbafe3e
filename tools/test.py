#!/usr/bin/env python
"""`pyanomaly test`: see `pyanomaly/commands/test.py` (or `python tools/test.py --help`)."""
from pyanomaly.commands.test import main

if __name__ == "__main__":
    main()
