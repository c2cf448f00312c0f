# rtn_error.awk: round-to-nearest (RTN) weight quantization error of a
# llama2.c checkpoint, per tensor kind and overall.
#   od -An -v -t f4 -j 28 model.bin | awk -f rtn_error.awk -v dim=.. hidden=.. \
#       layers=.. heads=.. kv_heads=.. vocab=.. bits=4 group=32 sym=1
# Linear weights (wq wk wv wo w1 w2 w3; rows = output features) are quantized
# row by row in groups of `group` input columns (group 0 = whole row):
#   sym:  scale = absmax / (2^(b-1) - 1), q = clamp(rne(w / scale), -2^(b-1), 2^(b-1) - 1)
#   asym: scale = (max - min) / (2^b - 1) with min <= 0 <= max, zero = rne(-min / scale),
#         q = clamp(rne(w / scale) + zero, 0, 2^b - 1), w' = (q - zero) * scale
# rne = round half to even (as torch.round). Embeddings and norms stay fp32.
# Output: JSON {"bits","group","sym","tensors":{kind:{"rel_mse","max_abs_err"}},"rel_mse"}.
function rne(x,   f, d) {
  f = (x >= 0) ? int(x) : -int(-x); if (f > x) f -= 1;   # floor
  d = x - f
  if (d > 0.5) return f + 1
  if (d < 0.5) return f
  return (f % 2 == 0) ? f : f + 1
}
function quant_tensor(kind, off, rows, cols,   r, c, g0, g1, lo, hi, amax, w, scale, zero, q, e, k) {
  for (r = 0; r < rows; r++) {
    for (g0 = 0; g0 < cols; g0 += G) {
      g1 = g0 + G; if (g1 > cols) g1 = cols
      lo = 0; hi = 0
      for (c = g0; c < g1; c++) { w = W[off + r * cols + c]; if (w < lo) lo = w; if (w > hi) hi = w }
      if (sym) {
        amax = (-lo > hi) ? -lo : hi
        scale = amax / QMAX; if (scale == 0) scale = 1
      } else {
        scale = (hi - lo) / (2 ^ bits - 1); if (scale == 0) scale = 1
        zero = rne(-lo / scale)
      }
      for (c = g0; c < g1; c++) {
        k = off + r * cols + c; w = W[k]
        if (sym) { q = rne(w / scale); if (q > QMAX) q = QMAX; if (q < -QMAX - 1) q = -QMAX - 1; e = q * scale - w }
        else { q = rne(w / scale) + zero; if (q > 2 ^ bits - 1) q = 2 ^ bits - 1; if (q < 0) q = 0; e = (q - zero) * scale - w }
        ERR[kind] += e * e; NORM[kind] += w * w
        if (e < 0) e = -e
        if (e > MAXE[kind]) MAXE[kind] = e
      }
    }
  }
}
{ for (i = 1; i <= NF; i++) W[n++] = $i + 0 }
END {
  QMAX = 2 ^ (bits - 1) - 1
  kv = dim / heads * kv_heads
  off = vocab * dim + layers * dim              # skip embeddings, rms_att
  nk = split("wq wk wv wo", K1, " ")
  split(dim " " kv " " kv " " dim, R1, " ")
  for (t = 1; t <= 4; t++)
    for (l = 0; l < layers; l++) {
      G = group > 0 ? group : dim
      quant_tensor(K1[t], off, R1[t], dim); off += R1[t] * dim
    }
  off += layers * dim                           # rms_ffn
  for (l = 0; l < layers; l++) { G = group > 0 ? group : dim;    quant_tensor("w1", off, hidden, dim); off += hidden * dim }
  for (l = 0; l < layers; l++) { G = group > 0 ? group : hidden; quant_tensor("w2", off, dim, hidden); off += dim * hidden }
  for (l = 0; l < layers; l++) { G = group > 0 ? group : dim;    quant_tensor("w3", off, hidden, dim); off += hidden * dim }
  off += dim
  if (off > n) { print "checkpoint has " n " floats, shapes need " off > "/dev/stderr"; exit 1 }
  printf "{\"bits\": %d, \"group\": %d, \"sym\": %s, \"tensors\": {", bits, group, sym ? "true" : "false"
  split("wq wk wv wo w1 w2 w3", ALL, " "); te = 0; tn = 0
  for (t = 1; t <= 7; t++) {
    k = ALL[t]; te += ERR[k]; tn += NORM[k]
    printf "%s\"%s\": {\"rel_mse\": %.6e, \"max_abs_err\": %.6e}", (t > 1 ? ", " : ""), k, ERR[k] / NORM[k], MAXE[k]
  }
  printf "}, \"rel_mse\": %.6e}\n", te / tn
}
