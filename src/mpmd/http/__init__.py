"""Sans-I/O HTTP/1.1 core: bytes in, events out; responses to bytes. No sockets, threads or clocks."""
