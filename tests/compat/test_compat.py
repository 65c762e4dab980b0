"""Programs written the way PyTorch's tutorials and examples are (tests/compat/programs/),
each run three ways: under PyTorch, under remotegrad embedded (`import torch` resolving to
remotegrad, the engine in the process) and through a real cluster (the suite's gateway,
workers and Redis). Their printed outputs must agree: the text exactly, numbers within
their printed precision (compat_outputs.py).

A program that needs an API remotegrad lacks stays here, xfail (strict) with the missing
API as its reason, so it fails the day the API lands until the mark goes.

Run one program by hand:
    REMOTEGRAD_ADDR=local .venv/bin/python tests/compat/run_programs.py remotegrad /tmp \\
        tests/compat/programs/rnn_models.py && cat /tmp/rnn_models.out
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from compat_outputs import differences

HERE = Path(__file__).resolve().parent
PROGRAMS = sorted(p.stem for p in (HERE / "programs").glob("*.py"))
DOC = HERE.parents[1] / "docs" / "compatibility.md"

# program -> what remotegrad lacks that the program stops at (or prints differently for)
MISSING: dict[str, str] = {
    "numpy_bridge": "memory shared between a CPU tensor and its .numpy() array, and between "
                    "an array and torch.from_numpy's tensor (remotegrad copies, as "
                    "docs/compatibility.md says)",
}


class Batch:
    """One run_programs.py over every program, started at once and read when needed."""

    def __init__(self, library: str, outdir: Path, **env: str) -> None:
        environ = {k: v for k, v in os.environ.items() if k != "REMOTEGRAD_ADDR"}
        environ.update(PYTHONHASHSEED="0", **env)
        programs = [str(HERE / "programs" / f"{name}.py") for name in PROGRAMS]
        self.library, self.outdir = library, outdir
        self.proc = subprocess.Popen([sys.executable, str(HERE / "run_programs.py"), library,
                                      str(outdir), *programs], env=environ)
        self._results: dict | None = None

    def results(self) -> dict[str, tuple[str, str, str]]:
        """Every program's (exit status, stdout, stderr)."""
        if self._results is None:
            try:
                assert self.proc.wait(timeout=600) == 0, f"run_programs.py {self.library} failed"
            finally:
                if self.proc.poll() is None:
                    self.proc.kill()
                    self.proc.wait()
            self._results = {name: tuple((self.outdir / f"{name}.{part}").read_text()
                                         for part in ("rc", "out", "err")) for name in PROGRAMS}
        return self._results


def output(results: dict, name: str, library: str) -> str:
    rc, out, err = results[name]
    assert rc == "0", f"{name} fails under {library} (exit {rc}):\n{out[-2000:]}\n{err[-3000:]}"
    return out


def computes(cluster) -> float:
    return cluster.metric("remotegrad_calls_total", method="Compute", code="OK")


@pytest.fixture(scope="module")
def batches(tmp_path_factory, request):
    """The three runs, started together: most of each is waiting (imports, round trips),
    so they overlap well even on two cores. The cluster run only when a selected test
    needs it."""
    pytest.importorskip("torch")
    started = {"pytorch": Batch("torch", tmp_path_factory.mktemp("pytorch")),
               "embedded": Batch("remotegrad", tmp_path_factory.mktemp("embedded"),
                                 REMOTEGRAD_ADDR="local")}
    if any("through_cluster" in getattr(item, "fixturenames", ())
           for item in request.session.items):
        # $REMOTEGRAD_TEST_CLUSTER (as for tests/client), else the suite's own cluster
        address = os.environ.get("REMOTEGRAD_TEST_CLUSTER")
        if not address:
            cluster = request.getfixturevalue("cluster")
            address, started["own cluster"] = cluster.address, cluster
            started["calls before"] = computes(cluster)
        started["cluster"] = Batch("remotegrad", tmp_path_factory.mktemp("cluster"),
                                   REMOTEGRAD_ADDR=address)
    yield started
    for batch in started.values():
        if isinstance(batch, Batch) and batch.proc.poll() is None:
            batch.proc.kill()
            batch.proc.wait()


@pytest.fixture
def pytorch(batches):
    return batches["pytorch"].results()


@pytest.fixture
def embedded(batches):
    return batches["embedded"].results()


@pytest.fixture
def through_cluster(batches):
    results = batches["cluster"].results()
    cluster = batches.get("own cluster")
    return results, cluster and computes(cluster) - batches["calls before"]


def remotegrad_cases():
    return [pytest.param(name, id=name, marks=[pytest.mark.xfail(
        strict=True, reason=f"remotegrad lacks {MISSING[name]}")] if name in MISSING else [])
        for name in PROGRAMS]


def assert_same(name: str, ours: dict, theirs: dict) -> None:
    mine, reference = output(ours, name, "remotegrad"), output(theirs, name, "PyTorch")
    found = differences(mine, reference)
    assert not found, f"{name} prints differently from PyTorch:\n" + "\n".join(found[:20]) \
        + f"\n--- remotegrad\n{mine}\n--- pytorch\n{reference}"


def test_every_missing_api_names_a_program():
    assert set(MISSING) <= set(PROGRAMS)


def test_doc_states_the_suite_result():
    """docs/compatibility.md's section on this suite lists exactly the programs marked
    here and the count that pass."""
    section = DOC.read_text().split("## Compatibility suite", 1)[1].split("\n## ", 1)[0]
    assert set(re.findall(r"^\| `(\w+)` \|", section, re.M)) == set(MISSING)
    assert f"{len(PROGRAMS) - len(MISSING)} of {len(PROGRAMS)} programs" in section
    assert f"holds {len(PROGRAMS)} short programs" in section


@pytest.mark.parametrize("name", PROGRAMS)
def test_program_runs_under_pytorch(name, pytorch):
    """The reference itself: the program runs and prints something to compare."""
    assert output(pytorch, name, "PyTorch").strip()


@pytest.mark.parametrize("name", remotegrad_cases())
def test_embedded_prints_what_pytorch_prints(name, embedded, pytorch):
    assert_same(name, embedded, pytorch)


@pytest.mark.integration
@pytest.mark.parametrize("name", remotegrad_cases())
def test_cluster_prints_what_pytorch_prints(name, through_cluster, pytorch):
    assert_same(name, through_cluster[0], pytorch)


@pytest.mark.integration
def test_cluster_programs_computed_on_the_cluster(through_cluster):
    """The cluster runs answered through the gateway (not an engine in the process): at
    least one Compute call per program."""
    results, calls = through_cluster
    if calls is None:
        pytest.skip("an outside cluster ($REMOTEGRAD_TEST_CLUSTER): its metrics are not ours")
    assert calls >= len(PROGRAMS), calls
