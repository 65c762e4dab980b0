"""Regenerate proto/remotegrad_pb2*.py(i) from proto/remotegrad.proto.

The .proto is staged under remotegrad/proto/ in a temporary include root so that protoc
writes `from remotegrad.proto import ...` imports that work once installed.

Usage: python scripts/gen_proto.py [OUT_DIR]   (default: proto/)
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "proto" / "remotegrad.proto"
GENERATED = ("remotegrad_pb2.py", "remotegrad_pb2.pyi", "remotegrad_pb2_grpc.py")


def generate(out_dir: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        staged = Path(tmp) / "remotegrad" / "proto"
        staged.mkdir(parents=True)
        shutil.copy(SOURCE, staged / SOURCE.name)
        rc = protoc.main(
            [
                "protoc",
                f"-I{tmp}",
                f"--python_out={tmp}",
                f"--pyi_out={tmp}",
                f"--grpc_python_out={tmp}",
                str(staged / SOURCE.name),
            ]
        )
        if rc != 0:
            raise SystemExit(f"protoc failed with exit code {rc}")
        out_dir.mkdir(parents=True, exist_ok=True)
        for name in GENERATED:
            shutil.copy(staged / name, out_dir / name)


if __name__ == "__main__":
    generate(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "proto")
