"""Command-line subcommands of ``tensorgrad`` (the console script) and ``python -m tensorgrad``.

Each subcommand lives in its own module (``train``, ``bench``, ``info``) exposing
``main(argv: list[str], prog: str) -> int``: it parses ``argv`` (the arguments after the
subcommand name) and returns the exit code instead of raising SystemExit, so
``tensorgrad.__main__`` and the tests can call it directly; ``prog`` is the name shown in
its usage and messages (``tensorgrad train`` or ``python -m tensorgrad train``).

Rules shared by every subcommand (helpers in ``_common``): a user error (bad option, bad
file, bad data, an output that cannot be written) is one line ``PROG: error: ...`` on stderr
and exit code 2, found before any work starts; warnings are one line ``PROG: warning: ...``;
output files are written to a temporary file beside them and renamed into place, never left
half-written; progress bars are drawn only when stderr is a terminal.
"""
