"""Shapes in the user's symbols: example tensors made from symbolic dims, and sizes read back.

`shaped(q="S d", k="S d", v="S D")` makes example tensors whose every symbol has a size of its
own, a distinct prime from 5 on (S = 5, d = 7, D = 11 here, in order of first use; a number in
the spec is that size), and remembers the symbol of each of their dims. `derive` reads the
symbols back (`symbols_of`) and, with the sizes the user names in `dims=`, makes a `Dims`: the
printer's way of writing a shape (`S×d`). A size that is no symbol's is written as a product or
a sum of symbols where exactly one reads to it (`S*d` after a reshape: products of distinct
primes factor one way), else as its number.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils import _pytree as pytree
from torch.utils.weak import WeakIdKeyDictionary

from .errors import InputError

# Sizes for symbols: primes, so that products of them factor one way; from 5 on, past the
# small sizes code writes as numbers (`split(2)`, `view(-1, 3)`).
PRIMES = (5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61)

# the symbol (or None, for a number) of each dim of each tensor `shaped` made
_SYMBOLS: WeakIdKeyDictionary = WeakIdKeyDictionary()


def shaped(*, dtype: torch.dtype = torch.float64, seed: int = 0, **specs: str) -> tuple[torch.Tensor, ...]:
    """Example tensors, one per keyword in order, of the symbolic shapes given (`"S d"`, `"B,S,d"`,
    `"1 d"`), drawn from a standard normal (`seed`). Each symbol gets a size of its own (`PRIMES`),
    so a derived backward can print every shape in the symbols (`derive` reads them back)."""
    generator = torch.Generator().manual_seed(seed)
    tensors = []
    for shape, dims in shapes(**specs).values():
        tensor = torch.randn(shape, generator=generator, dtype=dtype)
        _SYMBOLS[tensor] = tuple(dim if isinstance(dim, str) else None for dim in dims)
        tensors.append(tensor)
    return tuple(tensors)


def shapes(**specs: str) -> dict[str, tuple[tuple[int, ...], list[str | int]]]:
    """The shape `shaped` makes for each spec, with its dims as parsed (symbols and numbers)."""
    if not specs:
        raise InputError('fxgrad.shaped takes one keyword per tensor, its dims as a string: shaped(q="S d")')
    parsed = {name: _parse(name, spec) for name, spec in specs.items()}
    numbers = {dim for dims in parsed.values() for dim in dims if isinstance(dim, int)}
    symbols = list(dict.fromkeys(dim for dims in parsed.values() for dim in dims if isinstance(dim, str)))
    primes = [p for p in PRIMES if p not in numbers]
    if len(symbols) > len(primes):
        raise InputError(f"fxgrad.shaped gives sizes to at most {len(primes)} symbols; these are {len(symbols)}")
    sizes = dict(zip(symbols, primes))
    return {name: (tuple(sizes[dim] if isinstance(dim, str) else dim for dim in dims), dims)
            for name, dims in parsed.items()}


def _parse(name: str, spec: Any) -> list[str | int]:
    if not isinstance(spec, str):
        raise InputError(f'fxgrad.shaped: {name}={spec!r}: give the dims as a string, such as {name}="S d"')
    dims: list[str | int] = []
    for token in re.split(r"[\s,×]+", spec.strip()):
        if re.fullmatch(r"[A-Za-z_]\w*", token) and not token.startswith("__"):
            dims.append(token)
        elif re.fullmatch(r"\d+", token) and int(token) > 0:
            dims.append(int(token))
        elif token:
            raise InputError(f"fxgrad.shaped: {name}={spec!r}: `{token}` is neither a symbol (a name) nor a size")
    return dims


def symbols_of(tensor: Any) -> tuple[str | None, ...] | None:
    """The symbol of each dim of a tensor `shaped` made (None for a number), else None."""
    return _SYMBOLS.get(tensor) if isinstance(tensor, torch.Tensor) else None


def dims_for(example: Any, dims: dict[str, int] | None) -> "Dims | None":
    """The symbols of the sizes of `example` (anything pytree takes apart) that `shaped` made,
    with those `dims` names: None where there are neither (shapes are then not printed)."""
    found: dict[str, tuple[int, str]] = {}  # symbol -> (size, where it was read)
    for name, size in (dims or {}).items():
        if not isinstance(name, str) or not name.isidentifier():
            raise InputError(f"dims names sizes by symbol, such as dims={{'S': 16}}; {name!r} is not a name")
        if not isinstance(size, int) or isinstance(size, bool) or size < 2:
            raise InputError(f"dims={{{name!r}: {size!r}}}: a symbol's size is a whole number of at least 2 "
                             "(1 is a broadcast size, printed as 1)")
        found[name] = (size, "dims")
    for i, leaf in enumerate(pytree.tree_leaves(example)):
        symbols = symbols_of(leaf)
        for symbol, size in zip(symbols, leaf.shape) if symbols is not None else ():
            if symbol is None:
                continue
            known = found.setdefault(symbol, (size, f"example tensor {i}"))
            if known[0] != size:
                raise InputError(f"the symbol {symbol} is {known[0]} in {known[1]} but {size} in example tensor {i}: "
                                 "make the example tensors with one fxgrad.shaped call")
    if dims is None and not found:
        return None
    by_size: dict[int, str] = {}
    for symbol, (size, _) in found.items():
        if size in by_size:
            raise InputError(f"the symbols {by_size[size]} and {symbol} are both {size}: give each symbol a size "
                             "of its own, so that a size reads back as one symbol")
        by_size[size] = symbol
    return Dims({symbol: size for symbol, (size, _) in found.items()})


@dataclass
class Dims:
    """The symbol of each size (`{"S": 5, "d": 7}`): writes shapes as `S×d`."""

    sizes: dict[str, int]

    def __post_init__(self) -> None:
        self._names = {size: symbol for symbol, size in self.sizes.items()}
        self._compound = _compound_names(self.sizes)

    def __getstate__(self) -> dict:
        return {"sizes": self.sizes}

    def __setstate__(self, state: dict) -> None:
        self.sizes = state["sizes"]
        self.__post_init__()

    def size(self, size: int) -> str:
        """A size in the symbols: `S`, `S*d`, `S+d`, or its number."""
        if size in self._names:
            return self._names[size]
        return self._compound.get(size, str(size))

    def shape(self, shape: torch.Size) -> str:
        """`S×d`; a compound size in brackets beside others (`B×(S*d)`); `scalar` for 0-d."""
        if not shape:
            return "scalar"
        texts = [self.size(int(s)) for s in shape]
        return "×".join(f"({t})" if len(shape) > 1 and not t.isidentifier() and not t.isdigit() else t
                        for t in texts)

    def __call__(self, val: Any) -> str | None:
        """The shape of a value (`node.meta["val"]`) as a comment writes it: a tensor's, the tensors'
        of a tuple; None for anything else (a size, a number)."""
        if isinstance(val, torch.Tensor):
            return self.shape(val.shape)
        if isinstance(val, (tuple, list)) and val and all(isinstance(v, torch.Tensor) for v in val):
            return f"({', '.join(self.shape(v.shape) for v in val)})"
        return None


def _compound_names(sizes: dict[str, int]) -> dict[int, str]:
    """Each size that exactly one product of two or three symbols, or sum of two, reads to."""
    readings: dict[int, set[str]] = {}
    symbols = sorted(sizes, key=lambda s: (sizes[s], s))
    for n in (2, 3):
        for factors in itertools.combinations_with_replacement(symbols, n):
            value = 1
            for factor in factors:
                value *= sizes[factor]
            readings.setdefault(value, set()).add("*".join(factors))
    for a, b in itertools.combinations(symbols, 2):
        readings.setdefault(sizes[a] + sizes[b], set()).add(f"{a}+{b}")
    return {value: names.pop() for value, names in readings.items()
            if len(names) == 1 and value not in sizes.values()}
