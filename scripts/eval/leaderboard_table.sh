#!/bin/sh
# leaderboard_table.sh OUT.md DIR...: one Markdown row per score node folder
# and metric, from each folder's rows.tsv (node, task, metric, value, stderr,
# samples, limit). Values are printed in percent, as leaderboards do; a
# limited run (lm-eval --limit) is flagged on every row it produced.
set -eu
out=$1
shift
{
  echo "| node | task | metric | value (%) | stderr (%) | samples | limit |"
  echo "| --- | --- | --- | ---: | ---: | ---: | ---: |"
  for d in "$@"; do
    awk -F '\t' '{
      se = ($5 == "N/A") ? "N/A" : sprintf("%.2f", 100 * $5)
      lim = ($7 == "-") ? "" : "**" $7 " (limited)**"
      printf "| %s | %s | %s | %.2f | %s | %s | %s |\n", $1, $2, $3, 100 * $4, se, $6, lim }' "$d/rows.tsv"
  done
} > "$out"
cat "$out"
