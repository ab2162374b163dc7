"""LaTeX sources -> the text LLaMA trained on (pure part of the ArXiv source; Beam: corpusmill.stages.arxiv).

- :func:`strip_comments`: an unescaped ``%`` to the end of the line is removed; a line that was only a
  comment disappears with its newline (``\\%`` stays; verbatim environments are not special-cased).
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
  result again; depth (``max_depth``) and output growth (``max_growth`` x the input + 1 MB) are bounded:
  a self-referencing or exponential macro raises :class:`MacroExpansionError`, which fails that paper.
- :func:`clean_latex` puts it together the LLaMA way: macros collected from the whole file, everything
  before the first ``\\part|\\chapter|\\section|\\subsection|\\subsubsection|\\paragraph|\\subparagraph``
  removed (no such command: ``no_section``), everything from the first ``\\appendix``,
  ``\\begin{references}``, ``\\begin{thebibliography}``, ``\\bibliography{...}`` (or ``\\end{document}``)
  on removed, then the macros expanded.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Callable, Dict, List, Optional, Tuple

from corpusmill.core.document import Document
from corpusmill.filters.base import Filter, Verdict, drop, keep


class MacroExpansionError(ValueError):
    """A macro expands too deep or grows the text too much (a macro bomb)."""


# ---------------------------------------------------------------------------------------------------
# comments, \input
# ---------------------------------------------------------------------------------------------------
_COMMENT = re.compile(r"(?<!\\)((?:\\\\)*)%.*$")


def strip_comments(text: str) -> str:
    out: List[str] = []
    for line in text.split("\n"):
        if "%" not in line:
            out.append(line)
            continue
        stripped = _COMMENT.sub(r"\1", line)
        if stripped.strip() == "" and line.lstrip().startswith("%"):
            continue  # a whole-line comment goes with its newline
        out.append(stripped.rstrip())
    return "\n".join(out)


_INPUT = re.compile(r"\\(input|include)(?![A-Za-z@])\s*(?:\{\s*([^{}]+?)\s*\}|([^\s{}\\]+))")
_MAX_INPUT_DEPTH = 16


def inline_inputs(text: str, read: Callable[[str], Optional[str]], depth: int = 0,
                  stack: Tuple[str, ...] = ()) -> Tuple[str, List[str]]:
    """Replace ``\\input``/``\\include`` by the files' (comment-stripped) text; returns (text, missing).

    ``read(name)`` returns the text of a paper file (trying ``name`` and ``name.tex``) or None.
    """
    missing: List[str] = []

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
        body = strip_comments(body)
        begin, end = body.find("\\begin{document}"), body.rfind("\\end{document}")
        if begin >= 0:  # a standalone sub-document (docmute/standalone/subfiles style): its body only
            body = body[begin + len("\\begin{document}"):end if end > begin else len(body)]
        inner, more = inline_inputs(body, read, depth + 1, stack + (name,))
        missing.extend(more)
        return inner + ("\n" if m.group(1) == "include" else "")

    return _INPUT.sub(repl, text), missing


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
    r"|\\(?:global\s*\\)?(def|gdef|edef|xdef)(?![A-Za-z@])")


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
                return text[i + 1:j], j + 1
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
        out.append(text[pos:m.start()])
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


def expand_macros(text: str, macros: Dict[str, Macro], max_depth: int = 32, max_growth: float = 10.0) -> str:
    """Expand the uses of ``macros`` in ``text`` (see the module docstring for the bounds)."""
    if not macros:
        return text
    names = sorted(macros, key=len, reverse=True)
    use = re.compile(r"\\(" + "|".join(re.escape(n) for n in names) + r")(?![A-Za-z@])")
    limit = int(len(text) * max_growth) + (1 << 20)
    total = [0]

    def expand(s: str, depth: int) -> str:
        out: List[str] = []
        pos = 0
        while True:
            m = use.search(s, pos)
            if not m:
                break
            macro = macros[m.group(1)]
            out.append(s[pos:m.start()])
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
            body = _PARAM.sub(lambda p: "#" if p.group(0) == "##" else args[int(p.group(1)) - 1]
                              if int(p.group(1)) <= len(args) else "", macro.body)
            total[0] += len(body)
            if total[0] > limit:
                raise MacroExpansionError(f"macro expansion grew the text past {limit} characters "
                                          f"(\\{macro.name}: a macro bomb?); if the paper is sound, raise "
                                          f"--max-macro-growth")
            if depth + 1 > max_depth:
                raise MacroExpansionError(f"macro expansion deeper than {max_depth} levels (\\{macro.name}: a "
                                          f"self-referencing macro?); if the paper is sound, raise --max-macro-depth")
            out.append(expand(body, depth + 1))
            pos = i
        out.append(s[pos:])
        return "".join(out)

    return expand(text, 0)


# ---------------------------------------------------------------------------------------------------
# LLaMA's cuts
# ---------------------------------------------------------------------------------------------------
_SECTION = re.compile(r"\\(?:part|chapter|section|subsection|subsubsection|paragraph|subparagraph)\*?\s*[\[{]")
_TAIL = re.compile(r"\\appendix(?![A-Za-z@])|\\begin\{references\}|\\begin\{thebibliography\}|"
                   r"\\bibliography\{[^}]*\}|\\printbibliography(?![A-Za-z@])|\\end\{document\}")


@dataclasses.dataclass
class Cleaned:
    text: Optional[str]  # None: no section command
    macros_defined: int
    definitions_removed: int
    chars_before_section: int
    chars_after_tail: int


def clean_latex(text: str, max_depth: int = 32, max_growth: float = 10.0) -> Cleaned:
    """Comment-free LaTeX -> LLaMA's text (see the module docstring)."""
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
        body = body[:t.start()]
    body = expand_macros(body, macros, max_depth, max_growth)
    body = re.sub(r"\n{3,}", "\n\n", body).strip()
    return Cleaned(body, len(macros), removed, head, tail)


class CleanLatex(Filter):
    """The ``latex`` step: Document(text = flattened, comment-free LaTeX) -> LLaMA's text.

    Drops ``no_section`` (no sectioning command) and ``empty``; a macro bomb raises (dead letter).
    """

    name = "latex"

    def __init__(self, max_depth: int = 32, max_growth: float = 10.0):
        self.max_depth = max_depth
        self.max_growth = max_growth

    def __call__(self, doc: Document) -> Verdict:
        cleaned = clean_latex(doc.text, self.max_depth, self.max_growth)
        meta = {"macros_defined": cleaned.macros_defined, "macro_definitions_removed": cleaned.definitions_removed,
                "chars_before_section": cleaned.chars_before_section, "chars_after_tail": cleaned.chars_after_tail}
        if cleaned.text is None:
            return drop("no_section", doc.annotate(**meta))
        doc = doc.replace(text=cleaned.text).annotate(**meta)
        if not cleaned.text.strip():
            return drop("empty", doc)
        return keep(doc)
