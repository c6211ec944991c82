"""`python -m qin_env.bench ...`, the same as `qin ...`."""

import sys

from qin_env.bench.cli import main

sys.exit(main())
