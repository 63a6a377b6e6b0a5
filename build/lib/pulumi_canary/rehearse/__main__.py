"""`python -m components.rehearse`: see `components.rehearse`."""

import sys

from ._run import main

sys.exit(main())
