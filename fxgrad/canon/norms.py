"""Statistics (variance, standard deviation, logsumexp) and normalisations (layer, RMS, group and
batch norm), each one canonical op with a closed-form backward."""

import torch
import torch.nn.functional as F

from ..graph import value
from ..shapes import last_dims
from .reduction import reduction_dims, vector_norm
from .registry import aten, call, define, emit, given, lowers, sizes, static_dim


def _write_moment(name: str):
    """`input.var(dim, correction=0, keepdim=True)`, leaving out what is torch's default."""
    def write(input, dim, correction, keepdim):
        options = {} if correction == 1 else {"correction": correction}
        if keepdim:
            options["keepdim"] = True
        return getattr(input, name)(*(() if dim is None else (dim,)), **options)

    return write


define({
    # dim: as for torch.sum; correction: the N - correction the squared deviations are divided by
    torch.var: _write_moment("var"),
    torch.std: _write_moment("std"),
    torch.logsumexp: lambda input, dim, keepdim: (input.logsumexp(dim, keepdim=True) if keepdim
                                                  else input.logsumexp(dim)),
    F.layer_norm: lambda input, normalized_shape, weight, bias, eps: call(
        F.layer_norm, input, normalized_shape, **given(weight=weight, bias=bias), eps=eps),
    # eps: torch's default, the input dtype's machine epsilon, is left out
    F.rms_norm: lambda input, normalized_shape, weight, eps: call(
        F.rms_norm, input, normalized_shape,
        **given(weight=weight, eps=None if eps == torch.finfo(value(input).dtype).eps else eps)),
    F.group_norm: lambda input, num_groups, weight, bias, eps: call(
        F.group_norm, input, num_groups, **given(weight=weight, bias=bias), eps=eps),
    # running_mean and running_var None: normalised by the batch's statistics (training mode)
    F.batch_norm: lambda input, running_mean, running_var, weight, bias, eps: call(
        F.batch_norm, input, running_mean, running_var, **given(weight=weight, bias=bias),
        **({"training": True} if running_mean is None else {}), eps=eps),
})


def _moment_arguments(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """(dim, correction, keepdim) of every spelling: `var(x, dim, unbiased, keepdim)`,
    `var(x, unbiased)`, `var(x, dim, correction=0, keepdim=True)`."""
    if isinstance(dim, bool):  # var(x, False): the bool is `unbiased`
        dim, unbiased = None, dim
    if correction is None:
        correction = 0 if unbiased is False else 1
    dim, keepdim = reduction_dims(input, dim, keepdim)
    return dim, correction, keepdim


@lowers(torch.var, "Tensor.var", aten.var)
def _var(input, *args, **kwargs):
    return emit(torch.var, input, *_moment_arguments(input, *args, **kwargs))


@lowers(torch.std, "Tensor.std", aten.std)
def _std(input, *args, **kwargs):
    return emit(torch.std, input, *_moment_arguments(input, *args, **kwargs))


@lowers(torch.var_mean, aten.var_mean)
def _var_mean(input, *args, **kwargs):
    dim, correction, keepdim = _moment_arguments(input, *args, **kwargs)
    return emit(torch.var, input, dim, correction, keepdim), emit(torch.mean, input, dim, keepdim)


@lowers(torch.std_mean, aten.std_mean)
def _std_mean(input, *args, **kwargs):
    dim, correction, keepdim = _moment_arguments(input, *args, **kwargs)
    return emit(torch.std, input, dim, correction, keepdim), emit(torch.mean, input, dim, keepdim)


@lowers(torch.logsumexp, "Tensor.logsumexp", aten.logsumexp)
def _logsumexp(input, dim, keepdim=False):
    dim = static_dim(dim)
    if dim == ():  # every dim
        dim = tuple(range(value(input).ndim))
    return emit(torch.logsumexp, input, dim, keepdim)


def _moments(input, dims, eps, keepdim):
    """The mean and the reciprocal standard deviation (biased) over `dims`: what the ATen
    normalisations also return, for their backward."""
    mean = emit(torch.mean, input, dims, keepdim)
    return mean, emit(torch.rsqrt, emit(torch.add, emit(torch.var, input, dims, 0, keepdim), eps))


@lowers(F.layer_norm)
def _layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-05):
    return emit(F.layer_norm, input, sizes((normalized_shape,)), weight, bias, eps)


@lowers(aten.layer_norm)
def _aten_layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-05, cudnn_enable=True):
    return _layer_norm(input, normalized_shape, weight, bias, eps)


@lowers(aten.native_layer_norm)
def _native_layer_norm(input, normalized_shape, weight, bias, eps):
    # (autograd does not differentiate the statistics: they are constants)
    return _layer_norm(input, normalized_shape, weight, bias, eps), *_moments(
        emit(torch.detach, input), last_dims(len(normalized_shape)), eps, keepdim=True)


@lowers(F.rms_norm, aten.rms_norm)
def _rms_norm(input, normalized_shape, weight=None, eps=None):
    if eps is None:  # torch's default: the epsilon of the type it computes in, float32 for half types
        eps = torch.finfo(torch.promote_types(value(input).dtype, torch.float32)).eps
    return emit(F.rms_norm, input, sizes((normalized_shape,)), weight, eps)


@lowers(F.group_norm)
def _group_norm(input, num_groups, weight=None, bias=None, eps=1e-05):
    return emit(F.group_norm, input, num_groups, weight, bias, eps)


@lowers(aten.group_norm)
def _aten_group_norm(input, num_groups, weight=None, bias=None, eps=1e-05, cudnn_enabled=True):
    return _group_norm(input, num_groups, weight, bias, eps)


@lowers(aten.native_group_norm)
def _native_group_norm(input, weight, bias, N, C, HxW, group, eps):
    groups = emit(torch.reshape, input, (N, group, -1))
    return _group_norm(input, group, weight, bias, eps), *_moments(groups, -1, eps, keepdim=False)


@lowers(F.batch_norm)
def _batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1,
                eps=1e-05):
    if training:  # normalised by the batch's statistics; their running averages, updated in place,
        if running_mean is not None:  # are no part of the value or the gradient: a state update
            _update_running_statistics(input, running_mean, running_var, momentum)
        running_mean = running_var = None
    return emit(F.batch_norm, input, running_mean, running_var, weight, bias, eps)


def _update_running_statistics(input, running_mean, running_var, momentum: float) -> None:
    """Batch norm's running averages after this batch, as torch updates them in training (the
    variance unbiased): new values of the buffers, which `fxgrad.function`'s forward writes."""
    batch = emit(torch.detach, input)
    channels = (0, *range(2, value(input).ndim))
    mean, var = batch.mean(channels), batch.var(channels, correction=1)
    builder = input.tracer
    for buffer, batch_value in ((running_mean, mean), (running_var, var)):
        builder.update_state(buffer, builder.current_state(buffer) * (1 - momentum) + batch_value * momentum)


def running_statistics(module: torch.nn.Module) -> set[int]:
    """Where the buffers that torch's batch norm modules update in training live (running mean
    and variance, the count of batches): changing them touches no value the gradient reads."""
    return {buffer.untyped_storage().data_ptr() for submodule in module.modules()
            if isinstance(submodule, torch.nn.modules.batchnorm._BatchNorm) for buffer in submodule.buffers()}


@lowers(aten.batch_norm)
def _aten_batch_norm(input, weight, bias, running_mean, running_var, training, momentum, eps, cudnn_enabled):
    return _batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps)


@lowers(aten.native_batch_norm)
def _native_batch_norm(input, weight, bias, running_mean, running_var, training, momentum, eps):
    out = _batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps)
    if not training:  # (torch returns empty tensors for the statistics, which nothing reads)
        return out, None, None
    channels = (0, *range(2, value(input).ndim))
    # (autograd does not differentiate the statistics: they are constants)
    return out, *_moments(emit(torch.detach, input), channels, eps, keepdim=False)


@lowers(aten._native_batch_norm_legit)
def _native_batch_norm_legit(input, weight, bias, *args):
    # (input, weight, bias, running_mean, running_var, training, momentum, eps), or, in the form
    # `no_stats`, without the running statistics; they are updated as native_batch_norm's are
    running_mean, running_var = args[:2] if len(args) == 5 else (None, None)
    training, momentum, eps = args[-3:]
    return _native_batch_norm(input, weight, bias, running_mean, running_var, training, momentum, eps)


@lowers(aten._native_batch_norm_legit_no_training)
def _native_batch_norm_legit_no_training(input, weight, bias, running_mean, running_var, momentum, eps):
    return _native_batch_norm(input, weight, bias, running_mean, running_var, False, momentum, eps)


@lowers(F.normalize)
def _normalize(input, p=2.0, dim=1, eps=1e-12, out=None):
    # x / max(‖x‖ₚ, eps) along dim, as torch writes it
    norm = vector_norm(input, p, dim, True)
    return emit(torch.div, input, emit(torch.clamp, norm, eps, None))
