"""``tensorgrad info``: print the build and runtime configuration (``tg.show_config()``)."""
import sys

from tensorgrad.cli._common import ArgumentParser, UsageError, error

__all__ = ["main"]


def main(argv=None, prog="tensorgrad info"):
    """Run ``info`` with ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    parser = ArgumentParser(prog=prog, description="Print tensorgrad's version, compiler, "
                            "OpenMP and BLAS configuration and thread counts (the same as "
                            "tg.show_config()).")
    try:
        parser.parse_args(sys.argv[1:] if argv is None else list(argv))
    except SystemExit as e:  # --help
        return e.code if isinstance(e.code, int) else 0
    except UsageError as e:
        return error(prog, e)
    import tensorgrad

    tensorgrad.show_config()
    return 0
