"""`hvp`: Hessian-vector products, the gradient of the gradient.

For a scalar f, H·v = ∇⟨∇f(x), v⟩. `derive` writes ∇f as ordinary torch code (its backward's
graph, called with the incoming gradient 1), which is a function like any other: `hvp` builds
⟨∇f(x), v⟩ from that graph, one vector per input, and derives it again with respect to the
inputs. The result is the second backward, readable like the first: each statement under the
line of the first backward it differentiates.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import torch
import torch.fx as fx

from .api import Backward, derive
from .emit import ReadableCodeGen
from .errors import InputError, OutputError
from .graph import read_attributes


class HessianVectorProduct(Backward):
    """`h(*inputs, *vectors)`: one Hessian-vector product per input (None for an input that is
    not floating-point), its calls checked as a backward's. Its graph is the backward of
    ⟨∇f, v⟩, whose incoming gradient (`h.code`'s last argument) a call gives as 1."""

    n_inputs: int

    def __call__(self, *args: Any, **kwargs: Any) -> tuple:
        if kwargs or len(args) != 2 * self.n_inputs:
            raise InputError(f"a Hessian-vector product takes {self.n_inputs} inputs and as many vectors, by position; "
                             f"called with {len(args)} arguments{' and keywords' if kwargs else ''}")
        one = torch.ones((), dtype=self.guards.grad_outputs[0].dtype, device=args[0].device)
        return super().__call__(*args, one)[:self.n_inputs]


def hvp(fn: Callable, inputs: Sequence[torch.Tensor], *, tracer: str = "auto") -> HessianVectorProduct:
    """The Hessian-vector products of the scalar-valued `fn` at its inputs, as a GraphModule
    `h(*inputs, *vectors)` (a vector of each input's shape) returning H·v for each input, where
    H is f's Hessian with respect to all of them: Σⱼ ∂²f/∂xᵢ∂xⱼ · vⱼ.

    Example:
        >>> import torch, fxgrad
        >>> h = fxgrad.hvp(lambda x: (x ** 3).sum(), (torch.tensor([1.0, 2.0]),))
        >>> h(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 1.0]))
        (tensor([ 6., 12.]),)
    """
    if not isinstance(inputs, (tuple, list)) or not all(isinstance(x, torch.Tensor) for x in inputs):
        raise InputError("hvp takes its inputs as a tuple of tensors")
    gradient = derive(fn, tuple(inputs), tracer=tracer)
    if len(gradient.grad_names) != len(inputs):
        raise InputError(f"hvp differentiates with respect to the inputs, and `{_name(fn)}` reads parameters or "
                         f"captured tensors that require grad ({', '.join(gradient.grad_names[len(inputs):])}): "
                         "pass them as inputs (torch.func.functional_call for a module)")
    seeds = gradient.guards.grad_outputs
    if len(seeds) != 1 or seeds[0].shape != () or not seeds[0].dtype.is_floating_point:
        raise OutputError(f"hvp takes a function returning one floating-point scalar; `{_name(fn)}` returns "
                          f"{', '.join(f'{tuple(spec.shape)} {spec.dtype}' for spec in seeds)}")
    vectors = tuple(torch.zeros_like(x) for x in inputs)
    floating = tuple(i for i, x in enumerate(inputs) if x.is_floating_point())
    product = derive(_gradient_dot(gradient, seeds[0].dtype), (*inputs, *vectors), wrt=floating, tracer=tracer)
    h = HessianVectorProduct(read_attributes(product), product.graph, class_name="HessianVectorProduct")
    h.guards, h.n_inputs, h.grad_names = product.guards, len(inputs), product.grad_names[:len(inputs)]
    return h


def _gradient_dot(gradient: Backward, dtype: torch.dtype) -> fx.GraphModule:
    """⟨∇f(x), v⟩ as a GraphModule of the inputs and one vector each: the derived backward's
    graph with the incoming gradient 1, dotted with the vectors."""
    graph = fx.Graph()
    placeholders = [node for node in gradient.graph.nodes if node.op == "placeholder"]
    inputs = [graph.placeholder(node.name) for node in placeholders[:-1]]
    vectors = [graph.placeholder(f"v_{node.name}") for node in placeholders[:-1]]
    one = graph.call_function(torch.ones, ((),), {"dtype": dtype, "device": graph.call_function(
        getattr, (inputs[0], "device"))})
    grads = graph.graph_copy(gradient.graph, dict(zip(placeholders, [*inputs, one])))
    dot = None
    for grad, vector in zip(grads, vectors):
        if grad is not None:
            term = graph.call_method("sum", (graph.call_function(torch.mul, (grad, vector)),))
            dot = term if dot is None else graph.call_function(torch.add, (dot, term))
    graph.output(dot)
    graph.set_codegen(ReadableCodeGen(provenance=False))  # the lines the second backward's comments quote
    return fx.GraphModule(read_attributes(gradient), graph, class_name="gradient_dot")


def _name(fn: Callable) -> str:
    return getattr(fn, "__name__", type(fn).__name__)
