# Configuration of a PolyMoE checkpoint for Hugging Face transformers (remote code, written by
# `polymoe export`). A Llama / Mistral / Qwen2 decoder whose FFNs may be Mixture-of-Experts blocks
# with a per-layer expert count (MoE-LPR / LayerMoE), see modeling_polymoe.py.
try:
    from transformers import PreTrainedConfig as _BaseConfig  # transformers 5
except ImportError:  # transformers 4
    from transformers import PretrainedConfig as _BaseConfig


class PolyMoEConfig(_BaseConfig):
    model_type = "polymoe"
    keys_to_ignore_at_inference = ["past_key_values"]

    def __init__(
        self,
        vocab_size=32000,
        hidden_size=4096,
        intermediate_size=11008,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=None,
        head_dim=None,
        hidden_act="silu",
        max_position_embeddings=2048,
        initializer_range=0.02,
        rms_norm_eps=1e-6,
        rope_theta=10000.0,
        attention_bias=False,
        attention_dropout=0.0,
        base_model_type="llama",
        experts_per_layer=None,  # N_i per layer; 1 = the dense SwiGLU FFN
        num_experts_per_tok=2,  # top-k, min(k, N_i) per layer
        classifier_layers=None,  # layers whose MoE block has the old/new classifier
        tie_word_embeddings=False,
        use_cache=False,
        bos_token_id=None,
        eos_token_id=None,
        pad_token_id=None,
        **kwargs,
    ):
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.intermediate_size = intermediate_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.num_key_value_heads = num_attention_heads if num_key_value_heads is None else num_key_value_heads
        self.head_dim = hidden_size // num_attention_heads if head_dim is None else head_dim
        self.hidden_act = hidden_act
        self.max_position_embeddings = max_position_embeddings
        self.initializer_range = initializer_range
        self.rms_norm_eps = rms_norm_eps
        # transformers 5 folds rope_theta into rope_parameters; accept either.
        rope_parameters = kwargs.pop("rope_parameters", None)
        if isinstance(rope_parameters, dict) and "rope_theta" in rope_parameters:
            rope_theta = rope_parameters["rope_theta"]
        self.rope_theta = float(rope_theta)
        self.attention_bias = bool(attention_bias)
        self.attention_dropout = attention_dropout
        self.base_model_type = base_model_type
        self.experts_per_layer = list(experts_per_layer) if experts_per_layer else [1] * num_hidden_layers
        if len(self.experts_per_layer) != num_hidden_layers:
            raise ValueError(
                f"experts_per_layer has {len(self.experts_per_layer)} entries, the model {num_hidden_layers} layers"
            )
        self.num_experts_per_tok = num_experts_per_tok
        self.classifier_layers = list(classifier_layers or [])
        self.use_cache = use_cache
        kwargs.pop("rope_scaling", None)  # always null: plain RoPE only
        super().__init__(
            tie_word_embeddings=tie_word_embeddings,
            bos_token_id=bos_token_id,
            eos_token_id=eos_token_id,
            pad_token_id=pad_token_id,
            **kwargs,
        )
