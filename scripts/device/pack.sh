#!/usr/bin/env bash
# Packs built programs for a GPU machine that has CUDA but not the project's
# Debian packages (docs/gpu.md): copies build/PROGRAM... and
# build/libqsweep_cuda.so (stripped) into .device/bin and the shared
# libraries they link, except glibc, libstdc++/libgcc and CUDA's own, into
# .device/lib. Run there with
#   tar xf .device/lib.tar.xz -C .device   # the libraries travel compressed
#   LD_LIBRARY_PATH=$PWD/.device/lib:/usr/local/cuda/lib64 \
#   QSWEEP_CUDA_PLUGIN=$PWD/.device/bin/libqsweep_cuda.so .device/bin/PROGRAM
#
#   scripts/device/pack.sh tests/model/model_gpu_test bench/gpu_engine_bench qsweep ...
set -euo pipefail
build=${BUILD_DIR:-build}
out=.device
rm -rf "$out/bin" "$out/lib" "$out/lib.tar.xz"
mkdir -p "$out/bin" "$out/lib"
for p in "$@" libqsweep_cuda.so; do
  cp "$build/$p" "$out/bin/"
  strip "$out/bin/$(basename "$p")"
done
for f in "$out"/bin/*; do ldd "$f"; done | awk '/=> \// {print $3}' | sort -u |
  grep -v -E '/(libc|libm|libdl|librt|libpthread|libresolv|ld-linux[^/]*|libstdc\+\+|libgcc_s|libcuda|libcudart|libcublas|libcublasLt|libcusolver|libcusparse|libnvJitLink)\.so' |
  while read -r lib; do cp -L "$lib" "$out/lib/"; done
tar cJf "$out/lib.tar.xz" -C "$out" lib
rm -rf "$out/lib"
du -sh "$out"
