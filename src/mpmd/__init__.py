"""mpmd: Apache's MPMs and an nginx-style event loop on one sans-I/O HTTP core."""

__version__ = "0.1.0"
SERVER_SOFTWARE = "mpmd"
