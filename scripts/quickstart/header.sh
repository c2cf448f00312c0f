#!/bin/sh
# header.sh MODEL.bin OUT.json
# Reads the 7-int32 header of a llama2.c checkpoint and writes its shapes as
# JSON (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len,
# shared_classifier) plus the parameter count implied by the file size.
set -eu
bin=$1 out=$2
set -- $(od -An -v -t d4 -N 28 "$bin")
[ $# -eq 7 ] || { echo "$bin: not a llama2.c checkpoint (short header)" >&2; exit 1; }
shared=true
vocab=$6
if [ "$vocab" -lt 0 ]; then shared=false; vocab=$((-vocab)); fi
bytes=$(wc -c < "$bin")
printf '{"dim": %s, "hidden_dim": %s, "n_layers": %s, "n_heads": %s, "n_kv_heads": %s, "vocab_size": %s, "seq_len": %s, "shared_classifier": %s, "file_floats": %s}\n' \
  "$1" "$2" "$3" "$4" "$5" "$vocab" "$7" "$shared" $(( (bytes - 28) / 4 )) > "$out"
cat "$out"
