#!/usr/bin/env bash
# Sets up (Debian packages), builds qsweep, runs the quickstart experiment,
# which prints its table. Run it again: everything is a cache hit.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh --target qsweep
# The run ends with the results table and the paths of its Markdown, CSV,
# LaTeX, JSON and HTML files.
./build/qsweep run experiments/quickstart.yaml
