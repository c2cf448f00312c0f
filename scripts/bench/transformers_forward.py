#!/usr/bin/env python3
"""Hugging Face transformers forward throughput on random-weight Llamas, the
reference of bench/model/gpu_engine_bench.cpp (issue #10). Run on the same GPU
in the same session:

    python3 scripts/bench/transformers_forward.py [--quick]

Shapes: 110M-class (hidden 768, 12 layers, 12 heads, ff 2048, vocab 32000) and
1B-class (hidden 2048, 16 layers, 32/8 heads, ff 8192, vocab 128256, tied);
input_ids [16, 512]; fp32 (TF32 off, torch's default) and bf16; the default
attention implementation (sdpa); median of the timed calls after a warm-up.
"""
import sys
import time

import torch
from transformers import LlamaConfig, LlamaForCausalLM

torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
quick = "--quick" in sys.argv
reps = 2 if quick else 5

shapes = {
    "110M": dict(hidden_size=768, intermediate_size=2048, num_hidden_layers=12, num_attention_heads=12,
                 num_key_value_heads=12, vocab_size=32000, tie_word_embeddings=False),
    "1B": dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32,
               num_key_value_heads=8, vocab_size=128256, tie_word_embeddings=True, rope_theta=500000.0),
}
print(f"# transformers forward, input_ids [16, 512] (median of {reps}); torch {torch.__version__}, "
      f"{torch.cuda.get_device_name()}")
print(f"{'model':6s} {'dtype':9s} {'seconds':>10s} {'tokens/s':>12s}")
for name, kw in shapes.items():
    for dtype in (torch.float32, torch.bfloat16):
        cfg = LlamaConfig(max_position_embeddings=2048, **kw)
        torch.manual_seed(0)
        model = LlamaForCausalLM(cfg).to(device="cuda", dtype=dtype).eval()
        ids = torch.randint(0, cfg.vocab_size, (16, 512), device="cuda")
        with torch.no_grad():
            model(ids)
            torch.cuda.synchronize()
            ts = []
            for _ in range(reps):
                t0 = time.perf_counter()
                model(ids).logits
                torch.cuda.synchronize()
                ts.append(time.perf_counter() - t0)
        t = sorted(ts)[len(ts) // 2]
        print(f"{name:6s} {str(dtype).replace('torch.', ''):9s} {t:10.4f} {16 * 512 / t:12.0f}", flush=True)
        del model
        torch.cuda.empty_cache()
