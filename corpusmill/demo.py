"""``corpusmill demo``: the main job on bundled real data.

For now it runs the CCNet stage on the bundled real WARC samples (a 2014 iana.org crawl from pywb's
test data and Python documentation pages written as a crawl) and prints the stats. Later stages are
added here as they land; a stage that is not built yet is listed as skipped, never faked.
"""

from __future__ import annotations

import os

from corpusmill.errors import CorpusmillError

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLES = os.path.join(REPO_ROOT, "tests", "data")


def sample_path(*parts: str) -> str:
    path = os.path.join(SAMPLES, *parts)
    if not os.path.exists(path):
        raise CorpusmillError(f"bundled sample {path} is missing: the demo runs from a corpusmill source checkout")
    return path


def register(sub) -> None:
    parser = sub.add_parser("demo", help="run the recipe on bundled real samples and print where the results are")
    parser.add_argument("--output", default="demo-out", help="output directory (default: ./demo-out, replaced)")
    parser.set_defaults(func=_main, accepts_beam_args=True)


def _main(args, beam_args) -> int:
    from corpusmill.pipelines.ccnet import CCNetConfig, run_ccnet
    from corpusmill.pipelines.stage import format_stats

    out = os.path.abspath(args.output)
    cc_out = os.path.join(out, "cc")
    print(f"[demo] CCNet stage on {sample_path('warc')}/{{iana,pydocs}}.warc.gz -> {cc_out}")
    stats = run_ccnet(CCNetConfig(inputs=[sample_path("warc", "iana.warc.gz"), sample_path("warc", "pydocs.warc.gz")],
                                  output=cc_out, overwrite=True), beam_args)
    print(format_stats(stats))
    for stage in ("perplexity buckets + Wikipedia classifier", "source processors", "tokenizer + mixer + shards",
                  "trainer", "report"):
        print(f"[demo] skipped: {stage} (not built yet)")
    print(f"[demo] documents: {cc_out}/<lang>/part-*.jsonl.gz, stats: {cc_out}/stats.json")
    return 0
