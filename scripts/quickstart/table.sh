#!/bin/sh
# table.sh OUT.md DIR...
# One Markdown row per rtn artifact directory (each holds recipe.txt and
# error.json): recipe, bits, group, overall relative MSE and the worst tensor.
set -eu
out=$1; shift
{
  echo "| recipe | bits | group | sym | rel. MSE (all linear) | worst tensor (rel. MSE) |"
  echo "|---|---|---|---|---|---|"
  for d in "$@"; do
    awk -v recipe="$(cat "$d/recipe.txt")" '
      { line = $0 }
      END {
        match(line, /"bits": [0-9]+/);  bits = substr(line, RSTART + 8, RLENGTH - 8)
        match(line, /"group": -?[0-9]+/); group = substr(line, RSTART + 9, RLENGTH - 9)
        sym = (line ~ /"sym": true/) ? "yes" : "no"
        match(line, /"rel_mse": [0-9.e+-]+}$/); all = substr(line, RSTART + 11, RLENGTH - 12)
        worst = ""; wv = -1; rest = line
        while (match(rest, /"w[a-z0-9]+": \{"rel_mse": [0-9.e+-]+/)) {
          frag = substr(rest, RSTART, RLENGTH); rest = substr(rest, RSTART + RLENGTH)
          split(frag, p, "\""); v = substr(frag, index(frag, "rel_mse") + 10) + 0
          if (v > wv) { wv = v; worst = p[2] }
        }
        printf "| %s | %s | %s | %s | %s | %s (%.3e) |\n", recipe, bits, group, sym, all, worst, wv
      }' "$d/error.json"
  done
} > "$out"
cat "$out"
