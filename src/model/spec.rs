//! The architecture graph: a model is token embeddings shared by one or more stacks of
//! identical transformer layers (encoder towers, a decoder), plus heads. Presets and
//! Hugging Face configs both become a `ModelSpec`; every count and every activation tensor
//! is derived from it, never stored beside it.

use serde::{Deserialize, Serialize};

/// Encoder-only, decoder-only or encoder-decoder (the JSON contract's `model.architecture`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Architecture {
    Encoder,
    Decoder,
    EncoderDecoder,
}

impl Architecture {
    pub fn name(self) -> &'static str {
        match self {
            Architecture::Encoder => "encoder",
            Architecture::Decoder => "decoder",
            Architecture::EncoderDecoder => "encoder-decoder",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    pub name: String,
    /// Family the preset belongs to (bert, gpt2, llama, t5, ...), for display.
    #[serde(default)]
    pub family: String,
    pub architecture: Architecture,
    /// Token embedding shared by every stack whose input is `tokens`; absent for vision-only models.
    #[serde(default)]
    pub tokens: Option<TokenEmbedding>,
    /// Stacks in execution order; a decoder stack with cross-attention reads the output of the
    /// encoder stack before it. May be empty when `modules` describe the whole model (a CNN).
    #[serde(default)]
    pub stacks: Vec<Stack>,
    #[serde(default)]
    pub head: Head,
    /// Non-parameter buffers that live on the device (e.g. BERT's int64 position-id tables), bytes.
    #[serde(default)]
    pub buffer_bytes: u64,
    /// Parts that are not stacks of identical transformer layers (convolutional networks, UNets,
    /// VAEs, LSTMs, separate text encoders), in execution order: see `model::modules`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub modules: Vec<Module>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenEmbedding {
    pub vocab: u64,
    /// Embedding width; smaller than the hidden size when factorized (ALBERT: 128).
    pub dim: u64,
}

/// What a stack reads.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum StackInput {
    /// Token ids through the shared token embedding.
    Tokens,
    /// Image patches through a strided convolution (ViT, CLIP vision).
    Patches {
        channels: u64,
        patch: u64,
        image: u64,
        #[serde(default = "yes")]
        conv_bias: bool,
        /// A learned class token prepended to the patches.
        #[serde(default = "yes")]
        class_token: bool,
    },
    /// Log-mel frames through two 1-D convolutions (kernel 3; the second with stride 2) — Whisper.
    AudioConv { mel_bins: u64, frames: u64 },
    /// The hidden states of the previous stack (a decoder split into stacks of different layers,
    /// e.g. DeepSeek's first dense layers followed by MoE layers).
    Hidden,
}

fn yes() -> bool {
    true
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Positions {
    /// No position parameters (ALiBi, or positions handled elsewhere).
    None,
    /// A learned table of `max` rows (+ `offset` extra rows: OPT and BART reserve 2).
    Learned {
        max: u64,
        #[serde(default)]
        offset: u64,
    },
    /// Rotary embeddings (no parameters).
    Rotary,
    /// Fixed sinusoids (no parameters).
    Sinusoidal,
    /// T5 relative attention bias: a `buckets × heads` table in the first layer of the stack.
    RelativeBias { buckets: u64 },
    /// DeBERTa's relative embeddings: a `2·buckets × hidden` table plus a LayerNorm in the encoder.
    DisentangledRelative { buckets: u64 },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stack {
    /// `encoder`, `decoder`, `text`, `vision`, ...
    pub name: String,
    /// Causal self-attention (decoder) or bidirectional (encoder).
    pub causal: bool,
    pub input: StackInput,
    pub positions: Positions,
    /// Which sequence length this stack runs at: `seq` (default), `tgt` (the decoder of an
    /// encoder-decoder model); vision and audio stacks derive their length from the input.
    #[serde(default)]
    pub length: StackLength,
    /// Token-type (segment) embedding rows (BERT 2, RoBERTa 1, none for most).
    #[serde(default)]
    pub token_types: u64,
    /// A norm over the embeddings before the first layer (BERT, BLOOM, BART, CLIP's pre-LN).
    #[serde(default)]
    pub embedding_norm: Option<Norm>,
    /// A linear map from the token-embedding width to the hidden size (ALBERT).
    #[serde(default)]
    pub embedding_projection: bool,
    pub layers: u64,
    /// One set of layer weights reused by every layer (ALBERT): weights once, activations per layer.
    #[serde(default)]
    pub shared_layers: bool,
    pub layer: Layer,
    #[serde(default)]
    pub final_norm: Option<Norm>,
    /// Embedding dropout probability (applied to the stack's input embeddings).
    #[serde(default)]
    pub embedding_dropout: f64,
    /// VisualBERT's visual region features beside the tokens (`VisualBertEmbeddings`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visual: Option<VisualEmbeddings>,
}

/// Visual region features projected into the text stack (VisualBERT, Li et al. 2019; the
/// nearest config transformers ships for VL-BERT-style models): `visual_projection`
/// (feature_dim → hidden, with bias) plus visual token-type and visual position tables of the
/// stack's own sizes (`modeling_visual_bert.py` VisualBertEmbeddings). The visual tokens join the
/// text tokens in one sequence: `--seq` counts both.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VisualEmbeddings {
    /// `visual_embedding_dim`: width of each region feature (2048 for Faster R-CNN features).
    pub feature_dim: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum StackLength {
    #[default]
    Seq,
    Tgt,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NormKind {
    LayerNorm,
    RmsNorm,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Norm {
    pub kind: NormKind,
    /// LayerNorm with a bias (most) or without (some modern models).
    #[serde(default = "yes")]
    pub bias: bool,
}

impl Norm {
    pub fn params(&self, hidden: u64) -> u64 {
        match self.kind {
            NormKind::LayerNorm if self.bias => hidden.saturating_mul(2),
            _ => hidden,
        }
    }
    pub fn tensors(&self) -> u64 {
        match self.kind {
            NormKind::LayerNorm if self.bias => 2,
            _ => 1,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NormPlacement {
    /// Norm before each sublayer (GPT-2, LLaMA, T5, ViT).
    Pre,
    /// Norm after the residual add (BERT, original Transformer, BART).
    Post,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layer {
    pub hidden: u64,
    pub attention: Attention,
    /// Cross-attention over the encoder output (decoder of an encoder-decoder model).
    #[serde(default)]
    pub cross_attention: bool,
    pub mlp: Mlp,
    pub norm: Norm,
    pub norm_placement: NormPlacement,
    /// Attention and MLP read the same normed input in parallel (GPT-J, GPT-NeoX): one norm.
    #[serde(default)]
    pub parallel_attn_mlp: bool,
    /// Dropout after the attention output and after the MLP (hidden/residual dropout).
    #[serde(default)]
    pub hidden_dropout: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attention {
    pub heads: u64,
    /// Key/value heads: equal to `heads` for multi-head, 1 for MQA, in between for GQA.
    #[serde(default)]
    pub kv_heads: Option<u64>,
    /// Per-head width; defaults to hidden / heads.
    #[serde(default)]
    pub head_dim: Option<u64>,
    #[serde(default)]
    pub q_bias: bool,
    #[serde(default)]
    pub k_bias: bool,
    #[serde(default)]
    pub v_bias: bool,
    #[serde(default)]
    pub o_bias: bool,
    /// Dropout on the attention probabilities.
    #[serde(default)]
    pub dropout: f64,
    /// Q, K and V come from one fused projection whose output is split (GPT-2's c_attn, BLOOM):
    /// the saved Q, K, V are views of one tensor.
    #[serde(default)]
    pub fused_qkv: bool,
    /// Block-sparse attention (BigBird): each query block attends to global, window and random
    /// key blocks instead of the whole sequence (`memory::blocks::block_sparse_saved`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sparse: Option<BlockSparse>,
    /// Multi-head latent attention (DeepSeek-V2 §2.1): keys and values come from a compressed
    /// latent of `kv_lora_rank` plus a shared rotary key of `rope_head_dim`, which is all the KV
    /// cache keeps per token.
    #[serde(default)]
    pub mla: Option<Mla>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mla {
    pub kv_lora_rank: u64,
    /// Low-rank query compression (DeepSeek-V3: 1536; V2-Lite: none).
    #[serde(default)]
    pub q_lora_rank: Option<u64>,
    pub rope_head_dim: u64,
    pub nope_head_dim: u64,
    pub v_head_dim: u64,
}

impl Mla {
    /// Parameters of the attention projections and their two RMSNorms.
    pub fn params(&self, hidden: u64, heads: u64) -> u64 {
        // Saturating in u128, then at u64::MAX like every count in `model::params`:
        // unvalidated sizes never wrap.
        let (h, n) = (u128::from(hidden), u128::from(heads));
        let mul = |a: u128, b: u128| a.saturating_mul(b);
        let qk = u128::from(self.nope_head_dim) + u128::from(self.rope_head_dim);
        let q = match self.q_lora_rank.map(u128::from) {
            Some(r) => mul(h, r).saturating_add(r).saturating_add(mul(mul(r, n), qk)),
            None => mul(mul(h, n), qk),
        };
        let rank = u128::from(self.kv_lora_rank);
        let kv = mul(h, rank + u128::from(self.rope_head_dim))
            .saturating_add(rank)
            .saturating_add(mul(mul(rank, n), u128::from(self.nope_head_dim) + u128::from(self.v_head_dim)));
        let o = mul(mul(n, u128::from(self.v_head_dim)), h);
        u64::try_from(q.saturating_add(kv).saturating_add(o)).unwrap_or(u64::MAX)
    }

    /// Parameter tensors: weights and the two norms.
    pub fn tensors(&self) -> u64 {
        if self.q_lora_rank.is_some() {
            7
        } else {
            5
        }
    }

    /// Elements cached per token per layer: the latent and the shared rotary key.
    pub fn cache_per_token(&self) -> u64 {
        self.kv_lora_rank.saturating_add(self.rope_head_dim)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// Fused GELU (erf or tanh approximation in one kernel): saves its input.
    Gelu,
    /// Hugging Face's `gelu_new` / `NewGELUActivation`, written as Python tensor ops:
    /// saves its input, tanh output, 0.5·x and 1 + tanh (GPT-2, GPT-Neo, GPT-J).
    GeluNew,
    /// `quick_gelu` = x·sigmoid(1.702x): saves x and the sigmoid output (CLIP).
    QuickGelu,
    Relu,
    Silu,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mlp {
    pub ffn: u64,
    /// Gated MLP (SwiGLU, GeGLU): act(x·W_gate) ⊙ (x·W_up), then W_down.
    #[serde(default)]
    pub gated: bool,
    #[serde(default)]
    pub bias: bool,
    pub activation: Activation,
    /// Mixture of experts: number of experts stored (1 = dense MLP).
    #[serde(default = "one")]
    pub experts: u64,
    /// Experts each token is routed to.
    #[serde(default = "one")]
    pub top_k: u64,
    /// Dropout inside the MLP after the activation (T5's `dropout` inside DenseReluDense).
    #[serde(default)]
    pub inner_dropout: f64,
    /// Always-active shared experts beside the routed ones (DeepSeekMoE): one gated MLP of this
    /// width (the shared experts' widths added up).
    #[serde(default)]
    pub shared_ffn: u64,
}

fn one() -> u64 {
    1
}

/// What sits on top of the stacks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Head {
    /// Language-model head over the vocabulary (causal LM, seq2seq LM, masked LM).
    #[serde(default)]
    pub lm_head: Option<LmHead>,
    /// BERT-style pooler: dense h×h + bias over the first token.
    #[serde(default)]
    pub pooler: bool,
    /// Classification head with this many classes (ViT: 1000).
    #[serde(default)]
    pub classifier: Option<u64>,
    /// CLIP: projections of each tower into a shared space of this width (no bias) and a
    /// learned logit scale.
    #[serde(default)]
    pub contrastive_dim: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LmHead {
    /// Output weight shared with the token embedding (no parameters of its own).
    pub tied: bool,
    /// Output bias over the vocabulary.
    #[serde(default)]
    pub bias: bool,
    /// BERT's MLM transform (dense h×h + bias, activation, LayerNorm) before the decoder.
    #[serde(default)]
    pub transform: bool,
    /// T5 with tied embeddings rescales the decoder output by d^-0.5 before the head (a copy).
    #[serde(default)]
    pub rescale: bool,
}

impl Attention {
    pub fn kv_heads(&self) -> u64 {
        self.kv_heads.unwrap_or(self.heads)
    }
    pub fn head_dim(&self, hidden: u64) -> u64 {
        self.head_dim.unwrap_or(hidden / self.heads.max(1))
    }
}

impl ModelSpec {
    pub fn stack(&self, name: &str) -> Option<&Stack> {
        self.stacks.iter().find(|s| s.name == name)
    }

    /// The stack that produces the logits (the last one), if any.
    pub fn last_stack(&self) -> Option<&Stack> {
        self.stacks.last()
    }

    /// Largest hidden size over the stacks.
    pub fn max_hidden(&self) -> u64 {
        self.stacks.iter().map(|s| s.layer.hidden).max().unwrap_or(0)
    }

    pub fn total_layers(&self) -> u64 {
        self.stacks.iter().map(|s| s.layers).sum()
    }

    pub fn vocab(&self) -> u64 {
        self.tokens.as_ref().map_or(0, |t| t.vocab)
    }
}

// ---------------------------------------------------------------------------------------------
// Parts that are not transformer stacks (their parameters, steps and saved tensors are computed
// in `model::modules`; the descriptions live here so the model's types import nothing above
// them).

fn three() -> u64 {
    3
}
fn four() -> u64 {
    4
}
fn eight() -> u64 {
    8
}
fn thirty_two() -> u64 {
    32
}
fn seventy_seven() -> u64 {
    77
}

/// BigBird's block-sparse attention ("ITC": Zaheer et al. 2020, arXiv:2007.14062, §2 and App. D;
/// Hugging Face `BigBirdBlockSparseAttention`): the first and last key blocks are global, each
/// query block sees a window of 3 blocks and `random` random blocks, the first and last query
/// blocks see everything. Sequences of at most `(5 + 2·random)·block` tokens fall back to full
/// attention, as Hugging Face does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockSparse {
    /// Tokens per block (`block_size`, 64 for BigBird).
    pub block: u64,
    /// Random key blocks per query block (`num_random_blocks`, 3 for BigBird).
    pub random: u64,
}

/// One part of the model that is not a transformer stack.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Module {
    Resnet(ResNet),
    Unet(UNet),
    Vae(Vae),
    TextEncoder(TextEncoder),
    Lstm(Lstm),
}

/// torchvision's ResNet (He et al. 2015; `torchvision/models/resnet.py`, "v1.5": the stride of a
/// bottleneck sits on its 3×3 convolution): a stem (7×7/2 convolution, BatchNorm, ReLU, 3×3/2
/// max-pool), stages of residual blocks, global average pooling and a linear classifier.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResNet {
    pub name: String,
    /// Trains (gradients, optimizer states, saved activations) or stays frozen (weights only;
    /// in training it runs without autograd).
    #[serde(default = "yes")]
    pub trainable: bool,
    #[serde(default = "three")]
    pub in_channels: u64,
    /// Input resolution (square) unless `--image-size` is given.
    pub image: u64,
    /// Stem output channels.
    pub stem: u64,
    pub block: ResBlockKind,
    /// Residual blocks per stage.
    pub layers: Vec<u64>,
    /// Width of each stage (a bottleneck's inner width; its output is 4× that).
    pub widths: Vec<u64>,
    /// Classes of the final linear layer; absent: the pooled features are the output (a backbone).
    #[serde(default)]
    pub classes: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ResBlockKind {
    /// Two 3×3 convolutions (ResNet-18/34).
    Basic,
    /// 1×1, 3×3, 1×1 convolutions with 4× expansion (ResNet-50/101/152).
    Bottleneck,
}

/// diffusers' `UNet2DConditionModel` as Stable Diffusion uses it: resolution levels of ResNet
/// blocks (with the timestep embedding) and spatial transformers (self-attention, cross-attention
/// over the text encoder's states, GEGLU feed-forward), a middle block, and an up path that
/// concatenates the down path's outputs (skip connections).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UNet {
    pub name: String,
    #[serde(default = "yes")]
    pub trainable: bool,
    /// Latent channels in and out.
    #[serde(default = "four")]
    pub in_channels: u64,
    #[serde(default = "four")]
    pub out_channels: u64,
    /// Image resolution unless `--image-size` is given; the UNet runs on `image / latent_scale`.
    pub image: u64,
    /// The VAE's downsampling (8 for Stable Diffusion).
    #[serde(default = "eight")]
    pub latent_scale: u64,
    /// Channels of each level (`block_out_channels`).
    pub channels: Vec<u64>,
    /// ResNet blocks per level on the way down (the up path has one more).
    pub layers_per_block: u64,
    /// Transformer blocks after each ResNet block of a level (0: no attention at that level).
    pub transformer_depth: Vec<u64>,
    /// Attention heads of each level (diffusers' `attention_head_dim` counts heads).
    pub heads: Vec<u64>,
    /// Transformer blocks of the middle block.
    pub mid_depth: u64,
    /// Width of the text encoder states the cross-attention reads (`cross_attention_dim`).
    pub cross_attention_dim: u64,
    /// Tokens of the text encoder states (CLIP pads prompts to 77).
    #[serde(default = "seventy_seven")]
    pub context_len: u64,
    #[serde(default = "thirty_two")]
    pub groups: u64,
    /// proj_in/proj_out are linear layers (SDXL) instead of 1×1 convolutions (same parameters).
    #[serde(default)]
    pub linear_projection: bool,
    /// SDXL's micro-conditioning embedding (`addition_embed_type = "text_time"`).
    #[serde(default)]
    pub add_embedding: Option<AddEmbedding>,
    /// Inference with classifier-free guidance: the UNet runs on twice the batch (the diffusers
    /// pipelines' default `guidance_scale` 7.5 concatenates the unconditional batch).
    #[serde(default = "yes")]
    pub guidance: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddEmbedding {
    /// Pooled text embedding width (SDXL: 1280).
    pub text_dim: u64,
    /// Time ids (SDXL: 6: original size, crop, target size) ...
    pub time_ids: u64,
    /// ... each through a sinusoidal embedding of this width (`addition_time_embed_dim`, 256).
    pub time_dim: u64,
}

/// diffusers' `AutoencoderKL`: an encoder of down blocks to a latent (mean and log-variance), a
/// decoder of up blocks back to pixels, each with a middle block of ResNet blocks around one
/// single-head attention.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vae {
    pub name: String,
    #[serde(default = "yes")]
    pub trainable: bool,
    #[serde(default = "three")]
    pub in_channels: u64,
    #[serde(default = "four")]
    pub latent_channels: u64,
    /// Image resolution unless `--image-size` is given.
    pub image: u64,
    /// Channels of each level (`block_out_channels`).
    pub channels: Vec<u64>,
    pub layers_per_block: u64,
    #[serde(default = "thirty_two")]
    pub groups: u64,
}

/// A transformer text encoder with its own token table (Stable Diffusion's CLIP text encoders):
/// `stack` is an ordinary transformer stack whose learned positions give the fixed prompt length.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextEncoder {
    pub name: String,
    #[serde(default = "yes")]
    pub trainable: bool,
    pub vocab: u64,
    pub stack: Stack,
    /// A projection of the pooled output without bias (`CLIPTextModelWithProjection`).
    #[serde(default)]
    pub projection: Option<u64>,
}

/// PyTorch `nn.LSTM` layers with an optional token embedding before them and an optional output
/// projection with a cross-entropy loss after them: the encoder or decoder of a sequence-to-
/// sequence model, or a captioning decoder fed image features as its first step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lstm {
    pub name: String,
    #[serde(default = "yes")]
    pub trainable: bool,
    /// Rows of the token embedding feeding the first layer.
    #[serde(default)]
    pub vocab: Option<u64>,
    /// Width of the first layer's input (the embedding width).
    pub input: u64,
    pub hidden: u64,
    pub layers: u64,
    #[serde(default)]
    pub bidirectional: bool,
    /// Runs over the source (`seq`) or the target (`tgt`: a decoder) sequence.
    #[serde(default)]
    pub length: StackLength,
    /// A linear projection (with bias) of image features of this width, then BatchNorm1d, fed
    /// as the first time step (Show and Tell).
    #[serde(default)]
    pub image_features: Option<u64>,
    /// Output projection over a vocabulary of this size (with bias) and a cross-entropy loss.
    #[serde(default)]
    pub output_vocab: Option<u64>,
    /// `nn.LSTM(dropout=...)` between layers.
    #[serde(default)]
    pub dropout: f64,
    /// The default `--seq` for this model (not a model property: memplan's default).
    #[serde(default)]
    pub default_len: Option<u64>,
}
