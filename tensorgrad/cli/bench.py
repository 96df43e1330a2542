"""``tensorgrad bench``: tensorgrad against numpy, PyTorch and scikit-learn.

Runs the workloads of ``tensorgrad.benchmarks`` (the same registry as the pytest-benchmark
suite in ``bench/``), prints a table of times and speed ratios with the machine it ran on,
and writes results.md, results.json and results.png to ``--out`` (each written to a
temporary file and renamed into place). PyTorch and scikit-learn are optional: an engine
whose library is not installed is left out of the tables, with a note on stderr. The
progress bar is drawn only when stderr is a terminal.

Exit code 0 when every tensorgrad result matched the other engines, 1 when one was WRONG or
failed, 2 for bad options or an ``--out`` folder that cannot be written (one line on
stderr, before anything runs); ``--threads`` above the available cores prints a warning.
"""
import argparse
import importlib.util
import shlex
import sys
import time

from tensorgrad.cli._common import (
    ArgumentParser,
    UsageError,
    check_output_folder,
    error,
    note,
    warn_oversubscription,
)

__all__ = ["main"]

# Engines whose library may be missing: engine -> (module, what to install).
OPTIONAL_ENGINES = {
    "torch": ("torch", ("CPU build: pip install torch --index-url "
                        "https://download.pytorch.org/whl/cpu")),
    "sklearn": ("sklearn", "pip install scikit-learn"),
    "faiss": ("faiss", "pip install faiss-cpu"),
}


def _threads(text):
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N or a list like 1,2, got {text!r}") \
            from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"thread counts must be >= 1, got {text!r}")
    return list(dict.fromkeys(values))


def _positive(text):
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") \
            from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return v


def _parser(prog):
    p = ArgumentParser(prog=prog,
                       description="Time tensorgrad against numpy (hand-written flat "
                                   "backward), PyTorch eager and scikit-learn on the same "
                                   "inputs and threads, checking that every engine computes "
                                   "the same results.")
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
    p.add_argument("--engines", default="tensorgrad,numpy,torch,sklearn,scipy,faiss",
                   metavar="LIST",
                   help="comma-separated engines to run (tensorgrad is always included; "
                        "torch, sklearn and faiss only when installed)")
    p.add_argument("--no-plot", action="store_true", help="do not write results.png")
    p.add_argument("--list", action="store_true", help="list the workloads and exit")
    return p


def _engines(text):
    """(engines to run, tensorgrad first; notes on the optional ones that are not installed
    and are dropped). Raises UsageError for an unknown name."""
    from tensorgrad.benchmarks import ENGINES

    engines = [e.strip() for e in text.split(",") if e.strip()]
    unknown = [e for e in engines if e not in ENGINES]
    if unknown:
        raise UsageError(f"--engines: unknown engine(s) {', '.join(unknown)}; choose from "
                         f"{', '.join(ENGINES)}")
    chosen, notes = ["tensorgrad"], []
    for engine in dict.fromkeys(engines):
        module, install = OPTIONAL_ENGINES.get(engine, (None, None))
        if module is not None and importlib.util.find_spec(module) is None:
            notes.append(f"{module} is not installed, so the {engine} columns are skipped "
                         f"({install})")
        elif engine != "tensorgrad":
            chosen.append(engine)
    return chosen, notes


def main(argv=None, prog="tensorgrad bench"):
    """Run ``bench`` with ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = _parser(prog).parse_args(argv)
        import tensorgrad as tg
        from tensorgrad.benchmarks import registry, report, runner

        if args.list:
            for w in registry.WORKLOADS.values():
                p = w.sizes(args.quick)
                print(f"{w.name:20s} {w.group:12s} {w.size(p):42s} {', '.join(w.impls)}")
            return 0
        workloads = registry.select(args.only)
        engines, notes = _engines(args.engines)
        check_output_folder(args.out, "--out")
    except SystemExit as e:  # --help
        return e.code if isinstance(e.code, int) else 0
    except (UsageError, ValueError) as e:
        return error(prog, e)
    for text in notes:                   # only once every option has been checked
        note(prog, text)
    threads = args.threads or [tg.get_num_threads()]
    for n in threads:
        warn_oversubscription(prog, n, "the benchmarks")
    settings = {"quick": args.quick, "threads": threads,
                "repeat": args.repeat or (3 if args.quick else 5),
                "warmup": args.warmup or (1 if args.quick else 2),
                "min_time": 0.02 if args.quick else 0.05, "engines": engines,
                "workloads": [w.name for w in workloads]}
    # the reproducible form of the command, whichever way it was started
    command = "python -m tensorgrad bench" + (" " + shlex.join(argv) if argv else "")

    start = time.perf_counter()
    try:
        rows = runner.run(workloads, quick=args.quick, threads=threads,
                          repeat=settings["repeat"], warmup=settings["warmup"],
                          engines=engines, min_time=settings["min_time"],
                          progress=sys.stderr.isatty())
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    settings["wall_seconds"] = round(time.perf_counter() - start, 1)
    info = report.machine_info()
    text, paths, messages = report.write_all(args.out, rows, info, command, settings,
                                             plot=not args.no_plot)
    print(text)
    for msg in messages:
        note(prog, msg)
    print(f"{prog}: wrote {', '.join(paths)} ({settings['wall_seconds']} s)", file=sys.stderr)
    bad = [r for r in rows if r.status in ("WRONG", "error")]
    for r in bad:
        print(f"{prog}: {r.status}: {r.workload} ({r.threads} threads): {r.reason}",
              file=sys.stderr)
    return 1 if bad else 0
