#!/usr/bin/env bash
# Bring up a local cluster, run the seed tutorial through it, shut the cluster down.
set -euo pipefail
PY=${PY:-.venv/bin/python}
PORT=${PORT:-50051}
LOG=$(mktemp)
"$PY" -m remotegrad.server.cli cluster up --workers 2 --port "$PORT" >"$LOG" 2>&1 &
CLUSTER=$!
trap 'kill -TERM $CLUSTER 2>/dev/null; wait $CLUSTER 2>/dev/null; rm -f "$LOG"' EXIT
for _ in $(seq 1 300); do
  grep -q "ready at" "$LOG" && break
  kill -0 $CLUSTER 2>/dev/null || { cat "$LOG"; exit 1; }
  sleep 0.2
done
grep "ready at" "$LOG" || { cat "$LOG"; echo "cluster did not become ready"; exit 1; }
REMOTEGRAD_ADDR="127.0.0.1:$PORT" "$PY" examples/seed_tutorial.py
