"""The ``physml`` command line: one verb per pipeline step (see ``physml --help``)."""
