"""Re-run this frozen experiment: python experiments/CelebaBeta03/main.py [--set KEY.PATH=VALUE ...] [--overwrite]

Results go to experiments/CelebaBeta03/results/ (a second run to results-2/, ...). See `--help`.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from homogan.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["run-experiment", str(Path(__file__).resolve().parent), *sys.argv[1:]]))
