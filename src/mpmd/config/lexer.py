"""httpd.conf lexing: text -> logical lines -> words.

Rule 1: a line whose first non-blank character is ``#`` is a comment; there are no
        trailing comments (as in httpd, ``KeepAlive On # x`` passes three arguments).
Rule 2: a line ending in a backslash continues on the next line: the backslash is dropped
        and the next line appended as it is (no space added, its leading blanks kept), so
        ``a\\`` then ``b`` is ``ab``; a blank after the backslash ends the line instead.  The
        logical line has the number of its last physical line, as in httpd's messages.
Rule 3: words are separated by blanks; a word starting with ``"`` or ``'`` runs to the
        matching quote, inside which a backslash escapes the quote (httpd ap_getword_conf).
Rule 4: ``<Name args>`` opens a section and ``</Name>`` closes one; the closing ``>`` is
        required on the opening line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterator


@dataclass(frozen=True, slots=True)
class Line:
    file: str
    line: int
    text: str        # continuation joined, stripped, never a comment or blank


class LexError(ValueError):
    """A malformed line; the parser adds file and line.  ``token`` is what the line most
    likely meant (a section line missing its ``>``), so reading can go on past it."""

    def __init__(self, message: str, token: "Token | None" = None) -> None:
        super().__init__(message)
        self.token = token


def logical_lines(text: str, file: str) -> Iterator[Line]:
    """Yield the non-blank, non-comment logical lines of ``text`` (Rules 1 and 2)."""
    pending: list[str] = []
    for number, raw in enumerate(_physical_lines(text), start=1):
        if raw.endswith("\\"):
            pending.append(raw[:-1])
            continue
        pending.append(raw)
        line = _logical(pending, file, number)
        pending = []
        if line is not None:
            yield line
    if pending:
        line = _logical(pending, file, number)
        if line is not None:
            yield line


def _physical_lines(text: str) -> list[str]:
    """Lines split on LF only (not str.splitlines' form feeds or U+2028), less one CR."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def _logical(pieces: list[str], file: str, number: int) -> Line | None:
    joined = "".join(pieces).strip()
    if not joined or joined.startswith("#"):
        return None
    return Line(file, number, joined)


def split_words(text: str) -> list[str]:
    """Split a logical line into words (Rule 3)."""
    words: list[str] = []
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        if text[i] in "\"'":
            word, i = _quoted(text, i)
        else:
            j = i
            while j < n and not text[j].isspace():
                j += 1
            word, i = text[i:j], j
        words.append(word)
    return words


def _quoted(text: str, i: int) -> tuple[str, int]:
    quote = text[i]
    out: list[str] = []
    j = i + 1
    while j < len(text):
        c = text[j]
        if c == "\\" and j + 1 < len(text) and text[j + 1] in (quote, "\\"):
            out.append(text[j + 1])
            j += 2
            continue
        if c == quote:
            return "".join(out), j + 1
        out.append(c)
        j += 1
    return "".join(out), j      # unterminated: to the end of the line, as httpd does


SECTION_RE = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9_]*)(.*)$", re.S)


@dataclass(frozen=True, slots=True)
class Token:
    kind: str        # "directive" | "open" | "close"
    name: str        # directive or section name as written
    args: list[str]


def tokenize(text: str) -> Token:
    """Classify one logical line (after ${VAR} substitution)."""
    m = SECTION_RE.match(text)
    if m is None:
        words = split_words(text)
        return Token("directive", words[0], words[1:])
    closing, name, rest = m.group(1), m.group(2), m.group(3).rstrip()
    if not rest.endswith(">"):
        meant = Token("close" if closing else "open", name, split_words(rest))
        raise LexError(f"<{closing}{name}> directive missing closing '>'", meant)
    inner = rest[:-1]
    if closing:
        return Token("close", name, split_words(inner))
    return Token("open", name, split_words(inner))
