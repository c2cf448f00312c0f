#!/usr/bin/env python3
"""IST-DASLab GPTQ reference timing, written from SPECS.md A1.2-A1.4 in
PyTorch (add_batch + fasterquant, fp32, TF32 off), for comparison with
qsweep's GPU path (bench/quant/gptq_cuda_bench.cpp) on the same card.

    python3 scripts/bench/gptq_reference.py [K N NSEQ SEQLEN]

Prints the Hessian accumulation time (128 forward calls of [1, 2048, K] with
the inputs on the GPU, as the reference's hooks see them) and fasterquant's
time (act-order, group 128, blocksize 128, percdamp 0.01).
"""
import math
import sys
import time

import torch

torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False


class Quantizer:
    """SPECS.md A1.4 (perchannel=True, mse=False)."""

    def __init__(self, bits, sym):
        self.maxq = torch.tensor(2 ** bits - 1)
        self.sym = sym

    def find_params(self, x):
        dev = x.device
        self.maxq = self.maxq.to(dev)
        xmin = torch.minimum(x.min(1)[0], torch.zeros(x.shape[0], device=dev))
        xmax = torch.maximum(x.max(1)[0], torch.zeros(x.shape[0], device=dev))
        if self.sym:
            xmax = torch.maximum(torch.abs(xmin), xmax)
            tmp = xmin < 0
            if torch.any(tmp):
                xmin[tmp] = -xmax[tmp]
        tmp = (xmin == 0) & (xmax == 0)
        xmin[tmp] = -1
        xmax[tmp] = +1
        self.scale = (xmax - xmin) / self.maxq
        if self.sym:
            self.zero = torch.full_like(self.scale, (self.maxq + 1) / 2)
        else:
            self.zero = torch.round(-xmin / self.scale)
        self.scale = self.scale.unsqueeze(1)
        self.zero = self.zero.unsqueeze(1)

    def quantize(self, x):
        q = torch.clamp(torch.round(x / self.scale) + self.zero, 0, self.maxq)
        return self.scale * (q - self.zero)


class GPTQ:
    def __init__(self, weight):
        self.W = weight
        self.rows, self.columns = weight.shape
        self.H = torch.zeros((self.columns, self.columns), device=weight.device)
        self.nsamples = 0

    def add_batch(self, inp):
        """A1.2: inp [B, T, K]; tmp = B sequences."""
        tmp = inp.shape[0]
        inp = inp.reshape(-1, inp.shape[-1]).t()
        self.H *= self.nsamples / (self.nsamples + tmp)
        self.nsamples += tmp
        inp = math.sqrt(2 / self.nsamples) * inp.float()
        self.H += inp.matmul(inp.t())

    def fasterquant(self, quantizer, blocksize=128, percdamp=0.01, groupsize=-1, actorder=False):
        """A1.3, in the reference's order of operations."""
        W = self.W.clone().float()
        if groupsize == -1:
            quantizer.find_params(W)
        H = self.H
        del self.H
        dead = torch.diag(H) == 0
        H[dead, dead] = 1
        W[:, dead] = 0
        if actorder:
            perm = torch.argsort(torch.diag(H), descending=True)
            W = W[:, perm]
            H = H[perm][:, perm]
            invperm = torch.argsort(perm)
        Q = torch.zeros_like(W)
        damp = percdamp * torch.mean(torch.diag(H))
        diag = torch.arange(self.columns, device=W.device)
        H[diag, diag] += damp
        H = torch.linalg.cholesky(H)
        H = torch.cholesky_inverse(H)
        H = torch.linalg.cholesky(H, upper=True)
        Hinv = H
        for i1 in range(0, self.columns, blocksize):
            i2 = min(i1 + blocksize, self.columns)
            count = i2 - i1
            W1 = W[:, i1:i2].clone()
            Q1 = torch.zeros_like(W1)
            Err1 = torch.zeros_like(W1)
            Hinv1 = Hinv[i1:i2, i1:i2]
            for i in range(count):
                w = W1[:, i]
                d = Hinv1[i, i]
                if groupsize != -1 and (i1 + i) % groupsize == 0:
                    quantizer.find_params(W[:, (i1 + i):(i1 + i + groupsize)])
                q = quantizer.quantize(w.unsqueeze(1)).flatten()
                Q1[:, i] = q
                err1 = (w - q) / d
                W1[:, i:] -= err1.unsqueeze(1).matmul(Hinv1[i, i:].unsqueeze(0))
                Err1[:, i] = err1
            Q[:, i1:i2] = Q1
            W[:, i2:] -= Err1.matmul(Hinv[i1:i2, i2:])
        if actorder:
            Q = Q[:, invperm]
        return Q


def main():
    k = int(sys.argv[1]) if len(sys.argv) > 1 else 4096
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 4096
    nseq = int(sys.argv[3]) if len(sys.argv) > 3 else 128
    seqlen = int(sys.argv[4]) if len(sys.argv) > 4 else 2048
    dev = torch.device("cuda")
    print(f"reference: torch {torch.__version__} on {torch.cuda.get_device_name(0)}")
    torch.manual_seed(0)
    W = torch.randn(n, k, device=dev) * 0.02
    xs = [torch.randn(1, seqlen, k, device=dev) for _ in range(4)]
    # warm-up
    g = GPTQ(W)
    g.add_batch(xs[0])
    g.fasterquant(Quantizer(4, True), groupsize=128, actorder=True)
    torch.cuda.synchronize()

    g = GPTQ(W)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for s in range(nseq):
        g.add_batch(xs[s % len(xs)])
    torch.cuda.synchronize()
    t_h = time.perf_counter() - t0
    t0 = time.perf_counter()
    Q = g.fasterquant(Quantizer(4, True), groupsize=128, actorder=True)
    torch.cuda.synchronize()
    t_q = time.perf_counter() - t0
    print(f"reference hessian (inputs on the device): {t_h:.3f} s")
    print(f"reference fasterquant (act-order, group 128): {t_q:.3f} s")
    print(f"reference layer total: {t_h + t_q:.3f} s")
    del Q


if __name__ == "__main__":
    main()
