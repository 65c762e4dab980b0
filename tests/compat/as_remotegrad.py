"""Run a program written for PyTorch with `import torch` resolving to remotegrad:
    python as_remotegrad.py PROGRAM.py
The program runs unchanged; which engine answers is $REMOTEGRAD_ADDR's choice ("local" for
the engine in this process, or a cluster's address)."""

import runpy
import sys

import remotegrad

sys.modules["torch"] = remotegrad  # remotegrad's alias finder answers torch.nn, torch.func, ...
program = sys.argv[1]
sys.argv = sys.argv[1:]
runpy.run_path(program, run_name="__main__")
