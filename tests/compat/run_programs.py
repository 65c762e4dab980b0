"""Run programs written for PyTorch under PyTorch or under remotegrad:
    python run_programs.py torch|remotegrad OUTDIR PROGRAM.py...
writes OUTDIR/<program stem>.out (stdout), .err (stderr) and .rc (exit status).

Under remotegrad, `import torch` in the program resolves to remotegrad (sys.modules, and
remotegrad's alias finder for torch.nn, torch.func, ...) and the program runs unchanged;
$REMOTEGRAD_ADDR chooses the engine: "local" for the one in the process, or a cluster.

The library is imported once and a child forked per program, so each program runs as it
would alone without paying the imports again (seconds for PyTorch); nothing is computed,
and no channel opened, before the fork."""

import atexit
import os
import runpy
import signal
import sys
import traceback
from pathlib import Path

PER_PROGRAM_S = 120


def load(library: str) -> None:
    if library == "torch":
        import torch  # noqa: F401
        import torch._dynamo  # noqa: F401  (what the first optimiser imports: seconds)
        return
    import remotegrad
    import remotegrad.func  # noqa: F401
    import remotegrad.nn  # noqa: F401
    import remotegrad.optim  # noqa: F401
    import remotegrad.utils.data  # noqa: F401
    if os.environ.get("REMOTEGRAD_ADDR", "local") != "local":
        import remotegrad._remote  # noqa: F401  (gRPC and the generated code)
    sys.modules["torch"] = remotegrad


def run_one(program: Path, outdir: Path) -> int:
    stem = outdir / program.stem
    pid = os.fork()
    if pid == 0:  # the child: the program's own stdout, stderr and exit status
        signal.alarm(PER_PROGRAM_S)  # a hung program dies (SIGALRM) instead of the run
        with open(f"{stem}.out", "w") as out, open(f"{stem}.err", "w") as err:
            os.dup2(out.fileno(), 1)
            os.dup2(err.fileno(), 2)
            sys.argv = [str(program)]
            code = 0
            try:
                runpy.run_path(str(program), run_name="__main__")
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else 1
            except BaseException:
                traceback.print_exc()
                code = 1
            atexit._run_exitfuncs()  # what an interpreter's exit runs; os._exit skips it
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def main() -> None:
    library, outdir = sys.argv[1], Path(sys.argv[2])
    load(library)
    outdir = outdir.resolve()
    for program in [Path(p).resolve() for p in sys.argv[3:]]:
        os.chdir(program.parent)
        (outdir / f"{program.stem}.rc").write_text(str(run_one(program, outdir)))


if __name__ == "__main__":
    main()
