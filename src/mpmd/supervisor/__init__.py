"""The supervisor, above the MPMs: the master's restart loop, signals and ``-k``, the PidFile,
and the listening sockets bound before any child is forked.  Nothing below it (the HTTP core,
the request pipeline, the modules, the MPMs) imports it."""
