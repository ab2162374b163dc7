"""PII scrubbing (Llama 3's web data: "PII ... filtering"): e-mail addresses, IP addresses and phone
numbers replaced by placeholders, each kind counted in stats.json (``counters.pii_email`` and so on).

The placeholders are dolma's (``|||EMAIL_ADDRESS|||``, ``|||IP_ADDRESS|||``, ``|||PHONE_NUMBER|||``), so
text scrubbed by either tool reads the same. The patterns lean to precision: text is full of strings that
look like these and are not (version strings, dates, times, hashes, code), and a scrubber that rewrites
``3.11.2.1`` or ``2023-01-02`` damages the documents it is meant to protect.

- **E-mail:** ``local@domain.tld``, the local part of RFC 5322's unquoted atoms but ``/`` and ``?`` (a
  URL's path and query are not an address), the domain of dotted
  labels ending in a letters-only TLD of 2-24 letters, the local part starting with a letter, digit or
  ``_`` (``'@args.txt`` in quoted code is not an address; ``'martin@v.loewis.de'`` in quotes is one, the
  quote is not part of it); ``user@localhost`` and ``@decorators`` are not
  addresses. Obfuscations (``user at example dot com``) are left.
- **IP:** IPv4 dotted quads with each part 0-255 and no leading zero, not inside a longer dotted or
  hyphenated run (``1.2.3.4.5``, ``1.2.3.4-1``), not after ``v`` or a version word, and not shaped like a
  four-part version (first part under 10, every part at most two digits: ``3.7.2.0``); IPv6 in full or
  ``::`` form with at least three groups and a hex letter or ``::`` (``12:30:45`` is a time, never IPv6).
- **Phone:** numbers written as phone numbers: ``+CC``, a space or hyphen, then groups separated by
  spaces, dots or hyphens (8-15 digits in all; ``+3.140000`` is a formatted float), or the North American ``(NNN) NNN-NNNN`` / ``NNN-NNN-NNNN`` / ``NNN.NNN.NNNN`` / ``NNN NNN NNNN`` (spaces: area code and exchange from 2-9);
  a run of bare digits (an id, a timestamp, an ISBN) and ISO dates are not phone numbers.

The measured precision and recall on real text (Debian changelogs: every trailer's maintainer address,
version and date known from the format; the Python documentation; Debian copyright files) are in
docs/quality.md (``bench/pii.py``).
"""

from __future__ import annotations

import re
from typing import Dict, List, Optional, Tuple

from corpusmill.core.document import Document
from corpusmill.filters.base import Filter, Verdict, keep

EMAIL, IP, PHONE = "|||EMAIL_ADDRESS|||", "|||IP_ADDRESS|||", "|||PHONE_NUMBER|||"

_EMAIL = re.compile(
    r"(?<![\w.+-])(?<![\w.+-]')[A-Za-z0-9_](?:[A-Za-z0-9!#$%&'*+^_`{|}~-]|=(?!['\"]))*"
    r"(?:\.(?:[A-Za-z0-9!#$%&'*+^_`{|}~-]|=(?!['\"]))+)*"  # (an '=' before a quote is code: x='a@b.org')
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![\w-])"
)

_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4 = re.compile(
    rf"(?<![\w.\-])(?<!\bv)(?<!version )(?<!Version )(?<!release )(?<!Release )"
    rf"{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}(?:/\d{{1,2}})?(?![\w-]|\.\d)"
)
_H = r"[0-9A-Fa-f]{1,4}"
_IPV6 = re.compile(
    rf"(?<![\w:.])(?:"
    rf"(?:{_H}:){{7}}{_H}"  # full
    rf"|(?:{_H}:){{1,6}}:(?:{_H}:){{0,5}}{_H}"  # with ::, groups on both sides
    rf"|(?:{_H}:){{2,7}}:"  # trailing ::
    rf"|::(?:{_H}:){{1,6}}{_H}"  # leading ::
    rf")(?:/\d{{1,3}})?(?![\w:])"
)

_SEP = r"[ .\-]"
_PHONE = re.compile(
    r"(?<![\w+.\-/])(?:"
    r"\+[1-9]\d{0,2}(?:[ \-]?\(0?\d{1,4}\))?[ \-]\d{1,4}(?:" + _SEP + r"?\d{1,4}){1,4}"  # +CC, then groups
    r"|\(\d{3}\)[ .\-]?\d{3}[ .\-]\d{4}"  # (NNN) NNN-NNNN
    r"|\d{3}([.\-])\d{3}\1\d{4}"  # NNN-NNN-NNNN / NNN.NNN.NNNN (one separator throughout)
    r"|(?<!\d )[2-9]\d{2} \d{3} \d{4}(?! \d)"  # NNN NNN NNNN (area code from 2-9; not in a run of numbers)
    r")(?![\w\-]|[.,/]\d)"
)


def _is_ipv6(s: str) -> bool:
    import ipaddress

    bare = s.split("/")[0]
    if "::" not in bare and not re.search(r"[A-Fa-f]", bare):
        return False  # 1:2:3:4:5:6:7:8 of digits only: a ratio or a time more likely than an address
    try:
        ipaddress.IPv6Address(bare)
    except ValueError:
        return False
    return bare.count(":") >= 2 and len(re.findall(_H, bare)) >= 3 or bare.startswith("::") or bare.endswith("::")


def _is_ipv4(s: str) -> bool:
    """A dotted quad that is not a four-part version: versions have a first part under 10 and no part over
    two digits (``3.7.2.0``, ``1.2.99.2``); addresses with such parts (``8.8.8.8``, ``1.1.1.1``) are public
    resolvers, not a person's."""
    parts = s.split("/")[0].split(".")
    return not (int(parts[0]) < 10 and all(len(p) <= 2 for p in parts))


def _phone_digits_ok(s: str) -> bool:
    digits = re.sub(r"\D", "", s)
    return (8 if s.startswith("+") else 10) <= len(digits) <= 15


def scrub(text: str, found: Optional[List[Tuple[str, str]]] = None) -> Tuple[str, Dict[str, int]]:
    """``text`` with its e-mail addresses, IP addresses and phone numbers replaced by placeholders, and
    how many of each were replaced (``{"pii_email": n, "pii_ip": n, "pii_phone": n}``). ``found``, if
    given, gets ``(kind, replaced text)`` for every replacement."""
    counts = {"pii_email": 0, "pii_ip": 0, "pii_phone": 0}
    # e-mail first: an address's domain may hold digits that look like the others
    for kind, pattern, placeholder, check in (
        ("pii_email", _EMAIL, EMAIL, None),
        ("pii_ip", _IPV6, IP, _is_ipv6),
        ("pii_ip", _IPV4, IP, _is_ipv4),
        ("pii_phone", _PHONE, PHONE, _phone_digits_ok),
    ):
        out: List[str] = []
        last = 0
        for m in pattern.finditer(text):
            if check is not None and not check(m.group(0)):
                continue
            out += [text[last : m.start()], placeholder]
            last = m.end()
            counts[kind] += 1
            if found is not None:
                found.append((kind[4:], m.group(0)))
        if out:
            text = "".join(out) + text[last:]
    return text, counts


class ScrubPII(Filter):
    """The ``pii`` step: keeps every document, with its PII replaced; ``counters.pii_email``,
    ``pii_ip`` and ``pii_phone`` in stats.json count the replacements, and ``pii_documents`` the
    documents that had any."""

    clean_output = True  # cuts, joins or annotates clean text (Filter.clean_output)

    name = "pii"

    def __call__(self, doc: Document) -> Verdict:
        text, counts = scrub(doc.text)
        if text == doc.text:
            return keep(doc)
        counts = {k: v for k, v in counts.items() if v}
        counts["pii_documents"] = 1
        return keep(
            doc.replace(text=text).annotate(pii=sum(v for k, v in counts.items() if k != "pii_documents")), counts
        )
