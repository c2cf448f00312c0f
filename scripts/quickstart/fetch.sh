#!/bin/sh
# fetch.sh MIRROR_SUBDIR REPO_URL OUT_DIR FILE=SHA256...
# Copies each FILE of a Hugging Face Hub repo into OUT_DIR: from the local
# mirror of the Hub's files, $QSWEEP_HUB_MIRROR/MIRROR_SUBDIR/<FILE> (default
# mirror: ../shared/data beside the qsweep checkout), when it exists (offline
# machines), else from REPO_URL/resolve/main/<FILE> with curl. Every file is
# checked against its sha256, so where a file came from is not part of the
# node's key; a mismatch fails the node (nothing is published).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
mirror=${QSWEEP_HUB_MIRROR:-$here/../../../shared/data}/$1
url=$2 out=$3
shift 3
for spec in "$@"; do
  file=${spec%%=*} sha=${spec#*=}
  base=$(basename "$file")
  if [ -f "$mirror/$file" ]; then
    echo "copying $file from mirror $mirror"
    cp "$mirror/$file" "$out/$base"
  elif [ -z "$url" ]; then
    echo "$file is not in the local mirror $mirror and has no Hub repo to download it from;" \
      "set QSWEEP_HUB_MIRROR to a folder holding $1/$file" >&2
    exit 1
  else
    echo "downloading $url/resolve/main/$file"
    curl -fsSL --retry 3 -o "$out/$base" "$url/resolve/main/$file"
  fi
  got=$(sha256sum "$out/$base" | cut -d' ' -f1)
  if [ "$got" != "$sha" ]; then
    echo "checksum mismatch for $file: got $got, expected $sha" >&2
    exit 1
  fi
done
