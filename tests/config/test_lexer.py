"""Lexer: logical lines, comments, continuation, quoting, section tokens."""

import pytest

from mpmd.config.lexer import LexError, logical_lines, split_words, tokenize


def test_comments_blank_lines_and_continuation_number_the_last_line():
    # httpd numbers a continued line by its last physical line ("Syntax error on line 5")
    text = "# comment\n\n  KeepAlive On\nListen \\\n   8080\n   # indented comment\n"
    lines = list(logical_lines(text, "f"))
    assert [(l.line, l.text) for l in lines] == [(3, "KeepAlive On"), (5, "Listen    8080")]


@pytest.mark.parametrize("text, joined", [
    ("ServerAdmin a\\\nb\n", ["ServerAdmin ab"]),                  # no space inserted
    ("ServerAdmin a\\\n    b\n", ["ServerAdmin a    b"]),          # next line's blanks kept
    ("ServerAdmin a\\\r\nb\r\n", ["ServerAdmin ab"]),              # CRLF
    ("ServerAdmin a\\  \nb\n", ["ServerAdmin a\\", "b"]),           # blank after \: no continuation
    ("ServerAdmin a\\\n\\\nb\n", ["ServerAdmin ab"]),              # an empty continued line
    ("# comment \\\nKeepAlve on\n", []),                           # a continued comment
    ("A\x0cB\u2028C\n", ["A\x0cB\u2028C"]),                          # only LF ends a line
])
def test_continuation_like_httpd(text, joined):
    assert [l.text for l in logical_lines(text, "f")] == joined


@pytest.mark.parametrize("text, words", [
    ('a b  c', ["a", "b", "c"]),
    ('DocumentRoot "/srv/my site"', ["DocumentRoot", "/srv/my site"]),
    ("X 'single quoted' \"\"", ["X", "single quoted", ""]),
    (r'X "say \"hi\""', ["X", 'say "hi"']),
    ('X a"b', ["X", 'a"b']),
])
def test_split_words(text, words):
    assert split_words(text) == words


def test_tokenize_sections():
    t = tokenize('<Directory "/srv/www">')
    assert (t.kind, t.name, t.args) == ("open", "Directory", ["/srv/www"])
    t = tokenize("</Directory>")
    assert (t.kind, t.name, t.args) == ("close", "Directory", [])
    t = tokenize("<IfModule !mod_mime.c>")
    assert t.args == ["!mod_mime.c"]


def test_missing_closing_bracket():
    with pytest.raises(LexError, match="missing closing '>'"):
        tokenize("<Directory /x")
