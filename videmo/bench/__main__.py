"""`python -m videmo.bench ...` is `videmo bench ...`."""

import sys

from videmo.bench.cli import main

sys.exit(main())
