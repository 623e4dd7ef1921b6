"""docs/directives.md is generated from the tables; it must not be stale."""

from pathlib import Path

from mpmd.config.docs import DOCS_PATH, collect, group_markdown, render_list

FIX = "regenerate with: PYTHONPATH=src python3 -m mpmd.config.docs --write"


def test_docs_file_is_current():
    text = Path(DOCS_PATH).read_text()
    groups, _skipped = collect()            # owners not importable yet are skipped
    for owner, table in groups:
        assert group_markdown(owner, table) in text, f"docs/directives.md is stale for {owner}; {FIX}"


def test_list_output_names_owner():
    groups, _ = collect()
    out = render_list(groups)
    assert "KeepAliveTimeout (core)" in out
