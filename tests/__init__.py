# A regular package, so a `tests` package some dependency installs into site-packages
# (sniffpy's, nassl's) never shadows this one.
