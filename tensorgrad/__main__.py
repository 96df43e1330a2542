"""Command line: ``python -m tensorgrad {train,bench,info}`` (also the ``tensorgrad`` script)."""
import sys

USAGE = """usage: python -m tensorgrad COMMAND [options]

commands:
  train   train a model on real data (default: the digits set) and report accuracy
  bench   speed comparison against numpy (and PyTorch when installed)
  info    print the build and runtime configuration (same as tg.show_config())

Run `python -m tensorgrad COMMAND --help` for a command's options."""


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    cmd, rest = argv[0], argv[1:]
    if cmd == "info":
        import tensorgrad
        tensorgrad.show_config()
        return 0
    if cmd == "train":
        from tensorgrad.cli.train import main as train_main
        return train_main(rest)
    if cmd == "bench":
        from tensorgrad.cli.bench import main as bench_main
        return bench_main(rest)
    print(f"tensorgrad: unknown command {cmd!r} (expected train, bench or info)",
          file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
