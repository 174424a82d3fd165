"""Hugging Face config of an exported flan_jax decoder (shipped next to its weights).

Written by ``flan-jax export-hf`` for models that ``LlamaForCausalLM`` cannot represent (T5
relative-position bias, gated-GELU, tied logits scaled by 1/sqrt(d_model), prefix-LM); loaded with
``AutoConfig.from_pretrained(dir, trust_remote_code=True)``. The fields are flan_jax's
``DecoderConfig`` plus the special-token ids and ``max_position_embeddings``.
"""

from transformers import PretrainedConfig


class FlanJaxConfig(PretrainedConfig):
  model_type = "flan_jax_decoder"

  def __init__(self, vocab_size=512, num_layers=2, d_model=64, num_heads=4, num_kv_heads=None,
               head_dim=16, d_ff=128, activation="gated_gelu", position="relative",
               relative_num_buckets=32, relative_max_distance=128, relative_bidirectional=False,
               rope_theta=10000.0, norm_eps=1e-6, tie_embeddings=True, scale_tied_logits=True,
               prefix_lm=True, max_position_embeddings=2048, **kwargs):
    self.vocab_size = vocab_size
    self.num_layers = num_layers
    self.d_model = d_model
    self.num_heads = num_heads
    self.num_kv_heads = num_kv_heads
    self.head_dim = head_dim
    self.d_ff = d_ff
    self.activation = activation
    self.position = position
    self.relative_num_buckets = relative_num_buckets
    self.relative_max_distance = relative_max_distance
    self.relative_bidirectional = relative_bidirectional
    self.rope_theta = rope_theta
    self.norm_eps = norm_eps
    self.tie_embeddings = tie_embeddings
    self.scale_tied_logits = scale_tied_logits
    self.prefix_lm = prefix_lm
    self.max_position_embeddings = max_position_embeddings
    self.hidden_size = d_model
    self.num_hidden_layers = num_layers
    self.num_attention_heads = num_heads
    kwargs["tie_word_embeddings"] = False  # flan_jax ties inside the model (no lm_head).
    super().__init__(**kwargs)
