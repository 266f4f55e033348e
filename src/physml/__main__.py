"""``python -m physml`` is the ``physml`` command."""

import sys

from physml.cli.main import main

sys.exit(main())
