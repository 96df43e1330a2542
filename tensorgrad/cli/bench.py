"""``python -m tensorgrad bench``: tensorgrad against numpy, PyTorch and scikit-learn.

Runs the workloads of ``tensorgrad.benchmarks`` (the same registry as the pytest-benchmark
suite in ``bench/``), prints a table of times and speed ratios with the machine it ran on,
and writes results.md, results.json and results.png to ``--out``. Exit code 0 when every
tensorgrad result matched the other engines, 1 when one was WRONG or failed, 2 for bad
options.
"""
import argparse
import shlex
import sys
import time

__all__ = ["main"]


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise _UsageError(message)


def _threads(text):
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N or a list like 1,2, got {text!r}")
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"thread counts must be >= 1, got {text!r}")
    return list(dict.fromkeys(values))


def _positive(text):
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return v


def _parser():
    p = _Parser(prog="python -m tensorgrad bench",
                description="Time tensorgrad against numpy (hand-written flat backward), "
                            "PyTorch eager and scikit-learn on the same inputs and threads, "
                            "checking that every engine computes the same results.")
    p.add_argument("--quick", action="store_true",
                   help="smaller sizes and fewer repetitions (a few minutes at most)")
    p.add_argument("--threads", type=_threads, default=None, metavar="N[,N...]",
                   help="thread count, or a list (1,2) to rerun per count and report the "
                        "speed-up (default: tensorgrad's current count)")
    p.add_argument("--only", nargs="+", default=None, metavar="NAME",
                   help="workload names or groups (globs allowed), e.g. add matmul '*loss*'")
    p.add_argument("--out", default="bench-results", metavar="DIR",
                   help="where to write results.md, results.json, results.png "
                        "(default: ./bench-results)")
    p.add_argument("--repeat", type=_positive, default=None, metavar="K",
                   help="timed repetitions per case (default 5, --quick 3)")
    p.add_argument("--warmup", type=_positive, default=None, metavar="W",
                   help="untimed warm-up calls per case (default 2, --quick 1)")
    p.add_argument("--engines", default="tensorgrad,numpy,torch,sklearn", metavar="LIST",
                   help="comma-separated engines to run (tensorgrad is always included)")
    p.add_argument("--no-plot", action="store_true", help="do not write results.png")
    p.add_argument("--list", action="store_true", help="list the workloads and exit")
    return p


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except _UsageError as e:
        print(f"tensorgrad bench: {e}", file=sys.stderr)
        return 2
    except SystemExit as e:          # --help
        return int(e.code or 0)

    import tensorgrad as tg
    from tensorgrad.benchmarks import ENGINES, registry, report, runner

    if args.list:
        for w in registry.WORKLOADS.values():
            p = w.sizes(args.quick)
            print(f"{w.name:20s} {w.group:12s} {w.size(p):42s} {', '.join(w.impls)}")
        return 0
    try:
        workloads = registry.select(args.only)
    except ValueError as e:
        print(f"tensorgrad bench: {e}", file=sys.stderr)
        return 2
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = [e for e in engines if e not in ENGINES]
    if unknown:
        print(f"tensorgrad bench: unknown engine(s) {', '.join(unknown)}; choose from "
              f"{', '.join(ENGINES)}", file=sys.stderr)
        return 2
    engines = ["tensorgrad"] + [e for e in engines if e != "tensorgrad"]
    threads = args.threads or [tg.get_num_threads()]
    settings = {"quick": args.quick, "threads": threads,
                "repeat": args.repeat or (3 if args.quick else 5),
                "warmup": args.warmup or (1 if args.quick else 2),
                "min_time": 0.02 if args.quick else 0.05, "engines": engines,
                "workloads": [w.name for w in workloads]}
    command = "python -m tensorgrad bench" + (" " + shlex.join(argv) if argv else "")

    start = time.perf_counter()
    rows = runner.run(workloads, quick=args.quick, threads=threads,
                      repeat=settings["repeat"], warmup=settings["warmup"], engines=engines,
                      min_time=settings["min_time"])
    settings["wall_seconds"] = round(time.perf_counter() - start, 1)
    info = report.machine_info()
    text, paths, messages = report.write_all(args.out, rows, info, command, settings,
                                             plot=not args.no_plot)
    print(text)
    for msg in messages:
        print(f"tensorgrad bench: {msg}", file=sys.stderr)
    print(f"wrote {', '.join(paths)} "
          f"({settings['wall_seconds']} s)", file=sys.stderr)
    bad = [r for r in rows if r.status in ("WRONG", "error")]
    for r in bad:
        print(f"tensorgrad bench: {r.status}: {r.workload} ({r.threads} threads): {r.reason}",
              file=sys.stderr)
    return 1 if bad else 0
