"""`python -m components.migrate`: see `components.migrate`."""

import sys

from ._run import main

sys.exit(main())
