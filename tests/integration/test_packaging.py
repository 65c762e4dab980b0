"""`pip install .` and `pip install -e .` in a fresh venv: every package imports from
outside the repository, nested folders included, and the console script runs."""

from __future__ import annotations

import site as site_module
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHECK = """
import remotegrad, remotegrad.server, remotegrad.worker, remotegrad.proto
import remotegrad.worker.engine, remotegrad.proto.catalog, remotegrad.autograd
from remotegrad.proto import remotegrad_pb2_grpc
assert 'site-packages' in remotegrad.proto.__file__ or {editable}
x = remotegrad.ones(2, requires_grad=True)
remotegrad.connect('local')
(x * 3).sum().backward()
print(x.grad)
"""


@pytest.mark.parametrize("editable", [False, True])
def test_install_in_fresh_venv(tmp_path, editable):
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    py = env_dir / "bin" / "python"
    # The dependencies (and a current setuptools) come from this environment through a .pth
    # file; the project itself is installed fresh, and imported from outside the repository.
    site = next(env_dir.glob("lib/python*/site-packages"))
    deps = site_module.getsitepackages()
    (site / "_deps.pth").write_text("\n".join(deps) + "\n")
    args = [sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps",
            "--no-build-isolation"]
    args += ["-e", str(ROOT)] if editable else [str(ROOT)]
    subprocess.run(args, check=True, cwd=tmp_path, capture_output=True, timeout=300)
    out = subprocess.run([str(py), "-c", CHECK.format(editable=editable)], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "tensor([3., 3.])"
    script = env_dir / "bin" / "remotegrad"
    help_text = subprocess.run([str(script), "--help"], capture_output=True, text=True,
                               cwd=tmp_path, timeout=60)
    assert help_text.returncode == 0 and "cluster" in help_text.stdout
