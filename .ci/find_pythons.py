"""Print the oldest and the newest CPython on this machine that the project supports.

Supported = the minor versions from ``requires-python``'s lower bound in pyproject.toml up
to MAX_MINOR. Interpreters are looked for as ``python3.N`` on PATH and under pyenv's
versions folder. Prints one path per line (the same path twice when only one is found);
exit status 2 when none is found.
"""
import pathlib
import re
import shutil
import subprocess
import sys

MAX_MINOR = 14


def lower_bound(pyproject_text):
    match = re.search(r'requires-python\s*=\s*">=\s*3\.(\d+)', pyproject_text)
    if match is None:
        raise SystemExit("find_pythons: pyproject.toml has no requires-python = \">=3.N\"")
    return int(match.group(1))


def candidates(minor):
    found = shutil.which(f"python3.{minor}")
    if found:
        yield found
    pyenv_root = pathlib.Path.home() / ".pyenv" / "versions"
    yield from (str(p) for p in sorted(pyenv_root.glob(f"3.{minor}.*/bin/python3.{minor}")))


def works(python, minor):
    try:
        r = subprocess.run([python, "-c", "import sys, venv; print(sys.version_info[1])"],
                           capture_output=True, text=True, timeout=60, check=False)
    except OSError:
        return False
    return r.returncode == 0 and r.stdout.strip() == str(minor)


def main():
    root = pathlib.Path(__file__).resolve().parent.parent
    low = lower_bound((root / "pyproject.toml").read_text(encoding="utf-8"))
    found = []
    for minor in range(low, MAX_MINOR + 1):
        python = next((p for p in candidates(minor) if works(p, minor)), None)
        if python:
            found.append(python)
    if not found:
        print(f"find_pythons: no CPython 3.{low}..3.{MAX_MINOR} found", file=sys.stderr)
        return 2
    print(found[0])
    print(found[-1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
