"""`python -m bench [--sizes 10000,100000] [--quick]`: the performance benchmarks (bench.perf)."""

from __future__ import annotations

import sys

from bench.perf import main

if __name__ == "__main__":
    sys.exit(main())
