# PolyMoE's forward in PyTorch for Hugging Face transformers (remote code, written by `polymoe export`).
# The same computation as PolyMoE's C++ engine (core/models/llama.cpp, core/moe_block.cpp,
# core/moe_router.cpp; METHOD.md sections 3 and 6), so the logits agree to float rounding:
#   x = x + attn(rmsnorm(x));  h = rmsnorm(x);  x = x + ffn_i(h)
#   ffn_i = SwiGLU when N_i = 1; otherwise an MoE block: p = softmax(W_r h) (fp32), the top-k experts
#   (k = min(num_experts_per_tok, N_i)), their probabilities renormalised to sum 1,
#   y = sum_j w_j * SwiGLU_{e_j}(h). With the old/new classifier (LayerMoE) and in eval mode, a
#   sequence whose summed FFN input the classifier calls "old" (argmax 0) goes to expert 0 alone.
# Tensor names equal PolyMoE's (model.layers.L.mlp.experts.E.gate_proj.weight, ...mlp.gate.weight,
# ...mlp.classifier.weight). No key/value cache: generation recomputes the prefix (correct, slower).
import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from transformers import GenerationMixin, PreTrainedModel
from transformers.modeling_outputs import CausalLMOutputWithPast

try:
    from .configuration_polymoe import PolyMoEConfig
except ImportError:  # loaded as a plain module
    from configuration_polymoe import PolyMoEConfig


def _compute_dtype(t: torch.dtype) -> torch.dtype:
    return torch.float64 if t == torch.float64 else torch.float32


class PolyMoERMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        xf = x.to(_compute_dtype(x.dtype))
        xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * xf.to(x.dtype)


def _rope_tables(position_ids, head_dim, theta, dtype):
    # position_ids (B, T) -> cos, sin (B, 1, T, head_dim); rotate-half pairs feature i with i + d/2.
    cd = _compute_dtype(dtype)
    exponent = torch.arange(0, head_dim, 2, dtype=cd, device=position_ids.device) / head_dim
    inv_freq = torch.reciprocal(torch.pow(torch.tensor(theta, dtype=cd, device=position_ids.device), exponent))
    freqs = position_ids.to(cd)[..., None] * inv_freq  # (B, T, d/2)
    emb = torch.cat([freqs, freqs], dim=-1)
    return emb.cos().to(dtype)[:, None], emb.sin().to(dtype)[:, None]


def _rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat([-x[..., half:], x[..., :half]], dim=-1)


class PolyMoEAttention(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.num_kv_heads = config.num_key_value_heads
        self.head_dim = config.head_dim
        bias = config.attention_bias
        d = config.hidden_size
        self.q_proj = nn.Linear(d, self.num_heads * self.head_dim, bias=bias)
        self.k_proj = nn.Linear(d, self.num_kv_heads * self.head_dim, bias=bias)
        self.v_proj = nn.Linear(d, self.num_kv_heads * self.head_dim, bias=bias)
        self.o_proj = nn.Linear(self.num_heads * self.head_dim, d, bias=False)

    def forward(self, x, cos, sin, mask):
        B, T, _ = x.shape
        H, Hkv, D = self.num_heads, self.num_kv_heads, self.head_dim
        q = self.q_proj(x).view(B, T, H, D).transpose(1, 2)
        k = self.k_proj(x).view(B, T, Hkv, D).transpose(1, 2)
        v = self.v_proj(x).view(B, T, Hkv, D).transpose(1, 2)
        q = q * cos + _rotate_half(q) * sin
        k = k * cos + _rotate_half(k) * sin
        if Hkv != H:  # grouped-query attention: query head j reads kv head j // (H / Hkv)
            k = k.repeat_interleave(H // Hkv, dim=1)
            v = v.repeat_interleave(H // Hkv, dim=1)
        scores = torch.matmul(q, k.transpose(-2, -1)) * (1.0 / math.sqrt(D))  # (B, H, T, T)
        scores = scores.masked_fill(~mask, float("-inf"))
        probs = torch.softmax(scores, dim=-1, dtype=_compute_dtype(q.dtype)).to(q.dtype)
        probs = torch.nan_to_num(probs)  # fully masked rows (padding) give 0, not NaN
        out = torch.matmul(probs, v).transpose(1, 2).reshape(B, T, H * D)
        return self.o_proj(out)


class PolyMoESwiGLU(nn.Module):
    def __init__(self, d, ffn):
        super().__init__()
        self.gate_proj = nn.Linear(d, ffn, bias=False)
        self.up_proj = nn.Linear(d, ffn, bias=False)
        self.down_proj = nn.Linear(ffn, d, bias=False)

    def forward(self, h, token_mask=None):
        return self.down_proj(F.silu(self.gate_proj(h)) * self.up_proj(h))


class PolyMoERouter(nn.Module):
    """W_r (N, d), no bias: softmax over experts in fp32, top-k, renormalised (METHOD.md section 3)."""

    def __init__(self, d, num_experts):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_experts, d))

    def forward(self, x, top_k):
        dt = _compute_dtype(x.dtype)
        logits = torch.matmul(x.to(dt), self.weight.to(dt).t())  # (T, N)
        probs = torch.softmax(logits, dim=-1)
        top_p, top_idx = torch.topk(probs, top_k, dim=-1, largest=True, sorted=True)
        return logits, top_idx, top_p / top_p.sum(-1, keepdim=True)


class PolyMoEBlock(nn.Module):
    def __init__(self, config, num_experts, has_classifier):
        super().__init__()
        d = config.hidden_size
        self.num_experts = num_experts
        self.top_k = min(config.num_experts_per_tok, num_experts)
        self.gate = PolyMoERouter(d, num_experts)
        self.experts = nn.ModuleList([PolyMoESwiGLU(d, config.intermediate_size) for _ in range(num_experts)])
        self.classifier = nn.Linear(d, 2, bias=False) if has_classifier else None

    def forward(self, h, token_mask=None):
        B, T, d = h.shape
        x = h.reshape(-1, d)  # (B*T, d)
        _, top_idx, top_w = self.gate(x, self.top_k)  # (B*T, k)
        if self.classifier is not None and not self.training:
            # LayerMoE classifier on the FFN input summed over the sequence (padding excluded): argmax 0
            # ("old") sends every token of the sequence to expert 0 with weight 1.
            dt = _compute_dtype(h.dtype)
            hs = h.to(dt)
            if token_mask is not None:
                hs = hs * token_mask[..., None].to(dt)
            cls_logits = torch.matmul(hs.sum(1), self.classifier.weight.to(dt).t())  # (B, 2)
            tok_old = cls_logits.argmax(-1).eq(0)[:, None].expand(B, T).reshape(-1, 1)  # (B*T, 1)
            hard_w = torch.zeros_like(top_w)
            hard_w[:, 0] = 1.0
            top_idx = torch.where(tok_old, torch.zeros_like(top_idx), top_idx)
            top_w = torch.where(tok_old, hard_w, top_w)
        out = torch.zeros_like(x)
        for e in range(self.num_experts):
            tok, slot = torch.nonzero((top_idx == e) & (top_w != 0), as_tuple=True)
            if tok.numel() == 0:
                continue
            ye = self.experts[e](x[tok]) * top_w[tok, slot, None].to(x.dtype)
            out.index_add_(0, tok, ye)
        return out.view(B, T, d)


class PolyMoEDecoderLayer(nn.Module):
    def __init__(self, config, layer_idx):
        super().__init__()
        n = config.experts_per_layer[layer_idx]
        self.self_attn = PolyMoEAttention(config)
        if n >= 2:
            self.mlp = PolyMoEBlock(config, n, layer_idx in config.classifier_layers)
        else:
            self.mlp = PolyMoESwiGLU(config.hidden_size, config.intermediate_size)
        self.input_layernorm = PolyMoERMSNorm(config.hidden_size, config.rms_norm_eps)
        self.post_attention_layernorm = PolyMoERMSNorm(config.hidden_size, config.rms_norm_eps)

    def forward(self, x, cos, sin, mask, token_mask):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask)
        return x + self.mlp(self.post_attention_layernorm(x), token_mask)


class PolyMoEPreTrainedModel(PreTrainedModel):
    config_class = PolyMoEConfig
    base_model_prefix = "model"
    _no_split_modules = ["PolyMoEDecoderLayer"]
    supports_gradient_checkpointing = False

    def _init_weights(self, module):
        std = self.config.initializer_range
        if isinstance(module, nn.Linear):
            module.weight.data.normal_(0.0, std)
            if module.bias is not None:
                module.bias.data.zero_()
        elif isinstance(module, nn.Embedding):
            module.weight.data.normal_(0.0, std)
        elif isinstance(module, PolyMoERMSNorm):
            module.weight.data.fill_(1.0)
        elif isinstance(module, PolyMoERouter):
            module.weight.data.normal_(0.0, math.sqrt(2.0 / sum(module.weight.shape)))


class PolyMoEModel(PolyMoEPreTrainedModel):
    def __init__(self, config):
        super().__init__(config)
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList([PolyMoEDecoderLayer(config, i) for i in range(config.num_hidden_layers)])
        self.norm = PolyMoERMSNorm(config.hidden_size, config.rms_norm_eps)
        self.post_init()

    def get_input_embeddings(self):
        return self.embed_tokens

    def set_input_embeddings(self, value):
        self.embed_tokens = value

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, inputs_embeds=None, **kwargs):
        x = self.embed_tokens(input_ids) if inputs_embeds is None else inputs_embeds
        B, T, _ = x.shape
        token_mask = None
        if attention_mask is not None and attention_mask.dim() == 2 and not bool(attention_mask.all()):
            token_mask = attention_mask.bool()
        if position_ids is None:
            if token_mask is not None:
                position_ids = (token_mask.long().cumsum(-1) - 1).clamp(min=0)
            else:
                position_ids = torch.arange(T, device=x.device)[None].expand(B, T)
        cos, sin = _rope_tables(position_ids, self.config.head_dim, self.config.rope_theta, x.dtype)
        mask = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()[None, None]  # (1, 1, T, T) causal
        if token_mask is not None:
            mask = mask & token_mask[:, None, None, :]
        for layer in self.layers:
            x = layer(x, cos, sin, mask, token_mask)
        return self.norm(x)


class PolyMoEForCausalLM(PolyMoEPreTrainedModel, GenerationMixin):
    def __init__(self, config):
        super().__init__(config)
        self.model = PolyMoEModel(config)
        # Tied embeddings: no lm_head at all (the checkpoint has none); logits use embed_tokens.
        self.lm_head = None if config.tie_word_embeddings else nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    def get_input_embeddings(self):
        return self.model.embed_tokens

    def set_input_embeddings(self, value):
        self.model.embed_tokens = value

    def get_output_embeddings(self):
        return self.lm_head

    def tie_weights(self, *args, **kwargs):
        pass  # nothing to tie: see __init__

    def prepare_inputs_for_generation(self, input_ids, attention_mask=None, **kwargs):
        return {"input_ids": input_ids, "attention_mask": attention_mask}

    def forward(
        self,
        input_ids: Optional[torch.LongTensor] = None,
        attention_mask: Optional[torch.Tensor] = None,
        position_ids: Optional[torch.LongTensor] = None,
        inputs_embeds: Optional[torch.FloatTensor] = None,
        labels: Optional[torch.LongTensor] = None,
        logits_to_keep: int = 0,
        **kwargs,
    ):
        hidden = self.model(input_ids, attention_mask, position_ids, inputs_embeds)
        if logits_to_keep:
            hidden = hidden[:, -logits_to_keep:]
        if self.lm_head is not None:
            logits = self.lm_head(hidden)
        else:
            logits = F.linear(hidden, self.model.embed_tokens.weight)
        loss = None
        if labels is not None:
            shift_logits = logits[:, :-1].float().reshape(-1, logits.shape[-1])
            loss = F.cross_entropy(shift_logits, labels[:, 1:].reshape(-1), ignore_index=-100)
        return CausalLMOutputWithPast(loss=loss, logits=logits)


__all__ = ["PolyMoEForCausalLM", "PolyMoEModel", "PolyMoEPreTrainedModel"]
