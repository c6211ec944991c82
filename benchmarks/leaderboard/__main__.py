"""`python -m benchmarks.leaderboard ...`, the same as `qin leaderboard ...`."""

import sys

from benchmarks.leaderboard.command import main

sys.exit(main(prog="python -m benchmarks.leaderboard"))
