#!/usr/bin/env python
"""`pyanomaly export`: see `pyanomaly/commands/export.py` (or `python tools/export_checkpoint.py --help`)."""
from pyanomaly.commands.export import main

if __name__ == "__main__":
    main()
