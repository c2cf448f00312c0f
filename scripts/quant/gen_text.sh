#!/bin/sh
# Writes N stories sampled from a model as JSON lines {"text": ...}: a
# self-generated (in-distribution) text set for models whose training data
# is not available offline (stories260K, aidreams260K).
# usage: gen_text.sh QSWEEP MODEL_DIR N FIRST_SEED TOKENS OUT.jsonl
set -eu
qsweep=$1 model=$2 n=$3 seed0=$4 tokens=$5 out=$6
: > "$out.tmp"
i=0
while [ "$i" -lt "$n" ]; do
  "$qsweep" model generate "$model" --temperature 1.0 --seed $((seed0 + i)) -n "$tokens" --threads 1 |
    tr -d '\000-\010\013\014\016-\037\177' |
    awk 'BEGIN { ORS = "" } { gsub(/\\/, "\\\\"); gsub(/"/, "\\\""); gsub(/\t/, "\\t"); gsub(/\r/, ""); s = s (NR > 1 ? "\\n" : "") $0 }
         END { print "{\"text\": \"" s "\"}\n" }' >> "$out.tmp"
  i=$((i + 1))
  echo "qsweep-progress: $i/$n stories"
done
mv "$out.tmp" "$out"
