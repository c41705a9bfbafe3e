#!/usr/bin/env python
"""`pyanomaly score`: see `pyanomaly/commands/score.py` (or `python tools/score_video.py --help`)."""
from pyanomaly.commands.score import main

if __name__ == "__main__":
    main()
