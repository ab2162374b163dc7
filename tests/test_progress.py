"""Live progress (issue 14): a run prints per-step counts, documents/s, input done and an ETA; in place
on a terminal, as plain lines in a log."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import time

from helpers import DATA, warc

from corpusmill.core import progress

LINE = re.compile(r"^\[(?P<label>[^\]]+)\] \d+m\d\ds  [\d,.]+ docs/s  (?P<steps>.*)$")


def test_a_logged_run_prints_plain_progress_lines(tmp_path):
    env = dict(os.environ, CORPUSMILL_PROGRESS_EVERY="0.2")
    command = os.path.join(os.path.dirname(sys.executable), "corpusmill")
    proc = subprocess.run(
        [
            command,
            "ccnet",
            "--input",
            warc("pydocs.warc.gz"),
            "--output",
            str(tmp_path / "o"),
            "--languages",
            "en",
            "--extractor",
            "resiliparse",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "\r" not in proc.stderr  # a log stays readable: whole lines only
    lines = [m for m in map(LINE.match, proc.stderr.splitlines()) if m]
    assert lines, proc.stderr[-2000:]
    assert {m["label"] for m in lines} == {"ccnet"}  # one unit: one pipeline, unit and final pass together
    last = lines[-1]["steps"]
    # the unit's last line has its steps in order with read>kept counts, and the input's share
    steps = re.findall(r"(\w+) ([\d,]+)>([\d,]+)", last)
    assert [s[0] for s in steps] == [
        "extract",
        "normalize",
        "line_dedup",
        "lid",
        "collect",
        "url_dedup",
        "content_dedup",
    ]
    assert all(int(r.replace(",", "")) >= int(k.replace(",", "")) for _, r, k in steps)


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_terminal_gets_one_line_refreshed_in_place_with_an_eta(tmp_path, monkeypatch):
    monkeypatch.setattr(progress, "MIN_ETA_SECONDS", 1.0)  # (a real run waits 3 s for a rate worth a guess)
    data = os.path.join(DATA, "warc", "pydocs.warc.gz")
    screen = _Terminal()
    with progress.Watcher("demo", lambda: ["extract", "lid"], stream=screen):
        progress.expect_input([data])
        size = os.path.getsize(data)
        extract, lid = progress.Tally("extract"), progress.Tally("lid")
        for _ in range(3):
            extract.add(size // 4, True)
            lid.add(10, False)
            extract.flush(), lid.flush()
            time.sleep(0.6)
    out = screen.getvalue()
    assert out.count("\r") >= 2 and out.endswith("\n") and out.count("\n") == 1
    final = out.split("\r")[-1].strip()
    assert "extract 3>3  lid 3>0" in final and "(75%)" in final and "ETA" in final


def test_progress_can_be_turned_off(monkeypatch):
    monkeypatch.setenv("CORPUSMILL_PROGRESS", "0")
    screen = _Terminal()
    with progress.Watcher("off", stream=screen):
        assert "CORPUSMILL_PROGRESS_DIR" not in os.environ
    assert screen.getvalue() == ""


def test_a_narrow_terminal_keeps_the_latest_steps_in_view_and_no_start_up_eta(monkeypatch):
    """Issue 29, item 12: the line was cut at the terminal's width, so the later steps (fuzzy_dedup and on)
    never showed; and the first ETA came from the start-up rate (19m13s for 2 s of work)."""
    import shutil

    data = os.path.join(DATA, "warc", "pydocs.warc.gz")
    names = ["extract", "normalize", "collect", "url_dedup", "content_dedup", "fuzzy_dedup", "line_dedup", "lid"]
    monkeypatch.setattr(shutil, "get_terminal_size", lambda fallback=None: os.terminal_size((90, 20)))
    screen = _Terminal()
    with progress.Watcher("narrow", lambda: names, stream=screen):
        progress.expect_input([data])
        tallies = [progress.Tally(n) for n in names]
        tallies[0].add(os.path.getsize(data) // 200, True)  # 0.5% of the input read
        for t in tallies[1:]:
            t.add(0, True)
        for t in tallies:
            t.flush()
        time.sleep(0.6)
    final = screen.getvalue().split("\r")[-1].strip()
    assert len(final) < 90 and final.split("|")[0].rstrip().endswith("lid 1>1") and "steps ..." in final
    assert "extract 1>1" in final and "ETA" not in final
