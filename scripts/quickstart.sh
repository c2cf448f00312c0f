#!/usr/bin/env bash
# Sets up (Debian packages), builds qsweep, and runs the quickstart experiment.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh --target qsweep
./build/qsweep run experiments/quickstart.yaml
./build/qsweep plan experiments/quickstart.yaml
