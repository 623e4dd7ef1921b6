"""Every directive's default is in its converter's domain (gunicorn test_defaults):
rendering the default the way docs show it and converting it back gives the default."""

import pytest

from mpmd.config.docs import collect, default_text
from mpmd.config.loader import Registry

GROUPS, _ = collect()
ALL = [(owner, d) for owner, table in GROUPS for d in table]


@pytest.mark.parametrize("owner, d", ALL, ids=[f"{o}:{d.name}" for o, d in ALL])
def test_default_round_trips(owner, d):
    text = default_text(d)
    if not text:
        pytest.skip("no default (unset, empty list or a section)")
    kind = getattr(d.value, "kind", "")
    value = d.value(text.split() if kind in ("set", "words", "listen") or d.args.max != 1 else [text])
    combine = d.extra.get("combine")
    if combine is not None:
        value = combine(None, value)
    assert value == d.default, f"{d.name}: default {d.default!r} renders as {text!r} -> {value!r}"


def test_fields_unique_per_owner_and_names_unique():
    seen_names, seen_fields = {}, {}
    for owner, d in ALL:
        if d.extra.get("section") or d.extra.get("read_time"):
            continue
        for key in (d.name, *d.aliases):
            prior = seen_names.get(key.lower())      # MPMs share names (StartServers ...), as in httpd
            assert prior is None or (owner.startswith("mpm_") and prior.startswith("mpm_")), \
                f"{key} declared by {owner} and {prior}"
            seen_names[key.lower()] = owner
        if d.field:
            # one owner's directives may share a field: their lines keep their relative order
            # (SetEnvIf and BrowserMatch, SetEnv and UnsetEnv)
            assert seen_fields.get(d.field, owner) == owner or owner.startswith("mpm_"), \
                f"field {d.field} used by {owner} and {seen_fields[d.field]}"
            seen_fields.setdefault(d.field, owner)


def test_registry_loads():
    assert Registry().default_mpm
