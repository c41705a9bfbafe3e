#!/usr/bin/env python
"""`pyanomaly synth`: see `pyanomaly/commands/synth.py` (or `python tools/make_synthetic.py --help`)."""
from pyanomaly.commands.synth import main

if __name__ == "__main__":
    main()
