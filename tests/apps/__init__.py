"""Small applications the WSGI/ASGI tests serve (each file is also usable as a WSGIScriptAlias script)."""
