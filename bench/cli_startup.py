"""How long `corpusmill --help` takes (it must not import Beam), against a bare `python -c pass`.

.venv/bin/python bench/cli_startup.py
"""

import statistics
import subprocess
import sys
import time


def timed(args, n=7):
    runs = []
    for _ in range(n):
        t = time.perf_counter()
        subprocess.run(args, check=True, capture_output=True)
        runs.append(time.perf_counter() - t)
    return statistics.median(runs)


if __name__ == "__main__":
    bare = timed([sys.executable, "-c", "pass"])
    help_ = timed([sys.executable, "-m", "corpusmill.cli.main", "--help"])
    beam = timed([sys.executable, "-c", "import apache_beam"])
    print(
        f"python -c pass: {bare * 1000:.0f} ms; corpusmill --help: {help_ * 1000:.0f} ms; "
        f"import apache_beam alone: {beam * 1000:.0f} ms"
    )
