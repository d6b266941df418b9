"""fxgrad's derived backward against PyTorch's, side by side in one run.

    python benchmarks/bench.py [--reps 20] [--json benchmarks/results-cpu.json] [--quick]

For each model: forward+backward time of eager autograd, of `fxgrad.function` (and the ratio),
of `torch.compile(fn)` and of `fxgrad.function(compile=True)` (and the ratio); and the memory
autograd saves for the backward against what fxgrad's forward saves (bytes of the tensors kept
between forward and backward, measured with saved-tensor hooks; on a GPU, the peak allocated
memory as well). Then the time `fxgrad.derive` takes against `functorch.compile.aot_function`'s
first call (tracing and partitioning, no compiler) for residual SiLU MLPs of growing depth.
Times are medians of `--reps` runs after warm-up.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from tabulate import tabulate

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


def randn(*shape, scale=1.0):
    return torch.randn(*shape, device=DEVICE) * scale


def models(quick: bool):
    d, layers, batch = (128, 4, 16) if quick else (512, 8, 64)
    B, H, S, D = (2, 4, 64, 32) if quick else (4, 8, 256, 64)
    C, T = (64, 32) if quick else (256, 128)
    return {
        f"SiLU MLP d={d} x{layers} b={batch}": (
            silu_mlp, (randn(batch, d), *(randn(d, d, scale=d**-0.5) for _ in range(layers)))),
        f"softmax attention {B}x{H}x{S}x{D}": (
            softmax_attention, (randn(B, H, S, D), randn(B, H, S, D), randn(B, H, S, D), randn(B, H, S, S))),
        f"nanoGPT block C={C} T={T}": (
            gpt_block, (randn(4, T, C), 1 + randn(C, scale=0.1), randn(C, scale=0.1), randn(3 * C, C, scale=C**-0.5),
                        randn(3 * C, scale=0.1), randn(C, C, scale=C**-0.5), randn(C, scale=0.1),
                        1 + randn(C, scale=0.1), randn(C, scale=0.1), randn(4 * C, C, scale=C**-0.5),
                        randn(4 * C, scale=0.1), randn(C, 4 * C, scale=(4 * C) ** -0.5), randn(C, scale=0.1))),
        f"LayerNorm + MLP C={C}": (
            layernorm_mlp, (randn(64, T, C), 1 + randn(C, scale=0.1), randn(C, scale=0.1),
                            randn(4 * C, C, scale=C**-0.5), randn(4 * C, scale=0.1), randn(C, 4 * C, scale=0.05),
                            randn(C, scale=0.1))),
        f"cross-entropy head V={8 * C}": (
            cross_entropy_head, (randn(512, C), randn(C, 8 * C, scale=C**-0.5),
                                 torch.randint(0, 8 * C, (512,), device=DEVICE))),
    }


# ---------------------------------------------------------------------------------------------
# Measuring


def synchronize():
    if DEVICE == "cuda":
        torch.cuda.synchronize()


def median_time(step, reps: int) -> float:
    for _ in range(3):  # warm-up (and, for compiled code, compilation)
        step()
    synchronize()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        step()
        synchronize()
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
    """Bytes of the tensors kept from the forward for the backward (each storage once)."""
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


def peak_memory(forward, inputs) -> int | None:
    if DEVICE != "cuda":
        return None
    torch.cuda.reset_peak_memory_stats()
    training_step(forward, inputs)()
    return torch.cuda.max_memory_allocated()


def run_models(reps: int, quick: bool) -> list[dict]:
    results = []
    for name, (fn, inputs) in models(quick).items():
        derived = fxgrad.function(fn, inputs)
        compiled_derived = fxgrad.function(fn, inputs, compile=True)
        compiled = torch.compile(fn)
        row = {"model": name}
        for label, forward in (("eager", fn), ("fxgrad", derived), ("compiled", compiled),
                               ("fxgrad compiled", compiled_derived)):
            row[f"{label} ms"] = 1000 * median_time(training_step(forward, inputs), reps)
        row["saved MB eager"] = saved_bytes(fn, inputs) / 2**20
        row["saved MB fxgrad"] = saved_bytes(derived, inputs) / 2**20
        if DEVICE == "cuda":
            row["peak MB eager"] = peak_memory(fn, inputs) / 2**20
            row["peak MB fxgrad"] = peak_memory(derived, inputs) / 2**20
        results.append(row)
        print(f"measured {name}", file=sys.stderr)
    return results


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--json", default=os.path.join(os.path.dirname(__file__), f"results-{DEVICE}.json"))
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    args = parser.parse_args()

    model_rows = run_models(args.reps, args.quick)
    for row in model_rows:
        row["fxgrad / eager"] = row["fxgrad ms"] / row["eager ms"]
        row["fxgrad compiled / compiled"] = row["fxgrad compiled ms"] / row["compiled ms"]

    print(f"\nforward + backward on {DEVICE} ({torch.__version__}), median of {args.reps} runs")
    columns = ["model", "eager ms", "fxgrad ms", "fxgrad / eager", "compiled ms", "fxgrad compiled ms",
               "fxgrad compiled / compiled", "saved MB eager", "saved MB fxgrad"]
    columns += ["peak MB eager", "peak MB fxgrad"] if DEVICE == "cuda" else []
    print(tabulate([[row[c] for c in columns] for row in model_rows], headers=columns, floatfmt=".3g"))
    geomean = math.exp(statistics.mean(math.log(row["fxgrad / eager"]) for row in model_rows))
    compiled_geomean = math.exp(statistics.mean(math.log(row["fxgrad compiled / compiled"]) for row in model_rows))
    print(f"geomean fxgrad / eager: {geomean:.3f}; fxgrad compiled / compiled: {compiled_geomean:.3f}", flush=True)

    derive_rows = run_derive_times([10, 100] if args.quick else [10, 100, 400, 1000])
    print("\nfxgrad.derive against aot_function's first call (trace + partition, no compiler)")
    print(tabulate(derive_rows, headers="keys", floatfmt=".3g"))

    with open(args.json, "w") as file:
        json.dump({"device": DEVICE, "torch": torch.__version__, "reps": args.reps, "models": model_rows,
                   "geomean fxgrad / eager": geomean, "geomean fxgrad compiled / compiled": compiled_geomean,
                   "derive": derive_rows}, file, indent=2)


if __name__ == "__main__":
    main()
