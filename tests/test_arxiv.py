"""The ArXiv source on real LaTeX (Debian texlive-publishers-doc samples, see tests/data/PROVENANCE.md),
packed the way arXiv ships sources, plus hostile archives built here."""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import shutil
import tarfile

import pytest
from helpers import ANY_FAILURES, tree_digest

from corpusmill.cli import main as cli_main
from corpusmill.core.files import read_failed, read_output
from corpusmill.filters.arxiv_archive import ExtractPaper, PaperRecord
from corpusmill.filters.latex import (
    MacroExpansionError,
    clean_latex,
    expand_macros,
    extract_macros,
    inline_inputs,
    protect_verbatim,
    strip_comments,
)
from corpusmill.io.papers import _read_folder
from corpusmill.pipelines.arxiv import ArxivConfig, run_arxiv

DATA = os.path.join(os.path.dirname(__file__), "data", "arxiv")
PAPERS = sorted(os.listdir(os.path.join(DATA, "papers")))
DEF_RE = r"\\(newcommand|renewcommand|providecommand|DeclareMathOperator|def|gdef|edef|xdef)(?![A-Za-z@])"


def _gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def _tar(members) -> bytes:
    """members: (TarInfo, bytes or None)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _file(name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def _link(name, target, kind=tarfile.SYMTYPE):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, None


def _folder_tar(root) -> bytes:
    members = []
    for dirpath, _dirs, files in sorted(os.walk(root)):
        for n in sorted(files):
            full = os.path.join(dirpath, n)
            members.append(_file(os.path.relpath(full, root), open(full, "rb").read()))
    return _tar(members)


TEX = r"\documentclass{article}" "\n" r"\begin{document}" "\n" r"\section{Intro}" "\n{body}\n" r"\end{document}" "\n"


def _tex(body: str, preamble: str = "") -> str:
    return TEX.replace(r"\begin{document}", preamble + r"\begin{document}").replace("{body}", body)


@pytest.fixture(scope="module")
def arxiv_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("arxiv")
    members, expect = [], {}
    for i, name in enumerate(PAPERS, 1):  # single gzipped .tex: how arXiv ships one-file papers
        members.append(_file(f"2301/2301.{i:05d}.gz", open(os.path.join(DATA, "papers", name), "rb").read()))
        expect[f"2301.{i:05d}"] = name
    members.append(_file("2301/2301.00005.gz", _gz(_folder_tar(os.path.join(DATA, "folders", "ecothesis")))))
    hostile = {
        "2301.00006": _tar([_file("paper.tex", _tex("ok").encode()), _file("../../evil.tex", b"x")]),
        "2301.00007": _tar([_file("paper.tex", _tex("ok").encode()), _link("figs", "/etc")]),
        "2301.00008": _tar([_file("/etc/passwd.tex", b"x")]),
        "2301.00009": _tar([_file("paper.tex", _tex("ok").encode()), _link("copy.tex", "paper.tex", tarfile.LNKTYPE)]),
    }
    for pid, data in hostile.items():
        members.append(_file(f"2301/{pid}.gz", _gz(data)))
    huge = tarfile.TarInfo("data.tex")  # declares 10 GB; the archive holds a few bytes
    huge.size = 10 << 30
    members.append(_file("2301/2301.00010.gz", _gz(huge.tobuf(tarfile.GNU_FORMAT) + b"x" * 1024)))
    members.append(_file("2301/2301.00011.gz", _gz(_tex("Caf\xe9 na\xefve").encode("latin-1"))))
    members.append(
        _file(
            "2301/2301.00012.gz",
            _gz(
                _tex("Caf\xe9 \\naive", r"\usepackage[latin1]{inputenc}\newcommand{\naive}{na\"\i ve}").encode(
                    "latin-1"
                )
            ),
        )
    )
    bomb = "".join(r"\newcommand{\b%s}{\b%s\b%s}" % (chr(97 + i + 1), chr(97 + i), chr(97 + i)) for i in range(30))
    members.append(
        _file("2301/2301.00013.gz", _gz(_tex(r"\bz{} \b" + chr(97 + 30), r"\newcommand{\ba}{lol}" + bomb).encode()))
    )
    members.append(_file("2301/2301.00014.gz", _gz(_tex(r"\loop", r"\def\loop{\loop x}").encode())))
    members.append(_file("2301/2301.00015.pdf", b"%PDF-1.4 not a source"))
    members.append(_file("../escape.gz", _gz(_tex("x").encode())))
    members.append(_link("2301/2301.00016.gz", "/etc/shadow"))
    bulk = tmp / "arXiv_src_2301_001.tar"
    bulk.write_bytes(_tar(members))
    # A bulk tar whose last member declares 10 GB (truncated download): the scan must not read it.
    big = tarfile.TarInfo("2301/2301.00099.gz")
    big.size = 10 << 30
    bulk2 = tmp / "arXiv_src_2301_002.tar"
    small_info, small = _file("2301/2301.00098.gz", _gz(_tex("A small paper.").encode()))
    bulk2.write_bytes(
        small_info.tobuf(tarfile.GNU_FORMAT)
        + small
        + b"\0" * (-len(small) % 512)
        + big.tobuf(tarfile.GNU_FORMAT)
        + b"\x1f\x8b" * 100
    )
    out = str(tmp / "out")
    stats = run_arxiv(ArxivConfig(input=[str(bulk), str(bulk2)], output=out, write_dropped=True, **ANY_FAILURES))
    return {"out": out, "stats": {s["step"]: s for s in stats}, "expect": expect}


def _dropped(out, step):
    found = {}
    base = os.path.join(out, "_dropped", step)
    for name in os.listdir(base) if os.path.isdir(base) else []:
        with gzip.open(os.path.join(base, name), "rt") as fh:
            for line in fh:
                d = json.loads(line)["document"]
                reason = re.sub(r"-\d{5}$", "", name[: -len(".jsonl.gz")])  # --write-dropped files are sharded
                found[d["metadata"]["paper"]] = (reason, d["metadata"].get("reject_detail", ""))
    return found


def test_hostile_archives_are_dropped_with_reasons(arxiv_run):
    out = arxiv_run["out"]
    dropped = _dropped(out, "extract")
    assert dropped["2301.00006"][0] == "unsafe_path" and "../../evil.tex" in dropped["2301.00006"][1]
    assert dropped["2301.00007"][0] == "link_member" and dropped["2301.00009"][0] == "link_member"
    assert dropped["2301.00008"][0] == "unsafe_path"
    assert dropped["2301.00010"][0] == "too_large" and str(10 << 30) in dropped["2301.00010"][1]
    assert dropped["2301.00099"][0] == "too_large"  # the 10 GB bulk member: rejected from its header
    assert dropped["escape"][0] == "unsafe_path" and dropped["2301.00016"][0] == "link_member"
    assert dropped["2301.00011"][0] == "not_utf8"
    assert dropped["2301.00015"][0] == "not_latex"
    # an exponential macro bomb and a self-referencing macro: the paper is kept, the uses that pass a
    # bound are left as written, named on the document and counted in stats.json (issue 16)
    assert [f["step"] for f in read_failed(out)] == ["extract"]  # (only the truncated bulk tar)
    s = arxiv_run["stats"]
    assert s["latex"]["failed"] == 0
    docs = {d.metadata["paper"]: d for d in read_output(out)}
    bomb, loop = docs["2301.00013"], docs["2301.00014"]
    assert "bz" in bomb.metadata["macros_not_expanded"] and bomb.text == "\\section{Intro}\n\\bz{} \\b" + chr(97 + 30)
    assert loop.metadata["macros_not_expanded"] == ["loop"] and loop.text == "\\section{Intro}\n\\loop"
    assert s["latex"]["counters"]["macros_not_expanded"] == 3  # both uses in the bomb paper, and \loop
    assert docs["2301.00012"].metadata["encoding"] == "latin-1" and "Café na\\\"\\i ve" in docs["2301.00012"].text
    assert docs["2301.00098"].text.startswith(r"\section{Intro}")  # the small paper before the huge member
    assert docs["2301.00001"].url == "https://arxiv.org/abs/2301.00001"


def _independent_expectations(src: str):
    """From the raw source, with plain regexes: section count of the body and simple macros used there."""
    src = re.sub(r"\\begin\{(verbatim|lstlisting)\}.*?\\end\{\1\}", "", src, flags=re.S)  # verbatim: as written
    src = re.sub(r"\\verb([^A-Za-z\s*]).*?\1", "", src)
    lines = [ln for ln in src.split("\n") if not ln.lstrip().startswith("%")]
    text = "\n".join(re.sub(r"(?<!\\)%.*", "", ln) for ln in lines)
    first = re.search(r"\\(part|chapter|section|subsection|subsubsection|paragraph|subparagraph)\*?\s*[{\[]", text)
    tail = re.search(
        r"\\appendix|\\begin\{references\}|\\begin\{thebibliography\}|\\bibliography\{|\\end\{document\}",
        text[first.start() :],
    )
    body = text[first.start() : first.start() + tail.start()] if tail else text[first.start() :]
    group = r"\{((?:[^{}#]|\{(?:[^{}#]|\{[^{}#]*\})*\})*)\}"  # argument-free bodies, braces 2 deep
    simple = dict(re.findall(r"\\newcommand\{?\\([A-Za-z]+)\}?" + group, text))
    used = {n: b for n, b in simple.items() if re.search(r"\\" + n + r"(?![A-Za-z@])", body) and b.strip()}
    return len(re.findall(r"\\section\*?\s*[{\[]", body)), used


def test_real_journal_samples(arxiv_run):
    docs = {d.metadata["paper"]: d for d in read_output(arxiv_run["out"])}
    checked_macros = 0
    for pid, name in arxiv_run["expect"].items():
        src = gzip.open(os.path.join(DATA, "papers", name)).read().decode("utf-8")
        doc = docs[pid]
        text = protect_verbatim(doc.text)[0]  # verbatim text is as written: definitions and % may be in it
        assert not re.search(DEF_RE, text), (name, re.search(DEF_RE, text))
        assert not re.search(r"(?<!\\)%", text), name  # no comments left
        assert re.match(r"\\(part|chapter|section|subsection)", text)
        assert not re.search(r"\\begin\{thebibliography\}|\\bibliography\{|\\end\{document\}", text)
        sections, used = _independent_expectations(src)
        assert len(re.findall(r"\\section\*?\s*[{\[]", text)) == sections, name
        for macro, body in used.items():
            assert not re.search(r"\\" + macro + r"(?![A-Za-z@])", text), (name, macro)
            assert body in text, (name, macro, body)
            checked_macros += 1
    assert checked_macros >= 10
    # the ijmart sample defines \thmref[1]{Theorem~\ref{#1}}: its uses became Theorem~\ref{...}
    ijm = next(docs[p].text for p, n in arxiv_run["expect"].items() if n.startswith("ijmart"))
    assert "Theorem~\\ref{" in ijm and "\\thmref" not in ijm


def test_paper_folder_inputs_inlined(arxiv_run):
    doc = next(d for d in read_output(arxiv_run["out"]) if d.metadata["paper"] == "2301.00005")
    resumo = open(os.path.join(DATA, "folders", "ecothesis", "preambulo", "resumo.tex"), encoding="utf-8").read()
    assert (
        "\\section*{\\hfill Resumo}" in resumo and "\\section*{\\hfill Resumo}" in doc.text
    )  # \input{preambulo/resumo}
    # resumo.tex uses \tituloresumo -> \titulo, defined in dados.tex (another \input): expanded in place
    dados = open(os.path.join(DATA, "folders", "ecothesis", "dados.tex"), encoding="utf-8").read()
    assert "\\newcommand{\\titulo}{Um modelo em" in dados and "Um modelo em \\LaTeX~ para TCCs" in doc.text
    assert "\\resumoPT" not in doc.text and "\\tituloresumo" not in doc.text
    assert "\\input" not in doc.text and "\\include{" not in doc.text
    assert "Nam dui ligula" in doc.text  # \include{capitulos/cap01/introduction}
    assert "cap04" not in json.dumps(doc.metadata)  # the commented-out \input was never followed


def test_directory_of_paper_folders(tmp_path):
    shutil.copytree(os.path.join(DATA, "folders"), tmp_path / "papers")
    os.symlink("/etc", tmp_path / "papers" / "ecothesis" / "etc-link")
    (tmp_path / "papers" / "bad").mkdir()
    (tmp_path / "papers" / "bad" / "x.tex").write_bytes(b"")
    out = str(tmp_path / "out")
    stats = {s["step"]: s for s in run_arxiv(ArxivConfig(input=[str(tmp_path / "papers")], output=out))}
    assert stats["extract"]["read"] == 2
    assert stats["extract"]["dropped"] == {"link_member": 1, "no_main_tex": 1}


def test_macro_expansion_rules():
    src = (
        r"\newcommand{\R}{\mathbb{R}}"
        "\n"
        r"\newcommand\pair[2]{(#1,\,#2)}"
        "\n"
        r"\newcommand{\opt}[2][x]{f_{#1}(#2)}"
        "\n"
        r"\def\swap#1#2{#2#1}"
        "\n"
        r"\renewcommand{\multi}{first"
        "\nsecond}\n"
        r"\providecommand{\R}{NOT}"
        "\n"
        r"\newcommand{\hash}[1]{\def\inner##1{#1##1}}"
        "\n"
        r"\DeclareMathOperator{\Tr}{Tr}"
        "\n"
        r"$\R^n$ \pair{a}{\R} \opt{y} \opt[z]{w} \swap ab \multi \Tr A \Rx"
    )
    text, macros, removed = extract_macros(src)
    assert removed == 8 and set(macros) == {"R", "pair", "opt", "swap", "multi", "hash", "Tr"}
    out = expand_macros(text.strip(), macros)
    assert (
        out == r"$\mathbb{R}^n$ (a,\,\mathbb{R}) f_{x}(y) f_{z}(w) ba first"
        "\nsecond"
        r" \operatorname{Tr} A \Rx"
    )
    with pytest.raises(MacroExpansionError):  # strict: no list to name what was left
        expand_macros(r"\a", extract_macros(r"\def\a{\b}\def\b{\a}")[1])
    skipped = []  # else the use stays as written, and the rest expands
    macros = extract_macros(r"\def\a{\b}\def\b{\a}\def\c{C}")[1]
    assert expand_macros(r"\a, \c, \b{} \a", macros, skipped=skipped) == r"\a, C, \b{} \a"
    assert skipped == ["a", "b", "a"]
    assert strip_comments("a % c\n% whole line\nb \\% kept \\\\% gone\nc") == "a\nb \\% kept \\\\\nc"
    assert clean_latex(r"\documentclass{x}\begin{document}no sections\end{document}").text is None


def test_gzip_bomb_special_member_and_appendix(tmp_path):
    # A paper whose .gz unpacks past --max-unpacked-mb stops there (the cap, not the whole bomb, is held).
    bomb = _gz(_tex("x").encode() + b" " * (4 << 20))
    assert len(bomb) < 8192
    verdict = ExtractPaper(max_unpacked_bytes=1 << 20)(
        PaperRecord("2301.00020", "bulk.tar#b.gz", len(bomb), payload=bomb)
    )
    assert verdict.reason == "too_large" and "unpacks to more than 1048576" in verdict.doc.metadata["reject_detail"]
    assert ExtractPaper()(PaperRecord("2301.00020", "bulk.tar#b.gz", len(bomb), payload=bomb)).kept
    # A FIFO (or device) member inside a paper's tar.
    fifo = tarfile.TarInfo("pipe")
    fifo.type = tarfile.FIFOTYPE
    paper = _gz(_tar([_file("paper.tex", _tex("ok").encode()), (fifo, None)]))
    verdict = ExtractPaper()(PaperRecord("2301.00021", "bulk.tar#f.gz", len(paper), payload=paper))
    assert verdict.reason == "special_member" and "'pipe'" in verdict.doc.metadata["reject_detail"]
    # A gzipped .tex in a paper folder is capped by what it unpacks to, not by its compressed size.
    folder = tmp_path / "gzpaper"
    folder.mkdir()
    (folder / "main.tex.gz").write_bytes(bomb)
    rec = _read_folder(str(folder), 1 << 20, 256 << 20)
    assert rec.reject[0] == "too_large" and "main.tex.gz unpacks to" in rec.reject[1]
    assert _read_folder(str(folder), 8 << 20, 256 << 20).files["main.tex"].startswith(b"\\documentclass")
    # Everything from \appendix on goes, like the bibliography.
    cleaned = clean_latex(r"\section{A} Body text. \appendix \section{Proofs} Appendix text.")
    assert cleaned.text == r"\section{A} Body text." and cleaned.chars_after_tail > 0


def test_cli_options_reach_the_stage(tmp_path, capsys):
    out = tmp_path / "cli"
    assert (
        cli_main(
            [
                "source",
                "arxiv",
                "--input",
                os.path.join(DATA, "papers"),
                "--output",
                str(out),
                "--format",
                "parquet",
                "--max-paper-mb",
                "1",
            ]
        )
        == 0
    )
    assert sorted(os.listdir(out)) == [
        ".corpusmill",
        "_SUCCESS",
        "_meta",
        "_provenance.json",
        "_samples",
        "part-00000.parquet",
    ]
    assert sorted(os.listdir(out / "_meta")) == ["profile.json", "stats.json"]
    assert len(read_output(str(out))) == len(PAPERS)
    assert (
        cli_main(
            [
                "source",
                "arxiv",
                "--input",
                os.path.join(DATA, "papers"),
                "--output",
                str(tmp_path / "x"),
                "--max-macro-depth",
                "0",
            ]
        )
        == 2
    )
    assert "--max-macro-depth: expected a value at least 1, got 0" in capsys.readouterr().err


@pytest.mark.slow
def test_multiprocess_runner_gives_identical_bytes(tmp_path):
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    inputs = [os.path.join(DATA, "papers"), os.path.join(DATA, "folders")]
    run_arxiv(ArxivConfig(input=inputs, output=a))
    run_arxiv(ArxivConfig(input=inputs, output=b), ["--direct_running_mode=multi_processing", "--direct_num_workers=2"])
    assert tree_digest(a) == tree_digest(b) and len(read_output(a)) == len(PAPERS) + 1


def _verbatim_blocks(text: str):
    return re.findall(r"\\begin\{(?:verbatim|vquote)\}.*?\\end\{(?:verbatim|vquote)\}", text, flags=re.S)


def test_a_papers_own_packages_verbatim_and_comment_environments(tmp_path):
    """Real papers that load their own .sty (issue 16): revtex4-1's AIP guide uses \\revtex from its
    docs.sty; elsarticle's guide loads rvdtx.sty and pdfwidgets.sty, which define a verbatim-like vquote
    environment, and has a comment environment."""
    root = os.path.join(DATA, "packages")
    out = str(tmp_path / "out")
    stats = {s["step"]: s for s in run_arxiv(ArxivConfig(input=[root], output=out))}
    assert stats["latex"]["kept"] == 2 and stats["latex"]["failed"] == 0
    docs = {d.metadata["main_tex"]: d for d in read_output(out)}
    aip, els = docs["aipguide4-1.tex"], docs["elsdoc.tex"]
    assert aip.metadata["local_packages"] == ["docs.sty"]
    assert els.metadata["local_packages"] == ["pdfwidgets.sty", "rvdtx.sty"]
    assert els.metadata["verbatim_environments"] == ["toolwrite", "vquote"]

    src = open(os.path.join(root, "aipguide", "aipguide4-1.tex"), encoding="utf-8").read()
    body = src[
        src.index("\\section") : src.index("\\begin{thebibliography}")
    ]  # (the \bibliography before it is verbatim)
    uses = len(
        re.findall(r"\\revtex(?![A-Za-z@])", re.sub(r"\\begin\{verbatim\}.*?\\end\{verbatim\}", "", body, flags=re.S))
    )
    assert uses > 20  # \DeclareRobustCommand\revtex{REV\TeX} in docs.sty: every use expanded
    assert not re.search(r"\\revtex(?![A-Za-z@0-9-])", protect_verbatim(aip.text)[0])
    assert aip.text.count("REV\\TeX") >= uses
    # verbatim blocks come out exactly as written, their % and \documentclass included
    blocks = _verbatim_blocks(body)
    assert blocks and any("%" in b for b in blocks)
    for block in blocks:
        assert block in aip.text

    src = open(os.path.join(root, "elsdoc", "elsdoc.tex"), encoding="utf-8").read()
    assert "Specimen single column article" in src and "\\begin{comment}" in src
    assert "Specimen single column article" not in els.text and "\\begin{comment}" not in els.text
    blocks = _verbatim_blocks(src[src.index("\\section") :])
    assert len(blocks) >= 15
    for block in blocks:  # vquote (moreverb's verbatimwrite, defined in pdfwidgets.sty): untouched
        assert block in els.text
    for verb in set(re.findall(r"\\verb\+[^+\n]*\+", src[src.index("\\section") :])):
        assert verb in els.text
    # rvdtx.sty's internals are not the paper's macros: \section stays \section (not \@startsection)
    assert els.text.startswith("\\section{Introduction}") and "\\@startsection" not in els.text

    # the same papers without their packages: \revtex stays as written
    alone = tmp_path / "alone"
    shutil.copytree(os.path.join(root, "aipguide"), alone / "aipguide")
    os.remove(alone / "aipguide" / "docs.sty")
    run_arxiv(ArxivConfig(input=[str(alone)], output=str(tmp_path / "out2")))
    (plain,) = read_output(str(tmp_path / "out2"))
    assert "local_packages" not in plain.metadata and "\\revtex\\" in plain.text


def test_verbatim_text_is_left_as_written_by_comments_inputs_and_macros():
    src = (
        "\\newcommand{\\R}{\\mathbb{R}}\n\\section{A}\n"
        "Real \\R, \\verb|\\R % kept| and \\lstinline[language=C]{int \\R;} % gone\n"
        "\\begin{lstlisting}\n\\R % kept\n\\input{x}\n\\end{lstlisting}\n"
        "% \\begin{verbatim} (in a comment: not verbatim)\n\\R\n"
        "\\begin{comment}\nhidden \\R\n\\end{comment}\nend"
    )
    flat, missing = inline_inputs(strip_comments(src), lambda name: "INLINED")
    assert missing == [] and "INLINED" not in flat and "hidden" not in flat and "% gone" not in flat
    cleaned = clean_latex(flat)
    assert cleaned.text == (
        "\\section{A}\nReal \\mathbb{R}, \\verb|\\R % kept| and \\lstinline[language=C]{int \\R;}\n"
        "\\begin{lstlisting}\n\\R % kept\n\\input{x}\n\\end{lstlisting}\n\\mathbb{R}\nend"
    )
