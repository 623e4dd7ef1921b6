"""httpd.conf-style configuration: lexer -> parser (tree with file:line) -> loader (directive tables)."""
