"""Command line: ``tensorgrad COMMAND`` (the console script) or ``python -m tensorgrad COMMAND``.

Commands: ``train``, ``bench``, ``ops`` and ``info`` (``tensorgrad.cli``); ``--help``
lists them and ``--version`` prints ``tensorgrad X.Y.Z``. Usage texts and messages name the
program the way it was invoked: ``python -m tensorgrad`` when run as a module, else
``tensorgrad``. A user error is one line on stderr and exit code 2.
"""
import os
import sys

from tensorgrad.cli._common import error

COMMANDS = {
    "train": "train a model on real data (default: the digits set) and report accuracy",
    "bench": "speed comparison against numpy (and PyTorch when installed)",
    "ops": "the op registry: each op's formula, vector-Jacobian product and kernel",
    "info": "print the build and runtime configuration (same as tg.show_config())",
}


def program_name():
    """``python -m tensorgrad`` when this file runs as the ``-m`` module, else the console
    script's name, ``tensorgrad``."""
    argv0 = sys.argv[0] if sys.argv else ""
    if argv0 and os.path.realpath(argv0) == os.path.realpath(__file__):
        return "python -m tensorgrad"
    return "tensorgrad"


def usage(prog):
    commands = "\n".join(f"  {name:7s} {text}" for name, text in COMMANDS.items())
    return (f"usage: {prog} COMMAND [options]\n       {prog} --version\n\n"
            f"commands:\n{commands}\n\n"
            f"Run `{prog} COMMAND --help` for a command's options.")


def _dispatch(argv, prog):
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage(prog))
        return 0
    cmd, rest = argv[0], argv[1:]
    if cmd == "--version":
        import tensorgrad
        print(f"tensorgrad {tensorgrad.__version__}")
        return 0
    if cmd.startswith("-"):
        return error(prog, f"unknown option {cmd!r} (expected --help, --version or a command: "
                           f"{', '.join(COMMANDS)})")
    if cmd not in COMMANDS:
        return error(prog, f"unknown command {cmd!r} (expected {', '.join(COMMANDS)})")
    if cmd == "train":
        from tensorgrad.cli.train import main as command
    elif cmd == "bench":
        from tensorgrad.cli.bench import main as command
    elif cmd == "ops":
        from tensorgrad.cli.ops import main as command
    else:
        from tensorgrad.cli.info import main as command
    return command(rest, prog=f"{prog} {cmd}")


def main(argv=None):
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        code = _dispatch(argv, program_name())
        sys.stdout.flush()  # a closed pipe (`| head`) shows up here, not at interpreter exit
    except BrokenPipeError:
        # The reader went away: stop quietly, with stdout on /dev/null so that Python's own
        # flush at exit does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
