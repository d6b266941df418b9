"""Property tests: random compositions of 2-30 supported ops (no_grad regions, aliases and
views changed in place among them), on random shapes that broadcast, derived and compared with
torch.autograd in float64, then called at other sizes: the guards hold or refuse, the gradients
never silently differ.

A bounded run goes with the suite; `FXGRAD_PROPERTY_EXAMPLES=10000 pytest tests/test_properties.py`
runs a long one.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fxgrad
from checks import autograd_grads, random_grad_outputs

EXAMPLES = int(os.environ.get("FXGRAD_PROPERTY_EXAMPLES", "300"))


def no_grad_scale(x):
    with torch.no_grad():
        s = x * 2 + 1  # a constant, as autograd treats it
    return x * s


def grad_back_on(x):
    with torch.no_grad():
        c = x.tanh()
        with torch.enable_grad():
            t = x * x
    return t + c


def alias_then_in_place(x):
    y = x * 1.5
    r = y
    y *= x  # r is y: it sees the new value
    return r + y


def view_sees_change(x):
    y = x + 0.5
    v = y.unsqueeze(0)
    y.mul_(3)  # the view made before the change shows the new value
    return v.squeeze(0) * 2



# Unary ops, each safe on any real input (the ones with a restricted domain take a safe argument).
UNARY = {
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "relu": torch.relu,
    "silu": F.silu,
    "gelu": F.gelu,
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "neg": lambda x: -x,
    "square": torch.square,
    "cube": lambda x: x**3,
    "exp_of_tanh": lambda x: torch.exp(torch.tanh(x)),
    "log": lambda x: torch.log(x * x + 1),
    "sqrt": lambda x: (x * x + 1).sqrt(),
    "rsqrt": lambda x: torch.rsqrt(x * x + 0.5),
    "reciprocal": lambda x: 1 / (x * x + 1),
    "abs": torch.abs,
    "scale": lambda x: 0.5 * x,
    "shift": lambda x: 1.5 - x,
    "detach": lambda x: x.detach() * x,
    "clone": torch.clone,
    "no_grad": no_grad_scale,
    "enable_grad": grad_back_on,
    "alias_in_place": alias_then_in_place,
    "view_in_place": view_sees_change,
}
BINARY = {
    "add": torch.add,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / (b * b + 1),
    "pow": lambda a, b: (a * a + 1) ** b.tanh(),
}
REDUCTIONS = {"sum": torch.sum, "mean": torch.mean}


@dataclass
class Program:
    """Inputs of `input_shapes`, then steps `(kind, name, operands, arguments)`; an operand or an
    output is `("input", k)` or `("step", k)`."""

    input_shapes: list[tuple[int, ...]]
    steps: list[tuple] = field(default_factory=list)
    outputs: tuple[tuple[str, int], ...] = ()


def run(program: Program, *inputs):
    values = {"input": list(inputs), "step": []}
    for kind, name, operands, arguments in program.steps:
        x = [values[where][k] for where, k in operands]
        if kind == "unary":
            y = UNARY[name](*x)
        elif kind == "binary":
            y = BINARY[name](*x)
        elif kind == "matmul":
            y = x[0] @ x[1]
        elif kind == "reduce":
            dims, keepdim = arguments
            y = REDUCTIONS[name](x[0]) if dims is None else REDUCTIONS[name](x[0], dims, keepdim=keepdim)
        elif kind == "softmax":
            y = x[0].softmax(arguments) if name == "softmax" else F.log_softmax(x[0], arguments)
        elif kind == "transpose":
            y = x[0].transpose(*arguments) if name == "transpose" else x[0].mT
        else:  # permute, flatten, unsqueeze, squeeze, reshape, expand
            y = getattr(x[0], name)(*arguments)
        values["step"].append(y)
    outputs = tuple(values[where][k] for where, k in program.outputs)
    return outputs if len(outputs) > 1 else outputs[0]


SIZES = st.integers(1, 3)


def shapes(min_ndim=0, max_ndim=3):
    return st.lists(SIZES, min_size=min_ndim, max_size=max_ndim).map(tuple)


def broadcast_partner(draw, shape):
    """A shape that broadcasts with `shape` to `shape`: some dims set to 1, some leading ones dropped."""
    dropped = draw(st.integers(0, len(shape)))
    return tuple(1 if draw(st.booleans()) else size for size in shape[dropped:])


@st.composite
def programs(draw):
    program = Program([draw(shapes())])
    shape_of = {("input", 0): program.input_shapes[0]}

    def new_input(shape):
        program.input_shapes.append(shape)
        ref = ("input", len(program.input_shapes) - 1)
        shape_of[ref] = shape
        return ref

    for _ in range(draw(st.integers(2, 30))):
        x = draw(st.sampled_from(sorted(shape_of)))
        shape = shape_of[x]
        ndim = len(shape)
        kinds = ["unary", "binary", "matmul", "reduce", "softmax", "reshape", "expand"]
        kinds += ["permute", "transpose"] if ndim >= 2 else []
        kind = draw(st.sampled_from(kinds))
        operands, arguments, result = [x], None, shape
        if kind == "unary":
            name = draw(st.sampled_from(sorted(UNARY)))
        elif kind == "binary":
            partner = broadcast_partner(draw, shape)
            known = [ref for ref, s in shape_of.items() if s == partner]
            y = draw(st.sampled_from(known)) if known and draw(st.booleans()) else new_input(partner)
            operands = [x, y] if draw(st.booleans()) else [y, x]
            name = draw(st.sampled_from(sorted(BINARY)))
        elif kind == "matmul":
            if ndim == 0:
                continue
            m = draw(SIZES)
            other = (shape[-1], m) if ndim >= 2 or draw(st.booleans()) else (shape[-1],)
            name, operands = "matmul", [x, new_input(other)]
            result = (*shape[:-1], m) if len(other) == 2 else shape[:-1]
        elif kind == "reduce":
            if ndim == 0 or draw(st.booleans()):
                dims, keepdim, result = None, False, ()
            else:
                dims = tuple(sorted(draw(st.sets(st.integers(0, ndim - 1), min_size=1))))
                keepdim = draw(st.booleans())
                result = tuple(1 if d in dims else s for d, s in enumerate(shape) if keepdim or d not in dims)
            name, arguments = draw(st.sampled_from(sorted(REDUCTIONS))), (dims, keepdim)
        elif kind == "softmax":
            if ndim == 0:
                continue
            name, arguments = draw(st.sampled_from(["softmax", "log_softmax"])), draw(st.integers(-ndim, ndim - 1))
        elif kind == "permute":
            order = tuple(draw(st.permutations(range(ndim))))
            name, arguments, result = "permute", order, tuple(shape[d] for d in order)
        elif kind == "transpose":
            name = draw(st.sampled_from(["transpose", "mT"]))
            a, b = (draw(st.integers(0, ndim - 1)), draw(st.integers(0, ndim - 1))) if name == "transpose" else (-2, -1)
            swapped = list(shape)
            swapped[a], swapped[b] = swapped[b], swapped[a]
            arguments, result = (a, b), tuple(swapped)
        elif kind == "reshape":
            name = draw(st.sampled_from(["flatten", "unsqueeze", "squeeze", "reshape"]))
            numel = int(torch.tensor(shape).prod())
            if name == "unsqueeze":
                d = draw(st.integers(0, ndim))
                arguments, result = (d,), (*shape[:d], 1, *shape[d:])
            elif name == "squeeze":
                arguments, result = (), tuple(s for s in shape if s != 1)
            else:
                arguments, result = ((-1,) if name == "reshape" else ()), (numel,)
        else:  # expand: a new leading dim, and size-1 dims stretched
            target = (draw(SIZES), *(draw(SIZES) if s == 1 else s for s in shape))
            name, arguments, result = "expand", target, target
        program.steps.append((kind, name, operands, arguments))
        shape_of[("step", len(program.steps) - 1)] = result
    if not program.steps:
        program.steps.append(("unary", "tanh", [("input", 0)], None))
        shape_of[("step", 0)] = program.input_shapes[0]
    last = ("step", len(program.steps) - 1)
    extra = draw(st.sampled_from([ref for ref in sorted(shape_of) if ref[0] == "step"]))
    program.outputs = (last,) if extra == last or draw(st.booleans()) else (last, extra)
    return program


# Other sizes to call a derived backward at: each size of the example (1, 2, 3) mapped to a new
# one, the same everywhere, so that sizes that were equal stay equal (larger ones, products of
# these, stay as they are).
RESIZES = st.fixed_dictionaries({1: st.sampled_from([1, 1, 1, 2]), 2: st.integers(2, 5), 3: st.integers(2, 5)})


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(program=programs(), seed=st.integers(0, 2**16), resize=RESIZES)
def test_random_compositions_match_autograd(program, seed, resize):
    g = torch.Generator().manual_seed(seed)
    inputs = tuple(torch.randn(shape, generator=g, dtype=torch.float64) for shape in program.input_shapes)
    fn = functools.partial(run, program)
    bwd = fxgrad.derive(fn, inputs)
    grad_outputs = random_grad_outputs(fn, inputs, seed)
    expected = autograd_grads(fn, inputs, grad_outputs)
    for derived, wanted in zip(bwd(*inputs, *grad_outputs), expected):
        torch.testing.assert_close(derived, wanted, rtol=1e-7, atol=1e-9)

    resized = tuple(torch.randn(tuple(resize.get(s, s) for s in shape), generator=g, dtype=torch.float64)
                    for shape in program.input_shapes)
    try:
        grad_outputs = random_grad_outputs(fn, resized, seed)
        expected = autograd_grads(fn, resized, grad_outputs)
    except RuntimeError:  # the function itself does not run at these sizes (an expand to example sizes)
        return
    try:
        derived = bwd(*resized, *grad_outputs)
    except (fxgrad.ShapeError, fxgrad.GradOutputError):
        # refusing is right only where a size-1 dim grew, which changes what broadcasts
        assert resize[1] != 1, "a guard refused sizes that broadcast as the example's did"
        return
    for derived_grad, wanted in zip(derived, expected):
        torch.testing.assert_close(derived_grad, wanted, rtol=1e-7, atol=1e-9)
