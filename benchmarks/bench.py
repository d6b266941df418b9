"""fxgrad's derived backward against PyTorch's, side by side in one run.

    python benchmarks/bench.py [--quick] [--sizes micro tiny mid large] [--device cuda] [--dtype bfloat16]

The suite: a SiLU MLP, softmax attention, a nanoGPT block, LayerNorm + GELU MLP, a cross-entropy
head, a conv net (conv + batch norm + pooling) and a Llama block (RMSNorm, rotary, SwiGLU, SDPA),
each at four size classes (micro, tiny, mid, large). For each: the training step (forward +
backward) of eager autograd, of `fxgrad.function` (and the ratio), of `torch.compile(fn)` and of
`fxgrad.function(compile=True)` (and the ratio), interleaved, in `--rounds` rounds of medians of
`--reps` runs, on one thread; the memory kept between forward and backward (saved-tensor hooks)
and the peak memory of a step (`torch.cuda.max_memory_allocated` on a GPU, live tensor storage
counted by a TorchDispatchMode on CPU), both for eager and fxgrad. Then the time `fxgrad.derive`
takes against `functorch.compile.aot_function`'s first call (tracing and partitioning, no
compiler) for residual SiLU MLPs of growing depth (to 5,000 layers with `--deep`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
import weakref

import torch
import torch.nn.functional as F
from tabulate import tabulate
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

import fxgrad  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


# ---------------------------------------------------------------------------------------------
# Models


def silu_mlp(x, *weights):
    """Seed 000's SiLU MLP, deepened: h = f(h @ W) with a residual every layer."""
    h = x
    for w in weights:
        h = F.silu(h @ w) + h
    return h.sum()


def softmax_attention(q, k, v, m):
    return (F.softmax((q @ k.mT) * m, dim=-1) @ v).sum()


def gpt_block(x, ln1_w, ln1_b, attn_w, attn_b, proj_w, proj_b, ln2_w, ln2_b, fc_w, fc_b, fc2_w, fc2_b):
    B, T, C = x.shape
    heads = 4
    q, k, v = F.linear(F.layer_norm(x, (C,), ln1_w, ln1_b), attn_w, attn_b).split(C, dim=2)
    q, k, v = (t.view(B, T, heads, C // heads).transpose(1, 2) for t in (q, k, v))
    mask = torch.full((T, T), float("-inf"), device=x.device, dtype=x.dtype).triu(1)
    att = F.softmax(q @ k.transpose(-2, -1) / math.sqrt(C // heads) + mask, dim=-1)
    y = (att @ v).transpose(1, 2).reshape(B, T, C)
    x = x + F.linear(y, proj_w, proj_b)
    h = F.gelu(F.linear(F.layer_norm(x, (C,), ln2_w, ln2_b), fc_w, fc_b))
    return (x + F.linear(h, fc2_w, fc2_b)).sum()


def layernorm_mlp(x, ln_w, ln_b, w1, b1, w2, b2):
    return F.linear(F.gelu(F.linear(F.layer_norm(x, (x.shape[-1],), ln_w, ln_b), w1, b1)), w2, b2).sum()


def cross_entropy_head(x, w, targets):
    return F.cross_entropy(x @ w, targets)


def conv_net(x, c1_w, c1_b, bn1_w, bn1_b, c2_w, c2_b, bn2_w, bn2_b, fc_w, fc_b):
    """A small CNN: conv + batch norm (batch statistics) + ReLU + max pool, twice, then average
    pooling and a linear head."""
    h = F.max_pool2d(F.relu(F.batch_norm(F.conv2d(x, c1_w, c1_b, padding=1), None, None, bn1_w, bn1_b, training=True)), 2)
    h = F.relu(F.batch_norm(F.conv2d(h, c2_w, c2_b, padding=1), None, None, bn2_w, bn2_b, training=True))
    return F.linear(F.adaptive_avg_pool2d(h, 1).flatten(1), fc_w, fc_b).logsumexp(-1).sum()


def llama_block(x, cos, sin, norm1_w, wq, wk, wv, wo, norm2_w, w1, w2, w3):
    """A Llama decoder layer: RMSNorm, rotary embeddings, causal SDPA, SwiGLU MLP."""
    B, T, C = x.shape
    heads = 4

    def rotary(t):
        t1, t2 = t.chunk(2, dim=-1)
        return t * cos + torch.cat((-t2, t1), dim=-1) * sin

    h = F.rms_norm(x, (C,), norm1_w, eps=1e-6)
    q, k, v = (F.linear(h, w).view(B, T, heads, C // heads).transpose(1, 2) for w in (wq, wk, wv))
    y = F.scaled_dot_product_attention(rotary(q), rotary(k), v, is_causal=True)
    x = x + F.linear(y.transpose(1, 2).reshape(B, T, C), wo)
    h = F.rms_norm(x, (C,), norm2_w, eps=1e-6)
    return (x + F.linear(F.silu(F.linear(h, w1)) * F.linear(h, w3), w2)).sum()


SIZES = ("micro", "tiny", "mid", "large")
# each model's dimensions per size class
DIMS = {
    "silu": {"micro": (16, 2, 4), "tiny": (128, 4, 16), "mid": (512, 8, 64), "large": (1024, 8, 256)},  # d, layers, batch
    "attention": {"micro": (1, 2, 8, 8), "tiny": (2, 4, 64, 32), "mid": (4, 8, 256, 64), "large": (8, 8, 512, 64)},  # B, H, S, D
    "gpt": {"micro": (16, 8, 1), "tiny": (64, 32, 2), "mid": (256, 128, 4), "large": (512, 256, 4)},  # C, T, B
    "ln_mlp": {"micro": (16, 8, 2), "tiny": (64, 32, 8), "mid": (256, 128, 64), "large": (384, 128, 64)},  # C, T, B
    "ce": {"micro": (8, 16, 64), "tiny": (128, 64, 512), "mid": (512, 256, 2048), "large": (2048, 512, 8192)},  # N, C, V
    "conv": {"micro": (2, 4, 8), "tiny": (4, 8, 16), "mid": (16, 32, 32), "large": (32, 64, 64)},  # B, channels, H=W
    "llama": {"micro": (16, 8, 1), "tiny": (64, 32, 2), "mid": (256, 128, 4), "large": (512, 256, 4)},  # C, T, B
}


def models(size: str, device: str = DEVICE, dtype: torch.dtype = torch.float32) -> dict:
    """Each model of the suite at a size class: name -> (function, example inputs)."""
    def randn(*shape, scale=1.0):
        return (torch.randn(*shape) * scale).to(device=device, dtype=dtype)

    d, layers, batch = DIMS["silu"][size]
    B, H, S, D = DIMS["attention"][size]
    C, T, Bg = DIMS["gpt"][size]
    Cl, Tl, Bl = DIMS["ln_mlp"][size]
    N, Ce, V = DIMS["ce"][size]
    Bc, K, R = DIMS["conv"][size]
    Cr, Tr, Br = DIMS["llama"][size]
    half = Cr // 4 // 2  # of a head's dims (4 heads)
    angles = torch.arange(Tr)[:, None] * 10000 ** (-torch.arange(half).repeat(2)[None, :] / half)
    return {
        f"SiLU MLP d={d} x{layers} b={batch}": (
            silu_mlp, (randn(batch, d), *(randn(d, d, scale=d**-0.5) for _ in range(layers)))),
        f"softmax attention {B}x{H}x{S}x{D}": (
            softmax_attention, (randn(B, H, S, D), randn(B, H, S, D), randn(B, H, S, D), randn(B, H, S, S))),
        f"nanoGPT block C={C} T={T} b={Bg}": (
            gpt_block, (randn(Bg, T, C), 1 + randn(C, scale=0.1), randn(C, scale=0.1), randn(3 * C, C, scale=C**-0.5),
                        randn(3 * C, scale=0.1), randn(C, C, scale=C**-0.5), randn(C, scale=0.1),
                        1 + randn(C, scale=0.1), randn(C, scale=0.1), randn(4 * C, C, scale=C**-0.5),
                        randn(4 * C, scale=0.1), randn(C, 4 * C, scale=(4 * C) ** -0.5), randn(C, scale=0.1))),
        f"LayerNorm + MLP C={Cl} T={Tl} b={Bl}": (
            layernorm_mlp, (randn(Bl, Tl, Cl), 1 + randn(Cl, scale=0.1), randn(Cl, scale=0.1),
                            randn(4 * Cl, Cl, scale=Cl**-0.5), randn(4 * Cl, scale=0.1), randn(Cl, 4 * Cl, scale=0.05),
                            randn(Cl, scale=0.1))),
        f"cross-entropy head N={N} V={V}": (
            cross_entropy_head, (randn(N, Ce), randn(Ce, V, scale=Ce**-0.5), torch.randint(0, V, (N,), device=device))),
        f"conv net {Bc}x{K}x{R}x{R}": (
            conv_net, (randn(Bc, 3, R, R), randn(K, 3, 3, 3, scale=27**-0.5), randn(K, scale=0.1), 1 + randn(K, scale=0.1),
                       randn(K, scale=0.1), randn(2 * K, K, 3, 3, scale=(9 * K) ** -0.5), randn(2 * K, scale=0.1),
                       1 + randn(2 * K, scale=0.1), randn(2 * K, scale=0.1), randn(10, 2 * K, scale=(2 * K) ** -0.5),
                       randn(10, scale=0.1))),
        f"Llama block C={Cr} T={Tr} b={Br}": (
            llama_block, (randn(Br, Tr, Cr), angles.cos().to(device=device, dtype=dtype),
                          angles.sin().to(device=device, dtype=dtype), 1 + randn(Cr, scale=0.1),
                          *(randn(Cr, Cr, scale=Cr**-0.5) for _ in range(4)), 1 + randn(Cr, scale=0.1),
                          randn(4 * Cr, Cr, scale=Cr**-0.5), randn(Cr, 4 * Cr, scale=(4 * Cr) ** -0.5),
                          randn(4 * Cr, Cr, scale=Cr**-0.5))),
    }


# ---------------------------------------------------------------------------------------------
# Measuring


def synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def median_time(step, reps: int, device: str) -> float:
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        step()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def training_step(forward, inputs):
    leaves = [x.detach().requires_grad_(x.is_floating_point()) for x in inputs]

    def step():
        for leaf in leaves:
            leaf.grad = None
        forward(*leaves).backward()

    return step


def saved_bytes(forward, inputs) -> int:
    """Bytes of the tensors kept from the forward for the backward (each storage once), besides
    the inputs."""
    storages = {}

    def pack(tensor):
        storages[tensor.untyped_storage().data_ptr()] = tensor.untyped_storage().nbytes()
        return tensor

    leaves = [x.detach().requires_grad_(x.is_floating_point()) for x in inputs]
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = forward(*leaves)
    out.backward()
    inputs_storage = {x.untyped_storage().data_ptr() for x in leaves}
    return sum(size for ptr, size in storages.items() if ptr not in inputs_storage)


class LiveStorage(TorchDispatchMode):
    """The bytes of tensor storage alive while it is on, and their peak: each storage an op
    returns counts from then until the last tensor on it is gone (CPU's counterpart of
    `torch.cuda.max_memory_allocated`; the inputs, made before, do not count)."""

    def __init__(self):
        super().__init__()
        self.live: dict[int, list[int]] = {}  # storage address -> [tensors on it, bytes]
        self.now = self.peak = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for tensor in tree_leaves(out):
            if isinstance(tensor, torch.Tensor) and tensor.device.type != "meta":
                self._track(tensor)
        return out

    def _track(self, tensor: torch.Tensor) -> None:
        storage = tensor.untyped_storage()
        address = storage.data_ptr()
        if address == 0:
            return
        if address not in self.live:
            self.live[address] = [0, storage.nbytes()]
            self.now += storage.nbytes()
            self.peak = max(self.peak, self.now)
        self.live[address][0] += 1
        weakref.finalize(tensor, self._release, address)

    def _release(self, address: int) -> None:
        entry = self.live[address]
        entry[0] -= 1
        if entry[0] == 0:
            self.now -= entry[1]
            del self.live[address]


def peak_bytes(forward, inputs) -> int:
    """The peak memory of one training step, after one to warm up."""
    step = training_step(forward, inputs)
    step()
    device = inputs[0].device.type
    if device == "cuda":
        synchronize(device)
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        step()
        return torch.cuda.max_memory_allocated() - before
    with LiveStorage() as live:
        step()
    return live.peak


def geomean(values) -> float:
    return math.exp(statistics.mean(math.log(v) for v in values))


def run_models(sizes, reps: int, rounds: int, compiled: bool, device: str, dtype: torch.dtype) -> list[dict]:
    """Each model at each size: the variants' training steps interleaved, `rounds` times, each a
    median of `reps` runs; ratios per round, reported as the median and the range of rounds."""
    rows = []
    for size in sizes:
        torch.manual_seed(0)
        for name, (fn, inputs) in models(size, device, dtype).items():
            variants = {"eager": fn, "fxgrad": fxgrad.function(fn, inputs)}
            if compiled:
                variants["compiled"] = torch.compile(fn)
                variants["fxgrad compiled"] = fxgrad.function(fn, inputs, compile=True)
            steps = {label: training_step(forward, inputs) for label, forward in variants.items()}
            for step in steps.values():  # warm-up, and compilation
                for _ in range(3):
                    step()
            times = {label: [] for label in steps}
            for _ in range(rounds):
                for label, step in steps.items():
                    times[label].append(1000 * median_time(step, reps, device))
            row = {"size": size, "model": name}
            for label, measured in times.items():
                row[f"{label} ms"] = statistics.median(measured)
            ratios = {"fxgrad / eager": ("fxgrad", "eager"), "compiled ratio": ("fxgrad compiled", "compiled")}
            for column, (numerator, denominator) in ratios.items():
                if numerator in times:
                    per_round = [a / b for a, b in zip(times[numerator], times[denominator])]
                    row[column] = statistics.median(per_round)
                    row[f"{column} range"] = (min(per_round), max(per_round))
            for label in ("eager", "fxgrad"):
                row[f"saved MB {label}"] = saved_bytes(variants[label], inputs) / 2**20
                row[f"peak MB {label}"] = peak_bytes(variants[label], inputs) / 2**20
            rows.append(row)
            print(f"measured {size} {name}", file=sys.stderr)
    return rows


def run_derive_times(depths: list[int]) -> list[dict]:
    from functorch.compile import aot_function, make_boxed_func

    results = []
    for depth in depths:
        d = 16
        inputs = (torch.randn(4, d), *(torch.randn(d, d) * d**-0.5 for _ in range(depth)))
        start = time.perf_counter()
        bwd = fxgrad.derive(silu_mlp, inputs)
        derive_seconds = time.perf_counter() - start
        nodes = sum(1 for node in bwd.graph.nodes if node.op in ("call_function", "call_method"))

        leaves = [x.clone().requires_grad_() for x in inputs]
        start = time.perf_counter()

        def no_compiler(gm, example_inputs):
            return make_boxed_func(gm)

        aot = aot_function(silu_mlp, fw_compiler=no_compiler, bw_compiler=no_compiler)
        aot(*leaves).backward()
        aot_seconds = time.perf_counter() - start
        results.append({"layers": depth, "derive s": derive_seconds, "aot_function s": aot_seconds,
                        "aot / derive": aot_seconds / derive_seconds, "derive ms per node": 1000 * derive_seconds / nodes,
                        "nodes": nodes})
        print(f"measured derive at depth {depth}", file=sys.stderr)
    return results


def ranged(row: dict, column: str) -> str:
    if column not in row:
        return "-"
    low, high = row[f"{column} range"]
    return f"{row[column]:.2f} ({low:.2f}–{high:.2f})"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", choices=SIZES, default=None, help="size classes (default: all)")
    parser.add_argument("--reps", type=int, default=None, help="runs per median (default 20; 5 with --quick)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds, reported as ranges")
    parser.add_argument("--quick", action="store_true", help="micro, tiny and mid sizes, fewer runs: about 2 minutes")
    parser.add_argument("--no-compile", action="store_true", help="leave out torch.compile and compile=True")
    parser.add_argument("--no-derive", action="store_true", help="leave out the derive-time table")
    parser.add_argument("--deep", action="store_true", help="the derive-time table to 5,000 layers")
    parser.add_argument("--device", default=DEVICE)
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16", "float64"])
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (CPU)")
    parser.add_argument("--json", default=None, help="where to write the results (default: results-<device>.json here)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    sizes = args.sizes or (["micro", "tiny", "mid"] if args.quick else list(SIZES))
    reps = args.reps or (5 if args.quick else 20)
    dtype = getattr(torch, args.dtype)
    compiled = not args.no_compile and not args.quick  # compiling every model takes minutes on CPU

    model_rows = run_models(sizes, reps, args.rounds, compiled, args.device, dtype)
    print(f"\nforward + backward on {args.device} in {args.dtype} ({torch.__version__}, {args.threads} thread(s)); "
          f"median of {args.rounds} interleaved rounds of medians of {reps} runs, (range of the rounds)")
    headers = ["size", "model", "eager ms", "fxgrad ms", "fxgrad / eager", "compiled ratio",
               "saved MB eager / fxgrad", "peak MB eager / fxgrad"]
    table = [[row["size"], row["model"], row["eager ms"], row["fxgrad ms"], ranged(row, "fxgrad / eager"),
              ranged(row, "compiled ratio"), f"{row['saved MB eager']:.3g} / {row['saved MB fxgrad']:.3g}",
              f"{row['peak MB eager']:.3g} / {row['peak MB fxgrad']:.3g}"] for row in model_rows]
    print(tabulate(table, headers=headers, floatfmt=".3g"))
    summary = {}
    for size in sizes:
        in_size = [row for row in model_rows if row["size"] == size]
        summary[size] = {"geomean fxgrad / eager": geomean(row["fxgrad / eager"] for row in in_size),
                         "max fxgrad / eager": max(row["fxgrad / eager"] for row in in_size)}
        if compiled:
            summary[size]["geomean compiled ratio"] = geomean(row["compiled ratio"] for row in in_size)
        print(f"{size}: " + "; ".join(f"{key} {value:.3f}" for key, value in summary[size].items()))

    derive_rows = []
    if not args.no_derive:
        depths = [10, 100] if args.quick else [10, 100, 400, 1000] + ([5000] if args.deep else [])
        derive_rows = run_derive_times(depths)
        print("\nfxgrad.derive against aot_function's first call (trace + partition, no compiler)")
        print(tabulate(derive_rows, headers="keys", floatfmt=".3g"))

    results = {"device": args.device, "dtype": args.dtype, "torch": torch.__version__, "threads": args.threads,
               "reps": reps, "rounds": args.rounds, "models": model_rows, "summary": summary, "derive": derive_rows}
    path = args.json or os.path.join(os.path.dirname(__file__), f"results-{args.device}.json")
    with open(path, "w") as file:
        json.dump(results, file, indent=2)
    return results


if __name__ == "__main__":
    main()
