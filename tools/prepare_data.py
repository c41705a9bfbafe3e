"""`pyanomaly prepare`: see `pyanomaly/commands/prepare.py` (or `python tools/prepare_data.py --help`)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from pyanomaly.commands.prepare import main  # noqa: E402

if __name__ == "__main__":
    main()
