from mpmd.cli import main

raise SystemExit(main())
