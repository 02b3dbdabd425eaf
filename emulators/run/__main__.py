"""`python -m emulators.run`."""

from __future__ import annotations

import sys

from emulators.run.main import main

sys.exit(main())
