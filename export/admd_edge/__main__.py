"""``python -m admd_edge`` = ``admd-edge``."""

from __future__ import annotations

import sys

from admd_edge.cli import main

sys.exit(main())
