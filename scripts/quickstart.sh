#!/usr/bin/env bash
# Sets up (Debian packages), builds qsweep, runs the quickstart experiment and
# prints its table. Run it again: everything is a cache hit.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh --target qsweep
./build/qsweep run experiments/quickstart.yaml
./build/qsweep plan experiments/quickstart.yaml
out=$(./build/qsweep show table -e experiments/quickstart.yaml | awk '$1 == "path" {print $2}')
echo
cat "$out/results.md"
