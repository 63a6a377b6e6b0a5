"""`python -m components.status`: see `components.status`."""

import sys

from ._run import main

sys.exit(main())
