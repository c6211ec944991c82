"""`python -m qin_env.bench.leaderboard ...`, the same as `qin leaderboard ...`."""

import sys

from qin_env.bench.leaderboard.command import main

sys.exit(main(prog="python -m qin_env.bench.leaderboard"))
