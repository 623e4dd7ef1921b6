"""Lexer: logical lines, comments, continuation, quoting, section tokens."""

import pytest

from mpmd.config.lexer import LexError, logical_lines, split_words, tokenize


def test_comments_blank_lines_and_continuation_keep_first_line_number():
    text = "# comment\n\n  KeepAlive On\nListen \\\n   8080\n   # indented comment\n"
    lines = list(logical_lines(text, "f"))
    assert [(l.line, l.text) for l in lines] == [(3, "KeepAlive On"), (4, "Listen 8080")]


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
