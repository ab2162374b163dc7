"""Peak RSS of the CCNet stage at three input sizes (the WET file of bench/wet_kernels.py).

    .venv/bin/python bench/stage_memory.py [--docs /usr/share/doc/python3.11/html] [--copies 1,2,4] [--workers 1]

Each run is a fresh ``corpusmill ccnet --input X.wet.gz --languages en --workers N`` process; its peak
RSS (and its worker processes', ``RUSAGE_CHILDREN``) is read when it ends. Prints MiB per size and
the growth per 1,000 records.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def peak_rss_mib(args, env) -> float:
    """The peak RSS of one command, measured in a fresh helper process so earlier runs do not count."""
    helper = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, "
              "stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); "
              "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", helper, *args], capture_output=True, text=True, env=env, check=True)
    return int(out.stdout.strip()) / 1024


def main() -> None:
    from wet_kernels import build_wet

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", default="/usr/share/doc/python3.11/html")
    ap.add_argument("--copies", default="1,2,4")
    ap.add_argument("--workers", default="1")
    args = ap.parse_args()
    command = os.path.join(os.path.dirname(sys.executable), "corpusmill")
    env = dict(os.environ, CORPUSMILL_PROGRESS="0")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for copies in map(int, args.copies.split(",")):
            wet = os.path.join(tmp, f"pages-{copies}.wet.gz")
            n = build_wet(wet, args.docs, copies)
            mib = peak_rss_mib([command, "ccnet", "--input", wet, "--output", os.path.join(tmp, f"out{copies}"),
                                "--languages", "en", "--workers", args.workers], env)
            rows.append((n, mib))
            print(f"{n:6d} records ({os.path.getsize(wet) / 1e6:.1f} MB WET): peak RSS {mib:.0f} MiB")
    (n0, m0), (n1, m1) = rows[0], rows[-1]
    print(f"growth: {(m1 - m0) / (n1 - n0) * 1000:.1f} MiB per 1,000 records")
    _ = resource  # (the helper measures)


if __name__ == "__main__":
    main()
