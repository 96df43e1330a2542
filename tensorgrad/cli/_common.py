"""What every subcommand shares: one-line errors, up-front output checks, atomic writes.

The rules of the whole command line: a user error (bad option, bad file, bad data, an output
that cannot be written) is one line on stderr, ``PROG: error: ...``, and exit code 2, found
before any work starts; output files are written to a temporary file in the same folder and
renamed onto their name (``os.replace``), so a file is either complete or untouched.
"""
import argparse
import contextlib
import os
import secrets
import sys
import tempfile

from tensorgrad._runtime import cores_available


class UsageError(Exception):
    """A bad option, file or data: reported as one line, exit code 2."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose errors raise ``UsageError`` instead of printing usage and exiting."""

    def error(self, message):
        raise UsageError(message)


def one_line(message):
    """``message`` (any object) as one line: runs of whitespace, newlines included, become
    one space."""
    return " ".join(str(message).split())


def os_error(e):
    """An OSError as ``FILE: reason`` when it names a file, else its own text."""
    return f"{e.filename}: {e.strerror}" if e.filename and e.strerror else str(e)


def error(prog, message):
    """Print ``PROG: error: MESSAGE`` on stderr; returns the exit code of usage errors, 2."""
    print(f"{prog}: error: {one_line(message)}", file=sys.stderr)
    return 2


def warn(prog, message):
    print(f"{prog}: warning: {one_line(message)}", file=sys.stderr)


def note(prog, message):
    print(f"{prog}: note: {one_line(message)}", file=sys.stderr)


def warn_oversubscription(prog, threads, slows):
    """Warn, without refusing, when a ``--threads`` count exceeds the available cores."""
    cores = cores_available()
    if threads > cores:
        warn(prog, f"--threads {threads} exceeds the {cores} cores available; "
                   f"oversubscription slows {slows}")


def _probe(folder, option, path):
    """Raise UsageError unless a file can be created (and removed) in ``folder``."""
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tensorgrad-probe-")
        os.close(fd)
        os.remove(tmp)
    except OSError as e:
        raise UsageError(f"{option} {path}: cannot write in {folder}: "
                         f"{e.strerror or e}") from None


def check_output_file(path, option):
    """Raise UsageError unless ``path`` can be written: not a folder, in an existing folder
    where a file can be created."""
    if os.path.isdir(path):
        raise UsageError(f"{option} {path} is a folder; give a file name")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        what = "is not a folder" if os.path.exists(folder) else "does not exist"
        raise UsageError(f"{option} {path}: {folder} {what}")
    _probe(folder, option, path)


def check_output_folder(path, option):
    """Raise UsageError unless ``path`` is a writable folder, or can be made one (its
    nearest existing ancestor is a writable folder)."""
    existing = os.path.abspath(path)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise UsageError(f"{option} {path}: {existing} is not a folder")
    _probe(existing, option, path)


@contextlib.contextmanager
def atomic_output(path):
    """Yield a temporary name in ``path``'s folder (same extension, so writers that go by
    it still do); when the block ends, the file written there replaces ``path`` in one
    step. If the block raises, the temporary file is deleted and ``path`` is untouched; if
    it wrote no file, nothing happens."""
    folder, name = os.path.split(os.path.abspath(path))
    stem, ext = os.path.splitext(name)
    tmp = os.path.join(folder, f".{stem}.{os.getpid()}-{secrets.token_hex(4)}.tmp{ext}")
    try:
        yield tmp
        if os.path.exists(tmp):
            os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
