"""htpasswd hashes as apr_password_validate checks them: each form Debian's htpasswd writes
(-B bcrypt, -m apr1-MD5, -s SHA1, -d crypt), known vectors, and the file cache."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from mpmd.modules import htpasswd

HTPASSWD = shutil.which("htpasswd")


@pytest.mark.skipif(HTPASSWD is None, reason="htpasswd (apache2-utils) is not installed")
@pytest.mark.parametrize("flag,prefix", [("-B", "$2y$"), ("-m", "$apr1$"), ("-s", "{SHA}"),
                                         ("-d", "")])
@pytest.mark.parametrize("password", ["secret", "pässwörd", "a:b c", "x" * 8])
def test_every_hash_htpasswd_writes(tmp_path, flag, prefix, password):
    path = tmp_path / "pw"
    subprocess.run([HTPASSWD, "-cb", flag, str(path), "user", password], check=True,
                   capture_output=True)
    hashed = htpasswd.user_hash(str(path), "user")
    assert hashed.startswith(prefix)
    assert htpasswd.verify(password, hashed)
    if not (flag == "-d" and len(password.encode()) >= 8):   # DES crypt reads 8 bytes only
        assert not htpasswd.verify(password + "x", hashed)
    assert not htpasswd.verify("#" + password[1:], hashed)
    assert not htpasswd.verify("", hashed)


def test_known_vectors():
    # apr1 and SHA1 vectors from the Apache documentation and APR's tests
    assert htpasswd.apr1(b"password", b"xxxxxxxx") == "$apr1$xxxxxxxx$dxHfLAsjHkDRmG83UXe8K0"
    assert htpasswd.verify("password", "$apr1$xxxxxxxx$dxHfLAsjHkDRmG83UXe8K0")
    assert htpasswd.verify("password", "{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=")
    assert htpasswd.verify("password", "$2y$05$MN6gaZevje3VKHHBNqAVdOrVppMjBCn2/S/NISXREwwf0mMq7k4Pu")
    assert not htpasswd.verify("passwore", "$2y$05$MN6gaZevje3VKHHBNqAVdOrVppMjBCn2/S/NISXREwwf0mMq7k4Pu")
    assert not htpasswd.verify("password", "$2y$05$notahash")
    assert htpasswd.verify("password", "xxj31ZMTZzkVA")        # crypt(3), DES
    assert not htpasswd.verify("passwore", "xxj31ZMTZzkVA")
    assert not htpasswd.verify("password", "")


def test_files_are_read_again_when_they_change(tmp_path):
    pw, groups = tmp_path / "pw", tmp_path / "groups"
    pw.write_text("# comment\nann:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\nann:other\n")
    groups.write_text("admins: ann bob\nstaff: bob\nadmins: cid\n")
    assert htpasswd.user_hash(str(pw), "ann") == "{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g="
    assert htpasswd.user_hash(str(pw), "bob") is None
    assert htpasswd.groups_of(str(groups), "bob") == {"admins", "staff"}
    assert htpasswd.groups_of(str(groups), "cid") == {"admins"}
    pw.write_text("bob:x\n")
    os.utime(pw, ns=(1, 1))
    assert htpasswd.user_hash(str(pw), "ann") is None and htpasswd.user_hash(str(pw), "bob") == "x"
    with pytest.raises(OSError):
        htpasswd.user_hash(str(tmp_path / "missing"), "ann")
