"""Run programs under PyTorch, importing torch once (it takes seconds) and forking a fresh
child per program, so each runs as it would alone:
    python reference.py OUTDIR PROGRAM.py...
writes OUTDIR/<program stem>.out (stdout), .err (stderr) and .rc (exit status)."""

import os
import runpy
import sys
import traceback
from pathlib import Path

import torch  # noqa: F401  (imported before forking: the children share it)


def run_one(program: Path, outdir: Path) -> int:
    stem = outdir / program.stem
    pid = os.fork()
    if pid == 0:  # the child: the program's own stdout and stderr, its own exit status
        with open(f"{stem}.out", "w") as out, open(f"{stem}.err", "w") as err:
            os.dup2(out.fileno(), 1)
            os.dup2(err.fileno(), 2)
            code = 0
            try:
                runpy.run_path(str(program), run_name="__main__")
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else 1
            except BaseException:
                traceback.print_exc()
                code = 1
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def main() -> None:
    outdir = Path(sys.argv[1])
    for program in map(Path, sys.argv[2:]):
        os.chdir(program.parent)
        (outdir / f"{program.stem}.rc").write_text(str(run_one(program, outdir)))


if __name__ == "__main__":
    main()
