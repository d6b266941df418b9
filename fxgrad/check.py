"""`fxgrad.check(fn, my_backward, inputs)`: a hand-written backward against the derived one.

Both are called the same way, `backward(*inputs, *grad_outputs)`, on random draws of the
inputs and incoming gradients. A gradient that disagrees is then tried with one incoming
gradient at a time (the others zero): a backward is linear in its incoming gradients, so the
ones whose share is wrong are found exactly — the forgotten `grad_a +` of a value used twice
reads "wrong when grad_a ≠ 0". The derived statements computing each wrong gradient follow.
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch
import torch.utils._pytree as pytree

from .api import Backward, derive
from .errors import FxgradError, InputError, described

# how far apart two gradients may be and still agree, per dtype: torch.testing's defaults
_TOLERANCES = {torch.float64: (1e-7, 1e-7), torch.float32: (1.3e-6, 1e-5), torch.float16: (1e-3, 1e-5),
               torch.bfloat16: (1.6e-2, 1e-5)}
# ... and, unless the caller sets a tolerance, this many units of rounding of the gradient's largest
# element: a matmul or a sum rounds each term at that scale, so two correct backwards computed in
# different orders (one in float64 and cast, one in float16) differ by that much near zero
_ROUNDINGS = 10


@dataclass
class GradientCheck:
    """One gradient: whether the hand-written one agrees, by how much it misses, and with which
    incoming gradients it goes wrong."""

    name: str
    ok: bool
    max_error: float | None = None  # None where the values cannot be compared (a shape, a None)
    problem: str | None = None  # why it is wrong, where not only in value
    wrong_when: list[str] = field(default_factory=list)  # the incoming gradients whose share is wrong
    checked: bool = True  # False where the derived gradient had no finite value to compare with

    def line(self, width: int) -> str:
        if self.ok:
            return f"  {self.name:<{width}}  ok     max error {self.max_error:.1e}"
        text = f"  {self.name:<{width}}  {'wrong' if self.checked else 'not checked'}"
        if self.max_error is not None:
            text += f"  max error {self.max_error:.1e}"
        if self.problem:
            text += f"  {self.problem}"
        if self.wrong_when:
            text += "  wrong when " + " and ".join(f"{g} ≠ 0" for g in self.wrong_when)
        return text


@dataclass
class CheckResult:
    """What `fxgrad.check` found: truthy when every gradient agrees; `str()` is the report."""

    function: str
    backward: str
    draws: int
    gradients: list[GradientCheck]
    derived: Backward
    error: str | None = None  # the hand-written backward could not be compared at all

    @property
    def ok(self) -> bool:
        return self.error is None and all(g.ok for g in self.gradients)

    def __bool__(self) -> bool:
        return self.ok

    @property
    def wrong(self) -> list[str]:
        return [g.name for g in self.gradients if not g.ok]

    def __str__(self) -> str:
        lines = [f"fxgrad.check: {self.backward} against the derived backward of {self.function}, "
                 f"on {self.draws} random draw{'s' if self.draws > 1 else ''}"]
        if self.error is not None:
            lines.append(f"  {self.error}")
        width = max((len(g.name) for g in self.gradients), default=0)
        lines += [g.line(width) for g in self.gradients]
        if self.wrong:
            lines.append(f"The derived {', '.join(self.wrong)}:")
            lines += ["    " + line for line in statements_computing(self.derived, self.wrong)]
        elif self.error is None:
            lines.append("All gradients agree.")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)


def check(fn: Callable, my_backward: Callable, example_inputs: Sequence[Any], kwargs: dict[str, Any] | None = None,
          *, draws: int = 2, seed: int = 0, rtol: float | None = None, atol: float | None = None,
          tracer: str = "auto", verbose: bool = True) -> CheckResult:
    """Check `my_backward` against the backward fxgrad derives for `fn`.

    `my_backward` is called as the derived one is (`fxgrad.derive`'s docstring):
    `my_backward(*inputs, *kwargs.values(), *grad_outputs)`, returning one gradient per entry of
    the derived `grad_names` (`None` for a zero one). Both run on `draws` random draws of the
    floating-point inputs (the shapes and dtypes of `example_inputs`, each between its example's
    smallest and largest value; integer tensors and constants kept) and of the incoming
    gradients, each given copies to write into as it likes. Each gradient is reported ok, or wrong with
    its largest error and the incoming gradients its error comes from, followed by the derived
    statements that compute each wrong one. The report is printed unless `verbose=False`; the
    result is truthy when all agree, so `assert fxgrad.check(...)` drops into a test.
    `rtol`/`atol` default to `torch.testing`'s for the inputs' dtype, with `atol` widened by ten
    units of rounding of the gradient's largest element (`torch.finfo(dtype).eps`), which two
    correct backwards summing in different orders reach in float16. A gradient that is NaN or
    infinite everywhere on the draws is reported "not checked", and the result is falsy.
    """
    if not callable(my_backward):
        raise InputError(f"fxgrad.check takes the hand-written backward as its second argument, a function; "
                         f"got {type(my_backward).__name__}")
    if isinstance(draws, bool) or not isinstance(draws, int) or draws < 1:
        raise InputError(f"fxgrad.check takes draws, the number of random draws to compare on, as a positive "
                         f"integer; got {draws!r}")
    derived = derive(fn, example_inputs, kwargs, tracer=tracer)
    kwargs = kwargs or {}
    g = torch.Generator().manual_seed(seed)
    found: dict[str, GradientCheck] = {name: GradientCheck(name, True, 0.0) for name in derived.grad_names}
    error = None
    for _ in range(draws):
        arguments = _drawn((*example_inputs, *kwargs.values()), g)
        grads = [_drawn_like(spec.shape, spec.dtype, g) for spec in derived.guards.grad_outputs]
        expected = derived(*arguments, *grads)
        mine, error = _call(my_backward, arguments, grads, len(expected))
        if error is not None:
            break
        for name, e, m in zip(derived.grad_names, expected, mine):
            _compare(found[name], e, m, rtol, atol)
        unblamed = [n for n in derived.grad_names if not found[n].ok and not found[n].wrong_when]
        for name, wrong_when in _blame(derived, my_backward, arguments, grads, unblamed, rtol, atol).items():
            found[name].wrong_when = wrong_when
    result = CheckResult(_name_of(fn), _name_of(my_backward), draws, list(found.values()), derived, error)
    if verbose:
        print(result)
    return result


def _name_of(fn: Callable) -> str:
    return getattr(fn, "__qualname__", None) or type(fn).__name__


def _drawn_like(shape, dtype: torch.dtype, g: torch.Generator) -> torch.Tensor:
    return torch.randn(shape, generator=g, dtype=torch.float64).to(dtype)


def _drawn(arguments: tuple, g: torch.Generator) -> tuple:
    """The arguments with each floating-point tensor drawn anew, uniformly between its example's
    smallest and largest value so that it stays in the function's domain (a positive input of a
    `log` stays positive, a probability in [0, 1]); an example of one value `c` gives draws
    between c/2 and 3c/2 (around 0: between −1 and 1). The rest as they are."""
    def draw(x):
        if not (isinstance(x, torch.Tensor) and x.is_floating_point()) or not x.numel():
            return x
        low, high = x.min().item(), x.max().item()
        if not (math.isfinite(low) and math.isfinite(high)):
            return _drawn_like(x.shape, x.dtype, g).to(x.device)
        if low == high:
            low, high = sorted((low / 2, low * 3 / 2)) if low else (-1.0, 1.0)
        uniform = torch.rand(x.shape, generator=g, dtype=torch.float64)
        return (low + (high - low) * uniform).to(x.dtype).to(x.device)
    return pytree.tree_map(draw, arguments)


def _call(my_backward: Callable, arguments: tuple, grads: list, n_expected: int):
    """The hand-written backward's gradients, or why they cannot be compared."""
    arguments, grads = pytree.tree_map(_copied, (arguments, grads))  # it may write into what it is given
    try:
        mine = my_backward(*arguments, *grads)
    except Exception as error:  # the user's own code failed: report it, as a test runner would
        return None, f"the hand-written backward raised {described(error)}"
    mine = (mine,) if isinstance(mine, torch.Tensor) or mine is None else tuple(mine)
    if len(mine) != n_expected:
        return None, (f"the hand-written backward returned {len(mine)} gradient{'s' if len(mine) != 1 else ''}; "
                      f"the derived one returns {n_expected}")
    return mine, None


def _copied(x):
    return x.clone() if isinstance(x, torch.Tensor) else x


def _tolerances(expected: torch.Tensor, rtol: float | None, atol: float | None) -> tuple[float, float]:
    default_rtol, default_atol = _TOLERANCES.get(expected.dtype, _TOLERANCES[torch.float32])
    if rtol is None and atol is None:
        finite = expected[expected.isfinite()]
        scale = finite.abs().max().item() if finite.numel() else 0.0
        default_atol += _ROUNDINGS * torch.finfo(expected.dtype).eps * scale
    return (default_rtol if rtol is None else rtol), (default_atol if atol is None else atol)


def _agreement(expected, mine, rtol, atol) -> tuple[bool | None, float | None, str | None]:
    """(agrees, largest error, what is wrong besides the values) of one gradient; `None` is zero.
    `agrees` is None where the derived gradient has no finite value to compare with; the largest
    error is NaN where one holds a NaN the other does not."""
    if mine is not None and not isinstance(mine, torch.Tensor):
        return False, None, f"is a {type(mine).__name__}, not a tensor"
    if expected is None and mine is None:
        return True, 0.0, None
    reference = expected if expected is not None else mine
    expected = torch.zeros_like(reference) if expected is None else expected
    mine = torch.zeros_like(reference) if mine is None else mine
    if mine.shape != expected.shape:
        problem = f"has shape {tuple(mine.shape)} where the input has {tuple(expected.shape)}"
        stretched = any(m != e and e == 1 for m, e in zip(mine.shape[::-1], expected.shape[::-1]))
        if mine.ndim > expected.ndim or stretched:
            problem += " (not summed over the dims it was broadcast along?)"
        return False, None, problem
    if not mine.numel():
        return True, 0.0, None
    if not expected.isfinite().any():
        return None, None, ("the derived gradient is NaN or infinite everywhere at the drawn inputs "
                            "(are they outside the function's domain?)")
    rtol, atol = _tolerances(expected, rtol, atol)
    mine64, expected64 = mine.double(), expected.double()
    same = (mine64 == expected64) | (mine64.isnan() & expected64.isnan())  # equal infinities, NaN at both
    error = torch.where(same, 0.0, (mine64 - expected64).abs()).max().item()
    close = torch.isclose(mine.to(expected.dtype), expected, rtol=rtol, atol=atol, equal_nan=True).all().item()
    return bool(close), error, None


def _compare(found: GradientCheck, expected, mine, rtol, atol) -> None:
    agrees, error, problem = _agreement(expected, mine, rtol, atol)
    found.ok = found.ok and bool(agrees)
    found.checked = found.checked and agrees is not None
    if error is not None and found.max_error is not None:
        found.max_error = error if math.isnan(error) else max(found.max_error, error)
    else:
        found.max_error = None
    found.problem = found.problem or problem


def _blame(derived: Backward, my_backward: Callable, arguments: tuple, grads: list, names: list[str],
           rtol, atol) -> dict[str, list[str]]:
    """For each gradient of `names`, the incoming gradients with which it goes wrong, each tried
    alone (both backwards run once per incoming gradient, for all the names at once)."""
    blamed: dict[str, list[str]] = {name: [] for name in names}
    if len(grads) == 1 or not names:  # nothing to tell apart
        return blamed
    for k, spec in enumerate(derived.guards.grad_outputs):
        only = [grad if i == k else torch.zeros_like(grad) for i, grad in enumerate(grads)]
        mine, error = _call(my_backward, arguments, only, len(derived.grad_names))
        if error is not None:
            return {name: [] for name in names}
        expected = derived(*arguments, *only)
        for name in names:
            index = derived.grad_names.index(name)
            if _agreement(expected[index], mine[index], rtol, atol)[0] is False:
                blamed[name].append(spec.name)
    return blamed


def statements_computing(bwd: Backward, names: Sequence[str]) -> list[str]:
    """The lines of `bwd.code` that the returned gradients `names` are computed by, in order."""
    function = next(node for node in ast.parse(bwd.code.strip()).body if isinstance(node, ast.FunctionDef))
    returned = function.body[-1]
    if not isinstance(returned, ast.Return) or returned.value is None:
        return []
    outputs = returned.value.elts if isinstance(returned.value, ast.Tuple) else [returned.value]
    by_gradient = dict(zip(bwd.grad_names, outputs))
    wanted = set()
    for name in names:
        wanted |= _names_in(by_gradient[name])
    lines = bwd.code.strip().splitlines()
    kept = []
    for statement in reversed(function.body[:-1]):
        assigned = {t.id for target in getattr(statement, "targets", []) for t in ast.walk(target)
                    if isinstance(t, ast.Name)}
        if assigned & wanted:
            wanted |= _names_in(statement.value)
            kept.append(statement)
    return [line.strip() for statement in reversed(kept)
            for line in lines[statement.lineno - 1:statement.end_lineno]]


def _names_in(tree: ast.AST) -> set[str]:
    return {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
