"""``tensorgrad ops``: print the op registry (``tg.ops.table()``), one block per family.

``--markdown`` prints ``docs/ops.md`` instead (``tensorgrad ops --markdown > docs/ops.md``);
``--family NAME`` keeps one family.
"""
import sys

from tensorgrad.cli._common import ArgumentParser, UsageError, error

__all__ = ["main"]


def text_table(entries):
    """The entries as plain text: per family, each op's forward formula, VJP, kernel and
    note (if any)."""
    width = max(len(e.name) for e in entries) + 2
    pad = " " * (2 + width)
    blocks = []
    for family in dict.fromkeys(e.family for e in entries):
        lines = [family]
        for e in entries:
            if e.family == family:
                lines += [f"  {e.name:{width}s}{e.forward}", f"{pad}vjp:    {e.vjp}",
                          f"{pad}kernel: {e.kernel}"]
                if e.note:
                    lines.append(f"{pad}note:   {e.note}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def main(argv=None, prog="tensorgrad ops"):
    """Run ``ops`` with ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    from tensorgrad.ops import registry

    parser = ArgumentParser(prog=prog, description="Print every op's forward formula, "
                            "vector-Jacobian product and kernel, from the op registry.")
    parser.add_argument("--family", choices=registry.FAMILIES,
                        help="only the ops of this family")
    parser.add_argument("--markdown", action="store_true",
                        help="print Markdown tables (the text of docs/ops.md)")
    try:
        args = parser.parse_args(sys.argv[1:] if argv is None else list(argv))
    except SystemExit as e:  # --help
        return e.code if isinstance(e.code, int) else 0
    except UsageError as e:
        return error(prog, e)
    if args.markdown:
        sys.stdout.write(registry.markdown(args.family))
    else:
        print(text_table([e for e in registry.table()
                          if args.family in (None, e.family)]))
    return 0
