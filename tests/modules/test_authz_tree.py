"""mod_authz_core's tree and masks, mod_access_compat's addresses and the host-name match,
as units: httpd's results for neutral children, negation and method masks."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from mpmd.config.values import Worded
from mpmd.modules.hostnames import in_domain
from mpmd.modules.mod_authz_core import (ALL_METHODS, DENIED, DENIED_NO_USER, GRANTED, NEUTRAL,
                                         AuthzSection, Mask, Requirement, ip_subnet, limit_mask,
                                         make_section)


def leaf(answer: str, negate: bool = False, limited: Mask = ALL_METHODS) -> Requirement:
    arg = {GRANTED: True, DENIED: False, DENIED_NO_USER: None}[answer]
    return Requirement("all" if arg is not None else "valid-user", negate,
                       arg if arg is not None else None, limited)


def ctx(method: str = "GET") -> SimpleNamespace:
    return SimpleNamespace(request=SimpleNamespace(method=method), notes={}, env={})


@pytest.mark.parametrize("kind,children,want", [
    ("RequireAny", [DENIED, GRANTED], GRANTED),
    ("RequireAny", [DENIED, DENIED_NO_USER], DENIED_NO_USER),
    ("RequireAll", [GRANTED, DENIED_NO_USER], DENIED_NO_USER),
    ("RequireAll", [DENIED_NO_USER, DENIED], DENIED),
    ("RequireAll", [GRANTED, GRANTED], GRANTED),
    ("RequireNone", [DENIED, DENIED], NEUTRAL),          # not refused grants nothing
    ("RequireNone", [DENIED, GRANTED], DENIED),
])
def test_containers(kind, children, want):
    node = make_section(kind, tuple(leaf(c) for c in children))
    assert node.judge(ctx(), True) == want


def test_negation_and_neutral():
    granted_not = leaf(GRANTED, negate=True)                # "Require not" that matched
    denied_not = leaf(DENIED, negate=True)
    assert granted_not.judge(ctx(), True) == DENIED
    assert denied_not.judge(ctx(), True) == NEUTRAL
    # a RequireAll whose only other child is neutral: the granted one decides
    assert make_section("RequireAll", (leaf(GRANTED), denied_not)).judge(ctx(), True) == GRANTED
    # only neutral children: neutral, which is no grant
    assert AuthzSection("RequireAll", (denied_not,)).judge(ctx(), True) == NEUTRAL


def test_method_masks():
    post = Mask(frozenset({"POST"}), False)
    node = make_section("RequireAny", (leaf(DENIED, limited=post),))
    assert node.limited == post
    assert node.judge(ctx("GET"), True) == GRANTED           # outside the mask, under "all"
    assert node.judge(ctx("POST"), True) == DENIED
    assert leaf(DENIED, limited=post).judge(ctx("GET"), False) == NEUTRAL   # under "any"
    assert Mask(frozenset({"GET"}), False).allows("HEAD")
    assert not Mask(frozenset({"GET"}), True).allows("HEAD")


def test_mask_algebra():
    get_post = Mask(frozenset({"GET", "POST"}), False)
    not_get = Mask(frozenset({"GET"}), True)
    assert get_post & not_get == Mask(frozenset({"POST"}), False)
    assert get_post | not_get == ALL_METHODS
    assert (not_get & Mask(frozenset({"PUT"}), True)) == Mask(frozenset({"GET", "PUT"}), True)
    assert limit_mask(["GET"], "Limit", get_post) == Mask(frozenset({"GET"}), False)
    assert limit_mask(["HEAD"], "Limit", None) == Mask(frozenset({"GET"}), False)
    with pytest.raises(Worded, match="excludes all methods"):
        limit_mask(["PUT"], "Limit", get_post)
    with pytest.raises(Worded, match="already excluded"):
        limit_mask(["PUT"], "LimitExcept", get_post)
    with pytest.raises(Worded, match="TraceEnable"):
        limit_mask(["TRACE"], "Limit", None)


@pytest.mark.parametrize("word,net", [
    ("10.1", "10.1.0.0/16"), ("10.1.", "10.1.0.0/16"), ("10", "10.0.0.0/8"),
    ("192.168.1.7", "192.168.1.7/32"), ("10.1.2.3/255.255.0.0", "10.1.0.0/16"),
    ("10.1.2.3/12", "10.0.0.0/12"), ("::1", "::1/128"), ("fe80::/10", "fe80::/10"),
])
def test_subnets_as_apr(word, net):
    assert str(ip_subnet(word)) == net


@pytest.mark.parametrize("word,words", [
    ("10.1.2.3/33", "mask"), ("10.1.2.3/255.0.255.0", "mask"), ("300.1", "invalid"),
    ("10.1/16", "address is invalid"),                    # a partial address takes no mask
    ("host/8", "IP address was expected"),
])
def test_bad_subnets(word, words):
    with pytest.raises(Worded, match=words):
        ip_subnet(word)


def test_names_are_hosts():
    assert ip_subnet("example.com") is None and ip_subnet("localhost") is None


@pytest.mark.parametrize("domain,name,want", [
    ("example.com", "www.example.com", True), ("example.com", "example.com", True),
    (".example.com", "www.example.com", True), ("example.com", "badexample.com", False),
    ("EXAMPLE.com", "www.Example.COM", True), ("www.example.com", "example.com", False),
    ("localhost", "localhost", True),
])
def test_in_domain(domain, name, want):
    assert in_domain(domain, name) is want
