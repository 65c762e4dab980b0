#!/usr/bin/env bash
# Every figure in BENCHMARKS.md's "Load tests" and "Peers" sections, in one go (~15 min on
# 2 cores). Writes each script's output under bench/results/ (the load tests' HTML reports
# and charts under $OUT/loadtest/). Usage: bash bench/run_all.sh [python]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:-.venv/bin/python}
OUT=bench/results
mkdir -p "$OUT"
run() { local name=$1; shift; echo "== $name: $*"; "$@" >"$OUT/$name.txt" 2>"$OUT/$name.err" \
        || { echo "$name failed:"; tail -20 "$OUT/$name.err"; }; cat "$OUT/$name.txt"; }
run peers      timeout 900 "$PY" bench/peers.py --calls 1000 --seconds 8
run peers_tcp  timeout 900 "$PY" bench/peers.py --calls 1000 --seconds 8 --pt-tcp
run peers_blas1 env OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 timeout 900 "$PY" bench/peers.py --calls 1000 --seconds 8
run floor      timeout 600 "$PY" bench/floor.py --calls 2000
run caching    timeout 600 "$PY" bench/caching.py --mib 64
run scale      timeout 900 "$PY" bench/scale.py --seconds 8
run scale_blas1 env OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 timeout 900 "$PY" bench/scale.py --seconds 8
run profile    timeout 600 "$PY" bench/profile_seed.py --calls 2000
run gateways   timeout 600 "$PY" bench/gateways.py --clients 16 --seconds 5 --rounds 3
run gateways_twohop timeout 600 "$PY" bench/gateways.py --clients 16 --seconds 5 --rounds 2 --gateway-arg=--local-max-nodes=0
LT=(timeout 900 "$PY" -m remotegrad.server.cli loadtest --spawn-cluster --workers 2)
run lt_seed    "${LT[@]}" --users 8 --duration 20 --mix seed --out $OUT/loadtest/seed
run lt_mlp1    "${LT[@]}" --users 4 --duration 20 --mix mlp --param-mib 1 --out $OUT/loadtest/mlp1
run lt_mlp16   "${LT[@]}" --users 4 --duration 20 --mix mlp --param-mib 16 --out $OUT/loadtest/mlp16
run lt_repeat  "${LT[@]}" --users 8 --duration 20 --mix repeat --out $OUT/loadtest/repeat
run lt_upload  "${LT[@]}" --users 2 --duration 20 --mix upload --upload-mib 16 --out $OUT/loadtest/upload
run lt_mixed   "${LT[@]}" --users 8 --duration 30 --mix mixed --out $OUT/loadtest/mixed
run lt_open200 "${LT[@]}" --users 2 --duration 20 --mix seed --rate 200 --out $OUT/loadtest/open200
run lt_open500 "${LT[@]}" --users 2 --duration 20 --mix seed --rate 500 --out $OUT/loadtest/open500
run lt_sweep   "${LT[@]}" --duration 6 --mix sweep --out $OUT/loadtest/sweep
