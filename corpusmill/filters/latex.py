"""LaTeX sources -> the text LLaMA trained on (pure part of the ArXiv source; Beam: corpusmill.pipelines.arxiv).

- :func:`protect_verbatim`: verbatim-like text is set aside before any other rule and put back at the
  end, as written: ``verbatim``, ``Verbatim``, ``lstlisting``, ``minted`` (and the other names of
  :data:`VERBATIM_ENVS`), environments the paper defines as verbatim (:func:`verbatim_environments`),
  ``\\verb|..|``, ``\\lstinline|..|`` and ``\\mintinline{lang}|..|``. Comments, ``\\input`` and macros are
  not touched inside them.
- :func:`strip_comments`: an unescaped ``%`` to the end of the line is removed; a line that was only a
  comment disappears with its newline (``\\%`` stays); ``comment`` environments (the comment package)
  are removed whole.
- :func:`inline_inputs`: ``\\input{f}``, ``\\input f`` and ``\\include{f}`` are replaced by the file's
  text (``f`` or ``f.tex``, relative to the paper's root), recursively, with cycle and depth checks; an
  included file that is itself a whole document (subfiles/standalone style) contributes its body only.
- :func:`extract_macros` finds ``\\newcommand``, ``\\renewcommand``, ``\\providecommand`` (starred too),
  ``\\def``/``\\gdef``/``\\edef``/``\\xdef`` and ``\\DeclareMathOperator`` definitions anywhere in the text,
  with or without arguments (``[n]`` up to 9, an optional first argument with its default), bodies over
  several lines; it removes them from the text. ``\\def`` with delimited parameters (``\\def\\a#1.{}``)
  and definitions of control symbols (``\\def\\\\{...}``, always local to a group) are removed but not
  expanded.
- :func:`expand_macros` replaces each use by its body with the arguments substituted and expands the
  result again; depth (``max_depth``) and output growth (``max_growth`` x the input + 1 MB) are bounded.
  A use whose expansion would pass a bound (a self-referencing or exponential macro) is left as written
  and named in ``skipped``, and the macro is not tried again; the paper is kept (in strict mode, with no
  ``skipped`` list, it raises :class:`MacroExpansionError`).
- :func:`package_definitions`: the macro definitions of a paper's own ``.sty``/``.cls`` (one it loads
  with ``\\usepackage``, ``\\RequirePackage`` or ``\\documentclass``), put where it is loaded, so they
  expand like the paper's own; a package's internals (a name or body with ``@``) are left out.
- :func:`clean_latex` puts it together the LLaMA way: macros collected from the whole file, everything
  before the first ``\\part|\\chapter|\\section|\\subsection|\\subsubsection|\\paragraph|\\subparagraph``
  removed (no such command: ``no_section``), everything from the first ``\\appendix``,
  ``\\begin{references}``, ``\\begin{thebibliography}``, ``\\bibliography{...}`` (or ``\\end{document}``)
  on removed, then the macros expanded.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from corpusmill.core.document import Document
from corpusmill.filters.base import Filter, Verdict, drop, keep


class MacroExpansionError(ValueError):
    """A macro expands too deep or grows the text too much (a macro bomb)."""


# ---------------------------------------------------------------------------------------------------
# comments, \input
# ---------------------------------------------------------------------------------------------------
_COMMENT = re.compile(r"(?<!\\)((?:\\\\)*)%.*$")
_IN_COMMENT = re.compile(r"(?<!\\)(?:\\\\)*%")

# environments whose content TeX reads as it is (the standard ones and the common packages')
VERBATIM_ENVS = (
    "verbatim",
    "verbatim*",
    "Verbatim",
    "Verbatim*",
    "BVerbatim",
    "LVerbatim",
    "lstlisting",
    "minted",
    "spverbatim",
    "verbatimtab",
    "listingcont",
    "boxedverbatim",
)
_INLINE_VERB = r"\\(?:verb\*?|lstinline|mintinline)(?![A-Za-z@])"
_PLACEHOLDER = re.compile("\x00(\\d+)\x00")
# \newenvironment{name}{... \verbatim ...}, \DefineVerbatimEnvironment{name}, \lstnewenvironment{name}, ...
_VERBATIM_DEF = re.compile(
    r"\\(?:DefineVerbatimEnvironment|lstnewenvironment|newtcblisting|NewTCBListing|newminted)\s*\{\s*([A-Za-z@*]+)\s*\}"
    r"|\\(?:re)?newenvironment\s*\{\s*([A-Za-z@*]+)\s*\}(?:\s*\[[^\]]*\])*\s*\{[^{}]{0,200}?"
    r"\\(?:verbatim|Verbatim|BVerbatim|LVerbatim|lstlisting|minted|verbatimwrite|spverbatim)(?![A-Za-z])"
)


def verbatim_environments(*texts: str) -> List[str]:
    """The environments these texts (a paper and its own packages) define as verbatim-like."""
    names = set()
    for text in texts:
        for m in _VERBATIM_DEF.finditer(text):
            names.add(m.group(1) or m.group(2))
    return sorted(names - set(VERBATIM_ENVS))


def protect_verbatim(text: str, extra_envs: Sequence[str] = ()) -> Tuple[str, List[str]]:
    """Verbatim-like spans replaced by placeholders (NUL, index, NUL); returns (text, spans) for
    :func:`restore_verbatim`. A span that starts in a comment, or has no end, is not one."""
    if "\\begin" not in text and "\\verb" not in text and "\\lst" not in text and "\\mint" not in text:
        return text, []
    envs = "|".join(re.escape(e) for e in sorted(set(VERBATIM_ENVS) | set(extra_envs), key=len, reverse=True))
    start = re.compile(r"\\begin\s*\{(" + envs + r")\}|" + _INLINE_VERB)
    spans: List[str] = []
    out: List[str] = []
    pos = 0
    i = 0
    while True:
        m = start.search(text, i)
        if not m:
            break
        line_start = max(text.rfind("\n", 0, m.start()) + 1, pos)
        if _IN_COMMENT.search(text, line_start, m.start()):
            i = text.find("\n", m.end())  # the rest of the line is a comment
            if i < 0:
                break
            continue
        end = _span_end(text, m)
        if end is None:
            i = m.end()
            continue
        out.append(text[pos : m.start()])
        out.append(f"\x00{len(spans)}\x00")
        spans.append(text[m.start() : end])
        pos = i = end
    if not spans:
        return text, []
    out.append(text[pos:])
    return "".join(out), spans


def _span_end(text: str, m: re.Match) -> Optional[int]:
    if m.group(1):  # \begin{env} ... \end{env}
        close = re.compile(r"\\end\s*\{" + re.escape(m.group(1)) + r"\}")
        e = close.search(text, m.end())
        return e.end() if e else None
    i = m.end()
    if m.group(0).startswith("\\mintinline"):  # \mintinline{lang}
        _lang, i = _group(text, _skip_ws(text, i))
    elif m.group(0).startswith("\\lstinline") and text[i : i + 1] == "[":
        _opts, i = _group(text, i, "[", "]")
    if i >= len(text):
        return None
    delim = text[i]
    if delim == "{" and not m.group(0).startswith("\\verb"):
        _code, j = _group(text, i)
        return j if j > i else None
    if delim.isspace() or delim.isalpha() or delim == "*":
        return None
    e = text.find(delim, i + 1)
    nl = text.find("\n", i + 1)
    if e < 0 or (0 <= nl < e):
        return None  # \verb ends on its own line
    return e + 1


def restore_verbatim(text: str, spans: List[str]) -> str:
    if not spans:
        return text
    return _PLACEHOLDER.sub(lambda m: spans[int(m.group(1))], text)


_COMMENT_ENV = re.compile(r"^[ \t]*\\begin\{comment\}.*?^[ \t]*\\end\{comment\}[^\n]*(?:\n|\Z)", re.M | re.S)


def strip_comments(text: str, verbatim_envs: Sequence[str] = ()) -> str:
    text, spans = protect_verbatim(text, verbatim_envs)
    out: List[str] = []
    for line in text.split("\n"):
        if "%" not in line:
            out.append(line)
            continue
        stripped = _COMMENT.sub(r"\1", line)
        if stripped.strip() == "" and line.lstrip().startswith("%"):
            continue  # a whole-line comment goes with its newline
        out.append(stripped.rstrip())
    text = "\n".join(out)
    if "\\begin{comment}" in text:
        text = _COMMENT_ENV.sub("", text)
    return restore_verbatim(text, spans)


_INPUT = re.compile(r"\\(input|include)(?![A-Za-z@])\s*(?:\{\s*([^{}]+?)\s*\}|([^\s{}\\]+))")
_MAX_INPUT_DEPTH = 16


def inline_inputs(
    text: str,
    read: Callable[[str], Optional[str]],
    depth: int = 0,
    stack: Tuple[str, ...] = (),
    verbatim_envs: Sequence[str] = (),
) -> Tuple[str, List[str]]:
    """Replace ``\\input``/``\\include`` by the files' (comment-stripped) text; returns (text, missing).

    ``read(name)`` returns the text of a paper file (trying ``name`` and ``name.tex``) or None. An
    ``\\input`` inside a verbatim span is text, not a command.
    """
    missing: List[str] = []
    text, spans = protect_verbatim(text, verbatim_envs)

    def repl(m: re.Match) -> str:
        name = (m.group(2) or m.group(3) or "").strip()
        if name.startswith("./"):
            name = name[2:]
        if depth >= _MAX_INPUT_DEPTH or name in stack:
            missing.append(name)
            return ""
        body = read(name)
        if body is None:
            missing.append(name)
            return ""
        body = strip_comments(body, verbatim_envs)
        begin, end = body.find("\\begin{document}"), body.rfind("\\end{document}")
        if begin >= 0:  # a standalone sub-document (docmute/standalone/subfiles style): its body only
            body = body[begin + len("\\begin{document}") : end if end > begin else len(body)]
        inner, more = inline_inputs(body, read, depth + 1, stack + (name,), verbatim_envs)
        missing.extend(more)
        return inner + ("\n" if m.group(1) == "include" else "")

    return restore_verbatim(_INPUT.sub(repl, text), spans), missing


_LOADS = re.compile(
    r"\\(usepackage|RequirePackage|documentclass|LoadClass)(?![A-Za-z@])\s*(?:\[[^\]]*\]\s*)?"
    r"\{([^{}]+)\}"
)


def loaded_packages(text: str) -> List[Tuple[int, str, str]]:
    """``(end offset, name, file suffix)`` of every package and class the text loads, in order."""
    out = []
    for m in _LOADS.finditer(text):
        suffix = ".cls" if m.group(1) in ("documentclass", "LoadClass") else ".sty"
        out += [(m.end(), name.strip(), suffix) for name in m.group(2).split(",") if name.strip()]
    return out


def package_definitions(text: str) -> str:
    """The macro definitions of a package's (comment-free) source, one per line, as written; a package's
    internals are left out (a name or body with ``@``: they redefine LaTeX itself, ``\\section`` to
    ``\\@startsection``...), so are definitions of control symbols."""
    out: List[str] = []
    pos = 0
    for m in _DEF_START.finditer(text):
        if m.start() < pos:
            continue
        macro, end = _parse_definition(text, m)
        if macro is None:
            continue
        pos = end
        if "@" in macro.name or "@" in macro.body or not macro.name[:1].isalpha():
            continue
        out.append(text[m.start() : end])
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------------
# macros
# ---------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Macro:
    name: str  # without the backslash
    nargs: int
    default: Optional[str]  # default of an optional first argument, None when there is none
    body: str


_DEF_START = re.compile(
    r"\\(newcommand|renewcommand|providecommand|DeclareRobustCommand|DeclareMathOperator)\*?"
    r"|\\(?:global\s*\\)?(def|gdef|edef|xdef)(?![A-Za-z@])"
)


def _skip_ws(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t\r\n":
        i += 1
    return i


def _group(text: str, i: int, open_ch: str = "{", close_ch: str = "}") -> Tuple[Optional[str], int]:
    """The balanced group starting at ``text[i]`` (which must be ``open_ch``): (content, index after)."""
    if i >= len(text) or text[i] != open_ch:
        return None, i
    depth = 0
    j = i
    while j < len(text):
        c = text[j]
        if c == "\\":
            j += 2
            continue
        if c == open_ch:
            depth += 1
        elif c == close_ch:
            depth -= 1
            if depth == 0:
                return text[i + 1 : j], j + 1
        j += 1
    return None, i  # unbalanced


_CS = re.compile(r"\\([A-Za-z@]+|.)")


def _parse_definition(text: str, m: re.Match) -> Tuple[Optional[Macro], int]:
    """Parse the definition starting at match ``m``; (macro or None if not expandable, end index)."""
    i = _skip_ws(text, m.end())
    cmd = m.group(1) or m.group(2)
    if cmd in ("def", "gdef", "edef", "xdef"):
        cs = _CS.match(text, i)
        if not cs:
            return None, m.end()
        name, i = cs.group(1), cs.end()
        params_start = i
        while i < len(text) and text[i] != "{":
            i += 1
        params = text[params_start:i]
        body, end = _group(text, i)
        if body is None:
            return None, m.end()
        if re.fullmatch(r"(?:#[1-9])*", params.strip()):
            return Macro(name, params.count("#"), None, body), end
        return None, end  # delimited parameters: removed, not expanded
    # \newcommand{\name} or \newcommand\name
    if i < len(text) and text[i] == "{":
        inner, j = _group(text, i)
        if inner is None:
            return None, m.end()
        cs = _CS.match(inner.strip())
        if not cs:
            return None, m.end()
        name, i = cs.group(1), j
    else:
        cs = _CS.match(text, i)
        if not cs:
            return None, m.end()
        name, i = cs.group(1), cs.end()
    i = _skip_ws(text, i)
    nargs, default = 0, None
    if cmd == "DeclareMathOperator":
        body, end = _group(text, i)
        if body is None:
            return None, m.end()
        return Macro(name, 0, None, "\\operatorname{" + body + "}"), end
    if i < len(text) and text[i] == "[":
        inner, j = _group(text, i, "[", "]")
        if inner is None or not inner.strip().isdigit():
            return None, m.end()
        nargs, i = int(inner.strip()), _skip_ws(text, j)
        if i < len(text) and text[i] == "[":
            default, j = _group(text, i, "[", "]")
            i = _skip_ws(text, j)
    body, end = _group(text, i)
    if body is None:
        return None, m.end()
    return Macro(name, min(nargs, 9), default, body), end


def extract_macros(text: str) -> Tuple[str, Dict[str, Macro], int]:
    """Remove every macro definition; returns (text without them, macros by name, definitions removed).

    Later definitions of a name win (``\\renewcommand``), except ``\\providecommand``, which never
    replaces an existing one.
    """
    macros: Dict[str, Macro] = {}
    out: List[str] = []
    pos = 0
    removed = 0
    for m in _DEF_START.finditer(text):
        if m.start() < pos:
            continue  # inside a definition already consumed
        macro, end = _parse_definition(text, m)
        if end <= m.end() and macro is None:
            continue  # not a parsable definition: leave the text as it is
        out.append(text[pos : m.start()])
        pos = end
        removed += 1
        if macro is not None and not macro.name[:1].isalpha() and macro.name[:1] != "@":
            continue  # control symbols (\\, \{): defined locally in groups, never expanded
        if macro is not None and not (m.group(1) == "providecommand" and macro.name in macros):
            macros[macro.name] = macro
    out.append(text[pos:])
    return "".join(out), macros, removed


def _read_arg(text: str, i: int) -> Tuple[Optional[str], int]:
    """A mandatory argument at ``i``: a balanced ``{...}`` group or a single token."""
    i = _skip_ws(text, i)
    if i >= len(text):
        return None, i
    if text[i] == "{":
        return _group(text, i)
    cs = _CS.match(text, i)
    if cs:
        return cs.group(0), cs.end()
    return text[i], i + 1


_PARAM = re.compile(r"##|#([1-9])")
_NOT_EXPANDED_AFTER = re.compile(r"(?:\\(?:[gex]?def|let|noexpand|providecommand\*?|(?:re)?newcommand\*?)\s*\{?\s*)\Z")


class _Unexpandable(MacroExpansionError):
    def __init__(self, message: str, macro: str):
        super().__init__(message)
        self.macro = macro


def expand_macros(
    text: str,
    macros: Dict[str, Macro],
    max_depth: int = 32,
    max_growth: float = 10.0,
    skipped: Optional[List[str]] = None,
) -> str:
    """Expand the uses of ``macros`` in ``text`` (see the module docstring for the bounds).

    ``skipped``: a list to name each use left as written because its expansion passed a bound; None
    (strict) raises :class:`MacroExpansionError` instead."""
    if not macros:
        return text
    names = sorted(macros, key=len, reverse=True)
    use = re.compile(r"\\(" + "|".join(re.escape(n) for n in names) + r")(?![A-Za-z@])")
    limit = int(len(text) * max_growth) + (1 << 20)
    total = [0]
    poisoned: set = set()  # macros whose expansion passed a bound once: never tried again

    def expand(s: str, depth: int) -> str:
        out: List[str] = []
        pos = 0
        while True:
            m = use.search(s, pos)
            if not m:
                break
            macro = macros[m.group(1)]
            out.append(s[pos : m.start()])
            if _NOT_EXPANDED_AFTER.search(s, max(0, m.start() - 40), m.start()):
                out.append(m.group(0))  # the name being (re)defined or \noexpand'ed: TeX does not expand it
                pos = m.end()
                continue
            i = m.end()
            args: List[str] = []
            if macro.nargs:
                if macro.default is not None:
                    j = _skip_ws(s, i)
                    if j < len(s) and s[j] == "[":
                        opt, j2 = _group(s, j, "[", "]")
                        args.append(opt if opt is not None else macro.default)
                        i = j2 if opt is not None else i
                    else:
                        args.append(macro.default)
                while len(args) < macro.nargs:
                    arg, i2 = _read_arg(s, i)
                    if arg is None:
                        break
                    args.append(arg)
                    i = i2
                while len(args) < macro.nargs:
                    args.append("")
            saved = total[0]
            try:
                if macro.name in poisoned:
                    raise _Unexpandable(f"\\{macro.name} passed a bound before", macro.name)
                body = _PARAM.sub(
                    lambda p: (
                        "#" if p.group(0) == "##" else args[int(p.group(1)) - 1] if int(p.group(1)) <= len(args) else ""
                    ),
                    macro.body,
                )
                total[0] += len(body)
                if total[0] > limit:
                    raise _Unexpandable(
                        f"macro expansion grew the text past {limit} characters "
                        f"(\\{macro.name}: a macro bomb?); if the paper is sound, raise "
                        f"--max-macro-growth",
                        macro.name,
                    )
                if depth + 1 > max_depth:
                    raise _Unexpandable(
                        f"macro expansion deeper than {max_depth} levels (\\{macro.name}: a "
                        f"self-referencing macro?); if the paper is sound, raise --max-macro-depth",
                        macro.name,
                    )
                out.append(expand(body, depth + 1))
            except _Unexpandable as exc:
                if skipped is None:
                    raise MacroExpansionError(str(exc)) from None
                poisoned.add(exc.macro)
                if depth:
                    raise
                poisoned.add(macro.name)
                skipped.append(macro.name)
                total[0] = saved
                out.append(s[m.start() : i])  # the use as written, with its arguments
            pos = i
        out.append(s[pos:])
        return "".join(out)

    return expand(text, 0)


# ---------------------------------------------------------------------------------------------------
# LLaMA's cuts
# ---------------------------------------------------------------------------------------------------
_SECTION = re.compile(r"\\(?:part|chapter|section|subsection|subsubsection|paragraph|subparagraph)\*?\s*[\[{]")
_TAIL = re.compile(
    r"\\appendix(?![A-Za-z@])|\\begin\{references\}|\\begin\{thebibliography\}|"
    r"\\bibliography\{[^}]*\}|\\printbibliography(?![A-Za-z@])|\\end\{document\}"
)


@dataclasses.dataclass
class Cleaned:
    text: Optional[str]  # None: no section command
    macros_defined: int
    definitions_removed: int
    chars_before_section: int
    chars_after_tail: int
    not_expanded: List[str] = dataclasses.field(default_factory=list)  # uses left as written (a bound)


def clean_latex(
    text: str, max_depth: int = 32, max_growth: float = 10.0, verbatim_envs: Sequence[str] = (), strict: bool = False
) -> Cleaned:
    """Comment-free LaTeX -> LLaMA's text (see the module docstring). Verbatim spans are set aside
    first and come back as written; ``strict``: a macro past a bound raises instead of staying as written."""
    text, spans = protect_verbatim(text, verbatim_envs)
    body, macros, removed = extract_macros(text)
    m = _SECTION.search(body)
    if not m:
        return Cleaned(None, len(macros), removed, len(body), 0)
    head = m.start()
    body = body[head:]
    t = _TAIL.search(body)
    tail = 0
    if t:
        tail = len(body) - t.start()
        body = body[: t.start()]
    skipped: Optional[List[str]] = None if strict else []
    body = expand_macros(body, macros, max_depth, max_growth, skipped)
    body = restore_verbatim(re.sub(r"\n{3,}", "\n\n", body).strip(), spans)
    return Cleaned(body, len(macros), removed, head, tail, skipped or [])


class CleanLatex(Filter):
    """The ``latex`` step: Document(text = flattened, comment-free LaTeX) -> LLaMA's text.

    Drops ``no_section`` (no sectioning command) and ``empty``. A macro use whose expansion passes a
    bound (a macro bomb, a self-referencing macro) is left as written: counted in stats.json
    (``counters.macros_not_expanded``) and named in the document's ``macros_not_expanded``.
    """

    name = "latex"

    def __init__(self, max_depth: int = 32, max_growth: float = 10.0):
        self.max_depth = max_depth
        self.max_growth = max_growth

    def __call__(self, doc: Document) -> Verdict:
        cleaned = clean_latex(doc.text, self.max_depth, self.max_growth, doc.metadata.get("verbatim_environments", ()))
        meta = {
            "macros_defined": cleaned.macros_defined,
            "macro_definitions_removed": cleaned.definitions_removed,
            "chars_before_section": cleaned.chars_before_section,
            "chars_after_tail": cleaned.chars_after_tail,
        }
        counts = None
        if cleaned.not_expanded:
            meta["macros_not_expanded"] = sorted(set(cleaned.not_expanded))[:50]
            counts = {"macros_not_expanded": len(cleaned.not_expanded)}
        if cleaned.text is None:
            return drop("no_section", doc.annotate(**meta))
        doc = doc.replace(text=cleaned.text).annotate(**meta)
        if not cleaned.text.strip():
            return drop("empty", doc, counts=counts)
        return keep(doc, counts=counts)
