"""The execution passes of `fxgrad.function` (in place, freed after last use, recomputed under a
memory budget): the gradients of every training step still equal autograd's."""

import os
import sys

import pytest
import torch
import torch.nn.functional as F

import fxgrad
from checks import assert_step_matches_autograd

from models import cnns, losses, transformers, vision  # noqa: F401  (register the models)
from models.registry import MODELS

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "benchmarks"))
import bench  # noqa: E402


@pytest.mark.parametrize("budget", [1.0, 0.5])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_training_step_matches_autograd(name, budget):
    inputs = MODELS[name].make_inputs(torch.Generator().manual_seed(0))
    assert_step_matches_autograd(MODELS[name].fn, inputs, memory_budget=budget)


def bench_models():
    torch.manual_seed(0)
    return {name: (fn, tuple(x.double() if x.is_floating_point() else x for x in inputs))
            for name, (fn, inputs) in bench.models("micro").items()}


@pytest.mark.parametrize("budget", [1.0, 0.5, 0.0])
@pytest.mark.parametrize("name", sorted(bench_models()))
def test_bench_model_training_step_matches_autograd(name, budget):
    fn, inputs = bench_models()[name]
    assert_step_matches_autograd(fn, inputs, memory_budget=budget)


def test_the_code_that_runs_writes_in_place_and_frees_after_last_use():
    def sin_mlp(x, w1, w2):
        return torch.sin(torch.sin(x @ w1) @ w2).sum()

    inputs = (torch.randn(4, 3), torch.randn(3, 3), torch.randn(3, 2))
    _, forward, backward = fxgrad.function(sin_mlp, inputs).partition_for((True, True, True))
    assert "del " in forward.code and "args.clear()" in backward.code
    assert "mul_(" in backward.code and "del " in backward.code
    # what derive prints is the math, unchanged
    assert "mul_(" not in fxgrad.derive(sin_mlp, inputs).code


def test_a_value_read_through_a_view_is_not_overwritten():
    def f(x):
        a = x * 2
        v = a.t()  # a view of a: writing into a would change v
        b = torch.sigmoid(a) * 3
        return (v * b.t()).sum() + b.sum()

    inputs = (torch.randn(3, 4, dtype=torch.float64),)
    assert_step_matches_autograd(f, inputs)
    _, forward, _ = fxgrad.function(f, inputs).partition_for((True,))
    assert "a.mul_" not in forward.code and "a.sigmoid_" not in forward.code


def test_outputs_that_are_also_saved_and_aliased_outputs_are_not_overwritten():
    def f(x, w):
        y = torch.tanh(x @ w)
        return y, y.t(), torch.sigmoid(y) * y

    inputs = (torch.randn(3, 4, dtype=torch.float64), torch.randn(4, 4, dtype=torch.float64))
    assert_step_matches_autograd(f, inputs)
    assert_step_matches_autograd(f, inputs, memory_budget=0.0)


def test_silu_evaluation_order_is_the_code_s_not_the_graph_s():
    # the readable printer writes single-use values inside their user: a value read there must
    # still be read before an operand is overwritten (silu's derivative reads σ twice)
    def f(x, w):
        return (F.silu(x @ w) * F.silu(x @ w.mT)).sum()

    inputs = (torch.randn(5, 5, dtype=torch.float64), torch.randn(5, 5, dtype=torch.float64))
    assert_step_matches_autograd(f, inputs)


def test_double_backward_through_the_execution_passes():
    def f(x, w):
        return (F.silu(x @ w) * torch.sigmoid(x @ w)).sum()

    inputs = (torch.randn(3, 4, dtype=torch.float64), torch.randn(4, 2, dtype=torch.float64))
    for budget in (1.0, 0.0):
        hessian_vector_products = []
        for forward in (fxgrad.function(f, inputs, memory_budget=budget), f):
            leaves = [x.clone().requires_grad_() for x in inputs]
            grads = torch.autograd.grad(forward(*leaves), leaves, create_graph=True)
            hessian_vector_products.append(torch.autograd.grad(sum((g * g).sum() for g in grads), leaves))
        for a, b in zip(*hessian_vector_products):
            torch.testing.assert_close(a, b)


def test_retain_graph_backward_twice():
    def f(x):
        return torch.sigmoid(x * 2).sum()

    x = torch.randn(4, dtype=torch.float64, requires_grad=True)
    out = fxgrad.function(f, (x,))(x)
    first, = torch.autograd.grad(out, x, retain_graph=True)
    second, = torch.autograd.grad(out, x)
    want, = torch.autograd.grad(f(x), x)
    torch.testing.assert_close(first, want)
    torch.testing.assert_close(second, want)


@pytest.mark.parametrize("budget", [1.5, -0.1, "half", None, True])
def test_a_memory_budget_outside_0_to_1_is_refused(budget):
    with pytest.raises(fxgrad.InputError, match="memory_budget must be a number from 0 to 1"):
        fxgrad.function(torch.sin, (torch.randn(3),), memory_budget=budget)


# What a budget of 0.5 saves, as a fraction of the default: the SiLU MLP about half; the nanoGPT
# block 0.65, where what is left to save (q, k, v, the attention, the MLP's input) each needs a
# matrix product to compute again, which a budget never recomputes.
@pytest.mark.parametrize("name, fraction", [("SiLU MLP", 0.6), ("nanoGPT block", 0.65)])
def test_a_memory_budget_of_half_saves_about_half(name, fraction):
    fn, inputs = next((fn, inputs) for model, (fn, inputs) in bench.models("tiny").items() if model.startswith(name))
    full = bench.saved_bytes(fxgrad.function(fn, inputs), inputs)
    half = bench.saved_bytes(fxgrad.function(fn, inputs, memory_budget=0.5), inputs)
    assert full <= bench.saved_bytes(fn, inputs)
    assert half <= fraction * full


@pytest.mark.parametrize("name", ["SiLU MLP", "softmax attention", "nanoGPT block", "cross-entropy head"])
def test_peak_memory_of_a_step_is_no_more_than_eager(name):
    fn, inputs = next((fn, inputs) for model, (fn, inputs) in bench.models("tiny").items() if model.startswith(name))
    assert bench.peak_bytes(fxgrad.function(fn, inputs), inputs) <= bench.peak_bytes(fn, inputs)


def test_a_product_plus_a_bias_runs_as_one_linear():
    def f(x, w, b, v):
        p = x @ v.mT  # read twice: computed once, as it is
        return (F.linear(x, w, b) * 2).sum() + (p + b).sum() + p.sum()

    g = torch.Generator().manual_seed(0)
    inputs = tuple(torch.randn(shape, generator=g, dtype=torch.float64) for shape in [(2, 5, 4), (3, 4), (3,), (3, 4)])
    assert_step_matches_autograd(f, inputs)
    _, forward, _ = fxgrad.function(f, inputs).partition_for((True,) * 4)
    assert forward.code.count("torch.nn.functional.linear(") == 1, forward.code


def _saved_values(fn, inputs, budget):
    parts, _, _ = fxgrad.function(fn, inputs, memory_budget=budget).partition_for((True,) * len(inputs))
    output = next(node for node in parts.forward.graph.nodes if node.op == "output")
    return [node.meta.get("val") for node in output.args[0][parts.n_outputs + len(parts.state):]]


@pytest.mark.parametrize("budget", [1.0, 0.5, 0.0])
@pytest.mark.parametrize("fn", [
    lambda x: F.max_pool2d(x, 2).sin().sum() + torch.max(x, 1)[0].sum(),
    lambda x: F.gelu(F.batch_norm(x, None, None, training=True)).pow(2).sum(),
    lambda x: F.cross_entropy(F.layer_norm(x, x.shape[-1:]).tanh().flatten(1), torch.arange(x.shape[0]) % 3),
], ids=["pools and max", "batch norm", "layer norm, cross-entropy"])
def test_a_forward_saves_tensors_and_sizes_never_a_tuple_of_results(fn, budget):
    # autograd checks and frees only what goes through save_for_backward: a tuple holding an
    # output would keep it alive from its own grad_fn, and miss a change made to it in place
    inputs = (torch.randn(4, 3, 2, 2, dtype=torch.float64),)
    assert_step_matches_autograd(fn, inputs, memory_budget=budget)
    for val in _saved_values(fn, inputs, budget):
        assert not (isinstance(val, (tuple, list)) and any(isinstance(v, torch.Tensor) for v in val))


@pytest.mark.parametrize("budget", [1.0, 0.0])
def test_an_output_changed_in_place_before_the_backward_is_refused_by_autograd(budget):
    def f(x):
        y = F.batch_norm(x, None, None, training=True)
        return y, F.gelu(y).pow(2).sum()

    x = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    y, loss = fxgrad.function(f, (x,), memory_budget=budget)(x)
    y.mul_(3.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        torch.autograd.grad(loss, x)


def test_a_step_s_outputs_are_freed_without_the_garbage_collector():
    import gc
    import weakref

    def f(x):
        z = F.batch_norm(x, None, None, training=True)
        return F.cross_entropy(z.tanh(), torch.tensor([0, 1, 2, 1])), z

    x = torch.randn(4, 3, requires_grad=True)
    derived = fxgrad.function(f, (x,), memory_budget=0.0)
    refs = []
    gc.disable()
    try:
        for _ in range(3):
            loss, z = derived(x)
            loss.backward()
            refs.append(weakref.ref(z))
            del loss, z
        assert not any(ref() is not None for ref in refs)
    finally:
        gc.enable()
