//! Megatron-LM `pretrain_gpt.py` arguments (names from `megatron/training/arguments.py` and the
//! `TransformerConfig`/`ModelParallelConfig` fields it exposes as flags), and the model-shape
//! flags shared with Megatron-DeepSpeed (`megatron/arguments.py` of deepspeedai/Megatron-DeepSpeed),
//! which spells a few of them differently.

use super::{decoder_stack, refuse, script, torchrun, File, Job};
use crate::error::Result;
use crate::memory::{AttentionKernel, Optimizer, Precision, Recompute};
use crate::model::spec::*;
use crate::parallel::{Fsdp, Offload, Schedule};
use crate::plan::frameworks::{pipeline_layouts, Layout, Layouts};

/// Which code base reads the flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Megatron,
    MegatronDeepSpeed,
}

impl Dialect {
    fn name(self) -> &'static str {
        match self {
            Dialect::Megatron => "Megatron-LM",
            Dialect::MegatronDeepSpeed => "Megatron-DeepSpeed",
        }
    }
}

/// The model's shape as flags, or a refusal for what the GPT model cannot build.
pub fn shape_args(job: &Job, dialect: Dialect) -> Result<Vec<String>> {
    let target = dialect.name();
    let model = job.model;
    let setup = job.setup;
    let s = decoder_stack(target, model)?;
    let l = &s.layer;
    let a = &l.attention;
    let m = &l.mlp;
    let mut out = vec![
        format!("--num-layers {}", s.layers),
        format!("--hidden-size {}", l.hidden),
        format!("--num-attention-heads {}", a.heads),
    ];
    if a.mla.is_some() || a.sparse.is_some() {
        return Err(refuse(target, "multi-head latent or block-sparse attention", "emit for torchtitan or FSDP"));
    }
    if a.kv_heads() != a.heads {
        match dialect {
            Dialect::Megatron => {
                out.push("--group-query-attention".into());
                out.push(format!("--num-query-groups {}", a.kv_heads()));
            }
            Dialect::MegatronDeepSpeed => out.push(format!("--num-key-value-heads {}", a.kv_heads())),
        }
    }
    if a.head_dim(l.hidden) * a.heads != l.hidden {
        out.push(format!("--kv-channels {}", a.head_dim(l.hidden)));
    }
    if l.norm_placement != NormPlacement::Pre || l.parallel_attn_mlp || l.cross_attention {
        return Err(refuse(
            target,
            format!("model `{}`: post-norm, parallel attention+MLP or cross-attention layers", model.name),
            "its GPT layer is pre-norm with sequential attention and MLP",
        ));
    }
    match (l.norm.kind, l.norm.bias, dialect) {
        (NormKind::LayerNorm, true, Dialect::Megatron) => out.push("--normalization LayerNorm".into()),
        (NormKind::LayerNorm, true, Dialect::MegatronDeepSpeed) => out.push("--normalization layernorm".into()),
        (NormKind::RmsNorm, _, Dialect::Megatron) => out.push("--normalization RMSNorm".into()),
        (NormKind::RmsNorm, _, Dialect::MegatronDeepSpeed) => out.push("--normalization rmsnorm".into()),
        (NormKind::LayerNorm, false, _) => {
            return Err(refuse(target, "LayerNorm without bias", "its LayerNorm always has a bias; use RMSNorm models"))
        }
    }
    match (&s.positions, dialect) {
        (Positions::Rotary, Dialect::Megatron) => out.push("--position-embedding-type rope".into()),
        (Positions::Rotary, Dialect::MegatronDeepSpeed) => out.push("--use-rotary-position-embeddings".into()),
        (Positions::Learned { max, offset }, Dialect::Megatron) => {
            out.push("--position-embedding-type learned_absolute".into());
            out.push(format!("--max-position-embeddings {}", max + offset));
        }
        (Positions::Learned { max, offset }, Dialect::MegatronDeepSpeed) => {
            out.push(format!("--max-position-embeddings {}", max + offset));
        }
        // ALiBi or no positions: no table (memory-equivalent).
        (Positions::None, Dialect::Megatron) => out.push("--position-embedding-type none".into()),
        (Positions::None, Dialect::MegatronDeepSpeed) => out.push("--no-position-embedding".into()),
        (other, _) => {
            return Err(refuse(
                target,
                format!("{other:?} positions"),
                "its GPT model has rope, learned or no positions",
            ))
        }
    }
    if !matches!(s.positions, Positions::Learned { .. }) {
        out.push(format!("--max-position-embeddings {}", setup.seq));
    }
    // Biases: all (Megatron's default), none, or on Q/K/V only.
    let qkv = a.q_bias && a.k_bias && a.v_bias;
    let any_qkv = a.q_bias || a.k_bias || a.v_bias;
    match (qkv, any_qkv, a.o_bias, m.bias) {
        (true, _, true, true) => {}
        (false, false, false, false) => out.push("--disable-bias-linear".into()),
        (true, _, false, false) if dialect == Dialect::Megatron => {
            out.push("--disable-bias-linear".into());
            out.push("--add-qkv-bias".into());
        }
        _ => {
            return Err(refuse(
                target,
                format!(
                    "the biases of `{}` (q/k/v {}/{}/{}, output {}, MLP {})",
                    model.name, a.q_bias, a.k_bias, a.v_bias, a.o_bias, m.bias
                ),
                "it has biases everywhere, nowhere, or on Q/K/V only",
            ))
        }
    }
    match (m.gated, m.activation) {
        (true, Activation::Silu) => out.push("--swiglu".into()),
        (false, Activation::Gelu | Activation::GeluNew) => {}
        (g, act) => {
            return Err(refuse(
                target,
                format!("a {}{act:?} MLP", if g { "gated " } else { "" }).to_lowercase(),
                "its MLP is GELU or SwiGLU",
            ))
        }
    }
    if m.experts > 1 {
        match dialect {
            Dialect::Megatron => {
                out.push(format!("--num-experts {}", m.experts));
                out.push(format!("--moe-router-topk {}", m.top_k));
                out.push(format!("--moe-ffn-hidden-size {}", m.ffn));
                if m.shared_ffn > 0 {
                    out.push(format!("--moe-shared-expert-intermediate-size {}", m.shared_ffn));
                }
                if setup.capacity_factor > 1.0 {
                    out.push(format!("--moe-expert-capacity-factor {}", setup.capacity_factor));
                    out.push("--moe-pad-expert-input-to-capacity".into());
                }
            }
            Dialect::MegatronDeepSpeed => {
                if m.shared_ffn > 0 {
                    return Err(refuse(target, "shared experts", "emit for Megatron-LM or torchtitan"));
                }
                out.push(format!("--num-experts {}", m.experts));
                out.push(format!("--topk {}", m.top_k));
                // Every layer is an MoE layer (its default is every second one).
                out.push("--expert-interval 1".into());
            }
        }
    }
    out.push(format!("--ffn-hidden-size {}", m.ffn));
    match &model.head.lm_head {
        Some(h) if h.bias || h.transform => {
            return Err(refuse(target, "an LM head with bias or transform", "its output layer is one linear map"))
        }
        Some(h) if !h.tied => out.push("--untie-embeddings-and-output-weights".into()),
        Some(_) => {}
        None => {
            return Err(refuse(target, format!("model `{}` without an LM head", model.name), "plan a language model"))
        }
    }
    let vocab = model.vocab();
    if vocab == 0 {
        return Err(refuse(target, "a model without token embeddings", "plan a language model"));
    }
    // No padding beyond a multiple of tp: the embedding shard is ceil(V / tp), as estimated.
    out.push("--tokenizer-type NullTokenizer".into());
    out.push(format!("--vocab-size {vocab}"));
    out.push("--make-vocab-size-divisible-by 1".into());
    out.push(format!("--seq-length {}", setup.seq));
    let (hidden_p, attn_p) = if setup.dropout == Some(false) { (0.0, 0.0) } else { (l.hidden_dropout, a.dropout) };
    out.push(format!("--hidden-dropout {hidden_p}"));
    out.push(format!("--attention-dropout {attn_p}"));
    Ok(out)
}

/// The layout flags of a pipeline plan.
pub fn layout_args(job: &Job, dialect: Dialect) -> Result<Vec<String>> {
    let plan = &job.candidate.plan;
    let layers = job.model.total_layers();
    let target = dialect.name();
    let mut out = Vec::new();
    if plan.pp == 1 {
        return Ok(out);
    }
    let v = if plan.schedule == Schedule::Interleaved { plan.vpp } else { 1 };
    if plan.schedule == Schedule::Gpipe || (dialect == Dialect::MegatronDeepSpeed && v > 1) {
        return Err(refuse(target, format!("the {:?} pipeline schedule", plan.schedule), "use 1F1B"));
    }
    let kind = if dialect == Dialect::Megatron { Layouts::Megatron } else { Layouts::DeepSpeed };
    let layout = if !plan.uneven() {
        Layout::Even
    } else {
        *pipeline_layouts(kind, layers, plan.pp, v)
            .iter()
            .find(|l| l.fields() == (plan.first_stage_layers, plan.last_stage_layers))
            .ok_or_else(|| {
                refuse(
                    target,
                    format!(
                        "{} layers laid out as {:?}/…/{:?} over pp {} with v {v}",
                        layers, plan.first_stage_layers, plan.last_stage_layers, plan.pp
                    ),
                    "its uneven layouts are first/last stage layers divisible by v, or the embedding and loss counted as layers",
                )
            })?
    };
    match (layout, dialect) {
        (Layout::Even, Dialect::Megatron) if v > 1 => {
            out.push(format!("--num-layers-per-virtual-pipeline-stage {}", layers / (plan.pp * v)))
        }
        (Layout::Even, _) => {}
        (Layout::EmbeddingAndLoss { .. }, Dialect::Megatron) => {
            out.push("--account-for-embedding-in-pipeline-split".into());
            out.push("--account-for-loss-in-pipeline-split".into());
            if v > 1 {
                out.push(format!("--num-virtual-stages-per-pipeline-rank {v}"));
            }
        }
        (Layout::EmbeddingAndLoss { .. }, Dialect::MegatronDeepSpeed) => {
            // BigScience's Megatron-DeepSpeed (the BLOOM recipe): the tied embeddings take a
            // layer's slot each in DeepSpeed's PipelineModule partitioning.
            out.push("--pp-partition-method 'type:transformer|embedding'".into());
        }
        (Layout::FirstLast { first, last }, Dialect::Megatron) => {
            out.push(format!("--decoder-first-pipeline-num-layers {first}"));
            out.push(format!("--decoder-last-pipeline-num-layers {last}"));
            if v > 1 {
                out.push(format!("--num-virtual-stages-per-pipeline-rank {v}"));
            }
        }
        (Layout::FirstLast { .. }, Dialect::MegatronDeepSpeed) => {
            return Err(refuse(target, "explicit first/last stage layers", "use an even or embedding-counting layout"))
        }
    }
    Ok(out)
}

/// Megatron-LM's arguments for the candidate.
pub fn args(job: &Job) -> Result<Vec<String>> {
    let target = "Megatron-LM";
    let c = job.candidate;
    let plan = &c.plan;
    let setup = job.run_setup();
    let mut a = vec![
        format!("--tensor-model-parallel-size {}", plan.tp),
        format!("--pipeline-model-parallel-size {}", plan.pp),
    ];
    a.extend(layout_args(job, super::megatron::Dialect::Megatron)?);
    if plan.sp {
        a.push("--sequence-parallel".into());
    }
    if plan.cp > 1 {
        a.push(format!("--context-parallel-size {}", plan.cp));
    }
    if plan.ep > 1 {
        a.push(format!("--expert-model-parallel-size {}", plan.ep));
    }
    a.push(format!("--micro-batch-size {}", c.micro_batch));
    a.push(format!("--global-batch-size {}", job.global_batch));
    // Sharding of model states.
    match (plan.zero, plan.fsdp, plan.distributed_optimizer) {
        (0, None, false) => {}
        (0, None, true) => a.push("--use-distributed-optimizer".into()),
        (0, Some(f @ (Fsdp::Full | Fsdp::GradOp)), false) => {
            a.push("--use-megatron-fsdp".into());
            // Megatron-FSDP v1 runs on the distributed optimizer (arguments.py).
            a.push("--use-distributed-optimizer".into());
            a.push(format!(
                "--data-parallel-sharding-strategy {}",
                if f == Fsdp::Full { "optim_grads_params" } else { "optim_grads" }
            ));
            a.push("--ckpt-format fsdp_dtensor".into());
        }
        (z, f, _) => {
            return Err(refuse(
                target,
                match f {
                    Some(f) => format!("FSDP {f:?} sharding"),
                    None => format!("ZeRO-{z}"),
                },
                "Megatron shards with --use-distributed-optimizer (ZeRO-1) or Megatron-FSDP; emit --emit deepspeed for ZeRO-2/3",
            ))
        }
    }
    match plan.offload {
        Offload::None => {}
        Offload::Optimizer if plan.distributed_optimizer && plan.fsdp.is_none() => {
            a.push("--optimizer-cpu-offload".into());
            a.push("--optimizer-offload-fraction 1.0".into());
            a.push("--use-precision-aware-optimizer".into());
        }
        other => {
            return Err(refuse(
                target,
                format!("{other:?} offload with this sharding"),
                "offload the optimizer with the distributed optimizer",
            ))
        }
    }
    match setup.precision {
        // bf16 keeps fp32 main grads (arguments.py sets accumulate_allreduce_grads_in_fp32 for bf16).
        Precision::MegatronBf16 => {
            a.push("--bf16".into());
            a.push("--accumulate-allreduce-grads-in-fp32".into());
        }
        Precision::MegatronFp16 => a.push("--fp16".into()),
        Precision::Fp32 => {}
        other => {
            return Err(refuse(
                target,
                format!("the {} precision recipe", other.name()),
                "Megatron keeps fp32 main params and grads: plan with --precision megatron-bf16",
            ))
        }
    }
    match setup.recompute {
        Recompute::None => {}
        Recompute::Selective => a.push("--recompute-granularity selective".into()),
        Recompute::Full => {
            a.push("--recompute-granularity full".into());
            a.push("--recompute-method uniform".into());
            a.push("--recompute-num-layers 1".into());
        }
        // Megatron's arguments.py offers selective (core attention) and full granularity only.
        Recompute::Op | Recompute::Hf | Recompute::Every(_) => return Err(refuse(
            target,
            format!("{} recomputation", setup.recompute),
            "Megatron-LM recomputes selectively (the attention core) or full layers: use --recompute selective or full",
        )),
    }
    a.push(match setup.attention {
        AttentionKernel::Flash | AttentionKernel::FlashAttn2 => "--attention-backend flash".into(),
        AttentionKernel::Eager => "--attention-backend unfused".into(),
    });
    match setup.optimizer {
        Optimizer::Adamw | Optimizer::Adam => a.push("--optimizer adam".into()),
        Optimizer::SgdMomentum => a.push("--optimizer sgd".into()),
        Optimizer::Sgd => {
            a.push("--optimizer sgd".into());
            a.push("--sgd-momentum 0".into());
        }
        other => return Err(refuse(target, format!("the {} optimizer", other.name()), "use adamw or sgd")),
    }
    if setup.finetune.lora().is_some() {
        return Err(refuse(target, "LoRA/QLoRA fine-tuning", "emit --emit fsdp for PEFT"));
    }
    a.extend(shape_args(job, Dialect::Megatron)?);
    Ok(a)
}

pub fn render(job: &Job) -> Result<Vec<File>> {
    let args = args(job)?;
    let header = vec![
        job.header(),
        "Megatron-LM: run on every node with NODE_RANK and MASTER_ADDR set; add --data-path and the tokenizer of the run".into(),
        "(NullTokenizer stands for a tokenizer of the same vocabulary size).".into(),
    ];
    let command = format!("{} \\\n  pretrain_gpt.py", torchrun(job));
    Ok(vec![File { name: "launch_megatron.sh".into(), contents: script(&header, &command, &args) }])
}
