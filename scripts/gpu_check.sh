#!/usr/bin/env bash
# The GPU check of issue 8, for a machine with an NVIDIA GPU, CuPy and PyTorch and no
# network (no redis-py, no package index needed):
#
#   scripts/gpu_check.sh [OUT_DIR]        (default: ./gpu-check)
#
# 1. records the card and the versions;
# 2. installs the project without dependencies (`pip install --no-deps
#    --no-build-isolation .`): the engine needs numpy and the array module only;
# 3. runs the engine tests on the cupy backend (every catalog op, first and second order,
#    against PyTorch; fusion; no host synchronisation in a run) and the GPU tests of the
#    worker's backend (pinned transfers, memory-pool limit);
# 4. runs bench/gpu.py: the engine on CuPy against PyTorch CUDA eager on the same GPU,
#    in the same run, and prints its table.
# 5. bench/gpu_overhead.py: host cost per launch, the engine's host time against the wall.
# Everything lands in OUT_DIR (env.txt, tests.txt, gpu-bench.txt, overhead.txt); the whole run is
# bounded well under 8 minutes. Exit status: non-zero if the tests or the benchmark failed.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT_DIR=${1:-gpu-check}
PY=${PYTHON:-python3}
mkdir -p "$OUT_DIR"
export PYTHONUNBUFFERED=1 REMOTEGRAD_BACKEND=cupy
start=$(date +%s)
stamp() { echo "== [$(( $(date +%s) - start )) s] $*"; }

stamp "environment"
{
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader
  "$PY" - <<'EOF'
import importlib, platform
print("python", platform.python_version())
for name in ("numpy", "cupy", "torch", "grpc", "google.protobuf", "redis", "pytest", "xdist"):
    try:
        m = importlib.import_module(name)
        print(name, getattr(m, "__version__", "?"))
    except Exception as e:  # noqa: BLE001
        print(name, "missing:", type(e).__name__)
import cupy
print("cuda runtime", cupy.cuda.runtime.runtimeGetVersion(), "driver",
      cupy.cuda.runtime.driverGetVersion(), "devices", cupy.cuda.runtime.getDeviceCount())
EOF
} 2>&1 | tee "$OUT_DIR/env.txt"

stamp "install (no dependencies, no build isolation)"
"$PY" -m pip install -q --no-deps --no-build-isolation . 2>&1 | tail -3
"$PY" -c "import remotegrad.worker.engine, remotegrad.worker.backend; print('engine imports')" \
  || exit 1

stamp "engine tests on cupy"
workers=()
"$PY" -c "import xdist" 2>/dev/null && workers=(-n 8)
timeout 240 "$PY" -m pytest -q -p no:cacheprovider --tb=short "${workers[@]}" \
  tests/engine tests/unit/test_backend.py -k "cupy or test_gpu or test_backend" \
  --timeout 120 2>&1 | tee "$OUT_DIR/tests.txt" | tail -60
tests=${PIPESTATUS[0]}

stamp "benchmark: engine on CuPy vs PyTorch CUDA eager"
timeout 200 "$PY" bench/gpu.py --out "$OUT_DIR/gpu-bench.txt" 2>&1 | tail -40
bench=${PIPESTATUS[0]}

stamp "where the time goes: host cost per launch, engine host time vs wall"
timeout 60 "$PY" bench/gpu_overhead.py --out "$OUT_DIR/overhead.txt" 2>&1 | tail -20

stamp "done: tests exit $tests, benchmark exit $bench (files in $OUT_DIR)"
[ "$tests" = 0 ] && [ "$bench" = 0 ]
