#!/bin/sh
# quality_table.sh OUT.md DIR...: one Markdown row per quality node folder
# (label.txt "model recipe", quality.json from `qsweep model kl`).
set -eu
out=$1
shift
{
  echo "| model | recipe | mean KL (nats) | p99 KL | PPL fp32 | PPL quant | top-1 agree |"
  echo "| --- | --- | ---: | ---: | ---: | ---: | ---: |"
  for d in "$@"; do
    read -r model recipe < "$d/label.txt"
    awk -v m="$model" -v r="$recipe" '
      { while (match($0, /"[a-z0-9_]+": [-0-9.e+]+/)) {
          kv = substr($0, RSTART, RLENGTH); $0 = substr($0, RSTART + RLENGTH)
          split(kv, p, /": /); k = substr(p[1], 2); v[k] = p[2] } }
      END { printf "| %s | %s | %.5f | %.4f | %.4f | %.4f | %.3f |\n", m, r, v["mean_kl"], v["p99_kl"],
            v["ppl_ref"], v["ppl_quant"], v["top1_agree"] }' "$d/quality.json"
  done
} > "$out"
cat "$out"
