"""Command-line subcommands of ``python -m tensorgrad`` (and the ``tensorgrad`` script).

Each subcommand lives in its own module exposing ``main(argv: list[str]) -> int``: it parses
``argv`` (the arguments after the subcommand name), prints bad options or bad data as one
line on stderr and returns the exit code (0 success, 2 usage/data error) instead of
raising SystemExit, so ``tensorgrad.__main__`` and the tests can call it directly.
"""
