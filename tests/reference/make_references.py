"""Write ``reference_summaries.json``: long NUTS runs of the reference posteriors that
have no closed form (8 chains x 4,000 draws after 1,000 warm-up, target acceptance
0.95, pgen's defaults otherwise; each entry's "run" records how it was made), each
checked (R-hat below 1.01, bulk ESS above 4,000, no divergences) before its mean and sd
are stored.

    python tests/reference/make_references.py            # all of them
    python tests/reference/make_references.py garch      # one, the others kept
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import pgen  # noqa: E402
from tests.reference.posteriors import REFERENCES, SUMMARIES, scalar_draws  # noqa: E402


def main():
    only = set(sys.argv[1:])
    out = json.loads(SUMMARIES.read_text()) if only and SUMMARIES.exists() else {}
    for name, (model, args, exact) in REFERENCES.items():
        if exact is not None or (only and name not in only):
            continue
        start = time.perf_counter()
        r = pgen.sample(
            model,
            *args,
            chains=8,
            warmup=1000,
            draws=4000,
            seed=2026,
            target_accept=0.95,
            progress=False,
            warn=False,
        )
        seconds = time.perf_counter() - start
        s = r.summary
        ok = s["r_hat"].max() < 1.01 and s["ess_bulk"].min() > 4000 and r.divergences == 0
        print(
            f"{name}: {seconds:.0f} s, max R-hat {s['r_hat'].max():.4f}, min ESS {s['ess_bulk'].min():.0f}, "
            f"{r.divergences} divergences{'' if ok else '  NOT STORED'}",
            flush=True,
        )
        if not ok:
            continue
        draws = scalar_draws(r.samples)
        out[name] = {
            "run": "NUTS, 8 chains x (1000 + 4000), seed 2026, target_accept 0.95, pgen defaults otherwise",
            "max_r_hat": float(s["r_hat"].max()),
            "min_ess_bulk": float(s["ess_bulk"].min()),
            "parameters": {k: {"mean": float(np.mean(v)), "sd": float(np.std(v))} for k, v in draws.items()},
        }
    SUMMARIES.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    print(f"wrote {SUMMARIES}")


if __name__ == "__main__":
    main()
