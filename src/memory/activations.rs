//! The per-tensor ledger of activations saved for backward, block by block.
//!
//! Each block lists the distinct tensors autograd keeps alive between its forward and its
//! backward (a tensor saved by two ops is listed once), following what PyTorch kernels save:
//! a linear layer saves its input; native LayerNorm saves its input and fp32 mean/rstd; the
//! Hugging Face RMSNorm (written in Python) saves an fp32 input, the fp32 rsqrt and the normed
//! tensor; softmax saves its output; dropout saves a mask (bool on CUDA); fused attention
//! (FlashAttention/SDPA) saves q, k, v, the output and the fp32 log-sum-exp.
//!
//! For a GPT layer in 16-bit with dropout and eager attention the ledger sums to
//! Korthikanti et al. 2022 (arXiv:2205.05198) §4.1 Eq. 1: `s·b·h·(34 + 5·a·s/h)` bytes;
//! selective recomputation (§4.2) drops the tensors marked `attention_core` (the `5·a·s/h` term);
//! full recomputation keeps only each layer's input (`2·s·b·h`).

use super::setup::{AttentionKernel, Runtime, Setup};
use crate::dtype::DType;
use crate::model::spec::*;
use serde::Serialize;

/// One saved tensor (or one group of identical tensors) of a block.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Saved {
    pub name: String,
    pub bytes: u64,
    /// Part of the attention core that selective recomputation recomputes.
    pub attention_core: bool,
    /// Kept only as the input of these projections, for their weight gradient: a frozen
    /// projection (LoRA's base) needs only its weight in backward, so the tensor is not saved.
    #[serde(skip)]
    pub linear_input: Option<Proj>,
}

/// The projections whose weight gradient needs their input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proj {
    Qkv,
    O,
    GateUp,
    Down,
    Head,
}

impl Proj {
    /// Whether this projection's input is kept: its weights train (full fine-tuning), or a LoRA
    /// adapter on it saves the very same tensor (adapter in the activation dtype, no dropout).
    pub fn trains(self, setup: &Setup) -> bool {
        match setup.finetune.lora() {
            None => true,
            Some(l) => {
                let shares_input =
                    l.adapter_dtype == setup.precision.activation_dtype() && setup.dropout_p(l.dropout) == 0.0;
                let t = &l.targets;
                shares_input
                    && match self {
                        Proj::Qkv => t.qkv(),
                        Proj::O => t.o,
                        Proj::GateUp => t.gate || t.up,
                        Proj::Down => t.down,
                        Proj::Head => false,
                    }
            }
        }
    }
}

/// Token-level shapes a stack runs at, for one micro-batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct StackShape {
    pub batch: u64,
    /// Tokens of this stack held by one rank (the sequence divided by the context-parallel size).
    pub seq: u64,
    /// Length of the sequence attended to by cross-attention (the encoder's), if any.
    pub cross_seq: u64,
    /// Keys each query attends to in self-attention (the whole sequence under context parallelism).
    pub kv_seq: u64,
    /// Tensor-parallel size (Megatron: heads and the MLP width split over `tp` ranks).
    pub tp: u64,
    /// Megatron sequence parallelism: the tensors outside the tensor-parallel regions are split
    /// along the sequence over the `tp` ranks too (Korthikanti et al. 2022 §4.2.2).
    pub sp: bool,
}

impl StackShape {
    /// One rank, no parallelism.
    pub fn new(batch: u64, seq: u64, cross_seq: u64) -> Self {
        StackShape { batch, seq, cross_seq, kv_seq: seq, tp: 1, sp: false }
    }

    pub fn tokens(&self) -> u64 {
        self.batch * self.seq
    }

    /// Bytes of a tensor outside the tensor-parallel regions on one rank.
    fn seq_split(&self, bytes: u64) -> u64 {
        if self.sp && self.tp > 1 {
            bytes.div_ceil(self.tp)
        } else {
            bytes
        }
    }
}

/// Sequence length a stack runs at under `setup`.
pub fn stack_seq(stack: &Stack, setup: &Setup) -> u64 {
    match &stack.input {
        StackInput::Patches { patch, image, class_token, .. } => (image / patch).pow(2) + u64::from(*class_token),
        // Whisper: the second convolution has stride 2.
        StackInput::AudioConv { frames, .. } => frames.div_ceil(2),
        StackInput::Tokens | StackInput::Hidden => match stack.length {
            StackLength::Seq => setup.seq,
            StackLength::Tgt => setup.tgt_seq,
        },
    }
}

/// Shapes of every stack of the model, in order; a cross-attending stack sees the last encoder.
pub fn shapes(model: &ModelSpec, setup: &Setup) -> Vec<StackShape> {
    let mut out = Vec::new();
    let mut encoder_seq = 0;
    for s in &model.stacks {
        let seq = stack_seq(s, setup);
        out.push(StackShape::new(setup.micro_batch, seq, if s.layer.cross_attention { encoder_seq } else { 0 }));
        if !s.causal {
            encoder_seq = seq;
        }
    }
    out
}

struct Ctx<'a> {
    setup: &'a Setup,
    act: DType,
    residual: DType,
    /// Name the tensors (the ledger a user reads); the planner's sizing only sums bytes.
    names: bool,
}

impl<'a> Ctx<'a> {
    fn new(setup: &'a Setup) -> Self {
        Ctx { setup, act: setup.precision.activation_dtype(), residual: setup.precision.residual_dtype(), names: true }
    }
}

/// A ledger line's name, formatted only when the ledger is named: the planner sizes thousands of
/// ledgers per search and formatting their names was a tenth of its time.
macro_rules! name {
    ($cx:expr, $($arg:tt)*) => {
        if $cx.names { format!($($arg)*) } else { String::new() }
    };
}

fn push(out: &mut Vec<Saved>, name: impl Into<String>, bytes: u64) {
    if bytes > 0 {
        out.push(Saved { name: name.into(), bytes, attention_core: false, linear_input: None });
    }
}

fn push_core(out: &mut Vec<Saved>, name: impl Into<String>, bytes: u64) {
    if bytes > 0 {
        out.push(Saved { name: name.into(), bytes, attention_core: true, linear_input: None });
    }
}

/// A tensor saved only as the input of `proj`.
fn push_input(out: &mut Vec<Saved>, proj: Proj, name: impl Into<String>, bytes: u64) {
    if bytes > 0 {
        out.push(Saved { name: name.into(), bytes, attention_core: false, linear_input: Some(proj) });
    }
}

/// Drop the tensors kept only for the weight gradients of frozen projections.
fn keep_trainable(out: &mut Vec<Saved>, setup: &Setup) {
    out.retain(|t| t.linear_input.is_none_or(|p| p.trains(setup)));
}

/// A norm and the linear input it feeds: input, statistics, output. Norms sit outside the
/// tensor-parallel regions: replicated under TP, split along the sequence under SP.
#[allow(clippy::too_many_arguments)]
fn norm_saved(
    out: &mut Vec<Saved>,
    cx: &Ctx,
    sh: &StackShape,
    norm: &Norm,
    what: &str,
    tokens: u64,
    width: u64,
    feeds: Proj,
) {
    let e = tokens * width;
    let r = |b: u64| sh.seq_split(b);
    match norm.kind {
        NormKind::LayerNorm => {
            push(out, name!(cx, "{what} input"), r(cx.residual.bytes(e)));
            push(out, name!(cx, "{what} mean/rstd (fp32)"), r(2 * DType::Fp32.bytes(tokens)));
        }
        NormKind::RmsNorm => {
            // x.to(float32); x * rsqrt(mean(x²)); weight * normed.to(dtype)
            push(out, name!(cx, "{what} input (fp32)"), r(DType::Fp32.bytes(e)));
            push(out, name!(cx, "{what} rsqrt (fp32)"), r(DType::Fp32.bytes(tokens)));
            push(out, name!(cx, "{what} normalised"), r(cx.act.bytes(e)));
        }
    }
    push_input(out, feeds, name!(cx, "{what} output"), r(cx.act.bytes(e)));
}

/// A dropout's mask over a tensor of `dtype` (bool on CUDA, the tensor's dtype on CPU).
fn dropout(out: &mut Vec<Saved>, cx: &Ctx, sh: &StackShape, p: f64, what: &str, elements: u64, dtype: DType) {
    if cx.setup.dropout_p(p) > 0.0 {
        let mask = cx.setup.dropout_mask_dtype(dtype);
        push(out, name!(cx, "{what} dropout mask ({mask})"), sh.seq_split(mask.bytes(elements)));
    }
}

pub use crate::parallel::layout::heads_per_rank;

/// Whether attention materialises its scores under this setup. PyTorch's CPU SDPA falls back to
/// the math path when attention dropout is active.
pub fn materialises_scores(setup: &Setup, attention_dropout: f64) -> bool {
    match setup.attention {
        AttentionKernel::Eager => true,
        AttentionKernel::Flash | AttentionKernel::FlashAttn2 => {
            setup.runtime == Runtime::Cpu && setup.dropout_p(attention_dropout) > 0.0
        }
    }
}

#[allow(clippy::too_many_arguments)]
/// The attention core between the projections: q, k, v, scores or log-sum-exp, output.
fn attention_core(
    out: &mut Vec<Saved>,
    cx: &Ctx,
    layer: &Layer,
    what: &str,
    sh: &StackShape,
    q_len: u64,
    kv_len: u64,
    fused_qkv: bool,
) {
    let a = &layer.attention;
    let batch = sh.batch;
    let hd = a.head_dim(layer.hidden);
    let (heads, kv_heads) = heads_per_rank(a, sh.tp);
    let eq = batch * q_len * heads * hd;
    // K and V of the keys this rank holds (context parallelism passes the others around a ring).
    let ekv =
        batch * kv_len.min(if sh.kv_seq > sh.seq && kv_len == sh.kv_seq { q_len } else { kv_len }) * kv_heads * hd;
    let scores = batch * heads * q_len * kv_len;
    // BigBird: the block-sparse path (always materialised, no attention dropout); see blocks.rs.
    if let Some(parts) =
        (q_len == kv_len).then(|| super::blocks::block_sparse_saved(a, batch, heads, hd, q_len)).flatten()
    {
        for (i, (name, elements)) in parts.into_iter().enumerate() {
            let bytes = cx.act.bytes(elements);
            if i == 0 {
                push(out, name!(cx, "{what} {name}"), bytes)
            } else {
                push_core(out, name!(cx, "{what} {name}"), bytes)
            }
        }
        if let Some(bytes) = super::blocks::block_sparse_index_bytes(a, batch, heads, q_len, cx.act) {
            push(out, name!(cx, "{what} block-sparse: masks and random-block indices"), bytes);
        }
        push_input(out, Proj::O, name!(cx, "{what} output (out-projection input)"), cx.act.bytes(eq));
        return;
    }
    if let Some(mla) = &a.mla {
        // The compressed latent (and query latent) and their normed copies feed the up projections.
        let tokens = batch * q_len;
        push(
            out,
            name!(cx, "{what} MLA latent and its norm"),
            2 * cx.act.bytes(tokens * (mla.kv_lora_rank + mla.rope_head_dim)),
        );
        if let Some(r) = mla.q_lora_rank {
            push(out, name!(cx, "{what} MLA query latent and its norm"), 2 * cx.act.bytes(tokens * r));
        }
    }
    let p = cx.setup.dropout_p(a.dropout);
    if materialises_scores(cx.setup, a.dropout) {
        // PyTorch's CPU math path for SDPA computes 16-bit inputs in fp32.
        let core = if cx.setup.attention.fused() { DType::Fp32 } else { cx.act };
        // q·kᵀ and p·v run as batched matmuls on per-head copies; k and v are expanded to all
        // query heads first (repeat_kv), so each is the size of q.
        push(out, name!(cx, "{what} q, k, v (per-head copies)"), 3 * core.bytes(eq));
        // An fp32 softmax in a 16-bit model: autocast runs softmax in fp32 (autocast_mode.cpp's
        // fp32 list) and casts its (dropped-out) output for the matmul; Hugging Face eager
        // attention calls softmax(dtype=torch.float32).to(query.dtype) (`eager_softmax_fp32`).
        let autocast = cx.setup.precision.autocast_weight_copies();
        if core != DType::Fp32 && (autocast || cx.setup.mechanisms.eager_softmax_fp32) {
            push_core(out, name!(cx, "{what} softmax output (fp32)"), DType::Fp32.bytes(scores));
            if p > 0.0 {
                let mask = cx.setup.dropout_mask_dtype(if autocast { DType::Fp32 } else { core });
                push_core(out, name!(cx, "{what} dropout mask ({mask})"), mask.bytes(scores));
                push_core(out, name!(cx, "{what} dropped-out probabilities ({core})"), core.bytes(scores));
            } else {
                push_core(out, name!(cx, "{what} probabilities cast to {core}"), core.bytes(scores));
            }
        } else {
            push_core(out, name!(cx, "{what} softmax output"), core.bytes(scores));
            if p > 0.0 {
                let mask = cx.setup.dropout_mask_dtype(core);
                push_core(out, name!(cx, "{what} dropout mask ({mask})"), mask.bytes(scores));
                push_core(out, name!(cx, "{what} dropped-out probabilities"), core.bytes(scores));
            }
        }
    } else {
        if fused_qkv {
            push(out, name!(cx, "{what} fused qkv"), cx.act.bytes(eq + 2 * ekv));
        } else {
            push(out, name!(cx, "{what} q, k, v"), cx.act.bytes(eq + 2 * ekv));
        }
        push_core(out, name!(cx, "{what} log-sum-exp (fp32)"), DType::Fp32.bytes(batch * heads * q_len));
    }
    if materialises_scores(cx.setup, a.dropout) {
        push_input(out, Proj::O, name!(cx, "{what} output (out-projection input)"), cx.act.bytes(eq));
    } else {
        // The fused kernel saves its output itself; the out-projection reads the same tensor.
        push(out, name!(cx, "{what} output (out-projection input)"), cx.act.bytes(eq));
    }
}

/// The MLP between the norm output and the residual add.
fn mlp_saved(out: &mut Vec<Saved>, cx: &Ctx, layer: &Layer, sh: &StackShape) {
    let m = &layer.mlp;
    let tokens = sh.tokens();
    // Tokens processed by experts: top_k per token, padded to the expert capacity.
    let capacity = if m.experts > 1 { cx.setup.capacity_factor.max(1.0) } else { 1.0 };
    let routed = ((tokens * m.top_k) as f64 * capacity).ceil() as u64;
    let f = routed * m.ffn.div_ceil(sh.tp);
    let (saves_input, extra) = match m.activation {
        Activation::Gelu | Activation::Silu => (true, 0),
        Activation::GeluNew => (true, 3),   // tanh(·), 0.5·x, 1 + tanh(·)
        Activation::QuickGelu => (true, 1), // sigmoid(1.702·x)
        Activation::Relu => (false, 0),     // relu saves its output
    };
    if m.experts > 1 {
        push(out, "router logits (fp32)", sh.seq_split(DType::Fp32.bytes(tokens * m.experts)));
        push(out, "tokens gathered per expert", sh.seq_split(cx.act.bytes(routed * layer.hidden)));
    }
    if saves_input {
        push(out, "activation input", cx.act.bytes(f));
    }
    push(out, "activation intermediates", extra * cx.act.bytes(f));
    if m.gated {
        // act(gate) ⊙ up: the product saves both factors; the product feeds the down projection.
        push(out, "activation output", cx.act.bytes(f));
        push(out, "up projection", cx.act.bytes(f));
        if cx.setup.dropout_p(m.inner_dropout) == 0.0 {
            push_input(out, Proj::Down, "gated product", cx.act.bytes(f));
        }
    } else if cx.setup.dropout_p(m.inner_dropout) == 0.0 {
        push_input(out, Proj::Down, "activation output", cx.act.bytes(f));
    } else {
        push(out, "activation output", cx.act.bytes(f));
    }
    if m.shared_ffn > 0 {
        // DeepSeekMoE's shared experts: a gated MLP every token goes through.
        let sf = tokens * m.shared_ffn.div_ceil(sh.tp);
        push(out, "shared experts: gate, activation, up, product", 4 * cx.act.bytes(sf));
    }
    if cx.setup.dropout_p(m.inner_dropout) > 0.0 {
        let mask = cx.setup.dropout_mask_dtype(cx.act);
        push(out, name!(cx, "inner dropout mask ({mask})"), mask.bytes(f));
        push_input(out, Proj::Down, "inner dropout output (down-projection input)", cx.act.bytes(f));
    }
}

/// Everything one layer of `stack` saves for backward with no recomputation.
pub fn layer_ledger(stack: &Stack, shape: &StackShape, setup: &Setup) -> Vec<Saved> {
    layer_ledger_with(Ctx::new(setup), stack, shape)
}

/// `layer_ledger` with empty names: the same tensors and bytes, for callers that only sum them.
pub fn layer_ledger_unnamed(stack: &Stack, shape: &StackShape, setup: &Setup) -> Vec<Saved> {
    layer_ledger_with(Ctx { names: false, ..Ctx::new(setup) }, stack, shape)
}

fn layer_ledger_with(cx: Ctx, stack: &Stack, shape: &StackShape) -> Vec<Saved> {
    let l = &stack.layer;
    let tokens = shape.tokens();
    let e = tokens * l.hidden;
    let mut out = Vec::new();
    norm_saved(&mut out, &cx, shape, &l.norm, "norm 1", tokens, l.hidden, Proj::Qkv);
    attention_core(&mut out, &cx, l, "self-attention", shape, shape.seq, shape.kv_seq, l.attention.fused_qkv);
    dropout(&mut out, &cx, shape, l.hidden_dropout, "attention", e, cx.act);
    if l.cross_attention {
        norm_saved(&mut out, &cx, shape, &l.norm, "cross-attention norm", tokens, l.hidden, Proj::Qkv);
        attention_core(&mut out, &cx, l, "cross-attention", shape, shape.seq, shape.cross_seq, false);
        dropout(&mut out, &cx, shape, l.hidden_dropout, "cross-attention", e, cx.act);
    }
    if !l.parallel_attn_mlp {
        norm_saved(&mut out, &cx, shape, &l.norm, "norm 2", tokens, l.hidden, Proj::GateUp);
    }
    mlp_saved(&mut out, &cx, l, shape);
    dropout(&mut out, &cx, shape, l.hidden_dropout, "MLP", e, cx.act);
    keep_trainable(&mut out, cx.setup);
    lora_saved(&mut out, &cx, l, shape);
    out
}

/// What LoRA adapters save (PEFT's `lora_B(lora_A(dropout(x)))`): the adapter's input in the
/// adapter dtype (a cast copy when it differs from the activations, a dropped copy and its mask
/// under `lora_dropout`; otherwise the base projection's input, kept above) and the rank-r
/// output of A. Row-parallel projections (o, down) see their input split over tp.
fn lora_saved(out: &mut Vec<Saved>, cx: &Ctx, layer: &Layer, sh: &StackShape) {
    let Some(lora) = cx.setup.finetune.lora() else { return };
    let tokens = sh.tokens();
    let adapter = lora.adapter_dtype;
    let dropped = cx.setup.dropout_p(lora.dropout) > 0.0;
    let h = layer.hidden;
    let inner = layer.attention.heads * layer.attention.head_dim(h);
    let ffn = layer.mlp.ffn;
    for (name, rows, elements) in super::finetune::layer_matrices(layer) {
        if !super::finetune::targeted(&lora.targets, name) {
            continue;
        }
        let d_in = elements / rows;
        let d_in =
            if (name == "o" && d_in == inner) || (name == "down" && d_in == ffn) { d_in.div_ceil(sh.tp) } else { d_in };
        if adapter != cx.act {
            push(out, name!(cx, "LoRA {name}: input cast to {adapter}"), adapter.bytes(tokens * d_in));
        }
        if dropped {
            let mask = cx.setup.dropout_mask_dtype(adapter);
            push(out, name!(cx, "LoRA {name}: dropout mask ({mask})"), mask.bytes(tokens * d_in));
            push(out, name!(cx, "LoRA {name}: dropped input"), adapter.bytes(tokens * d_in));
        }
        push(out, name!(cx, "LoRA {name}: A output (rank {})", lora.rank), adapter.bytes(tokens * lora.rank));
    }
}

/// Bytes one layer keeps for backward under the recompute policy (a layer the policy
/// checkpoints; `every-k` leaves the others whole, see `stack_layers_saved_bytes`).
pub fn layer_saved_bytes(stack: &Stack, shape: &StackShape, setup: &Setup) -> u64 {
    let ledger = layer_ledger(stack, shape, setup);
    let policy = super::checkpoint::policy(setup.recompute);
    super::checkpoint::apply(policy, stack, shape, setup, &ledger, layer_input_bytes(stack, shape, setup)).kept
}

/// The checkpointed layer input (full recomputation keeps only this).
pub fn layer_input_bytes(stack: &Stack, shape: &StackShape, setup: &Setup) -> u64 {
    shape.seq_split(setup.precision.residual_dtype().bytes(shape.tokens() * stack.layer.hidden))
}

/// Bytes all layers of a stack keep for backward.
pub fn stack_layers_saved_bytes(stack: &Stack, shape: &StackShape, setup: &Setup) -> u64 {
    let policy = super::checkpoint::policy(setup.recompute);
    let ckpt = policy.checkpointed(stack.layers);
    let full: u64 = layer_ledger(stack, shape, setup).iter().map(|t| t.bytes).sum();
    layer_saved_bytes(stack, shape, setup) * ckpt + full * (stack.layers - ckpt)
}

/// Tensors a stack keeps outside its layers: position ids, embedding norm and dropout, the
/// final norm, and (for cross-attention) the encoder output read by every layer's K/V.
pub fn stack_extras_ledger(model: &ModelSpec, stack: &Stack, shape: &StackShape, setup: &Setup) -> Vec<Saved> {
    stack_extras_ledger_with(Ctx::new(setup), model, stack, shape)
}

/// `stack_extras_ledger` with empty names, for callers that only sum the bytes.
pub fn stack_extras_ledger_unnamed(model: &ModelSpec, stack: &Stack, shape: &StackShape, setup: &Setup) -> Vec<Saved> {
    stack_extras_ledger_with(Ctx { names: false, ..Ctx::new(setup) }, model, stack, shape)
}

fn stack_extras_ledger_with(cx: Ctx, model: &ModelSpec, stack: &Stack, shape: &StackShape) -> Vec<Saved> {
    let mut out = Vec::new();
    let tokens = shape.tokens();
    let width = crate::model::params::input_width(model, stack);
    let h = stack.layer.hidden;
    match &stack.input {
        StackInput::Hidden => {}
        StackInput::Tokens => {
            if matches!(stack.positions, Positions::Learned { .. }) {
                push(&mut out, name!(cx, "{} position ids (int64)", stack.name), DType::Int64.bytes(shape.seq));
            }
            if stack.token_types > 0 {
                push(&mut out, name!(cx, "{} token type ids (int64)", stack.name), DType::Int64.bytes(tokens));
            }
        }
        StackInput::Patches { channels, image, .. } => {
            push(&mut out, "pixel values (patch conv input)", cx.act.bytes(shape.batch * channels * image * image));
        }
        StackInput::AudioConv { mel_bins, frames } => {
            let b = shape.batch;
            push(&mut out, "mel frames (conv 1 input)", cx.act.bytes(b * mel_bins * frames));
            push(&mut out, "conv 1 output and GELU", 2 * cx.act.bytes(b * h * frames));
            push(&mut out, "conv 2 output and GELU", 2 * cx.act.bytes(b * h * frames.div_ceil(2)));
        }
    }
    if let Some(norm) = &stack.embedding_norm {
        norm_saved(&mut out, &cx, shape, norm, &format!("{} embedding norm", stack.name), tokens, width, Proj::Qkv);
        out.pop(); // its output is the first layer's input, counted there
    }
    if stack.embedding_projection && width != h {
        push(&mut out, "embedding projection input", cx.act.bytes(tokens * width));
    }
    // Embeddings come out in the weights' dtype: fp32 under autocast.
    let emb = cx.residual;
    dropout(&mut out, &cx, shape, stack.embedding_dropout, &format!("{} embedding", stack.name), tokens * width, emb);
    if matches!(stack.positions, Positions::RelativeBias { .. }) {
        push(
            &mut out,
            name!(cx, "{} relative position buckets (int64)", stack.name),
            DType::Int64.bytes(shape.seq * shape.seq),
        );
    }
    if let Some(norm) = &stack.final_norm {
        norm_saved(&mut out, &cx, shape, norm, &format!("{} final norm", stack.name), tokens, h, Proj::Head);
        out.pop(); // the output is the head's or the cross-attention's input
        if stack.causal || model.architecture != Architecture::EncoderDecoder {
            // counted by the head ledger as the head input
        } else {
            push_input(
                &mut out,
                Proj::Qkv,
                name!(cx, "{} output (read by cross-attention K/V)", stack.name),
                cx.act.bytes(tokens * h),
            );
        }
    } else if !stack.causal && model.architecture == Architecture::EncoderDecoder {
        push_input(
            &mut out,
            Proj::Qkv,
            name!(cx, "{} output (read by cross-attention K/V)", stack.name),
            cx.act.bytes(tokens * h),
        );
    }
    keep_trainable(&mut out, cx.setup);
    out
}

/// Logits and loss: what the head saves for backward in training.
pub fn head_ledger(model: &ModelSpec, shapes: &[StackShape], setup: &Setup) -> Vec<Saved> {
    let cx = Ctx::new(setup);
    let mut out = Vec::new();
    let (Some(last), Some(shape)) = (model.last_stack(), shapes.last()) else {
        return out;
    };
    let tokens = shape.tokens();
    let h = last.layer.hidden;
    let e = tokens * h;
    if let Some(lm) = &model.head.lm_head {
        if lm.transform {
            push_input(&mut out, Proj::Head, "MLM transform input", cx.act.bytes(e));
            push(&mut out, "MLM transform GELU input", cx.act.bytes(e));
            push(&mut out, "MLM transform norm input", cx.residual.bytes(e));
            push(&mut out, "MLM transform norm mean/rstd (fp32)", 2 * DType::Fp32.bytes(tokens));
        }
        // With `rescale` (T5) the head input is the rescaled copy; the norm output is not kept.
        push_input(&mut out, Proj::Head, "LM head input", cx.act.bytes(e));
        // The loss upcasts logits to fp32 and log_softmax saves its fp32 output; nll saves targets.
        push(&mut out, "log-softmax output (fp32)", DType::Fp32.bytes(tokens * model.vocab()));
        push(&mut out, "loss targets (int64)", DType::Int64.bytes(tokens));
    } else if let Some(classes) = model.head.classifier {
        push(&mut out, "final norm output", cx.act.bytes(e));
        push(&mut out, "classifier log-softmax (fp32)", DType::Fp32.bytes(shape.batch * classes));
    } else if let Some(dim) = model.head.contrastive_dim {
        for (s, sh) in model.stacks.iter().zip(shapes) {
            push(&mut out, name!(cx, "{} pooled output", s.name), cx.act.bytes(sh.batch * s.layer.hidden));
            push(&mut out, name!(cx, "{} projection", s.name), cx.act.bytes(sh.batch * dim));
        }
        // Image-text logits b×b, both directions, with their log-softmax.
        // logits_per_image (b×b; logits_per_text is its transpose view) and the log-softmax of
        // each direction, in the activation dtype (measured on CLIP ViT-B/32 with saved-tensor hooks).
        push(&mut out, "contrastive logits and both log-softmaxes", 3 * cx.act.bytes(shape.batch * shape.batch));
    } else {
        push(&mut out, "last hidden state", cx.act.bytes(e));
    }
    if model.head.pooler {
        push(&mut out, "pooler tanh output", cx.act.bytes(shape.batch * h));
    }
    keep_trainable(&mut out, setup);
    out
}

/// Elements of logits the head produces (0 when there is no vocabulary head).
pub fn logits_elements(model: &ModelSpec, shapes: &[StackShape]) -> u64 {
    match (model.head.lm_head.is_some(), shapes.last()) {
        (true, Some(s)) => s.tokens() * model.vocab(),
        _ => 0,
    }
}

/// Bytes of the input tensors (token ids, labels) for one micro-batch.
pub fn input_bytes(model: &ModelSpec, shapes: &[StackShape], setup: &Setup) -> u64 {
    let mut total = 0;
    for (s, sh) in model.stacks.iter().zip(shapes) {
        if matches!(s.input, StackInput::Tokens) {
            total += DType::Int64.bytes(sh.tokens());
        }
    }
    if setup.training() && model.head.lm_head.is_some() {
        if let Some(sh) = shapes.last() {
            total += DType::Int64.bytes(sh.tokens()); // labels
        }
    }
    total
}
