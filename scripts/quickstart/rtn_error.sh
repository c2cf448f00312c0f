#!/bin/sh
# rtn_error.sh MODEL.bin CONFIG.json BITS GROUP SYM RECIPE OUT_DIR
# Runs rtn_error.awk on a llama2.c checkpoint with the shapes from CONFIG.json;
# writes OUT_DIR/error.json and OUT_DIR/recipe.txt.
set -eu
bin=$1 cfg=$2 bits=$3 group=$4 sym=$5 recipe=$6 out=$7
here=$(dirname "$0")
val() { sed -n "s/.*\"$1\": *\([0-9-]*\).*/\1/p" "$cfg"; }
echo "qsweep-progress: 0/1 checkpoints"
od -An -v -t f4 -j 28 "$bin" | awk -f "$here/rtn_error.awk" \
  -v dim="$(val dim)" -v hidden="$(val hidden_dim)" -v layers="$(val n_layers)" \
  -v heads="$(val n_heads)" -v kv_heads="$(val n_kv_heads)" -v vocab="$(val vocab_size)" \
  -v bits="$bits" -v group="$group" -v sym="$sym" > "$out/error.json"
printf '%s\n' "$recipe" > "$out/recipe.txt"
echo "qsweep-progress: 1/1 checkpoints"
cat "$out/error.json"
