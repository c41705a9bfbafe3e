"""``python -m pyanomaly <command> ...``: the ``pyanomaly`` console command."""
from pyanomaly.cli import main

if __name__ == "__main__":
    main()
