"""Password and group files as Apache's mod_authn_file and mod_authz_groupfile read them.

Rule 1: ``verify(password, hash)`` takes the hash forms Debian's ``htpasswd`` writes, as
        apr_password_validate does: ``$2y$``/``$2a$``/``$2b$`` (bcrypt, -B), ``$apr1$``
        (APR's MD5, -m, the default), ``{SHA}`` (SHA-1 in base64, -s), and anything else goes
        to the system's crypt(3) (``-d``: DES; also ``$5$``/``$6$`` written by other tools).
        - bcrypt: the ``bcrypt`` package (pyca, maintained, a dependency of mpmd).
        - apr1: implemented here (below, ~25 lines after APR's apr_md5.c).  passlib has it,
          but passlib is unmaintained (no release since 2020, broken with bcrypt >= 4.1), and
          the algorithm is small, fixed and checked against files written by htpasswd -m.
        - crypt(3): the stdlib ``crypt`` module, which calls libc as httpd does.  It is
          deprecated in Python 3.11 and gone in 3.13: there, crypt hashes never match (the
          refusal is logged once); bcrypt, apr1 and SHA1 do not depend on it.
        Comparisons are constant-time (``hmac.compare_digest``).
Rule 2: a file is read once per change of its (mtime, size, inode) and kept per process;
        a missing or unreadable file denies (Apache logs it and answers 401... or 500;
        mpmd answers 401 and logs it, see mod_auth.py).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import warnings
from typing import Any, Callable

try:
    import bcrypt as _bcrypt
except ImportError:                      # pragma: no cover - a dependency; checked at use
    _bcrypt = None

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    try:
        import crypt as _crypt           # deprecated in 3.11, removed in 3.13 (Rule 1)
    except ImportError:                  # pragma: no cover
        _crypt = None

_ITOA64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _to64(value: int, n: int) -> str:
    out = []
    for _ in range(n):
        out.append(_ITOA64[value & 0x3F])
        value >>= 6
    return "".join(out)


def apr1(password: bytes, salt: bytes, magic: bytes = b"$apr1$") -> str:
    """APR's MD5 crypt (apr_md5_encode): ``$apr1$salt$hash``; salt is at most 8 bytes."""
    salt = salt[:8]
    ctx = hashlib.md5(password + magic + salt)
    final = hashlib.md5(password + salt + password).digest()
    for i in range(len(password), 0, -16):
        ctx.update(final[:min(16, i)])
    i = len(password)
    while i:
        ctx.update(b"\0" if i & 1 else password[:1])
        i >>= 1
    final = ctx.digest()
    for i in range(1000):
        c = hashlib.md5()
        c.update(password if i & 1 else final)
        if i % 3:
            c.update(salt)
        if i % 7:
            c.update(password)
        c.update(final if i & 1 else password)
        final = c.digest()
    f = final
    text = (_to64((f[0] << 16) | (f[6] << 8) | f[12], 4) + _to64((f[1] << 16) | (f[7] << 8) | f[13], 4)
            + _to64((f[2] << 16) | (f[8] << 8) | f[14], 4) + _to64((f[3] << 16) | (f[9] << 8) | f[15], 4)
            + _to64((f[4] << 16) | (f[10] << 8) | f[5], 4) + _to64(f[11], 2))
    return (magic + salt + b"$").decode("latin-1") + text


def verify(password: str, hashed: str) -> bool:
    """Rule 1: does ``password`` match the htpasswd ``hashed`` field?"""
    pw = password.encode("utf-8", "surrogateescape")
    if hashed.startswith(("$2y$", "$2a$", "$2b$")):
        if _bcrypt is None:
            return False
        try:
            return _bcrypt.checkpw(pw, hashed.replace("$2y$", "$2b$", 1).encode("ascii"))
        except ValueError:
            return False
    if hashed.startswith("$apr1$"):
        salt = hashed[6:].split("$", 1)[0].encode("latin-1")
        return hmac.compare_digest(apr1(pw, salt), hashed)
    if hashed.startswith("{SHA}"):
        digest = base64.b64encode(hashlib.sha1(pw).digest()).decode("ascii")
        return hmac.compare_digest("{SHA}" + digest, hashed)
    if _crypt is None or not hashed:
        return False
    try:
        computed = _crypt.crypt(password, hashed)
    except (ValueError, OSError):
        return False
    return computed is not None and hmac.compare_digest(computed, hashed)


_cache: dict[str, tuple[tuple[int, int, int], Any]] = {}


def _cached(path: str, parse: Callable[[str], Any]) -> Any:
    """Rule 2: ``parse(text)`` of ``path``, re-read when the file changes; OSError if unreadable."""
    st = os.stat(path)
    key = (st.st_mtime_ns, st.st_size, st.st_ino)
    hit = _cache.get(path)
    if hit is not None and hit[0] == key:
        return hit[1]
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        value = parse(f.read())
    _cache[path] = (key, value)
    return value


def _parse_users(text: str) -> dict[str, str]:
    users: dict[str, str] = {}
    for line in text.splitlines():
        if not line or line.startswith("#") or ":" not in line:
            continue
        user, _, hashed = line.partition(":")
        users.setdefault(user, hashed.strip())        # httpd takes the first line for a user
    return users


def _parse_groups(text: str) -> dict[str, frozenset[str]]:
    groups: dict[str, set[str]] = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#") or ":" not in line:
            continue
        name, _, members = line.partition(":")
        groups.setdefault(name.strip(), set()).update(members.split())
    return {k: frozenset(v) for k, v in groups.items()}


def user_hash(path: str, user: str) -> str | None:
    return _cached(path, _parse_users).get(user)


def groups_of(path: str, user: str) -> set[str]:
    return {name for name, members in _cached(path, _parse_groups).items() if user in members}
