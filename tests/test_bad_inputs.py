"""Every public entry point answers bad input with an `FxgradError`, never a raw Python error.

One table: what is called, and the error it must raise. It holds the README's error table and
every bad call that has been found to crash; add to it.
"""

import pytest
import torch
import torch.nn.functional as F

import fxgrad
from fxgrad import (FxgradError, GradOutputError, InputError, MutationError, OutputError, ParameterError,
                    RandomnessError, ShapeError, TraceError, UnsupportedArgumentError, UnsupportedOpError)


def randn(*shape):
    return torch.randn(*shape, dtype=torch.float64)


def product(x, y):
    return x * y


def derived_product():
    return fxgrad.derive(product, (randn(3), randn(3)))


def function_of_product():
    return fxgrad.function(product, (randn(3), randn(3)))


def mutates_input(x):
    x.add_(1)
    return x * 2


def branches_on_values(x):
    if x.sum() > 0:
        return x * 2
    return x


def returns_nothing(x):
    x * 2


def returns_text(x):
    return "x"


class KeyValueCache:  # as an HF model's cache of keys and values, which pytree does not take apart
    def __init__(self, keys):
        self.keys = keys


def returns_a_cache(x):
    return {"out": x * 2, "cache": KeyValueCache(x * 3)}


WEIGHTS = [torch.randn(3, 3, dtype=torch.float64, requires_grad=True)]


def reads_a_list_of_weights(x):
    return x @ WEIGHTS[0]


def reassigned_after_derive(new_weight):
    """A backward derived for a linear layer, called after its weight was replaced by `new_weight`."""
    layer = torch.nn.Linear(3, 2).double()
    bwd = fxgrad.derive(layer, (randn(4, 3),))
    layer.weight = torch.nn.Parameter(new_weight)
    return bwd(randn(4, 3), randn(4, 2))


def scaled(x, scale):
    return x * scale


def summed(xs):
    return xs[0] + xs[1]


def hooked_linear():
    layer = torch.nn.Linear(3, 2).double()
    layer.register_forward_hook(lambda module, args, out: out * 2)
    return layer


# (id, the bad call, the error it raises, text the message holds)
BAD_CALLS = [
    # derive: its arguments
    ("example_inputs a tensor", lambda: fxgrad.derive(torch.tanh, randn(3)), InputError, "tuple of tensors"),
    ("example_inputs holds an object", lambda: fxgrad.derive(torch.tanh, (object(),)), InputError, "not a tensor"),
    ("too few example inputs", lambda: fxgrad.derive(product, (randn(3),)), InputError, "takes 2 arguments"),
    ("kwargs not a dict", lambda: fxgrad.derive(product, (randn(3), randn(3)), [randn(3)]), InputError,
     "kwargs must be a dict"),
    ("an unknown keyword", lambda: fxgrad.derive(product, (randn(3), randn(3)), {"z": randn(3)}), InputError,
     "unexpected keyword argument 'z'"),
    ("keywords for a function without a signature", lambda: fxgrad.derive(torch.tanh, (), {"input": randn(3)}),
     InputError, "no Python signature"),
    ("keywords for a module with forward hooks", lambda: fxgrad.derive(hooked_linear(), (), {"input": randn(2, 3)}),
     TraceError, "forward hooks"),
    ("complex input", lambda: fxgrad.derive(torch.tanh, (torch.randn(3, dtype=torch.cfloat),)), InputError, "complex"),
    ("nested example input", lambda: fxgrad.derive(torch.tanh, (torch.nested.nested_tensor([randn(2), randn(3)]),)),
     FxgradError, "nested"),
    ("wrt out of range", lambda: fxgrad.derive(product, (randn(3), randn(3)), wrt=(2,)), InputError, "indices 0..1"),
    ("wrt a float", lambda: fxgrad.derive(product, (randn(3), randn(3)), wrt=0.0), InputError, "wrt must be"),
    ("wrt a string", lambda: fxgrad.derive(product, (randn(3), randn(3)), wrt="x"), InputError, "wrt must be"),
    ("wrt an integer input", lambda: fxgrad.derive(product, (randn(3), torch.arange(3)), wrt=(1,)), InputError,
     "floating-point"),
    ("unknown tracer", lambda: fxgrad.derive(product, (randn(3), randn(3)), tracer="jit"), TraceError, "tracer must"),
    ("not a function", lambda: fxgrad.derive(3, (randn(3),)), TraceError, "could not"),
    # derive: the function
    ("op without a rule", lambda: fxgrad.derive(lambda x: torch.fft.fft(x).real, (randn(4),)), UnsupportedOpError,
     "line"),
    ("data-dependent control flow", lambda: fxgrad.derive(branches_on_values, (randn(3),), tracer="fx"), TraceError,
     "line"),
    ("in-place change of an input", lambda: fxgrad.derive(mutates_input, (randn(3),)), MutationError, "line"),
    ("an unsupported option", lambda: fxgrad.derive(lambda x: torch.div(x, 2, rounding_mode="floor"), (randn(3),)),
     UnsupportedArgumentError, "rounding_mode"),
    ("random numbers", lambda: fxgrad.derive(lambda x: x * torch.rand(3), (randn(3),)), RandomnessError, "random"),
    ("returns nothing", lambda: fxgrad.derive(returns_nothing, (randn(3),)), OutputError, "returns nothing"),
    ("returns a string", lambda: fxgrad.derive(returns_text, (randn(3),)), OutputError, "must return"),
    ("returns a cache", lambda: fxgrad.derive(returns_a_cache, (randn(3),)), OutputError,
     "`returns_a_cache` returns a KeyValueCache as `cache`, which is not a tensor nor a container "
     "torch.utils._pytree takes apart: pass use_cache=False, or register the cache with pytree"),
    ("narrow with a tensor start", lambda: fxgrad.derive(lambda x: x.narrow(0, torch.tensor(1), 2), (randn(4),)),
     FxgradError, "narrow"),
    ("tensors that require grad in a list", lambda: fxgrad.derive(reads_a_list_of_weights, (randn(2, 3),)),
     ParameterError, "`WEIGHTS`"),
    # a derived backward's calls
    ("backward: too few arguments", lambda: derived_product()(randn(3), randn(3)), GradOutputError, "3 arguments"),
    ("backward: too many arguments", lambda: derived_product()(randn(3), randn(3), randn(3), randn(3)),
     GradOutputError, "3 arguments"),
    ("backward: keyword arguments", lambda: derived_product()(randn(3), randn(3), grad_out=randn(3)), GradOutputError,
     "by position"),
    ("backward: None as an input", lambda: derived_product()(randn(3), None, randn(3)), InputError, "must be a tensor"),
    ("backward: None as a gradient", lambda: derived_product()(randn(3), randn(3), None), GradOutputError,
     "must be a tensor"),
    ("backward: another constant", lambda: fxgrad.derive(scaled, (randn(3), 2.0))(randn(3), 3.0, randn(3)),
     ShapeError, "derived for `scale` == 2.0, a constant of the trace"),
    ("backward: a container of another form",
     lambda: fxgrad.derive(summed, ([randn(3), randn(3)],))([randn(3)], randn(3)), InputError,
     "derived for `xs` of the form"),
    ("backward: gradient of another shape", lambda: derived_product()(randn(3), randn(3), randn(4)), GradOutputError,
     "shape"),
    ("backward: input of another rank", lambda: derived_product()(randn(1, 3), randn(3), randn(1, 3)), ShapeError,
     "ranks are fixed"),
    ("backward: input of another dtype", lambda: derived_product()(randn(3).float(), randn(3), randn(3)), ShapeError,
     "dtype"),
    ("backward: nested input", lambda: derived_product()(torch.nested.nested_tensor([randn(3)]), randn(3), randn(3)),
     InputError, "nested"),
    ("backward: embedding index of another rank",
     lambda: fxgrad.derive(lambda w, i: F.embedding(i, w), (randn(5, 2), torch.tensor([1, 2])))(
         randn(5, 2), torch.tensor(1), randn(2)), ShapeError, "1-d `i`"),
    ("backward: a target out of range",
     lambda: fxgrad.derive(lambda x, t: F.cross_entropy(x, t), (randn(2, 3), torch.tensor([0, 2])))(
         randn(2, 3), torch.tensor([0, 5]), randn(())), InputError, "out of bounds"),
    ("backward: a parameter replaced by one of another shape", lambda: reassigned_after_derive(randn(2, 4)),
     ParameterError, "shape (2, 4)"),
    ("backward: a parameter replaced by one of another dtype", lambda: reassigned_after_derive(torch.randn(2, 3)),
     ParameterError, "torch.float32"),
    # fxgrad.function and its result
    ("function: example_inputs a tensor", lambda: fxgrad.function(torch.tanh, randn(3)), InputError, "tuple"),
    ("function: an unknown keyword", lambda: function_of_product()(randn(3), randn(3), z=randn(3)), InputError, "keyword"),
    ("function: too few arguments", lambda: function_of_product()(randn(3)), InputError, "2"),
    ("function: a string argument", lambda: function_of_product()(randn(3), "y"), InputError, "tensor"),
    ("function: a list for a tensor", lambda: function_of_product()(randn(3), [randn(3)]), InputError,
     "`y` is a list, not a tensor"),
]


@pytest.mark.filterwarnings("ignore:The PyTorch API of nested tensors")
@pytest.mark.parametrize("call, error, text", [row[1:] for row in BAD_CALLS], ids=[row[0] for row in BAD_CALLS])
def test_bad_input_is_an_fxgrad_error(call, error, text):
    assert issubclass(error, FxgradError)
    with pytest.raises(FxgradError) as info:
        call()
    assert isinstance(info.value, error), f"{type(info.value).__name__}: {info.value}"
    assert text in str(info.value)
