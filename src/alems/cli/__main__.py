"""``python -m alems.cli``: the same as the ``alems`` console script."""

from alems.cli import main

raise SystemExit(main())
