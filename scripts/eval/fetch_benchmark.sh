#!/bin/sh
# fetch_benchmark.sh SUBDIR SUMS OUT_DIR
# Copies the benchmark files listed under benchmarks/SUBDIR/ in SUMS (lines
# "SHA256  benchmarks/SUBDIR/PATH", as in experiments/benchmarks/SHA256SUMS)
# from the local data mirror, $QSWEEP_HUB_MIRROR (default: ../shared/data
# beside the qsweep checkout), into OUT_DIR/PATH, and checks every file
# against its sha256. SUMS is a node input, so the expected content is part
# of the node's key; a missing or different file fails the node (nothing is
# published).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
mirror=${QSWEEP_HUB_MIRROR:-$here/../../../shared/data}
sub=$1 sums=$2 out=$3
n=0
while read -r sha path; do
  case $path in
    benchmarks/"$sub"/*) ;;
    *) continue ;;
  esac
  rel=${path#benchmarks/"$sub"/}
  if [ ! -f "$mirror/$path" ]; then
    echo "$path is not in the local data mirror $mirror; put the benchmark files there" \
      "(or set QSWEEP_HUB_MIRROR to a folder holding $path)" >&2
    exit 1
  fi
  mkdir -p "$out/$(dirname "$rel")"
  cp "$mirror/$path" "$out/$rel"
  got=$(sha256sum "$out/$rel" | cut -d' ' -f1)
  if [ "$got" != "$sha" ]; then
    echo "checksum mismatch for $path: got $got, expected $sha" >&2
    exit 1
  fi
  n=$((n + 1))
done < "$sums"
if [ "$n" -eq 0 ]; then
  echo "no file of benchmarks/$sub/ is listed in $sums" >&2
  exit 1
fi
echo "copied $n file(s) of benchmarks/$sub from $mirror"
