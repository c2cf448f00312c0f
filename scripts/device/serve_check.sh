#!/usr/bin/env bash
# serve_check.sh QSWEEP TOKENIZER_DIR: on a machine with an NVIDIA GPU, makes
# a small random model with the tokenizer (qsweep model random), serves it
# with `qsweep serve --device cpu` and `--device cuda` (float32), asks both
# the same greedy completion with logprobs, and checks that the texts are
# equal and the logprobs agree to 1e-3. Exit 0 when they do.
set -euo pipefail
qs=$1 tok=$2
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
python3 - "$work/config.json" <<'PY'
import json, sys
json.dump({"architectures": ["LlamaForCausalLM"], "hidden_size": 256, "intermediate_size": 512,
           "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 64,
           "vocab_size": 128256, "max_position_embeddings": 2048, "rms_norm_eps": 1e-5,
           "rope_theta": 500000.0, "tie_word_embeddings": True, "bos_token_id": 128000,
           "eos_token_id": 128001, "torch_dtype": "float32"}, open(sys.argv[1], "w"))
PY
"$qs" model random "$work/config.json" "$work/model" --tokenizer "$tok" --dtype float32 --std 0.5 --seed 3
start() {  # start DEVICE -> prints the base URL
  "$qs" serve "$work/model" --port 0 --device "$1" > "$work/$1.log" 2>&1 &
  for _ in $(seq 100); do
    url=$(grep -o 'http://[^ ]*/v1' "$work/$1.log" || true)
    [ -n "$url" ] && { echo "$url"; return; }
    sleep 0.2
  done
  cat "$work/$1.log" >&2
  exit 1
}
ask() {  # python's urllib: curl may pick up the packed libcurl of LD_LIBRARY_PATH
  env -u LD_LIBRARY_PATH python3 - "$1" <<'PY'
import json, sys, urllib.request
req = urllib.request.Request(sys.argv[1] + "/completions", headers={"Content-Type": "application/json"},
                             data=json.dumps({"prompt": "The capital of France is", "max_tokens": 12,
                                              "temperature": 0, "logprobs": 1}).encode())
print(urllib.request.urlopen(req, timeout=60).read().decode())
PY
}
cpu=$(start cpu); gpu=$(start cuda)
ask "$cpu" > "$work/cpu.json"
ask "$gpu" > "$work/gpu.json"
grep -h "qsweep serve:" "$work/cpu.log" "$work/cuda.log"
python3 - "$work/cpu.json" "$work/gpu.json" <<'PY'
import json, sys
a, b = (json.load(open(f))["choices"][0] for f in sys.argv[1:3])
d = max(abs(x - y) for x, y in zip(a["logprobs"]["token_logprobs"], b["logprobs"]["token_logprobs"]))
print(f"cpu text {a['text']!r}\ngpu text {b['text']!r}\nmax |logprob cpu - gpu| = {d:.3g}")
sys.exit(0 if a["text"] == b["text"] and d <= 1e-3 else 1)
PY
