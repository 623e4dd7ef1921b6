"""Server-wide pieces shared by every MPM: the request pipeline, modules, master, listeners."""
