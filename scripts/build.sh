#!/usr/bin/env bash
# Configures and builds qsweep in build/ (Release with debug info, Ninja).
# QSWEEP_JOBS caps parallel compile jobs (default: number of cores).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${QSWEEP_JOBS:-$(nproc)}
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=${CMAKE_BUILD_TYPE:-RelWithDebInfo} >/dev/null
cmake --build build -j "$jobs" "$@"
