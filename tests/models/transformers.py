"""Transformer pieces: nanoGPT, GPT-2, Llama, BERT, T5."""

import math

import torch
import torch.nn.functional as F

from .registry import model, randn, targets

B, T, C, H = 2, 5, 8, 2  # batch, sequence, channels, heads


def _weights(g, n_in, n_out):
    return randn(g, n_out, n_in, scale=n_in**-0.5), randn(g, n_out, scale=0.1)


@model("nanoGPT model.py: CausalSelfAttention")
def nanogpt_attention(x, c_attn_w, c_attn_b, c_proj_w, c_proj_b):
    B, T, C = x.size()
    q, k, v = F.linear(x, c_attn_w, c_attn_b).split(C, dim=2)
    k = k.view(B, T, H, C // H).transpose(1, 2)
    q = q.view(B, T, H, C // H).transpose(1, 2)
    v = v.view(B, T, H, C // H).transpose(1, 2)
    att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
    mask = torch.tril(torch.ones(T, T)).view(1, 1, T, T)
    att = att.masked_fill(mask[:, :, :T, :T] == 0, float("-inf"))
    att = F.softmax(att, dim=-1)
    y = att @ v
    y = y.transpose(1, 2).contiguous().view(B, T, C)
    return F.linear(y, c_proj_w, c_proj_b)


nanogpt_attention.inputs = lambda g: (randn(g, B, T, C), *_weights(g, C, 3 * C), *_weights(g, C, C))


@model("nanoGPT model.py: MLP")
def nanogpt_mlp(x, c_fc_w, c_fc_b, c_proj_w, c_proj_b):
    return F.linear(F.gelu(F.linear(x, c_fc_w, c_fc_b)), c_proj_w, c_proj_b)


nanogpt_mlp.inputs = lambda g: (randn(g, B, T, C), *_weights(g, C, 4 * C), *_weights(g, 4 * C, C))


@model("nanoGPT model.py: Block (LayerNorm, attention, MLP, residuals)")
def nanogpt_block(x, ln1_w, ln1_b, c_attn_w, c_attn_b, attn_proj_w, attn_proj_b, ln2_w, ln2_b,
                  c_fc_w, c_fc_b, mlp_proj_w, mlp_proj_b):
    x = x + nanogpt_attention(F.layer_norm(x, (C,), ln1_w, ln1_b), c_attn_w, c_attn_b, attn_proj_w, attn_proj_b)
    x = x + nanogpt_mlp(F.layer_norm(x, (C,), ln2_w, ln2_b), c_fc_w, c_fc_b, mlp_proj_w, mlp_proj_b)
    return x


nanogpt_block.inputs = lambda g: (
    randn(g, B, T, C), 1 + randn(g, C, scale=0.1), randn(g, C, scale=0.1), *_weights(g, C, 3 * C),
    *_weights(g, C, C), 1 + randn(g, C, scale=0.1), randn(g, C, scale=0.1), *_weights(g, C, 4 * C),
    *_weights(g, 4 * C, C))


@model("nanoGPT model.py: GPT.forward head and loss")
def nanogpt_loss(x, ln_f_w, ln_f_b, wte, targets_):
    logits = F.linear(F.layer_norm(x, (C,), ln_f_w, ln_f_b), wte)  # weight tying: the embedding matrix
    return F.cross_entropy(logits.view(-1, logits.size(-1)), targets_.view(-1), ignore_index=-1)


def _loss_inputs(g):
    t = targets(g, 11, B, T)
    t[0, 0] = -1  # an ignored position
    return randn(g, B, T, C), 1 + randn(g, C, scale=0.1), randn(g, C, scale=0.1), randn(g, 11, C), t


nanogpt_loss.inputs = _loss_inputs


@model("nanoGPT model.py: token and position embeddings")
def nanogpt_embeddings(idx, wte, wpe):
    t = idx.size(1)
    pos = torch.arange(0, t, dtype=torch.long)
    return F.embedding(idx, wte) + F.embedding(pos, wpe)


nanogpt_embeddings.inputs = lambda g: (targets(g, 11, B, T), randn(g, 11, C), randn(g, T, C))


@model("HF transformers GPT-2: Conv1D and GPT2Attention")
def gpt2_attention(x, c_attn_w, c_attn_b, c_proj_w, c_proj_b):
    def conv1d(x, w, b):  # GPT-2's Conv1D: a linear layer with the weight transposed
        size_out = x.size()[:-1] + (w.size(-1),)
        return torch.addmm(b, x.view(-1, x.size(-1)), w).view(size_out)

    def split_heads(t):
        return t.view(t.size()[:-1] + (H, t.size(-1) // H)).permute(0, 2, 1, 3)

    query, key, value = conv1d(x, c_attn_w, c_attn_b).split(C, dim=2)
    query, key, value = split_heads(query), split_heads(key), split_heads(value)
    attn_weights = torch.matmul(query, key.transpose(-1, -2)) / (value.size(-1) ** 0.5)
    causal_mask = torch.tril(torch.ones(T, T, dtype=torch.bool)).view(1, 1, T, T)
    mask_value = torch.finfo(attn_weights.dtype).min
    attn_weights = torch.where(causal_mask, attn_weights, torch.full([], mask_value, dtype=attn_weights.dtype))
    attn_output = torch.matmul(attn_weights.softmax(dim=-1), value)
    attn_output = attn_output.permute(0, 2, 1, 3).contiguous().view(B, T, C)
    return conv1d(attn_output, c_proj_w, c_proj_b)


gpt2_attention.inputs = lambda g: (randn(g, B, T, C), randn(g, C, 3 * C, scale=0.3), randn(g, 3 * C, scale=0.1),
                                   randn(g, C, C, scale=0.3), randn(g, C, scale=0.1))


@model("Llama modeling_llama.py: LlamaRMSNorm")
def llama_rmsnorm(hidden_states, weight):
    variance = hidden_states.pow(2).mean(-1, keepdim=True)
    hidden_states = hidden_states * torch.rsqrt(variance + 1e-6)
    return weight * hidden_states


llama_rmsnorm.inputs = lambda g: (randn(g, B, T, C), 1 + randn(g, C, scale=0.1))


@model("Llama modeling_llama.py: LlamaMLP (SwiGLU)")
def llama_swiglu(x, gate_proj, up_proj, down_proj):
    return F.linear(F.silu(F.linear(x, gate_proj)) * F.linear(x, up_proj), down_proj)


llama_swiglu.inputs = lambda g: (randn(g, B, T, C), randn(g, 12, C, scale=0.3), randn(g, 12, C, scale=0.3),
                                 randn(g, C, 12, scale=0.3))


def _rotate_half(x):
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2 :]
    return torch.cat((-x2, x1), dim=-1)


@model("Llama modeling_llama.py: apply_rotary_pos_emb")
def llama_rotary(q, k, cos, sin):
    q_embed = (q * cos) + (_rotate_half(q) * sin)
    k_embed = (k * cos) + (_rotate_half(k) * sin)
    return q_embed, k_embed


def _rotary_inputs(g):
    inv_freq = 1.0 / (10000 ** (torch.arange(0, 4, 2, dtype=torch.float64) / 4))
    freqs = torch.arange(T, dtype=torch.float64)[:, None] * inv_freq[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    return randn(g, B, H, T, 4), randn(g, B, H, T, 4), emb.cos(), emb.sin()


llama_rotary.inputs = _rotary_inputs


@model("Llama modeling_llama.py: LlamaAttention with grouped-query attention (repeat_kv)")
def llama_gqa_attention(x, q_proj, k_proj, v_proj, o_proj):
    n_heads, n_kv_heads, head_dim = 4, 2, 2
    bsz, q_len, _ = x.shape
    q = F.linear(x, q_proj).view(bsz, q_len, n_heads, head_dim).transpose(1, 2)
    k = F.linear(x, k_proj).view(bsz, q_len, n_kv_heads, head_dim).transpose(1, 2)
    v = F.linear(x, v_proj).view(bsz, q_len, n_kv_heads, head_dim).transpose(1, 2)

    def repeat_kv(hidden, n_rep):
        batch, kv_heads, slen, dim = hidden.shape
        hidden = hidden[:, :, None, :, :].expand(batch, kv_heads, n_rep, slen, dim)
        return hidden.reshape(batch, kv_heads * n_rep, slen, dim)

    k, v = repeat_kv(k, n_heads // n_kv_heads), repeat_kv(v, n_heads // n_kv_heads)
    causal = torch.full((q_len, q_len), float("-inf"), dtype=x.dtype).triu(1)
    attn = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(head_dim) + causal
    attn = F.softmax(attn, dim=-1)
    out = torch.matmul(attn, v).transpose(1, 2).reshape(bsz, q_len, n_heads * head_dim)
    return F.linear(out, o_proj)


llama_gqa_attention.inputs = lambda g: (randn(g, B, T, C), randn(g, C, C, scale=0.3), randn(g, 4, C, scale=0.3),
                                        randn(g, 4, C, scale=0.3), randn(g, C, C, scale=0.3))


@model("HF transformers BERT: BertSelfAttention with a padding mask")
def bert_self_attention(hidden, attention_mask, wq, bq, wk, bk, wv, bv):
    def heads(t):
        return t.view(t.size()[:-1] + (H, C // H)).permute(0, 2, 1, 3)

    q, k, v = heads(F.linear(hidden, wq, bq)), heads(F.linear(hidden, wk, bk)), heads(F.linear(hidden, wv, bv))
    scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(C // H)
    extended = (1.0 - attention_mask[:, None, None, :]) * -10000.0
    probs = F.dropout(F.softmax(scores + extended, dim=-1), p=0.1, training=False)
    context = torch.matmul(probs, v).permute(0, 2, 1, 3).contiguous()
    return context.view(context.size()[:-2] + (C,))


def _bert_inputs(g):
    mask = torch.ones(B, T, dtype=torch.float64)
    mask[1, -2:] = 0  # padding
    return (randn(g, B, T, C), mask, *_weights(g, C, C), *_weights(g, C, C), *_weights(g, C, C))


bert_self_attention.inputs = _bert_inputs


@model("HF transformers T5: T5DenseGatedActDense (gated-GELU) and T5LayerNorm")
def t5_gated_ffn(hidden, ln_weight, wi_0, wi_1, wo):
    variance = hidden.pow(2).mean(-1, keepdim=True)
    normed = ln_weight * (hidden * torch.rsqrt(variance + 1e-6))
    gelu_new = F.gelu(F.linear(normed, wi_0), approximate="tanh")
    return hidden + F.linear(gelu_new * F.linear(normed, wi_1), wo)


t5_gated_ffn.inputs = lambda g: (randn(g, B, T, C), 1 + randn(g, C, scale=0.1), randn(g, 12, C, scale=0.3),
                                 randn(g, 12, C, scale=0.3), randn(g, C, 12, scale=0.3))


@model("PyTorch F.scaled_dot_product_attention in a transformer layer")
def sdpa_layer(q, k, v, mask):
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


sdpa_layer.inputs = lambda g: (randn(g, B, H, T, 4), randn(g, B, H, T, 4), randn(g, B, H, T, 4), randn(g, T, T))


@model("dense mixture of experts: softmax gating over expert MLPs")
def dense_moe(x, gate, w1, w2):
    weights = F.softmax(x @ gate, dim=-1)  # (B, T, E)
    experts = torch.einsum("btc,ech->bteh", x, w1)  # every expert's hidden layer
    outputs = torch.einsum("bteh,ehc->btec", F.silu(experts), w2)
    return (weights.unsqueeze(-1) * outputs).sum(dim=2)


dense_moe.inputs = lambda g: (randn(g, B, T, C), randn(g, C, 3, scale=0.3), randn(g, 3, C, 6, scale=0.3),
                              randn(g, 3, 6, C, scale=0.3))
