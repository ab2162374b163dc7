"""Peak RSS and wall time of the CCNet stage and of datatrove on the same WARC, at three input sizes.

    .venv/bin/python bench/datatrove_memory.py --datatrove-python /tmp/dtvenv/bin/python \
        [--docs /usr/share/doc/python3.11/html] [--copies 1,2,4]

datatrove is not a corpusmill dependency: install it in a venv of its own, e.g.
``python3.11 -m venv /tmp/dtvenv && /tmp/dtvenv/bin/pip install "datatrove[processing]==0.10.1" lxml_html_clean
trafilatura==2.3.1 faust-cchardet python-magic warcio orjson`` (the trafilatura corpusmill uses; the last four
are what datatrove's WarcReader and JsonlWriter ask for).

The WARC: every page of Debian's python3.11-doc as an HTTP 200 response, ``--copies`` times under new
URLs. On it, each in a fresh process, one worker:

- datatrove: ``WarcReader -> Trafilatura -> lid.176 (the same .ftz, score >= 0.5, English) -> JsonlWriter``;
- corpusmill: ``corpusmill ccnet --input X.warc.gz --languages en --workers 1``, which also normalizes,
  removes lines repeated across pages (a shuffle of every line hash) and keeps one copy per URL and text.

Prints, per size, the peak RSS of each (the largest of the process and its children) and the wall time.
"""

from __future__ import annotations

import argparse
import glob
import io
import os
import subprocess
import sys
import tempfile
import time

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

HERE = os.path.dirname(os.path.abspath(__file__))

DATATROVE = r'''
import sys
from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.extractors import Trafilatura
from datatrove.pipeline.readers import WarcReader
from datatrove.pipeline.writers import JsonlWriter

warc_dir, out_dir, log_dir, model = sys.argv[1:5]


def lid(data, rank=0, world_size=1):
    import fasttext

    ft = fasttext.load_model(model)
    for doc in data:
        labels, scores = ft.predict(doc.text.replace("\n", " "), k=1)
        if labels and labels[0] == "__label__en" and scores[0] >= 0.5:
            doc.metadata["language_score"] = float(scores[0])
            yield doc


LocalPipelineExecutor(pipeline=[WarcReader(warc_dir), Trafilatura(favour_precision=True), lid,
                                JsonlWriter(out_dir)], tasks=1, workers=1, logging_dir=log_dir).run()
'''


def build_warc(path: str, docs: str, copies: int) -> int:
    pages = sorted(glob.glob(os.path.join(docs, "**", "*.html"), recursive=True))
    http = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8")], protocol="HTTP/1.1")
    n = 0
    with open(path, "wb") as out:
        writer = WARCWriter(out, gzip=True)
        for c in range(copies):
            for page in pages:
                body = open(page, "rb").read()
                url = f"https://docs.python.org/3.11/{os.path.relpath(page, docs)}?copy={c}"
                writer.write_record(
                    writer.create_warc_record(url, "response", payload=io.BytesIO(body), http_headers=http)
                )
                n += 1
    return n


def measured(args, env):
    """(peak RSS in MiB, wall seconds) of one command, from a fresh helper process."""
    helper = (
        "import resource, subprocess, sys, time; t = time.perf_counter(); subprocess.run(sys.argv[1:], "
        "check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, time.perf_counter() - t)"
    )
    out = subprocess.run([sys.executable, "-c", helper, *args], capture_output=True, text=True, env=env, check=True)
    rss, wall = out.stdout.split()
    return int(rss) / 1024, float(wall)


def main() -> None:
    from corpusmill.filters.lid import default_lid_model

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datatrove-python", required=True, help="a python with datatrove installed")
    ap.add_argument("--docs", default="/usr/share/doc/python3.11/html")
    ap.add_argument("--copies", default="1,2,4")
    args = ap.parse_args()
    command = os.path.join(os.path.dirname(sys.executable), "corpusmill")
    env = dict(os.environ, CORPUSMILL_PROGRESS="0")
    model = default_lid_model()
    print("records  corpusmill MiB  datatrove MiB  ratio   corpusmill s  datatrove s")
    with tempfile.TemporaryDirectory() as tmp:
        script = os.path.join(tmp, "datatrove_run.py")
        with open(script, "w", encoding="utf-8") as fh:
            fh.write(DATATROVE)
        for copies in map(int, args.copies.split(",")):
            warc_dir = os.path.join(tmp, f"warc{copies}")
            os.makedirs(warc_dir)
            n = build_warc(os.path.join(warc_dir, "pages.warc.gz"), args.docs, copies)
            t = time.perf_counter()
            dt = measured(
                [
                    args.datatrove_python,
                    script,
                    warc_dir,
                    os.path.join(tmp, f"dt{copies}"),
                    os.path.join(tmp, f"dtlog{copies}"),
                    model,
                ],
                env,
            )
            cm = measured(
                [
                    command,
                    "ccnet",
                    "--input",
                    os.path.join(warc_dir, "pages.warc.gz"),
                    "--output",
                    os.path.join(tmp, f"cm{copies}"),
                    "--languages",
                    "en",
                    "--workers",
                    "1",
                ],
                env,
            )
            print(
                f"{n:7d}  {cm[0]:14.0f}  {dt[0]:13.0f}  {cm[0] / dt[0]:5.2f}x  {cm[1]:12.1f}  {dt[1]:11.1f}"
                f"   ({time.perf_counter() - t:.0f} s)",
                flush=True,
            )


if __name__ == "__main__":
    main()
