#!/bin/sh
# fetch_benchmark.sh SUBDIR SUMS OUT_DIR
# Copies the benchmark files listed under benchmarks/SUBDIR/ in SUMS (lines
# "SHA256  benchmarks/SUBDIR/PATH", as in experiments/benchmarks/SHA256SUMS)
# from the local data mirror, $QSWEEP_HUB_MIRROR (default: ../shared/data
# beside the qsweep checkout) — or, where the mirror lacks a file, downloads
# it from its upstream URL in SOURCES beside SUMS ("PATH URL" lines) with
# curl — into OUT_DIR/PATH, and checks every file against its sha256. SUMS is a node input, so the expected content is part
# of the node's key; a missing or different file fails the node (nothing is
# published).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
mirror=${QSWEEP_HUB_MIRROR:-$here/../../../shared/data}
sub=$1 sums=$2 out=$3
sources=$(dirname "$sums")/SOURCES
n=0
while read -r sha path; do
  case $path in
    benchmarks/"$sub"/*) ;;
    *) continue ;;
  esac
  rel=${path#benchmarks/"$sub"/}
  mkdir -p "$out/$(dirname "$rel")"
  if [ -f "$mirror/$path" ]; then
    cp "$mirror/$path" "$out/$rel"
  else
    url=$(awk -v p="$path" '$1 == p {print $2}' "$sources" 2>/dev/null || true)
    if [ -z "$url" ]; then
      echo "$path is not in the local data mirror $mirror and $sources names no upstream URL for it;" \
        "put the benchmark files there (or set QSWEEP_HUB_MIRROR to a folder holding $path)" >&2
      exit 1
    fi
    echo "downloading $url"
    curl -fsSL --retry 3 -o "$out/$rel" "$url"
  fi
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
echo "fetched $n file(s) of benchmarks/$sub (mirror $mirror)"
