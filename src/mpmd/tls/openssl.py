"""The OpenSSL settings the ssl module does not expose: verify depth, TLS 1.3 suites and the
server's session cache.

Theory: ``SSLVerifyDepth`` is ``SSL_CTX_set_verify_depth`` and ``SSLCipherSuite TLSv1.3`` is
``SSL_CTX_set_ciphersuites``; Python 3.11's ``ssl.SSLContext`` has neither.  They are called
through ctypes on the very libssl the ``_ssl`` extension uses (found in this process's
memory map), with the ``SSL_CTX *`` that CPython keeps as the first field of an SSLContext
object, right after the object header.

Rule 1: nothing here guesses: ``available()`` is False unless the library is the one loaded
        and a probe round-trips (set a depth, read the same depth back); mod_ssl then refuses
        a non-default SSLVerifyDepth or a TLSv1.3 suite list at ``-t`` instead of ignoring it.
Rule 2: only contexts are touched, in the master, while a configuration is loaded.
"""

from __future__ import annotations

import ctypes
import ssl
from typing import Any

_HEADER = object.__basicsize__          # ob_refcnt + ob_type: where PySSLContext.ctx starts
_lib: list[Any] = []                    # [the library or None], looked up once


def _libssl() -> Any:
    if not _lib:
        _lib.append(_load())
    return _lib[0]


def _load() -> Any:
    path = _mapped_libssl()
    if path is None:
        return None
    try:
        lib = ctypes.CDLL(path)
        lib.SSL_CTX_set_verify_depth.argtypes = [ctypes.c_void_p, ctypes.c_int]
        lib.SSL_CTX_set_verify_depth.restype = None
        lib.SSL_CTX_get_verify_depth.argtypes = [ctypes.c_void_p]
        lib.SSL_CTX_get_verify_depth.restype = ctypes.c_int
        lib.SSL_CTX_set_ciphersuites.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.SSL_CTX_set_ciphersuites.restype = ctypes.c_int
        lib.SSL_CTX_ctrl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_long, ctypes.c_void_p]
        lib.SSL_CTX_ctrl.restype = ctypes.c_long
        lib.ERR_clear_error.argtypes = []
        lib.ERR_clear_error.restype = None
    except (OSError, AttributeError):
        return None
    return lib if _probe(lib) else None


def _mapped_libssl() -> str | None:
    """The libssl shared object ``_ssl`` is linked with, as this process mapped it."""
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                path = line.split()[-1]
                if "/libssl.so" in path:
                    return path
    except OSError:
        pass
    return None


def _ctx_pointer(context: ssl.SSLContext) -> int | None:
    return ctypes.c_void_p.from_address(id(context) + _HEADER).value


def _probe(lib: Any) -> bool:
    probe = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    pointer = _ctx_pointer(probe)
    if not pointer:
        return False
    lib.SSL_CTX_set_verify_depth(pointer, 7)
    return bool(lib.SSL_CTX_get_verify_depth(pointer) == 7)


def available() -> bool:
    return _libssl() is not None


def set_verify_depth(context: ssl.SSLContext, depth: int) -> None:
    lib = _libssl()
    if lib is None:
        raise RuntimeError("SSLVerifyDepth cannot be applied: libssl is not reachable")
    lib.SSL_CTX_set_verify_depth(_ctx_pointer(context), depth)


def set_tls13_suites(context: ssl.SSLContext, spec: str) -> None:
    """``SSL_CTX_set_ciphersuites``; ValueError when OpenSSL accepts none of ``spec``."""
    lib = _libssl()
    if lib is None:
        raise RuntimeError("SSLCipherSuite TLSv1.3 cannot be applied: libssl is not reachable")
    ok = lib.SSL_CTX_set_ciphersuites(_ctx_pointer(context), spec.encode("ascii", "replace"))
    lib.ERR_clear_error()          # a failure queues an error the next ssl call would report
    if not ok:
        raise ValueError(f"no TLS 1.3 cipher suite matches '{spec}'")


SSL_CTRL_SET_SESS_CACHE_MODE = 44       # SSL_CTX_set_session_cache_mode is this ctrl (ssl.h)
SSL_SESS_CACHE_OFF = 0


def set_session_cache_off(context: ssl.SSLContext) -> bool:
    """No server-side session cache (httpd without SSLSessionCache): a session resumes only
    through a ticket.  False when libssl is not reachable (the cache then stays, per process)."""
    lib = _libssl()
    if lib is None:
        return False
    lib.SSL_CTX_ctrl(_ctx_pointer(context), SSL_CTRL_SET_SESS_CACHE_MODE, SSL_SESS_CACHE_OFF, None)
    return True
