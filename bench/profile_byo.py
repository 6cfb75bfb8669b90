"""Where a BYO upsert's server CPU goes: N clustered 384-d vectors through POST
/documents/upsert (bench.perf.ingest_byo: one client, 1,000 documents a call) into a fresh
server whose index build is off, with py-spy attached.

    python -m bench.profile_byo [--n 50000] [--label run]

Prints the ingest figures (docs/s, server CPU-ms per 1,000 documents) and the top frames by
own samples; raw stacks go to bench/results/profile-byo-<label>.txt.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from bench.common import start_server
from bench.generate import Dataset, Spec
from bench.measure import ADMIN_KEY, CACHE_DIR, RESULTS_DIR
from bench.perf import BUILD_ENV, ingest_byo, setup_collection
from bench.profile_execute import spy_on, stop_spy, summarise


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=50_000)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--data-root", type=Path, default=Path("/work/bench-data"))
    p.add_argument("--label", default="run")
    args = p.parse_args(argv)
    ds = Dataset(Spec(args.n, args.seed))
    vectors = ds.vectors(CACHE_DIR)
    data_dir = args.data_root / f"profile-byo-{args.label}"
    shutil.rmtree(data_dir, ignore_errors=True)
    raw = RESULTS_DIR / f"profile-byo-{args.label}.txt"
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    # No background build: the profile is of the write path alone.
    with start_server(data_dir, admin_key=ADMIN_KEY, env={BUILD_ENV: "0"}) as server:
        setup_collection(server.base_url)
        spy = spy_on(server.proc.pid, raw, rate=200)
        result = ingest_byo(server, ds, vectors)
        stop_spy(spy)
    shutil.rmtree(data_dir, ignore_errors=True)
    print(json.dumps({k: v for k, v in result.items() if not isinstance(v, list)}, indent=2))
    for name, share in summarise(raw)["own_top_percent"][:20]:
        print(f"  own {share:5.1f}%  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
