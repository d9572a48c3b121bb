//! Saved-tensor ledgers of the blocks that are not transformer layers (`model::modules`), and
//! BigBird's block-sparse attention core.
//!
//! The rules are the transformer ledger's (`activations`): each block lists the distinct tensors
//! autograd keeps between its forward and its backward. Per PyTorch kernel: a convolution or
//! linear layer saves its input; BatchNorm (cuDNN and native) and GroupNorm save their input and
//! the per-channel (per-group) fp32 mean and inverse deviation; ReLU saves its output (torchvision
//! runs it in place on the BatchNorm output); SiLU and GELU save their input; max-pooling saves
//! its input and int64 indices of its output's size; nearest upsampling and concatenation save
//! nothing (the next convolution saves the new tensor); an LSTM (cuDNN) saves its input, its
//! output, the initial states and a reserve of the gate activations, cell and hidden states of
//! every layer and step; the loss saves its fp32 log-probabilities. A block lists its input when
//! its first operation saves it, except torchvision's residual blocks, whose output is saved by
//! their final in-place ReLU and which therefore list their output instead.
//!
//! Checked against `torch.autograd.graph.saved_tensors_hooks` (distinct storages, parameters and
//! buffers excluded) on CPU for small configurations: `tests/data/families_saved.json`,
//! reproduced by `scripts/families_check.py`.
//!
//! Under autocast (AMP), GroupNorm and LayerNorm run in fp32 (their outputs are fp32, the next
//! convolution saves a 16-bit copy); everything else follows the activation dtype.
//!
//! Training runs the trainable modules with autograd and the frozen ones without (their forward
//! working set is a transient, their outputs are inputs of the trainable ones). Inference runs
//! every module once without autograd (a VAE decodes; a UNet with classifier-free guidance runs on
//! twice the batch) and the peak is the largest working set of one module.

use super::activations::{self as act, StackShape};
use super::estimate::LedgerLine;
use super::setup::{AttentionKernel, Recompute, Setup};
use crate::dtype::DType;
use crate::model::modules::{self, Block, Module, ResBlockKind, Step};
use crate::model::spec::*;
use serde::Serialize;

/// One saved tensor of a module block.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Tensor {
    pub name: String,
    pub bytes: u64,
    /// Part of an attention core (selective recomputation drops it).
    pub attention_core: bool,
}

/// The saved tensors of one block of a module.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BlockLedger {
    pub module: String,
    pub block: String,
    pub tensors: Vec<Tensor>,
    /// The block's input: what gradient checkpointing (`--recompute full`) keeps.
    pub input_bytes: u64,
}

impl BlockLedger {
    pub fn total(&self) -> u64 {
        self.tensors.iter().map(|t| t.bytes).sum()
    }
}

/// The runtime shapes a module sees in one step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ModuleShape {
    pub batch: u64,
    /// Resolution of the first block (image, or latent for a UNet); 0 for sequence modules.
    pub resolution: u64,
    /// Tokens per sequence (LSTM steps, text encoder positions).
    pub seq: u64,
}

/// dtypes of a module's tensors under the precision recipe.
#[derive(Clone, Copy, Debug)]
struct Cx<'a> {
    setup: &'a Setup,
    act: DType,
    /// GroupNorm/LayerNorm outputs: fp32 under autocast.
    norm_out: DType,
    batch: u64,
}

impl<'a> Cx<'a> {
    fn new(setup: &'a Setup, batch: u64) -> Self {
        let act = setup.precision.activation_dtype();
        let norm_out = if setup.precision.autocast_weight_copies() { DType::Fp32 } else { act };
        Cx { setup, act, norm_out, batch }
    }
}

fn t(out: &mut Vec<Tensor>, name: impl Into<String>, bytes: u64) {
    if bytes > 0 {
        out.push(Tensor { name: name.into(), bytes, attention_core: false });
    }
}

fn hw(res: u64, at: u64) -> u64 {
    let side = res / at.max(1);
    side * side
}

/// Shapes of every module of the model under `setup` (training or inference), in order.
pub fn module_shapes(model: &ModelSpec, setup: &Setup) -> Vec<ModuleShape> {
    model
        .modules
        .iter()
        .map(|m| {
            let mut batch = setup.micro_batch;
            let (resolution, seq) = match m {
                Module::Resnet(r) => (r.image, 0),
                Module::Unet(u) => {
                    if !setup.training() && u.guidance {
                        batch *= 2;
                    }
                    (m.resolution(u.image), 0)
                }
                Module::Vae(v) => (v.image, 0),
                Module::TextEncoder(te) => (0, stack_positions(&te.stack)),
                Module::Lstm(l) => (
                    0,
                    match l.length {
                        StackLength::Seq => setup.seq,
                        StackLength::Tgt => setup.tgt_seq,
                    },
                ),
            };
            ModuleShape { batch, resolution, seq }
        })
        .collect()
}

fn stack_positions(s: &Stack) -> u64 {
    match s.positions {
        Positions::Learned { max, .. } => max,
        _ => 0,
    }
}

/// A transformer layer of a UNet's spatial transformer, in the terms of the transformer ledger:
/// LayerNorm before self-attention (q/k/v without bias), cross-attention over `cross`-wide states
/// and a GEGLU feed-forward of 4·c (diffusers `BasicTransformerBlock`).
fn unet_layer(c: u64, heads: u64) -> Stack {
    let norm = Norm { kind: NormKind::LayerNorm, bias: true };
    Stack {
        name: "unet transformer".into(),
        causal: false,
        input: StackInput::Tokens,
        positions: Positions::None,
        length: StackLength::Seq,
        token_types: 0,
        embedding_norm: None,
        embedding_projection: false,
        layers: 1,
        shared_layers: false,
        layer: Layer {
            hidden: c,
            attention: Attention {
                heads,
                kv_heads: None,
                head_dim: None,
                q_bias: false,
                k_bias: false,
                v_bias: false,
                o_bias: true,
                dropout: 0.0,
                fused_qkv: false,
                sparse: None,
                mla: None,
            },
            cross_attention: true,
            mlp: Mlp {
                ffn: 4 * c,
                gated: true,
                bias: true,
                activation: Activation::Gelu,
                experts: 1,
                top_k: 1,
                inner_dropout: 0.0,
                shared_ffn: 0,
            },
            norm,
            norm_placement: NormPlacement::Pre,
            parallel_attn_mlp: false,
            hidden_dropout: 0.0,
        },
        final_norm: None,
        embedding_dropout: 0.0,
        visual: None,
    }
}

/// Batch-norm statistics kept for backward: fp32 mean and inverse deviation per channel.
fn bn_stats(out: &mut Vec<Tensor>, what: &str, channels: u64) {
    t(out, format!("{what} mean/invstd (fp32)"), DType::Fp32.bytes(2 * channels));
}

/// GroupNorm statistics: fp32 mean and rstd per sample and group.
fn gn_stats(out: &mut Vec<Tensor>, cx: &Cx, what: &str, groups: u64) {
    t(out, format!("{what} mean/rstd (fp32)"), DType::Fp32.bytes(2 * cx.batch * groups));
}

/// What one block saves for backward with no recomputation, for a module whose first block runs
/// at `res` (and sequence modules at `shape.seq` steps).
fn block_saved(step: &Step, m: &Module, shape: &ModuleShape, cx: &Cx) -> (Vec<Tensor>, u64) {
    let b = cx.batch;
    let a = cx.act;
    let res = shape.resolution;
    let mut out = Vec::new();
    let input: u64 = match step.block {
        Block::Conv { cin, cout: _, k: _, stride: _, bias: _, at, norm_groups } => {
            let e = b * cin * hw(res, at);
            match norm_groups {
                Some(g) => {
                    t(&mut out, "GroupNorm input", a.bytes(e));
                    gn_stats(&mut out, cx, "GroupNorm", g);
                    t(&mut out, "GroupNorm output (SiLU input)", cx.norm_out.bytes(e));
                    t(&mut out, "SiLU output (conv input)", a.bytes(e));
                }
                // The UNet's conv_in reads the noisy latents and the VAE decoder's post_quant_conv
                // the latents: inputs (or the posterior, below), not counted here.
                None if step.reads_input => {}
                None => t(&mut out, "conv input", a.bytes(e)),
            }
            a.bytes(e)
        }
        Block::Stem { cin, cout } => {
            let img = b * cin * res * res;
            if a != DType::Fp32 {
                t(&mut out, format!("pixel values cast to {a} (conv1 input)"), a.bytes(img));
            }
            let half = b * cout * hw(res, 2);
            t(&mut out, "conv1 output (bn1 input)", a.bytes(half));
            bn_stats(&mut out, "bn1", cout);
            t(&mut out, "ReLU output (max-pool input)", a.bytes(half));
            let quarter = b * cout * hw(res, 4);
            t(&mut out, "max-pool indices (int64)", DType::Int64.bytes(quarter));
            t(&mut out, "max-pool output (read by layer1)", a.bytes(quarter));
            DType::Fp32.bytes(img)
        }
        Block::Residual { kind, cin, width, cout, stride, at } => {
            let a_in = b * hw(res, at);
            let a_out = b * hw(res, at * stride);
            match kind {
                ResBlockKind::Bottleneck => {
                    t(&mut out, "conv1 output (bn1 input)", a.bytes(width * a_in));
                    bn_stats(&mut out, "bn1", width);
                    t(&mut out, "ReLU 1 output (conv2 input)", a.bytes(width * a_in));
                    t(&mut out, "conv2 output (bn2 input)", a.bytes(width * a_out));
                    bn_stats(&mut out, "bn2", width);
                    t(&mut out, "ReLU 2 output (conv3 input)", a.bytes(width * a_out));
                    t(&mut out, "conv3 output (bn3 input)", a.bytes(cout * a_out));
                    bn_stats(&mut out, "bn3", cout);
                }
                ResBlockKind::Basic => {
                    t(&mut out, "conv1 output (bn1 input)", a.bytes(cout * a_out));
                    bn_stats(&mut out, "bn1", cout);
                    t(&mut out, "ReLU 1 output (conv2 input)", a.bytes(cout * a_out));
                    t(&mut out, "conv2 output (bn2 input)", a.bytes(cout * a_out));
                    bn_stats(&mut out, "bn2", cout);
                }
            }
            if stride != 1 || cin != cout {
                t(&mut out, "downsample conv output (its BatchNorm input)", a.bytes(cout * a_out));
                bn_stats(&mut out, "downsample BatchNorm", cout);
            }
            t(&mut out, "block output (in-place ReLU; the next block's input)", a.bytes(cout * a_out));
            a.bytes(cin * a_in)
        }
        Block::Pool { features, at, classes } => {
            if let Some(n) = classes {
                t(&mut out, "pooled features (fc input)", a.bytes(b * features));
                t(&mut out, "classifier log-softmax (fp32)", DType::Fp32.bytes(b * n));
                t(&mut out, "loss total weight (fp32 scalar)", DType::Fp32.bytes(1));
            }
            a.bytes(b * features * hw(res, at))
        }
        Block::ResnetBlock { cin, cout, temb, groups, at, strided_input } => {
            let p = b * hw(res, at);
            t(&mut out, "input (norm1 and shortcut input)", a.bytes(cin * p));
            if strided_input && cin != cout {
                t(&mut out, "contiguous copy of the input (shortcut conv input)", a.bytes(cin * p));
            }
            gn_stats(&mut out, cx, "norm1", groups);
            t(&mut out, "norm1 output (SiLU input)", cx.norm_out.bytes(cin * p));
            t(&mut out, "SiLU output (conv1 input)", a.bytes(cin * p));
            if let Some(d) = temb {
                t(&mut out, "SiLU(time embedding) (time_emb_proj input)", a.bytes(b * d));
            }
            t(&mut out, "conv1 output + time embedding (norm2 input)", a.bytes(cout * p));
            gn_stats(&mut out, cx, "norm2", groups);
            t(&mut out, "norm2 output (SiLU input)", cx.norm_out.bytes(cout * p));
            t(&mut out, "SiLU output (conv2 input)", a.bytes(cout * p));
            a.bytes(cin * p)
        }
        Block::SpatialTransformer { c, heads, depth, context, groups, at, .. } => {
            let tokens = hw(res, at);
            let e = b * c * tokens;
            t(&mut out, "input (GroupNorm input, residual)", a.bytes(e));
            gn_stats(&mut out, cx, "GroupNorm", groups);
            t(&mut out, "GroupNorm output (proj_in input)", a.bytes(e));
            let stack = unet_layer(c, heads);
            let sh = StackShape::new(b, tokens, context);
            for i in 0..depth {
                for s in act::layer_ledger(&stack, &sh, cx.setup) {
                    let name = if depth > 1 { format!("block {i}: {}", s.name) } else { s.name };
                    out.push(Tensor { name, bytes: s.bytes, attention_core: s.attention_core });
                }
            }
            t(&mut out, "last block output (proj_out input)", a.bytes(e));
            a.bytes(e)
        }
        Block::VaeAttention { c, groups, at } => {
            let tokens = hw(res, at);
            let e = b * c * tokens;
            t(&mut out, "input (GroupNorm input, residual)", a.bytes(e));
            gn_stats(&mut out, cx, "GroupNorm", groups);
            // q, k and v each read the transposed GroupNorm output through a contiguous copy.
            t(&mut out, "GroupNorm output, copied by each of q, k, v", a.bytes(3 * e));
            vae_attention_core(&mut out, cx, c, tokens);
            a.bytes(e)
        }
        Block::Downsample { c, at, padded } => {
            let e = b * c * hw(res, at);
            if padded {
                let side = res / at + 1;
                t(&mut out, "padded input (conv input)", a.bytes(b * c * side * side));
            } else {
                t(&mut out, "conv input", a.bytes(e));
            }
            a.bytes(e)
        }
        Block::Upsample { c, at } => {
            let e = b * c * hw(res, at);
            t(&mut out, "upsampled tensor (conv input)", a.bytes(4 * e));
            a.bytes(e)
        }
        Block::TimeEmbedding { input, dim } => {
            t(&mut out, "sinusoidal embedding (linear_1 input)", a.bytes(b * input));
            t(&mut out, "linear_1 output (SiLU input)", a.bytes(b * dim));
            t(&mut out, "SiLU output (linear_2 input)", a.bytes(b * dim));
            a.bytes(b * input)
        }
        // The embedding saves its int64 indices: the token ids, counted with the inputs.
        Block::Embedding { .. } => DType::Int64.bytes(b * shape.seq),
        Block::FeatureProjection { features, dim } => {
            t(&mut out, "pooled image features (linear input)", a.bytes(b * features));
            t(&mut out, "linear output (BatchNorm1d input)", a.bytes(b * dim));
            bn_stats(&mut out, "BatchNorm1d", dim);
            a.bytes(b * features)
        }
        Block::Lstm { input, hidden, layers, directions, prefix_steps } => {
            let steps = b * (shape.seq + prefix_steps);
            t(&mut out, "input sequence", a.bytes(steps * input));
            t(&mut out, "initial and final h, c", a.bytes(4 * layers * directions * b * hidden));
            // cuDNN's reserve space: gates i, f, g, o, the cell state and the hidden state of every
            // layer, direction and step.
            t(
                &mut out,
                "reserve: 4 gates, cell and hidden state per step and layer",
                a.bytes(6 * layers * directions * steps * hidden),
            );
            t(&mut out, "output sequence", a.bytes(steps * directions * hidden));
            a.bytes(steps * input)
        }
        Block::Logits { vocab, hidden } => {
            // The linear layer's input is the LSTM output (saved above); the loss keeps fp32
            // log-probabilities (logits themselves are transient, see `ModulesPrepared::logits`).
            t(&mut out, "log-softmax output (fp32)", DType::Fp32.bytes(b * shape.seq * vocab));
            a.bytes(b * shape.seq * hidden)
        }
        Block::Transformer { .. } => {
            let Module::TextEncoder(te) = m else { return (out, 0) };
            let s = &te.stack;
            let h = s.layer.hidden;
            let tokens = b * shape.seq;
            let sh = StackShape::new(b, shape.seq, 0);
            for l in 0..s.layers {
                for x in act::layer_ledger(s, &sh, cx.setup) {
                    let name = format!("layer {l}: {}", x.name);
                    out.push(Tensor { name, bytes: x.bytes, attention_core: x.attention_core });
                }
            }
            if s.final_norm.is_some() {
                t(&mut out, "final norm input", a.bytes(tokens * h));
                t(&mut out, "final norm mean/rstd (fp32)", DType::Fp32.bytes(2 * tokens));
            }
            // (the position ids it saves are a slice of the module's buffer)
            a.bytes(tokens * h)
        }
    };
    (out, input)
}

/// The VAE's single-head attention between its projections (q, k, v, the core, the output).
fn vae_attention_core(out: &mut Vec<Tensor>, cx: &Cx, c: u64, tokens: u64) {
    let b = cx.batch;
    let e = b * c * tokens;
    t(out, "q, k, v", cx.act.bytes(3 * e));
    if cx.setup.attention == AttentionKernel::Eager {
        out.push(Tensor {
            name: "softmax output".into(),
            bytes: cx.act.bytes(b * tokens * tokens),
            attention_core: true,
        });
    } else {
        out.push(Tensor {
            name: "log-sum-exp (fp32)".into(),
            bytes: DType::Fp32.bytes(b * tokens),
            attention_core: true,
        });
    }
    t(out, "attention output (to_out input)", cx.act.bytes(e));
}

/// Peak bytes alive inside one block's forward without autograd, its input and output included.
fn block_working(step: &Step, m: &Module, shape: &ModuleShape, cx: &Cx) -> u64 {
    let b = cx.batch;
    let a = cx.act;
    let res = shape.resolution;
    match step.block {
        Block::Conv { cin, cout, stride, at, norm_groups, .. } => {
            let (i, o) = (b * cin * hw(res, at), b * cout * hw(res, at * stride));
            if norm_groups.is_some() {
                a.bytes((2 * i).max(i + o))
            } else {
                a.bytes(i + o)
            }
        }
        Block::Stem { cin, cout } => {
            let img = DType::Fp32.bytes(b * cin * res * res);
            let (half, quarter) = (b * cout * hw(res, 2), b * cout * hw(res, 4));
            (img + a.bytes(2 * half)).max(a.bytes(half + quarter) + DType::Int64.bytes(quarter))
        }
        Block::Residual { kind, cin, width, cout, stride, at } => {
            let a_in = b * hw(res, at);
            let a_out = b * hw(res, at * stride);
            let ds = if stride != 1 || cin != cout { cout * a_out } else { 0 };
            let inner = match kind {
                ResBlockKind::Bottleneck => (2 * width * a_in)
                    .max(width * (a_in + a_out))
                    .max(width * a_out + cout * a_out)
                    .max(2 * cout * a_out + ds),
                ResBlockKind::Basic => 2 * cout * a_out + ds,
            };
            a.bytes(cin * a_in + inner)
        }
        Block::Pool { features, at, classes } => a.bytes(b * features * (hw(res, at) + 1) + b * classes.unwrap_or(0)),
        Block::ResnetBlock { cin, cout, at, .. } => {
            let p = b * hw(res, at);
            let k = if cin != cout { 4 } else { 3 };
            a.bytes((3 * cin * p).max(cin * p + k * cout * p))
        }
        Block::SpatialTransformer { c, heads, context, cross, at, .. } => {
            let n = hw(res, at);
            let e = b * c * n;
            // The block's residual input, the running hidden state and the norm output, plus the
            // larger of attention (q, k, v, output; scores and probabilities when materialised)
            // and GEGLU (the 8c projection, GELU of its gate half, the product).
            let scores =
                if cx.setup.attention == AttentionKernel::Eager { 2 * b * heads * n * n.max(context) } else { 0 };
            let attention = 4 * e + scores + b * context * cross;
            let ff = 16 * e;
            a.bytes(3 * e + attention.max(ff))
        }
        Block::VaeAttention { c, at, .. } => {
            let n = hw(res, at);
            let e = b * c * n;
            let scores = if cx.setup.attention == AttentionKernel::Eager { 2 * b * n * n } else { 0 };
            a.bytes(2 * e + 4 * e + scores)
        }
        Block::Downsample { c, at, .. } => a.bytes(b * c * hw(res, at) * 5 / 4),
        Block::Upsample { c, at } => a.bytes(9 * b * c * hw(res, at)),
        Block::TimeEmbedding { input, dim } => a.bytes(b * (input + 2 * dim)),
        Block::Embedding { dim, .. } => a.bytes(b * shape.seq * dim) + DType::Int64.bytes(b * shape.seq),
        Block::FeatureProjection { features, dim } => a.bytes(b * (features + 2 * dim)),
        Block::Lstm { input, hidden, layers, directions, prefix_steps } => {
            let steps = b * (shape.seq + prefix_steps);
            let between = if layers > 1 { 2 } else { 1 };
            a.bytes(steps * input + between * steps * directions * hidden + 4 * layers * directions * b * hidden)
        }
        Block::Logits { hidden, vocab } => a.bytes(b * shape.seq * (hidden + vocab)),
        Block::Transformer { .. } => {
            let Module::TextEncoder(te) = m else { return 0 };
            let l = &te.stack.layer;
            let tokens = b * shape.seq;
            let h = l.hidden;
            let heads = l.attention.heads;
            let scores =
                if cx.setup.attention == AttentionKernel::Eager { 2 * b * heads * shape.seq * shape.seq } else { 0 };
            let attention = 4 * tokens * h + scores;
            let mlp = tokens * l.mlp.ffn * if l.mlp.gated { 3 } else { 2 };
            a.bytes(2 * tokens * h + attention.max(mlp))
        }
    }
}

/// Output elements of a block (what a UNet keeps as a skip connection).
fn block_output_bytes(step: &Step, shape: &ModuleShape, cx: &Cx) -> u64 {
    let b = cx.batch;
    let res = shape.resolution;
    let e = match step.block {
        Block::Conv { cout, stride, at, .. } => cout * hw(res, at * stride),
        Block::ResnetBlock { cout, at, .. } => cout * hw(res, at),
        Block::SpatialTransformer { c, at, .. } => c * hw(res, at),
        Block::Downsample { c, at, .. } => c * hw(res, at * 2),
        _ => 0,
    };
    cx.act.bytes(b * e)
}

/// Tensors a module keeps beside its blocks in training: a UNet's text-encoder states (read by
/// every cross-attention's K/V), its timestep embedding (read by every ResNet block) and its fp32
/// loss inputs.
fn module_extras(m: &Module, shape: &ModuleShape, cx: &Cx) -> Vec<Tensor> {
    let mut out = Vec::new();
    let b = cx.batch;
    match m {
        Module::Unet(u) => {
            let temb = 4 * u.channels.first().copied().unwrap_or(0);
            t(&mut out, "timestep embedding (every ResNet block's SiLU input)", cx.act.bytes(b * temb));
            // F.mse_loss(pred.float(), target.float()) saves both; the target's upcast is a copy of
            // the noise (an input) unless the activations are fp32 already.
            let latents = b * u.out_channels * shape.resolution * shape.resolution;
            t(&mut out, "prediction upcast for the MSE loss (fp32)", DType::Fp32.bytes(latents));
            if cx.act != DType::Fp32 {
                t(&mut out, "target upcast for the MSE loss (fp32)", DType::Fp32.bytes(latents));
            }
        }
        Module::Vae(v) => {
            // DiagonalGaussianDistribution: clamp(logvar) saves the moments (mean and log-variance,
            // the mean read by the decoder is a view of them), exp() saves std and var.
            let side = shape.resolution >> (v.channels.len().saturating_sub(1));
            let z = b * v.latent_channels * side * side;
            t(&mut out, "posterior moments (mean and log-variance)", cx.act.bytes(2 * z));
            t(&mut out, "posterior std and var", cx.act.bytes(2 * z));
        }
        _ => {}
    }
    out
}

/// Inputs a module reads from the data loader: fp32 images, int64 token ids and labels.
fn module_inputs(m: &Module, shape: &ModuleShape, setup: &Setup) -> u64 {
    let b = shape.batch;
    match m {
        Module::Resnet(r) => {
            let labels = if setup.training() && r.classes.is_some() { DType::Int64.bytes(b) } else { 0 };
            DType::Fp32.bytes(b * r.in_channels * r.image * r.image) + labels
        }
        Module::Vae(v) if setup.training() => DType::Fp32.bytes(b * v.in_channels * v.image * v.image),
        Module::Unet(u) => {
            // Latents, noise and the noisy latents (the noise is the training target), the
            // timesteps and the text encoder states every cross-attention reads.
            let a = setup.precision.activation_dtype();
            let latents = b * u.in_channels * shape.resolution * shape.resolution;
            let n = if setup.training() { 3 } else { 2 };
            a.bytes(n * latents + b * u.context_len * u.cross_attention_dim) + DType::Int64.bytes(b)
        }
        Module::TextEncoder(_) => DType::Int64.bytes(b * shape.seq),
        Module::Lstm(l) => {
            let ids = if l.vocab.is_some() { DType::Int64.bytes(b * shape.seq) } else { 0 };
            let targets =
                if setup.training() && l.output_vocab.is_some() { DType::Int64.bytes(b * shape.seq) } else { 0 };
            ids + targets
        }
        _ => 0,
    }
}

/// Which parts of a module run in this phase: training runs everything of a trainable module
/// and a frozen VAE's encoder (it makes the latents); inference runs a VAE's decoder.
fn parts_run(m: &Module, setup: &Setup) -> Vec<Vec<Step>> {
    let mut parts = m.parts();
    if let Module::Vae(_) = m {
        if setup.training() && !m.trainable() {
            parts.truncate(1);
        } else if !setup.training() {
            parts.remove(0);
        }
    }
    parts
}

/// The saved-tensor ledger of every trainable module in training, block by block (no
/// recomputation applied).
pub fn ledgers(model: &ModelSpec, setup: &Setup) -> Vec<BlockLedger> {
    let mut out = Vec::new();
    if !setup.training() {
        return out;
    }
    for (m, shape) in model.modules.iter().zip(module_shapes(model, setup)) {
        if !m.trainable() {
            continue;
        }
        let cx = Cx::new(setup, shape.batch);
        for part in parts_run(m, setup) {
            for s in &part {
                let (tensors, input_bytes) = block_saved(s, m, &shape, &cx);
                out.push(BlockLedger { module: m.name().into(), block: s.label.clone(), tensors, input_bytes });
            }
        }
        let extras = module_extras(m, &shape, &cx);
        if !extras.is_empty() {
            out.push(BlockLedger {
                module: m.name().into(),
                block: "inputs and loss".into(),
                tensors: extras,
                input_bytes: 0,
            });
        }
    }
    out
}

/// The no-autograd forward peak of the parts of a module that run, including the skip
/// connections a UNet keeps alive and the states it reads.
fn forward_peak(m: &Module, shape: &ModuleShape, setup: &Setup) -> u64 {
    let cx = Cx::new(setup, shape.batch);
    let mut peak = 0;
    for part in parts_run(m, setup) {
        // A UNet's timestep embedding stays alive through its forward.
        let persistent: u64 = match m {
            Module::Unet(u) => cx.act.bytes(shape.batch * 4 * u.channels.first().copied().unwrap_or(0)),
            _ => 0,
        };
        let mut skips: Vec<u64> = Vec::new();
        for s in &part {
            if s.pop {
                skips.pop();
            }
            let live: u64 = persistent + skips.iter().sum::<u64>();
            peak = peak.max(live + block_working(s, m, shape, &cx));
            if s.push {
                skips.push(block_output_bytes(s, shape, &cx));
            }
        }
    }
    peak
}

/// Everything the estimate needs from the modules, computed once per setup.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ModulesPrepared {
    /// Saved activations of the trainable modules for one micro-batch, under the recompute policy.
    pub saved: u64,
    /// Backward transient of the largest block: gradients of its largest tensors, and its
    /// recomputed forward under checkpointing.
    pub transient: u64,
    /// Elements of vocabulary logits (LSTM decoders), as for a language-model head.
    pub logits: u64,
    /// Training: the largest no-autograd forward of a frozen module (before the trainable ones).
    pub frozen_forward: u64,
    /// Inference: the largest forward working set of a module.
    pub inference: u64,
    /// Data-loader inputs (images, token ids, labels, latents).
    pub inputs: u64,
    /// Parameters of the trainable and of the frozen modules.
    pub trainable_params: u64,
    pub frozen_params: u64,
    /// BatchNorm running statistics and position-id buffers.
    pub buffers: u64,
}

pub fn prepare(model: &ModelSpec, setup: &Setup) -> ModulesPrepared {
    if model.modules.is_empty() {
        return ModulesPrepared::default();
    }
    let shapes = module_shapes(model, setup);
    let mut p = ModulesPrepared::default();
    let (trainable, frozen) = modules::split_params(model);
    p.trainable_params = trainable.params;
    p.frozen_params = frozen.params;
    p.buffers = modules::buffer_bytes(model);
    for (m, shape) in model.modules.iter().zip(&shapes) {
        p.inputs += module_inputs(m, shape, setup);
        if setup.training() {
            if m.trainable() {
                if let Module::Lstm(l) = m {
                    if let Some(v) = l.output_vocab {
                        p.logits += shape.batch * shape.seq * v;
                    }
                }
            } else {
                p.frozen_forward = p.frozen_forward.max(forward_peak(m, shape, setup));
            }
        } else {
            p.inference = p.inference.max(forward_peak(m, shape, setup));
        }
    }
    for l in ledgers(model, setup) {
        let full = l.total();
        let largest = l.tensors.iter().map(|t| t.bytes).max().unwrap_or(0);
        let (kept, recomputed) = match setup.recompute.coarse() {
            Recompute::None => (full, 0),
            Recompute::Selective => {
                let core: u64 = l.tensors.iter().filter(|t| t.attention_core).map(|t| t.bytes).sum();
                (full - core, core)
            }
            // Gradient checkpointing per block keeps its input and recomputes the rest in backward.
            _ => (l.input_bytes, full),
        };
        p.saved += kept;
        p.transient = p.transient.max(recomputed + 2 * largest);
    }
    p
}

/// Ledger lines of the modules for the report (identical lines of a module grouped with a count).
pub fn ledger_lines(model: &ModelSpec, setup: &Setup) -> Vec<LedgerLine> {
    let mut out: Vec<LedgerLine> = Vec::new();
    for l in ledgers(model, setup) {
        let recompute_all = setup.recompute.coarse() == Recompute::Full;
        for x in &l.tensors {
            let recomputed = recompute_all || (setup.recompute.coarse() == Recompute::Selective && x.attention_core);
            let block = format!("{} {}", l.module, strip_index(&l.block));
            if let Some(line) = out
                .iter_mut()
                .find(|o| o.block == block && o.tensor == x.name && o.bytes == x.bytes && o.recomputed == recomputed)
            {
                line.count += 1;
            } else {
                out.push(LedgerLine { block, tensor: x.name.clone(), bytes: x.bytes, count: 1, recomputed });
            }
        }
        if recompute_all && l.input_bytes > 0 {
            let block = format!("{} {}", l.module, strip_index(&l.block));
            out.push(LedgerLine {
                block,
                tensor: "checkpointed block input".into(),
                bytes: l.input_bytes,
                count: 1,
                recomputed: false,
            });
        }
    }
    out
}

/// `down 1 resnet 0` → `down 1 resnet`: blocks of one level share a line.
fn strip_index(label: &str) -> String {
    match label.rsplit_once(' ') {
        Some((head, tail)) if tail.chars().all(|c| c.is_ascii_digit()) && head.contains(' ') => head.to_string(),
        _ => label.to_string(),
    }
}

/// Bytes of the frozen modules' weights: the compute dtype in training (diffusers keeps frozen
/// models in `weight_dtype`), the weight dtype in inference.
pub fn frozen_weight_bytes(prepared: &ModulesPrepared, setup: &Setup) -> u64 {
    frozen_weight_dtype(setup).bytes(prepared.frozen_params)
}

/// Model states with the frozen modules' weights added (they are held whole on the first stage).
pub fn with_frozen_weights(
    states: super::states::ModelStates,
    prepared: &ModulesPrepared,
    setup: &Setup,
    first: bool,
) -> super::states::ModelStates {
    if !first {
        return states;
    }
    super::states::ModelStates { weights: states.weights + frozen_weight_bytes(prepared, setup), ..states }
}

/// BigBird's block-sparse attention core as Hugging Face computes it
/// (`BigBirdBlockSparseAttention.bigbird_block_sparse_attention`): for each of `batch·heads`
/// heads of width `d` over `seq` tokens (padded to whole blocks), the tensors its matmuls and
/// softmaxes save, as `(name, elements, attention_core)`. `None` when the sequence is at most
/// `(5 + 2·random)·block` tokens, where Hugging Face falls back to full attention.
///
/// With `n = seq/block` blocks, `m = n − 4` middle query blocks, `r` random blocks and
/// `E = batch·heads·seq·d`: the K and V projections (2E); the first and last query blocks attend
/// to every key through transposed copies of K and of V (4E) and softmax rows of `block × seq`;
/// the second and second-to-last gather `(4 + r)` key and value blocks (4 copies) with softmax
/// rows of `(4 + r)·block`; the middle blocks multiply copies of their queries (4) with a 3-block
/// window of keys and values and `r` gathered random blocks (copies), and keep a softmax of
/// `(5 + r)·block` keys; 8 single-block copies of queries, keys and values feed the einsums.
/// Linear in `seq`. Checked exactly against `saved_tensors_hooks` (transformers 5.23):
/// `tests/data/families_saved.json`.
pub fn block_sparse_saved(a: &Attention, batch: u64, heads: u64, d: u64, seq: u64) -> Option<Vec<(&'static str, u64)>> {
    let sp = a.sparse?;
    let blk = sp.block.max(1);
    let r = sp.random;
    if seq <= (5 + 2 * r) * blk {
        return None;
    }
    let n = seq.div_ceil(blk);
    let s = n * blk;
    let m = n - 4;
    let bh = batch * heads;
    let e = bh * s * d;
    Some(vec![
        ("block-sparse: K and V projections", 2 * e),
        ("block-sparse: first/last query blocks: Kᵀ and V copies", 4 * e),
        ("block-sparse: first/last query blocks: softmax output", 2 * bh * blk * s),
        ("block-sparse: second/second-last: gathered K and V", 4 * bh * (4 + r) * blk * d),
        ("block-sparse: second/second-last: softmax output", 2 * bh * blk * (4 + r) * blk),
        ("block-sparse: middle: window and random K, V copies, query copies", bh * m * blk * d * (2 * 3 + 2 * r + 4)),
        ("block-sparse: middle: softmax output", bh * m * blk * (5 + r) * blk),
        ("block-sparse: single-block q/k/v copies", 8 * bh * blk * d),
    ])
}

/// The masks and random-block indices the block-sparse path saves (bytes: a float mask per token
/// in the activation dtype, int64 indices of the random blocks and of the window diagonal).
pub fn block_sparse_index_bytes(a: &Attention, batch: u64, heads: u64, seq: u64, act: DType) -> Option<u64> {
    let sp = a.sparse?;
    let blk = sp.block.max(1);
    if seq <= (5 + 2 * sp.random) * blk {
        return None;
    }
    let n = seq.div_ceil(blk);
    Some(act.bytes(batch * n * blk) + DType::Int64.bytes(batch * heads * (n - 2) * sp.random + 3 * (n - 4)))
}

/// Elements of the block-sparse attention's working set in a forward without autograd (the
/// sum of what training saves: every intermediate of the Python implementation exists at some
/// point of the layer).
pub fn block_sparse_working(a: &Attention, batch: u64, heads: u64, d: u64, seq: u64) -> Option<u64> {
    block_sparse_saved(a, batch, heads, d, seq).map(|parts| parts.iter().map(|(_, e)| e).sum())
}

/// One line per module for the report: what it is, whether it trains, the shape it runs at.
pub fn describe(model: &ModelSpec, setup: &Setup) -> Vec<String> {
    if model.modules.is_empty() {
        return Vec::new();
    }
    let parts: Vec<String> = model
        .modules
        .iter()
        .zip(module_shapes(model, setup))
        .map(|(m, sh)| {
            let role = if !setup.training() {
                "inference"
            } else if m.trainable() {
                "trains"
            } else {
                "frozen, no autograd"
            };
            let count = crate::units::format_count(modules::module_params(m).params);
            let runs = match m {
                Module::Resnet(r) => format!("{}×{} images", r.image, r.image),
                Module::Unet(u) => format!(
                    "{}×{} latents of {}×{} images, batch {}{}",
                    sh.resolution,
                    sh.resolution,
                    u.image,
                    u.image,
                    sh.batch,
                    if !setup.training() && u.guidance { " (classifier-free guidance)" } else { "" }
                ),
                Module::Vae(v) => {
                    let part = if setup.training() && !m.trainable() {
                        "encoder"
                    } else if setup.training() {
                        "encoder and decoder"
                    } else {
                        "decoder"
                    };
                    format!("{part} at {}×{}", v.image, v.image)
                }
                Module::TextEncoder(t) => format!("{} tokens, {} layers", sh.seq, t.stack.layers),
                Module::Lstm(l) => format!(
                    "{} steps, {} layer{} of {}{}",
                    sh.seq + u64::from(l.image_features.is_some()),
                    l.layers,
                    if l.layers == 1 { "" } else { "s" },
                    l.hidden,
                    if l.bidirectional { ", bidirectional" } else { "" }
                ),
            };
            let label = if m.name() == m.kind() { m.name().to_string() } else { format!("{} {}", m.kind(), m.name()) };
            format!("{label} ({role}, {count} params, {runs})")
        })
        .collect();
    let mut out = vec![format!("modules: {}", parts.join("; "))];
    if setup.training() && model.modules.iter().any(|m| !m.trainable()) {
        out.push(format!(
            "frozen modules: weights only, kept in the compute dtype ({}) as diffusers' training scripts do",
            frozen_weight_dtype(setup)
        ));
    }
    out
}

fn frozen_weight_dtype(setup: &Setup) -> DType {
    if setup.training() {
        setup.precision.activation_dtype()
    } else {
        setup.precision.weight_dtype()
    }
}
