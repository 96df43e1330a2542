"""Print the shell commands of the README's first ```bash block, one per line.

Comments and blank lines are dropped; each printed line is run by `.ci/run` exactly as a
user would type it, from the root of the clone. Exit status 2 if the block is missing.
"""
import pathlib
import re
import sys


def commands(readme_text):
    """The commands of the first ```bash block, without trailing comments."""
    match = re.search(r"```bash\n(.*?)```", readme_text, re.DOTALL)
    if match is None:
        return []
    out = []
    for line in match.group(1).splitlines():
        line = re.sub(r"\s+#.*$", "", line).strip()
        if line and not line.startswith("#"):
            out.append(line)
    return out


def main(argv):
    path = pathlib.Path(argv[1] if len(argv) > 1 else "README.md")
    cmds = commands(path.read_text(encoding="utf-8"))
    if not cmds:
        print(f"readme_commands: no ```bash block in {path}", file=sys.stderr)
        return 2
    print("\n".join(cmds))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
