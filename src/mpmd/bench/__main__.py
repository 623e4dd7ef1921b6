"""python -m mpmd.bench: the same as `mpmd bench`."""

from mpmd.bench import main

raise SystemExit(main())
