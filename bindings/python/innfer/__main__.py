"""``python -m innfer ARGS``: runs the ``innfer`` command line (cli/ of the repository, a
separate Rust program) with ARGS, e.g. ``python -m innfer info model.safetensors``.

The program is ``$INNFER_CLI`` if set, else ``innfer`` on the PATH
(``cargo install --path cli`` puts it there).
"""

import os
import shutil
import subprocess
import sys


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    cli = os.environ.get("INNFER_CLI") or shutil.which("innfer")
    if not cli:
        sys.stderr.write(
            "python -m innfer runs the innfer command line, which is not installed: "
            "build it from the repository with `cargo install --path cli` (or set INNFER_CLI "
            "to the program)\n")
        return 127
    return subprocess.call([cli, *args])


if __name__ == "__main__":
    sys.exit(main())
