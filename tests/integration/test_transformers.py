"""Whole HF transformers models, built from small configs (no weights are downloaded), derived
as a user calls them: through `inputs_embeds` by keyword, and a causal LM through `input_ids`
and `labels` to `.loss`; the gradients of the inputs and of every parameter against autograd
in float64 (to float32 rounding where the model computes in float32), on two draws."""

import time

import pytest
import torch
import torch.utils._pytree as pytree

import fxgrad

transformers = pytest.importorskip("transformers")

B, T, HIDDEN, VOCAB = 2, 6, 64, 128
SMALL = dict(vocab_size=VOCAB, hidden_size=HIDDEN, num_hidden_layers=2, num_attention_heads=4,
             intermediate_size=128, max_position_embeddings=64)
FLOAT64 = dict(rtol=1e-9, atol=1e-10)
# RMSNorm and T5's layer norm compute in float32 whatever the model's dtype (`.to(torch.float32)`
# in their forward), and so does a causal LM's loss (`logits.float()`): there the derived
# backward and autograd's agree to float32 rounding.
FLOAT32_INSIDE = dict(rtol=1e-5, atol=1e-6)


def gpt2():
    return transformers.GPT2Config(n_layer=2, n_embd=HIDDEN, n_head=4, vocab_size=VOCAB, n_positions=64)


def llama():
    return transformers.LlamaConfig(**SMALL, num_key_value_heads=2)


def mistral():
    return transformers.MistralConfig(**SMALL, num_key_value_heads=2)


def qwen2():
    return transformers.Qwen2Config(**SMALL, num_key_value_heads=2)


def bert():
    return transformers.BertConfig(**SMALL)


def gemma():
    return transformers.GemmaConfig(**SMALL, num_key_value_heads=2, head_dim=16)


def roberta():
    return transformers.RobertaConfig(**SMALL)


def phi():
    return transformers.PhiConfig(**SMALL)


def distilbert():
    return transformers.DistilBertConfig(vocab_size=VOCAB, dim=HIDDEN, n_layers=2, n_heads=4, hidden_dim=128,
                                         max_position_embeddings=64)


def t5():
    return transformers.T5Config(vocab_size=VOCAB, d_model=HIDDEN, d_kv=16, d_ff=128, num_layers=2, num_heads=4)


def bart():
    return transformers.BartConfig(vocab_size=VOCAB, d_model=HIDDEN, encoder_layers=2, decoder_layers=2,
                                   encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=128,
                                   decoder_ffn_dim=128, max_position_embeddings=64)


def vit():
    return transformers.ViTConfig(**SMALL, image_size=32, patch_size=8)


def clip_vision():
    return transformers.CLIPVisionConfig(hidden_size=HIDDEN, intermediate_size=128, num_hidden_layers=2,
                                         num_attention_heads=4, image_size=32, patch_size=8)


def t5_generation():  # its decoder's inputs are the labels shifted right, by item assignment
    return transformers.T5Config(vocab_size=VOCAB, d_model=HIDDEN, d_kv=16, d_ff=128, num_layers=2, num_heads=4,
                                 decoder_start_token_id=0, pad_token_id=0)


def bloom():  # attention scores by baddbmm, with ALiBi
    return transformers.BloomConfig(vocab_size=VOCAB, hidden_size=HIDDEN, n_layer=2, n_head=4)


def deberta():  # disentangled relative attention
    return transformers.DebertaV2Config(**SMALL)


def mixtral(experts="batched_mm"):
    # experts="batched_mm": every token through its top-2 experts' weights, gathered by the router's
    # indices, one graph for every routing; the default (grouped_mm) is a custom op, the eager one a
    # loop over the experts hit (below)
    return transformers.MixtralConfig(**SMALL, num_key_value_heads=2, num_local_experts=4, num_experts_per_tok=2,
                                      experts_implementation=experts)


def model_of(config, attention, cls):
    config.use_cache = False
    config._attn_implementation = attention
    torch.manual_seed(0)
    return cls(config).double().eval()


def derive(model, kwargs):
    start = time.perf_counter()
    bwd = fxgrad.derive(model, (), kwargs)
    print(f"{type(model).__name__}: derived in {time.perf_counter() - start:.1f} s")
    return bwd


def check(bwd, model, kwargs, seed, tolerance):
    """The derived backward of `model(**kwargs)` against autograd: every floating argument's
    gradient and every parameter's, with a random incoming gradient for each tensor output."""
    leaves = {k: v.detach().clone().requires_grad_(v.is_floating_point()) for k, v in kwargs.items()}
    outputs = [out for out in pytree.tree_leaves(model(**leaves)) if isinstance(out, torch.Tensor)]
    g = torch.Generator().manual_seed(seed)
    grads = [torch.randn(out.shape, generator=g, dtype=out.dtype) for out in outputs]
    wanted = [x for x in leaves.values() if x.requires_grad] + list(model.parameters())
    expected = torch.autograd.grad(outputs, wanted, grads, allow_unused=True, materialize_grads=True)
    derived = bwd(*kwargs.values(), *grads)
    names = [n for n, x in zip(bwd.grad_names, leaves.values()) if x.requires_grad] + bwd.grad_names[len(kwargs):]
    derived = [d for d, x in zip(derived, leaves.values()) if x.requires_grad] + list(derived[len(kwargs):])
    assert len(derived) == len(expected) == len(names)
    for name, d, e in zip(names, derived, expected):
        torch.testing.assert_close(d, e, **tolerance, msg=lambda m: f"{name}: {m}")


def draws(shapes, seed):
    g = torch.Generator().manual_seed(seed)
    return {name: torch.randn(shape, generator=g, dtype=torch.float64) for name, shape in shapes.items()}


EMBEDS = {"inputs_embeds": (B, T, HIDDEN)}
ENCODER_DECODER_EMBEDS = {**EMBEDS, "decoder_inputs_embeds": (B, T, HIDDEN)}
PIXELS = {"pixel_values": (B, 3, 32, 32)}
# Eager attention where a model's eager path is its own, since eager everywhere doubles the time:
# that of Mistral, Qwen2, Mixtral, Phi and Gemma is Llama's (`eager_attention_forward`, one code),
# RoBERTa's BERT's, CLIP's ViT's, and a causal LM's its base model's.
EAGER_AND_SDPA, SDPA, EAGER = ("eager", "sdpa"), ("sdpa",), ("eager",)
# the eager attention of Llama and ViT computes its probabilities in float32
# (softmax(..., dtype=torch.float32)) whatever the model's dtype
SOFTMAX_IN_FLOAT32 = {"llama", "vit"}


def tolerance_of(name, attention, tolerance):
    return FLOAT32_INSIDE if attention == "eager" and name in SOFTMAX_IN_FLOAT32 else tolerance


BASE_MODELS = {  # config, model class, its floating arguments, the attentions, the tolerance
    "gpt2": (gpt2, "GPT2Model", EMBEDS, EAGER_AND_SDPA, FLOAT64),
    "llama": (llama, "LlamaModel", EMBEDS, EAGER_AND_SDPA, FLOAT32_INSIDE),
    "bert": (bert, "BertModel", EMBEDS, EAGER_AND_SDPA, FLOAT64),
    "mistral": (mistral, "MistralModel", EMBEDS, SDPA, FLOAT32_INSIDE),
    "qwen2": (qwen2, "Qwen2Model", EMBEDS, SDPA, FLOAT32_INSIDE),
    "phi": (phi, "PhiModel", EMBEDS, SDPA, FLOAT64),
    "gemma": (gemma, "GemmaModel", EMBEDS, SDPA, FLOAT32_INSIDE),
    "roberta": (roberta, "RobertaModel", EMBEDS, SDPA, FLOAT64),
    "distilbert": (distilbert, "DistilBertModel", EMBEDS, EAGER_AND_SDPA, FLOAT64),
    "t5": (t5, "T5EncoderModel", EMBEDS, EAGER_AND_SDPA, FLOAT32_INSIDE),
    "bart": (bart, "BartModel", ENCODER_DECODER_EMBEDS, EAGER_AND_SDPA, FLOAT64),
    "vit": (vit, "ViTModel", PIXELS, EAGER_AND_SDPA, FLOAT64),
    "clip_vision": (clip_vision, "CLIPVisionModel", PIXELS, SDPA, FLOAT64),
    # the two draws route their tokens to other experts
    "mixtral": (mixtral, "MixtralModel", EMBEDS, SDPA, FLOAT32_INSIDE),
    # attention of their own
    "bloom": (bloom, "BloomModel", EMBEDS, EAGER, FLOAT64),
    "deberta": (deberta, "DebertaV2Model", EMBEDS, EAGER, FLOAT64),
}


@pytest.mark.parametrize("name, attention", [(name, attention) for name, (*_, attentions, _) in BASE_MODELS.items()
                                             for attention in attentions])
def test_base_model(name, attention):
    config, cls, shapes, _, tolerance = BASE_MODELS[name]
    model = model_of(config(), attention, getattr(transformers, cls))
    bwd = derive(model, draws(shapes, 0))
    for seed in (0, 1):
        check(bwd, model, draws(shapes, seed), seed, tolerance_of(name, attention, tolerance))


CAUSAL_LMS = {
    "gpt2": (gpt2, "GPT2LMHeadModel", SDPA),
    "llama": (llama, "LlamaForCausalLM", SDPA),
    "mistral": (mistral, "MistralForCausalLM", SDPA),
    "qwen2": (qwen2, "Qwen2ForCausalLM", SDPA),
    "phi": (phi, "PhiForCausalLM", SDPA),
    "mixtral": (mixtral, "MixtralForCausalLM", SDPA),
    "t5": (t5_generation, "T5ForConditionalGeneration", SDPA),  # (sequence to sequence)
}


def token_ids(seed):
    ids = torch.randint(0, VOCAB, (B, T), generator=torch.Generator().manual_seed(seed))
    return {"input_ids": ids, "labels": ids}


@pytest.mark.parametrize("name, attention", [(name, attention) for name, (*_, attentions) in CAUSAL_LMS.items()
                                             for attention in attentions])
def test_causal_lm_loss(name, attention):
    config, cls, _ = CAUSAL_LMS[name]
    model = model_of(config(), attention, getattr(transformers, cls))
    bwd = derive(model, token_ids(0))
    for seed in (0, 1):
        check(bwd, model, token_ids(seed), seed, FLOAT32_INSIDE)


def moe_block(experts):
    return model_of(mixtral(experts), "sdpa", transformers.MixtralModel).layers[0].mlp


def test_mixtral_expert_loop_refused():
    """The eager experts loop over the experts the router hits (`expert_hit = ....nonzero()`): a
    graph of one routing would be wrong for another, so it is refused at that line."""
    with pytest.raises(fxgrad.TraceError, match="for expert_idx in expert_hit"):
        fxgrad.derive(moe_block("eager"), (draws(EMBEDS, 0)["inputs_embeds"],))


def test_mixtral_grouped_experts_refused():
    """The default experts run as the custom op `transformers::grouped_mm_fallback`, which has no rule."""
    with pytest.raises(fxgrad.UnsupportedOpError, match="grouped_mm_fallback"):
        fxgrad.derive(moe_block(None), (draws(EMBEDS, 0)["inputs_embeds"],))


DEFAULT_CACHE = [(gpt2, "GPT2Model", FLOAT64), (llama, "LlamaModel", FLOAT32_INSIDE)]


@pytest.mark.parametrize("config, cls, _", DEFAULT_CACHE)
def test_default_use_cache_refused(config, cls, _):
    """Called as users do, with the config's default use_cache=True, a model returns its cache of
    keys and values, a DynamicCache, which pytree does not take apart: refused, naming the model
    and what to do."""
    torch.manual_seed(0)
    model = getattr(transformers, cls)(config()).double().eval()
    with pytest.raises(fxgrad.OutputError, match=f"`{cls}` returns a DynamicCache.*pass use_cache=False"):
        fxgrad.derive(model, (), draws(EMBEDS, 0))


@pytest.fixture
def cache_as_pytree():
    """DynamicCache registered with pytree by transformers (as for torch.export), for one test."""
    from transformers.cache_utils import DynamicCache
    from transformers.integrations.executorch import register_dynamic_cache_export_support

    register_dynamic_cache_export_support()
    yield
    pytree._deregister_pytree_node(DynamicCache)
    torch.fx._pytree._deregister_pytree_flatten_spec(DynamicCache)


@pytest.mark.parametrize("config, cls, tolerance", DEFAULT_CACHE)
def test_default_use_cache_with_the_cache_registered(config, cls, tolerance, cache_as_pytree):
    """With the cache registered, its keys and values are outputs like the others: each gets an
    incoming gradient (its layers' keys and values start as empty tensors that torch.cat skips)."""
    torch.manual_seed(0)
    model = getattr(transformers, cls)(config()).double().eval()
    bwd = derive(model, draws(EMBEDS, 0))
    for seed in (0, 1):
        check(bwd, model, draws(EMBEDS, seed), seed, tolerance)
