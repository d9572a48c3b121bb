//! Step time of a plan under the framework that runs it.
//!
//! **Compute** is summed over the kernels of a layer on one rank for one micro-batch: every GEMM
//! (Q/K/V, output, MLP, experts, router; forward, input gradient and weight gradient) through the
//! roofline of `gemm`, the attention core (a fused FlashAttention kernel, causal blocks skipped;
//! or, eager, the two batched GEMMs plus the memory-bound softmax and dropout over the b·a·s²
//! scores), and the memory-bound elementwise kernels (norms, activations, residual adds with
//! dropout, rotary embeddings) at the achievable bandwidth. Sequence parallelism divides the
//! norm/dropout/residual traffic by tp. Recomputation adds the recomputed forward (full) or the
//! attention core (selective). The first stage adds the embedding, the last the logits GEMM and
//! the fp32 cross-entropy.
//!
//! The framework's own code decides part of it (`Kernels`): which fused attention kernel runs
//! (FlashAttention-2, or the architecture's own on Hopper: the GPU preset states both), whether
//! norms, rotary embeddings and gated activations are fused kernels or chains of eager ops
//! (`Elementwise`), and what adding each micro-batch's weight gradients to the accumulated ones
//! costs (`GradAccumulation`).
//!
//! **Communication** per micro-batch, on the link its group uses (`comm`):
//! - tensor parallel (Megatron's f/g operators, Narayanan et al. 2021 §3.3): two all-reduces of
//!   the b·s·h activations forward and two backward per layer, two more with full recomputation;
//!   with sequence parallelism an all-gather + reduce-scatter pair of the same volume
//!   (Korthikanti et al. 2022 §4.2.2); not overlapped (Megatron's `--tp-comm-overlap` is off by
//!   default and needs Transformer Engine userbuffers);
//! - context parallel: the K/V blocks go around the ring (cp − 1 hops forward; K/V and their
//!   gradients backward), overlapped with the attention core of each step (Megatron/TE and
//!   torchtitan's ring attention): only the excess is exposed;
//! - expert parallel: dispatch and combine all-to-alls of the routed tokens, forward and backward;
//! - pipeline: one activation (b·s·h, divided by tp under sequence parallelism) forward and one
//!   gradient backward per micro-batch per stage boundary; blocking in Megatron's 1F1B,
//!   overlapped in its interleaved schedule (`--overlap-p2p-communication`, on by default).
//!
//! A collective hidden behind compute is not free: NCCL runs one CTA per channel on SMs it does
//! not share, so the compute beside it slows by the channels' share of the SMs
//! (`TimeConfig::comm_sm_share`).
//!
//! **Data parallel**, per framework (`frameworks::GradSync`): DDP's bucketed all-reduce overlaps
//! the backward of the last micro-batch (only the excess and the last bucket are exposed);
//! Megatron's DDP / distributed optimizer reduce after the pipeline flush, not overlapped (its
//! defaults: `--overlap-grad-reduce` and `--overlap-param-gather` off), the distributed
//! optimizer as a reduce-scatter of the fp32 main grads plus an all-gather of the bf16
//! parameters; DeepSpeed ZeRO-1 reduces at the accumulation boundary, ZeRO-2 after every
//! micro-batch (`stage_1_and_2.py`), both overlapped with backward, then all-gathers the updated
//! parameters; ZeRO-3 and FSDP all-gather every unit in forward, again in backward when
//! resharded, and reduce-scatter its gradients, per micro-batch, prefetched behind the compute
//! (exposed: what exceeds the compute it hides behind, plus the first unit).
//!
//! **Pipeline**: the step is m·t_max + (Σ t_s − t_max)/v for stage times t_s of one micro-batch
//! (forward + backward): the slowest stage sets the steady state, the others fill and drain
//! (1F1B and GPipe: Narayanan et al. 2021 §2.2.1; interleaving divides the fill by v, §2.2.2).
//! Then the optimizer step (memory-bound: `optimizer_bytes`, the passes of the framework's
//! optimizer over the local shard) and, with offloading, the host transfers and CPU Adam.

use super::comm::{Collective, Links};
use super::flops::{step_flops, StepFlops};
use super::frameworks::GradSync;
use super::gemm::{AttentionBackend, GemmModel};
use crate::dtype::DType;
use crate::framework::Framework;
use crate::hw::GpuSpec;
use crate::memory::activations::{heads_per_rank, shapes, StackShape};
use crate::memory::{AttentionKernel, OptimizerImpl, Precision, Recompute, Setup};
use crate::model::spec::*;
use crate::parallel::{Offload, ParallelPlan, Schedule};
use serde::Serialize;

/// DDP's default bucket (`bucket_cap_mb=25`, torch/nn/parallel/distributed.py).
const DDP_BUCKET_BYTES: f64 = 25.0 * 1024.0 * 1024.0;
/// DeepSpeed `reduce_bucket_size` as memplan emits it (elements).
const DEEPSPEED_BUCKET_ELEMENTS: f64 = 5e8;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TimeConfig {
    /// GEMM and streaming-kernel model of the GPU for the recipe's matmul dtype.
    pub gemm: GemmModel,
    pub links: Links,
    /// Fraction of data-parallel communication hidden behind compute, when given; otherwise
    /// each framework's own mechanism decides.
    pub overlap: Option<f64>,
    /// Host link for offloading, bytes/s (PCIe 4.0 x16 ≈ 25 GB/s achieved).
    pub pcie_bandwidth: f64,
    /// CPU Adam throughput for offloaded optimizer steps, parameters per second per GPU
    /// (DeepSpeed's CPU Adam reaches ~1e9 on a modern socket shared by 8 GPUs: ~1.25e8 each).
    pub cpu_adam_params_per_s: f64,
    /// Share of the SMs a running collective takes from the compute it overlaps: NCCL runs one
    /// CTA per channel and "NCCL CTAs won't share an SM with compute kernels" (NVIDIA/nccl#689;
    /// a DGX with 8 NICs uses 16 SMs), so compute beside a collective of c seconds takes
    /// c · channels / SMs longer.
    pub comm_sm_share: f64,
}

/// Assumed fraction of the nominal link rate NCCL reaches on large messages (its ring
/// all-reduce "bus bandwidth" on NVLink and InfiniBand is typically 75–90% of the line rate).
pub const LINK_EFFICIENCY: f64 = 0.8;
/// Assumed per-step latency of a collective inside a node and across nodes.
pub const INTRA_LATENCY_S: f64 = 5e-6;
pub const INTER_LATENCY_S: f64 = 10e-6;

impl TimeConfig {
    /// The GPU preset's model for the setup's matmul dtype.
    pub fn for_gpu(gpu: &GpuSpec, setup: &Setup, gpus_per_node: u64) -> TimeConfig {
        let dtype = setup.precision.activation_dtype();
        let gemm = GemmModel::from_preset(gpu, peak_flops(gpu, setup), dtype.bytes(1));
        let intra = gpu.interconnect.intra_node_bandwidth;
        let comm_sm_share =
            gpu.runtime.as_ref().map_or(0.0, |r| r.nccl_channels as f64 / gemm.sms.max(1) as f64).min(1.0);
        TimeConfig {
            gemm,
            links: Links {
                intra,
                inter: gpu.interconnect.inter_node_bandwidth.unwrap_or(intra),
                efficiency: LINK_EFFICIENCY,
                intra_latency: INTRA_LATENCY_S,
                inter_latency: INTER_LATENCY_S,
                gpus_per_node: gpus_per_node.max(1),
            },
            overlap: None,
            pcie_bandwidth: 25e9,
            cpu_adam_params_per_s: 1.25e8,
            comm_sm_share,
        }
    }
}

impl TimeConfig {
    /// Time a collective adds to the step: its `exposed` seconds, plus the slowdown of the compute
    /// its `hidden` seconds ran beside (`comm_sm_share`).
    pub fn behind_compute(&self, exposed: f64, hidden: f64) -> f64 {
        exposed + hidden * self.comm_sm_share
    }
}

/// How a framework's code runs the memory-bound kernels of a layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Elementwise {
    /// Fused kernels: Megatron-Core (Transformer Engine's LayerNorm/RMSNorm, fused RoPE, the
    /// `bias_swiglu`/`bias_gelu` and `bias_dropout_add` fusions, `megatron/core/fusions/`) and the
    /// Megatron model code Megatron-DeepSpeed runs.
    Fused,
    /// torchtitan's modules, uncompiled (`compile.enable = false`, torchtitan/config/job_config.py):
    /// `nn.RMSNorm` is one fused kernel (aten `_fused_rms_norm`, PyTorch ≥ 2.8), rotary embeddings
    /// run in fp32 complex arithmetic (`apply_rotary_emb`: `.float()`, complex multiply,
    /// `.type_as`; torchtitan/models/llama3/model/model.py) and SwiGLU as separate `silu` and `mul`.
    Torchtitan,
    /// Hugging Face transformers modules (`modeling_llama.py`): `LlamaRMSNorm` is a chain of eager
    /// ops in fp32 (`to(float32)`, `pow`, `mean`, `rsqrt` multiply, `to(dtype)`, weight multiply),
    /// `apply_rotary_pos_emb` is `q·cos + rotate_half(q)·sin` (neg + cat, two multiplies, an add),
    /// `act_fn(gate) * up` two kernels, and the attention output is copied `contiguous()`.
    HuggingFace,
}

/// What accumulating one micro-batch's weight gradients costs beyond the GEMM that makes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum GradAccumulation {
    /// The weight-gradient GEMM accumulates into the fp32 main-grad buffer: Megatron-Core's
    /// `gradient_accumulation_fusion`, on by default (`--no-gradient-accumulation-fusion`,
    /// megatron/training/arguments.py).
    Fused,
    /// autograd's `AccumulateGrad` adds each micro-batch's gradient into `.grad` in place (every
    /// micro-batch after the first): read both, write one.
    Autograd,
    /// DeepSpeed's `BF16_Optimizer` (ZeRO ≤ 1 in bf16): every micro-batch clears the bf16 grads
    /// (`clear_lp_grads`, a `_foreach_zero_`), lets autograd accumulate into them, then adds them
    /// to the fp32 grads through an fp32 temporary (`_update_hp_grad`:
    /// `hp_grad.add_(lp.grad.to(hp_grad.dtype))`; deepspeed/runtime/bf16_optimizer.py, called from
    /// the pipe engine's `_exec_backward_pass`).
    DeepSpeedBf16,
}

/// What the framework that runs a plan does on the GPU, where it changes the step time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Kernels {
    pub attention: AttentionBackend,
    pub elementwise: Elementwise,
    pub grad_accumulation: GradAccumulation,
}

impl Kernels {
    /// Fused kernels, the architecture's attention and fused gradient accumulation: what
    /// Megatron-Core runs (and memplan's model before frameworks differed).
    pub const FUSED: Kernels = Kernels {
        attention: AttentionBackend::Native,
        elementwise: Elementwise::Fused,
        grad_accumulation: GradAccumulation::Fused,
    };

    /// The kernels of `framework` (at the version its profile describes) for `precision`.
    pub fn of(framework: Framework, precision: Precision) -> Kernels {
        use AttentionBackend::*;
        match framework {
            // Transformer Engine's DotProductAttention picks cuDNN's fused attention on Hopper.
            Framework::Megatron => Kernels::FUSED,
            // Megatron-DeepSpeed: Megatron's fused kernels, `--use-flash-attn-v2`.
            Framework::Deepspeed => Kernels {
                attention: FlashAttention2,
                elementwise: Elementwise::Fused,
                grad_accumulation: if precision == Precision::MixedBf16 {
                    GradAccumulation::DeepSpeedBf16
                } else {
                    GradAccumulation::Autograd
                },
            },
            // `ScaledDotProductAttention.sdpa_backends`: CUDNN_ATTENTION first
            // (torchtitan/models/attention.py, since pytorch/torchtitan#1000).
            Framework::Torchtitan => Kernels {
                attention: Native,
                elementwise: Elementwise::Torchtitan,
                grad_accumulation: GradAccumulation::Autograd,
            },
            // SDPA's default priority puts the flash (FlashAttention-2) backend first.
            _ => Kernels {
                attention: FlashAttention2,
                elementwise: Elementwise::HuggingFace,
                grad_accumulation: GradAccumulation::Autograd,
            },
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct StepTime {
    /// Compute of the slowest stage over all micro-batches.
    pub compute_s: f64,
    /// Pipeline fill and drain beyond the slowest stage's steady state.
    pub bubble_s: f64,
    pub tp_comm_s: f64,
    pub pp_comm_s: f64,
    /// Exposed (not overlapped) data-parallel and ZeRO/FSDP communication.
    pub dp_comm_s: f64,
    pub moe_comm_s: f64,
    pub cp_comm_s: f64,
    pub optimizer_s: f64,
    pub offload_s: f64,
    pub total_s: f64,
    /// The pipeline stage that sets the pace.
    pub slowest_stage: u64,
    pub tokens_per_s: f64,
    pub mfu: f64,
    pub hfu: f64,
    pub flops: StepFlops,
}

/// Dense peak FLOP/s of the GPU for the precision's matmul dtype (fp32 matmuls without TF32,
/// PyTorch's default).
pub fn peak_flops(gpu: &GpuSpec, setup: &Setup) -> f64 {
    match setup.precision.activation_dtype() {
        DType::Bf16 => gpu.peak_flops.bf16.unwrap_or(gpu.peak_flops.fp16),
        DType::Fp16 => gpu.peak_flops.fp16,
        _ => gpu.peak_flops.fp32,
    }
}

/// One layer of a stack on one rank for one micro-batch, seconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct LayerCost {
    pub fwd: f64,
    pub bwd: f64,
    /// Recomputed forward work during backward.
    pub recompute: f64,
    pub tp: f64,
    pub cp: f64,
    pub ep: f64,
}

/// Embedding (first stage) and logits + loss (last stage) per micro-batch, seconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct EndsCost {
    pub embedding: f64,
    pub head_fwd: f64,
    pub head_bwd: f64,
}

/// Per-stack layer costs and the ends of the model for one (micro-batch, recompute, tp, sp, cp,
/// ep) — everything of the compute model that does not depend on the pipeline layout.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Costs {
    pub layers: Vec<LayerCost>,
    pub ends: EndsCost,
    /// Activation bytes of one micro-batch at a stage boundary (per rank).
    pub boundary_bytes: f64,
}

fn stack_shapes(model: &ModelSpec, setup: &Setup, plan: &ParallelPlan) -> Vec<StackShape> {
    shapes(model, setup)
        .into_iter()
        .map(|sh| StackShape { seq: sh.seq.div_ceil(plan.cp), kv_seq: sh.seq, tp: plan.tp, sp: plan.sp, ..sh })
        .collect()
}

/// The cost model of one layer: see the module documentation.
pub fn costs(model: &ModelSpec, setup: &Setup, plan: &ParallelPlan, cfg: &TimeConfig, kernels: Kernels) -> Costs {
    let g = &cfg.gemm;
    let links = &cfg.links;
    let e = setup.precision.activation_dtype().bytes(1) as f64;
    let t = plan.tp.max(1) as f64;
    let node = links.gpus_per_node;
    let shapes = stack_shapes(model, setup, plan);
    let mut layers = Vec::with_capacity(model.stacks.len());
    let mut boundary_bytes: f64 = 0.0;
    for (s, sh) in model.stacks.iter().zip(&shapes) {
        let layer = &s.layer;
        let h = layer.hidden as f64;
        let a = &layer.attention;
        let hd = a.head_dim(layer.hidden) as f64;
        let (heads, kv_heads) = heads_per_rank(a, plan.tp);
        let (heads, kv_heads) = (heads as f64, kv_heads as f64);
        let b = sh.batch as f64;
        let s_local = sh.seq as f64;
        let tokens = b * s_local;
        let kv_len = sh.kv_seq as f64;
        let norm_tokens = if plan.sp { tokens / t } else { tokens };
        let mut fwd = 0.0;
        let mut bwd = 0.0;
        let mut add = |(f, bw): (f64, f64)| {
            fwd += f;
            bwd += bw;
        };
        // Projections.
        match &a.mla {
            Some(mla) => {
                let n = mla.params(layer.hidden, a.heads) as f64 / h / t;
                add(g.linear(tokens, h, n));
            }
            None => {
                add(g.linear(tokens, h, (heads + 2.0 * kv_heads) * hd));
                add(g.linear(tokens, heads * hd, h));
            }
        }
        if layer.cross_attention {
            let enc = (sh.cross_seq as f64) * b;
            add(g.linear(tokens, h, heads * hd));
            add(g.linear(enc, h, 2.0 * kv_heads * hd));
            add(g.linear(tokens, heads * hd, h));
        }
        // MLP, experts, router, shared experts.
        let m = &layer.mlp;
        let ffn = (m.ffn as f64 / t).ceil();
        let up = if m.gated { 2.0 * ffn } else { ffn };
        let routed_tokens;
        if m.experts > 1 {
            let ep = plan.ep.max(1) as f64;
            let experts = m.experts as f64;
            let local = (experts / ep).ceil();
            routed_tokens = tokens * m.top_k as f64 * setup.capacity_factor;
            let per_expert = (routed_tokens * ep / experts).max(1.0);
            let (f1, b1) = g.linear(per_expert, h, up);
            let (f2, b2) = g.linear(per_expert, ffn, h);
            add(((f1 + f2) * local, (b1 + b2) * local));
            add(g.linear(tokens, h, experts));
        } else {
            routed_tokens = tokens;
            add(g.linear(tokens, h, up));
            add(g.linear(tokens, ffn, h));
        }
        if m.shared_ffn > 0 {
            let sf = (m.shared_ffn as f64 / t).ceil();
            add(g.linear(tokens, h, 2.0 * sf));
            add(g.linear(tokens, sf, h));
        }
        // Attention core.
        let causal = if s.causal { 0.5 } else { 1.0 };
        let materialised = crate::memory::activations::materialises_scores(setup, a.dropout);
        let attn_dropout = setup.dropout_p(a.dropout) > 0.0;
        let core = |q_len: f64, k_len: f64, causal: f64| -> (f64, f64) {
            let qk = match &a.mla {
                Some(mla) => (mla.nope_head_dim + mla.rope_head_dim) as f64,
                None => hd,
            };
            let v = a.mla.as_ref().map_or(hd, |mla| mla.v_head_dim as f64);
            let batch = b * heads;
            if !materialised && matches!(setup.attention, AttentionKernel::Flash | AttentionKernel::FlashAttn2) {
                let flops = 2.0 * q_len * k_len * (qk + v) * batch * causal;
                let (fwd, bwd) = g.attention(kernels.attention);
                (g.fused(flops, fwd), g.fused(2.5 * flops, bwd))
            } else {
                let scores = q_len * k_len * batch;
                let drop_fwd = if attn_dropout { 2.0 * e + 1.0 } else { 0.0 };
                let f = g.gemm(q_len, k_len, qk, batch)
                    + g.stream(scores * (2.0 * e + drop_fwd))
                    + g.gemm(q_len, v, k_len, batch);
                let bw = g.gemm(k_len, v, q_len, batch)
                    + g.gemm(q_len, k_len, v, batch)
                    + g.stream(scores * (3.0 * e + drop_fwd))
                    + g.gemm(q_len, qk, k_len, batch)
                    + g.gemm(k_len, qk, q_len, batch);
                (f, bw)
            }
        };
        let (mut core_f, mut core_b) = core(s_local, kv_len, causal);
        if layer.cross_attention {
            let (f, bw) = core(s_local, sh.cross_seq as f64, 1.0);
            core_f += f;
            core_b += bw;
        }
        fwd += core_f;
        bwd += core_b;
        // Elementwise kernels: bytes moved per element (e = activation bytes), by how the
        // framework's code runs them (`Elementwise`). An eager op reads its inputs and writes its
        // output; its autograd backward reads the incoming gradient and what it saved and writes
        // the input gradients.
        let norms =
            if layer.parallel_attn_mlp { 1.0 } else { 2.0 } * (1.0 + f64::from(u8::from(layer.cross_attention)));
        let eager = kernels.elementwise == Elementwise::HuggingFace;
        let (norm_f, norm_b) = if eager && layer.norm.kind == NormKind::RmsNorm {
            // to(fp32) e+4, pow 8, mean 4, rsqrt-multiply 8, to(dtype) 4+e, weight multiply 2e.
            let f = 28.0 + 4.0 * e;
            (f, 2.0 * f)
        } else {
            (2.0 * e, 3.0 * e)
        };
        let hidden_drop = setup.dropout_p(layer.hidden_dropout) > 0.0;
        let mask = if hidden_drop { 1.0 } else { 0.0 };
        let residuals = 2.0 + f64::from(u8::from(layer.cross_attention));
        let act_elems = routed_tokens * ffn;
        let (act_f, act_b) = match (m.gated, kernels.elementwise) {
            // One fused kernel reads gate and up and writes their product.
            (true, Elementwise::Fused) => (3.0 * e, 5.0 * e),
            // silu (2e) then multiply (3e); backward: multiply (5e), silu (3e).
            (true, _) => (5.0 * e, 8.0 * e),
            (false, _) => (2.0 * e, 3.0 * e),
        };
        let (rope_f, rope_b) = match kernels.elementwise {
            Elementwise::Fused => (2.0 * e, 2.0 * e),
            // `.float()` e+4, complex multiply 8, `.type_as` 4+e.
            Elementwise::Torchtitan => (16.0 + 2.0 * e, 16.0 + 2.0 * e),
            // neg + cat 2e, q·cos 2e, rotate_half(q)·sin 2e, add 3e; backward 2e + 2e + 3e.
            Elementwise::HuggingFace => (9.0 * e, 7.0 * e),
        };
        let rotary_elems =
            if matches!(s.positions, Positions::Rotary) { tokens * (heads + kv_heads) * hd } else { 0.0 };
        // `attn_output.transpose(1, 2).contiguous()` before the output projection.
        let layout_copy = if eager { 2.0 * e * tokens * heads * hd } else { 0.0 };
        let ew_f = norms * norm_f * norm_tokens * h
            + residuals * (3.0 * e + mask) * norm_tokens * h
            + act_elems * act_f
            + rotary_elems * rope_f
            + layout_copy;
        let ew_b = norms * norm_b * norm_tokens * h
            + residuals * (2.0 * e + mask) * norm_tokens * h
            + act_elems * act_b
            + rotary_elems * rope_b
            + layout_copy;
        fwd += g.stream(ew_f);
        bwd += g.stream(ew_b);
        // Recomputed forward work: the attention core (selective, and per-op SAC's share), or the
        // whole layer (full, Hugging Face and every-k checkpointing recompute layers).
        let recompute = match setup.recompute {
            Recompute::None => 0.0,
            Recompute::Selective => core_f,
            // torchtitan's per-op SAC saves the SDPA output and every second matmul output
            // (`_save_list`, `_get_custom_policy` in torchtitan/distributed/activation_checkpoint.py):
            // backward re-runs the other half of the matmuls and the elementwise ops, not attention.
            Recompute::Op => 0.5 * (fwd - core_f),
            // Every k-th block fully checkpointed: 1/k of the layers re-run their forward.
            Recompute::Every(k) => fwd / f64::from(k.max(1)),
            Recompute::Full | Recompute::Hf => fwd,
        };
        // Tensor parallel collectives (tp within a node).
        let act_bytes = tokens * h * e;
        let collectives = 4.0 + if setup.recompute.coarse() == Recompute::Full { 2.0 } else { 0.0 };
        let per_layer_ar = (1.0 + f64::from(u8::from(layer.cross_attention)) * 0.5) * collectives;
        let tp = per_layer_ar * links.time(Collective::AllReduce, act_bytes, plan.tp, plan.tp.min(node));
        // Context parallel ring, overlapped with the attention core of each step.
        let cp = if plan.cp > 1 {
            let kv_bytes = tokens * 2.0 * kv_heads * hd * e;
            let cross = plan.tp * plan.cp > node;
            let hop = links.send(kv_bytes, cross);
            let steps = (plan.cp - 1) as f64;
            let per_step_f = core_f / plan.cp as f64;
            let per_step_b = core_b / plan.cp as f64;
            let exposed = (hop - per_step_f).max(0.0) + (2.0 * hop - per_step_b).max(0.0);
            // The hidden part slows the attention it runs beside (`TimeConfig::comm_sm_share`).
            let hidden = hop.min(per_step_f) + (2.0 * hop).min(per_step_b);
            steps * cfg.behind_compute(exposed, hidden)
        } else {
            0.0
        };
        // Expert parallel all-to-all: dispatch + combine, forward and backward.
        let ep = if plan.ep > 1 && m.experts > 1 {
            let sent = routed_tokens / if plan.sp { t } else { 1.0 } * h * e;
            let per_node = (node / plan.tp.max(1)).clamp(1, plan.ep);
            4.0 * links.time(Collective::AllToAll, sent, plan.ep, per_node)
        } else {
            0.0
        };
        boundary_bytes = boundary_bytes.max(act_bytes / if plan.sp { t } else { 1.0 });
        layers.push(LayerCost { fwd, bwd, recompute, tp, cp, ep });
    }
    // Ends: embedding lookup (write) and its scatter-add backward; logits and cross-entropy.
    let mut ends = EndsCost::default();
    if let (Some(first), Some(sh)) = (model.stacks.first(), shapes.first()) {
        let bytes = (sh.batch * sh.seq) as f64 * first.layer.hidden as f64 * e;
        ends.embedding = g.stream(bytes) + g.stream(3.0 * bytes);
    }
    if let (Some(_), Some(last), Some(sh)) = (&model.head.lm_head, model.last_stack(), shapes.last()) {
        let tokens = (sh.batch * sh.seq) as f64;
        let v = (model.vocab() as f64 / t).ceil();
        let (f, bw) = g.linear(tokens, last.layer.hidden as f64, v);
        // Upcast to fp32, log-softmax and its gradient (Megatron's vocab-parallel cross-entropy).
        ends.head_fwd = f + g.stream(tokens * v * (e + 12.0));
        ends.head_bwd = bw + g.stream(tokens * v * (12.0 + e));
    }
    Costs { layers, ends, boundary_bytes }
}

/// What the time model needs of one pipeline stage: its layers per stack and parameters per rank.
#[derive(Clone, Debug, PartialEq)]
pub struct StageWork {
    pub stage: u64,
    pub layers: Vec<u64>,
    pub params: u64,
    pub first: bool,
    pub last: bool,
    /// How many stages share this work (the middle stages of a pipeline are alike).
    pub count: u64,
}

/// The distinct stages of a plan's layout: with one stack, first, one middle (standing for all
/// of them: the middle stages of a single stack are alike) and last; with several stacks, every
/// stage (their middle stages hold different stacks).
pub fn stage_work(layout: &[crate::parallel::layout::StageParams]) -> Vec<StageWork> {
    let p = layout.len();
    let mk = |i: usize, count: u64| {
        let s = &layout[i];
        StageWork { stage: s.stage, layers: s.layers.clone(), params: s.params, first: s.first, last: s.last, count }
    };
    let single_stack = layout.first().is_some_and(|s| s.layers.len() == 1);
    match p {
        0 => Vec::new(),
        1 => vec![mk(0, 1)],
        2 => vec![mk(0, 1), mk(1, 1)],
        _ if single_stack => vec![mk(0, 1), mk(1, p as u64 - 2), mk(p - 1, 1)],
        _ => (0..p).map(|i| mk(i, 1)).collect(),
    }
}

/// Step time of `plan` for a global batch of `sequences`, with the layer costs already computed.
#[allow(clippy::too_many_arguments)]
pub fn step_time_with(
    model: &ModelSpec,
    setup: &Setup,
    plan: &ParallelPlan,
    sync: GradSync,
    kernels: Kernels,
    stages: &[StageWork],
    costs: &Costs,
    sequences: u64,
    cfg: &TimeConfig,
    flops: StepFlops,
) -> StepTime {
    let g = &cfg.gemm;
    let links = &cfg.links;
    let node = links.gpus_per_node;
    let m = plan.microbatches.max(1) as f64;
    let v = if plan.schedule == Schedule::Interleaved { plan.vpp.max(1) as f64 } else { 1.0 };
    let w_bytes = setup.precision.weight_dtype().bytes(1) as f64;
    let g_bytes = setup.precision.grad_bytes_per_param() as f64;
    // Data-parallel group: dp ranks, consecutive after tp·cp (Megatron's tp-cp-dp-pp order).
    let dp_per_node = (node / (plan.tp * plan.cp).max(1)).clamp(1, plan.dp.max(1));
    let shard = plan.shard_degree().max(1);
    let shard_per_node = (node / (plan.tp * plan.cp).max(1)).clamp(1, shard);
    // Pipeline neighbours are tp·cp·dp ranks apart.
    let pp_cross = plan.tp * plan.cp * plan.dp >= node;
    let accumulate = accumulation_bytes(kernels, setup, plan);

    #[derive(Clone, Copy, Default)]
    struct Stage {
        compute: f64,
        bwd: f64,
        tp: f64,
        cp: f64,
        ep: f64,
        p2p: f64,
        sharded: f64,
        total: f64,
        count: f64,
        params: f64,
    }
    // Up to three distinct stages live on the stack; several stacks use a vector.
    let mut inline = [Stage::default(); 3];
    let mut spill: Vec<Stage> = Vec::new();
    for (si, st) in stages.iter().enumerate() {
        let (mut fwd, mut bwd, mut rc, mut tp, mut cp, mut ep) = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
        for (n, c) in st.layers.iter().zip(&costs.layers) {
            let n = *n as f64;
            fwd += n * c.fwd;
            bwd += n * c.bwd;
            rc += n * c.recompute;
            tp += n * c.tp;
            cp += n * c.cp;
            ep += n * c.ep;
        }
        if st.first {
            fwd += costs.ends.embedding * 0.25;
            bwd += costs.ends.embedding * 0.75;
        }
        if st.last {
            fwd += costs.ends.head_fwd;
            bwd += costs.ends.head_bwd;
        }
        // Each micro-batch's weight gradients join the accumulated ones (memory-bound).
        let bwd_all = bwd + rc + g.stream(st.params as f64 * accumulate);
        // Blocking sends in 1F1B (forward activation out, gradient back). Interleaved, every chunk
        // sends both, overlapped with the next chunk's compute (Megatron-Core's
        // `overlap_p2p_comm`, the default since 2023): only NCCL's share of the SMs shows.
        let p2p = if plan.pp > 1 && v == 1.0 {
            let sends = f64::from(u8::from(!st.first)) + f64::from(u8::from(!st.last));
            sends * links.send(costs.boundary_bytes, pp_cross)
        } else if plan.pp > 1 {
            cfg.behind_compute(0.0, 2.0 * v * links.send(costs.boundary_bytes, pp_cross))
        } else {
            0.0
        };
        // ZeRO-3 / FSDP per micro-batch: gathers and reduce-scatters behind the compute.
        let params = st.params as f64;
        let units = st.layers.iter().sum::<u64>().max(1) as f64 + 1.0;
        let sharded = if sync == GradSync::Sharded && plan.pp == 1 {
            // One gather and one reduce-scatter per unit (a layer, or the embedding/head).
            let ag = units * links.time(Collective::AllGather, params * w_bytes / units, shard, shard_per_node);
            let rs = units * links.time(Collective::ReduceScatter, params * g_bytes / units, shard, shard_per_node);
            let regather = if plan.shards_weights() { ag } else { 0.0 };
            let exposed = (ag - fwd).max(0.0) + (regather + rs - bwd_all).max(0.0) + (ag + rs) / units;
            // What is hidden still takes NCCL's SMs from the compute beside it.
            let hidden = ag.min(fwd) + (regather + rs).min(bwd_all);
            let exposed = cfg.behind_compute(exposed, hidden);
            // (the first unit's gather and the last unit's reduce-scatter have nothing to hide behind)
            let hybrid = if plan.fsdp == Some(crate::parallel::Fsdp::Hybrid) && shard < plan.dp {
                // HYBRID_SHARD: the sharded gradients are all-reduced across the replicas.
                links.time(Collective::AllReduce, params * g_bytes / shard as f64, plan.dp / shard, 1)
            } else {
                0.0
            };
            exposed + hybrid
        } else {
            0.0
        };
        let compute = fwd + bwd_all;
        let total = compute + tp + cp + ep + p2p + sharded;
        let stage =
            Stage { compute, bwd: bwd_all, tp, cp, ep, p2p, sharded, total, count: st.count.max(1) as f64, params };
        if stages.len() <= 3 {
            inline[si] = stage;
        } else {
            spill.push(stage);
        }
    }
    let per_stage: &[Stage] = if stages.len() <= 3 { &inline[..stages.len()] } else { &spill };
    let (slowest_i, slowest) =
        per_stage.iter().enumerate().max_by(|a, b| a.1.total.total_cmp(&b.1.total)).expect("at least one stage");
    let sum: f64 = per_stage.iter().map(|s| s.total * s.count).sum();
    let pipeline = m * slowest.total + (sum - slowest.total) / v;

    // Data-parallel synchronisation after (or during) the last micro-batch, per stage; the step
    // waits for the slowest.
    let dp = plan.dp;
    let mut dp_exposed: f64 = 0.0;
    let mut optimizer: f64 = 0.0;
    for st in per_stage {
        let grads = st.params * g_bytes;
        let weights = st.params * w_bytes;
        let ar = links.time(Collective::AllReduce, grads, dp, dp_per_node);
        let exposed = match sync {
            _ if dp <= 1 => 0.0,
            GradSync::DdpOverlapped => {
                let last_bucket = ar * (DDP_BUCKET_BYTES / grads.max(1.0)).min(1.0);
                let exposed = (ar - st.bwd).max(last_bucket);
                cfg.behind_compute(exposed, ar - exposed)
            }
            GradSync::AfterFlush => {
                if plan.distributed_optimizer {
                    links.time(Collective::ReduceScatter, grads, dp, dp_per_node)
                        + links.time(Collective::AllGather, weights, dp, dp_per_node)
                } else {
                    ar
                }
            }
            GradSync::DeepSpeedBuckets => {
                let bucket = (DEEPSPEED_BUCKET_ELEMENTS * g_bytes / grads.max(1.0)).min(1.0);
                let gather =
                    if plan.zero >= 1 { links.time(Collective::AllGather, weights, dp, dp_per_node) } else { 0.0 };
                if plan.zero >= 2 {
                    // Reduced after every micro-batch, each behind its own backward.
                    let rs = links.time(Collective::ReduceScatter, grads, dp, dp_per_node);
                    let exposed = (rs - st.bwd).max(rs * bucket);
                    m * cfg.behind_compute(exposed, rs - exposed) + gather
                } else {
                    let exposed = (ar - st.bwd).max(ar * bucket);
                    cfg.behind_compute(exposed, ar - exposed) + gather
                }
            }
            GradSync::Sharded => {
                if plan.pp > 1 {
                    // Gathered once, reduced once per step (the pipeline schedule's no-sync
                    // for all but the last micro-batch): only the first and last unit show.
                    let units = stages.first().map_or(1, |s| s.layers.iter().sum::<u64>().max(1)) as f64 + 1.0;
                    let ag = links.time(Collective::AllGather, weights / units, shard, shard_per_node);
                    let rs = links.time(Collective::ReduceScatter, grads / units, shard, shard_per_node);
                    // The other units' gathers and reduce-scatters run beside compute.
                    cfg.behind_compute(ag + rs, (ag + rs) * (units - 1.0))
                } else {
                    0.0
                }
            }
        };
        let exposed = match cfg.overlap {
            Some(o) if sync != GradSync::Sharded => {
                let full = match sync {
                    GradSync::AfterFlush if plan.distributed_optimizer => {
                        links.time(Collective::ReduceScatter, grads, dp, dp_per_node)
                            + links.time(Collective::AllGather, weights, dp, dp_per_node)
                    }
                    _ => ar,
                };
                if dp <= 1 {
                    0.0
                } else {
                    full * (1.0 - o.clamp(0.0, 1.0))
                }
            }
            _ => exposed,
        };
        dp_exposed = dp_exposed.max(exposed);
        // The optimizer step over the local shard (memory-bound; `optimizer_bytes`).
        let local = if plan.shards_optimizer() { st.params / shard as f64 } else { st.params };
        let step = if plan.offload == Offload::None { g.stream(local * optimizer_bytes(setup, kernels)) } else { 0.0 };
        optimizer = optimizer.max(step);
    }

    // Offload: gradients to the host, updated 16-bit weights back, and the CPU Adam step.
    let offload_s = if plan.offload != Offload::None {
        let shard_params = (slowest.params / plan.shard_degree() as f64).max(1.0);
        (shard_params * 2.0 + shard_params * 2.0) / cfg.pcie_bandwidth + shard_params / cfg.cpu_adam_params_per_s
    } else {
        0.0
    };

    let total_s = pipeline + dp_exposed + optimizer + offload_s;
    let gpus = plan.gpus() as f64;
    let peak = g.peak;
    let per_sequence = model.stacks.first().map_or(setup.seq, |s| crate::memory::activations::stack_seq(s, setup));
    let tokens = sequences as f64 * per_sequence as f64;
    StepTime {
        compute_s: m * slowest.compute,
        bubble_s: pipeline - m * slowest.total,
        tp_comm_s: m * slowest.tp,
        pp_comm_s: m * slowest.p2p,
        dp_comm_s: dp_exposed + m * slowest.sharded,
        moe_comm_s: m * slowest.ep,
        cp_comm_s: m * slowest.cp,
        optimizer_s: optimizer,
        offload_s,
        total_s,
        slowest_stage: stages[slowest_i].stage,
        tokens_per_s: tokens / total_s,
        mfu: flops.model / (total_s * gpus * peak),
        hfu: flops.hardware / (total_s * gpus * peak),
        flops,
    }
}

/// Step time of `plan` run by a framework synchronising gradients as `sync` with `kernels`, for
/// a global batch of `sequences`: builds the layout and the layer costs (the search caches both).
#[allow(clippy::too_many_arguments)]
pub fn step_time(
    model: &ModelSpec,
    setup: &Setup,
    plan: &ParallelPlan,
    sync: GradSync,
    kernels: Kernels,
    sequences: u64,
    cfg: &TimeConfig,
) -> StepTime {
    let layout = crate::parallel::layout::stages(model, plan);
    let stages = stage_work(&layout);
    let c = costs(model, setup, plan, cfg, kernels);
    step_time_with(model, setup, plan, sync, kernels, &stages, &c, sequences, cfg, step_flops(model, setup, sequences))
}

/// Bytes moved per local parameter and micro-batch (averaged over the step's micro-batches) to
/// add one micro-batch's weight gradients to the accumulated ones (`GradAccumulation`).
pub fn accumulation_bytes(kernels: Kernels, setup: &Setup, plan: &ParallelPlan) -> f64 {
    let m = plan.microbatches.max(1) as f64;
    let later = (m - 1.0) / m;
    let grad16 = setup.precision.weight_dtype().bytes(1) as f64;
    let unsharded_fp32 = plan.pp > 1 && setup.mechanisms.fsdp_pp_unsharded_grads;
    if plan.shards_grads() && !unsharded_fp32 {
        // Gradients leave every micro-batch through a reduce-scatter: each is copied into the
        // communication buffer (DeepSpeed's IPG bucket, `stage_1_and_2.py`
        // `reduce_independent_p_g_buckets_and_remove_grads`; FSDP2's `foreach_reduce` chunk-cat),
        // and only the 1/shard result is accumulated.
        return 2.0 * grad16;
    }
    match kernels.grad_accumulation {
        GradAccumulation::Fused => 0.0,
        // FSDP2 under pipeline parallelism accumulates the unsharded gradient in fp32
        // (`FSDPParam.unsharded_accumulated_grad`): read the bf16 gradient, read and write fp32.
        GradAccumulation::Autograd if unsharded_fp32 => later * (grad16 + 8.0),
        GradAccumulation::Autograd => later * 3.0 * grad16,
        GradAccumulation::DeepSpeedBf16 => {
            // zero the bf16 grads (2), autograd's in-place add after the first (3·2),
            // `lp.grad.to(fp32)` (2 + 4) and `hp_grad.add_` (4 + 4 + 4).
            2.0 + later * 6.0 + 18.0
        }
    }
}

/// Bytes the optimizer step moves per parameter of the local shard.
///
/// A fused Adam (apex/Transformer Engine `FusedAdam`, `torch.optim.AdamW(fused=True)`) reads the
/// parameter, gradient and two moments and writes the parameter and moments once; PyTorch's
/// `foreach` (and for-loop) Adam makes one pass per arithmetic op (`_multi_tensor_adamw` in
/// torch/optim/adamw.py: decay `mul_`, `lerp_`, `mul_` + `addcmul_`, `sqrt`, `div_`, `add_`,
/// `addcdiv_`: 20 tensor reads and writes instead of 7). Around it: the gradient-norm read of
/// clipping (every framework clips by default: Megatron `--clip-grad 1.0`, the HF Trainer
/// `max_grad_norm=1.0`, torchtitan `max_norm = 1.0`), fp16 loss-scale unscaling and the inf
/// check, the copy of fp32 master weights into the 16-bit working weights (Megatron
/// `_copy_main_params_to_model_params`, DeepSpeed's `update_lp_params`), and the zeroing of a
/// persistent gradient buffer (Megatron `zero_grad_buffer`, DeepSpeed `clear_hp_grads`; PyTorch
/// frees its gradients instead, `set_to_none`).
pub fn optimizer_bytes(setup: &Setup, kernels: Kernels) -> f64 {
    let p = setup.precision;
    let master = if p.master_weights() { 4.0 } else { p.weight_dtype().bytes(1) as f64 };
    let state = p.state_dtype().bytes(1) as f64;
    // The gradient the optimizer reads: fp32 main/partition gradients under master weights.
    let grad = if p.master_weights() { 4.0 } else { p.weight_dtype().bytes(1) as f64 };
    use crate::memory::Optimizer as O;
    let states = match setup.optimizer {
        O::Adam | O::Adamw => 2.0,
        O::Sgd => 0.0,
        O::SgdMomentum | O::Lion => 1.0,
        // Factored second moment: a row and a column vector per matrix (negligible), plus
        // Adafactor's update temporaries.
        O::Adafactor => 1.0,
        // 8-bit moments: one byte each, read and written with their fp32 arithmetic in registers.
        O::Adamw8bit => 0.5,
    } * state;
    let fused = 2.0 * master + grad + 2.0 * states;
    let update = match setup.optimizer_impl {
        OptimizerImpl::Fused => fused,
        // 20 passes of fp32-tensor size where the fused kernel makes 7.
        OptimizerImpl::Foreach | OptimizerImpl::ForLoop => fused * 20.0 / 7.0,
    };
    let norm = grad;
    let unscale =
        if matches!(p, Precision::MixedFp16 | Precision::MegatronFp16 | Precision::AmpFp16) { 2.0 * grad } else { 0.0 };
    let copy = if p.master_weights() { 4.0 + p.weight_dtype().bytes(1) as f64 } else { 0.0 };
    let zero = match kernels.grad_accumulation {
        GradAccumulation::Fused | GradAccumulation::DeepSpeedBf16 => grad,
        GradAccumulation::Autograd => 0.0,
    };
    update + norm + unscale + copy + zero
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parallel::Fsdp;

    fn setup(precision: Precision, optimizer_impl: OptimizerImpl) -> Setup {
        Setup { precision, optimizer_impl, ..Setup::default() }
    }

    #[test]
    fn optimizer_passes_are_counted_per_framework() {
        // Megatron bf16, fused Adam over fp32 master weights: read master, main grad, m, v and
        // write master, m, v (7 × 4), the clipping norm reads the grad (4), the bf16 copy of the
        // master weights reads 4 and writes 2, the grad buffer is zeroed (4): 42 bytes.
        let b = optimizer_bytes(&setup(Precision::MegatronBf16, OptimizerImpl::Fused), Kernels::FUSED);
        assert_eq!(b, 42.0);
        // fp16 adds the loss-scale unscale: read and write the fp32 grad.
        let b = optimizer_bytes(&setup(Precision::MegatronFp16, OptimizerImpl::Fused), Kernels::FUSED);
        assert_eq!(b, 50.0);
        // PyTorch AMP (fp32 weights, no master copy), foreach AdamW: 20 fp32 passes + the norm;
        // autograd gradients are freed, not zeroed.
        let k = Kernels::of(Framework::Pytorch, Precision::AmpBf16);
        let b = optimizer_bytes(&setup(Precision::AmpBf16, OptimizerImpl::Foreach), k);
        assert_eq!(b, 20.0 * 4.0 + 4.0);
    }

    #[test]
    fn gradient_accumulation_per_framework() {
        let plan = ParallelPlan { dp: 8, microbatches: 4, ..ParallelPlan::single() };
        let bf16 = setup(Precision::MixedBf16, OptimizerImpl::Fused);
        // Megatron's wgrad GEMM accumulates into the main grad: nothing more.
        assert_eq!(accumulation_bytes(Kernels::FUSED, &bf16, &plan), 0.0);
        // autograd adds 3 of the 4 micro-batches in place: read both bf16 grads, write one.
        let k = Kernels::of(Framework::Pytorch, Precision::MixedBf16);
        assert_eq!(accumulation_bytes(k, &bf16, &plan), 0.75 * 6.0);
        // DeepSpeed's BF16_Optimizer: zero (2), autograd after the first (0.75 · 6), fp32 temporary
        // and hp add (18) every micro-batch.
        let k = Kernels::of(Framework::Deepspeed, Precision::MixedBf16);
        assert_eq!(accumulation_bytes(k, &bf16, &ParallelPlan { zero: 1, ..plan.clone() }), 2.0 + 4.5 + 18.0);
        // Sharded gradients leave through a reduce-scatter bucket every micro-batch: copy in.
        let fsdp = ParallelPlan { fsdp: Some(Fsdp::Full), ..plan };
        assert_eq!(accumulation_bytes(k, &bf16, &fsdp), 4.0);
    }

    #[test]
    fn eager_rmsnorm_moves_what_its_ops_move() {
        // One Llama layer, 1 × 2048 tokens: the Hugging Face layer's extra elementwise traffic
        // over the fused one, by the op lists in `costs`.
        let model = crate::model::presets::model("llama-2-7b").unwrap();
        let s = Setup { micro_batch: 1, seq: 2048, attention: AttentionKernel::Flash, ..Setup::default() };
        let gpu = GpuSpec::preset("h100-sxm").unwrap();
        let cfg = TimeConfig::for_gpu(&gpu, &s, 8);
        let plan = ParallelPlan::single();
        let fused = costs(&model, &s, &plan, &cfg, Kernels::FUSED).layers[0];
        let hf = Kernels { elementwise: Elementwise::HuggingFace, ..Kernels::FUSED };
        let eager = costs(&model, &s, &plan, &cfg, hf).layers[0];
        let (t, h, ffn, e) = (2048.0, 4096.0, 11008.0, 2.0);
        // Two RMSNorms: (28 + 4e) − 2e forward, twice that − 3e backward; SwiGLU: 2e / 3e more;
        // rotary on q and k (64 heads of 128): 9e − 2e / 7e − 2e; the attention output copy 2e.
        let fwd = 2.0 * t * h * (28.0 + 2.0 * e) + t * ffn * 2.0 * e + t * h * 2.0 * 7.0 * e + t * h * 2.0 * e;
        let bwd = 2.0 * t * h * (56.0 + 5.0 * e) + t * ffn * 3.0 * e + t * h * 2.0 * 5.0 * e + t * h * 2.0 * e;
        let bw = cfg.gemm.bandwidth;
        assert!(((eager.fwd - fused.fwd) - fwd / bw).abs() < 1e-9, "{} vs {}", eager.fwd - fused.fwd, fwd / bw);
        assert!(((eager.bwd - fused.bwd) - bwd / bw).abs() < 1e-9, "{} vs {}", eager.bwd - fused.bwd, bwd / bw);
    }

    #[test]
    fn hidden_collectives_take_nccl_sms_from_compute() {
        // DDP on 16 GPUs: the all-reduce hides behind the last backward, but its 16 channels of
        // the H100's 132 SMs slow that backward by 16/132 of the hidden time.
        let model = crate::model::presets::model("llama-2-7b").unwrap();
        let s = Setup { micro_batch: 1, seq: 2048, precision: Precision::AmpBf16, ..Setup::default() };
        let gpu = GpuSpec::preset("h100-sxm").unwrap();
        let mut cfg = TimeConfig::for_gpu(&gpu, &s, 8);
        assert!((cfg.comm_sm_share - 16.0 / 132.0).abs() < 1e-12);
        let plan = ParallelPlan { dp: 16, microbatches: 1, ..ParallelPlan::single() };
        let k = Kernels::of(Framework::Pytorch, s.precision);
        let with = step_time(&model, &s, &plan, GradSync::DdpOverlapped, k, 16, &cfg);
        cfg.comm_sm_share = 0.0;
        let without = step_time(&model, &s, &plan, GradSync::DdpOverlapped, k, 16, &cfg);
        let grads = model_params(&model) * 4.0;
        let ar = cfg.links.time(Collective::AllReduce, grads, 16, 8);
        let hidden = ar - without.dp_comm_s;
        assert!(hidden > 0.0);
        assert!(((with.dp_comm_s - without.dp_comm_s) - hidden * 16.0 / 132.0).abs() < 1e-9);
    }

    fn model_params(model: &ModelSpec) -> f64 {
        crate::parallel::layout::stages(model, &ParallelPlan::single())[0].params as f64
    }
}
