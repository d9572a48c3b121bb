//! torchtitan job config (TOML, as read by `torchtitan/config/job_config.py` up to the
//! Python-registry refactor, commit 238fa995): the model comes from torchtitan's registry by
//! name and flavor; degrees, FSDP2 sharding, the pipeline schedule and split, micro-batches,
//! context and expert parallelism, activation checkpointing and mixed precision are its keys.

use super::{refuse, File, Job};
use crate::error::Result;
use crate::memory::{Optimizer, OptimizerImpl, Precision, Recompute};
use crate::parallel::{Fsdp, Offload, Schedule};
use crate::plan::frameworks::{pipeline_layouts, Layout, Layouts};

/// torchtitan's registered (model name, flavor) for the memplan presets it builds
/// (`torchtitan/models/llama3/__init__.py`, `torchtitan/models/deepseek_v3/__init__.py`).
pub const FLAVORS: &[(&str, &str, &str)] = &[
    ("llama-3-8b", "llama3", "8B"),
    ("llama-3-70b", "llama3", "70B"),
    ("llama-3.1-405b", "llama3", "405B"),
    ("deepseek-v2-lite", "deepseek_v3", "16B"),
    ("deepseek-v3", "deepseek_v3", "671B"),
];

pub fn flavor(model: &str) -> Option<(&'static str, &'static str)> {
    FLAVORS.iter().find(|(m, _, _)| *m == model).map(|(_, n, f)| (*n, *f))
}

pub fn render(job: &Job) -> Result<Vec<File>> {
    let target = "torchtitan";
    let c = job.candidate;
    let plan = &c.plan;
    let setup = job.run_setup();
    let model = job.model;
    let (name, flavor) = flavor(&model.name).ok_or_else(|| {
        refuse(
            target,
            format!("model `{}`: torchtitan builds models from its registry", model.name),
            format!(
                "its registered flavors: {}; emit --emit fsdp or megatron for other models",
                FLAVORS.iter().map(|(m, _, _)| *m).collect::<Vec<_>>().join(", ")
            ),
        )
    })?;
    let (replicate, shard, reshard) = match (plan.fsdp, plan.zero, plan.distributed_optimizer) {
        (None, 0, false) => (plan.dp, 1, "default"),
        (Some(Fsdp::Full), 0, false) if plan.pp == 1 => (1, plan.dp, "default"),
        // Under pipeline parallelism the "default" policy does not reshard after forward.
        (Some(Fsdp::GradOp), 0, false) if plan.pp > 1 => (1, plan.dp, "default"),
        (Some(Fsdp::GradOp), 0, false) => (1, plan.dp, "never"),
        (Some(Fsdp::Hybrid), 0, false) => {
            let s = plan.shard_degree();
            (plan.dp / s, s, "default")
        }
        _ => {
            return Err(refuse(
                target,
                format!("{} sharding", plan.describe()),
                "torchtitan shards with FSDP2 (data_parallel_shard_degree) or replicates (DDP)",
            ))
        }
    };
    let precision =
        match setup.precision {
            Precision::MixedBf16 => "bfloat16",
            Precision::Fp32 => "float32",
            other => return Err(refuse(
                target,
                format!("the {} precision recipe", other.name()),
                "torchtitan keeps fp32 sharded parameters with a bf16 or fp32 compute dtype: --precision mixed-bf16",
            )),
        };
    let optimizer = match setup.optimizer {
        Optimizer::Adamw => "AdamW",
        Optimizer::Adam => "Adam",
        other => return Err(refuse(target, format!("the {} optimizer", other.name()), "use adamw or adam")),
    };
    let implementation = match setup.optimizer_impl {
        OptimizerImpl::Foreach => "foreach",
        OptimizerImpl::Fused => "fused",
        OptimizerImpl::ForLoop => "for-loop",
    };
    let offload = match plan.offload {
        Offload::None => false,
        Offload::Params if plan.fsdp == Some(Fsdp::Full) => true,
        other => {
            return Err(refuse(
                target,
                format!("{other:?} offload"),
                "torchtitan offloads parameters, gradients and optimizer with FSDP2 (enable_cpu_offload)",
            ))
        }
    };
    if setup.finetune.lora().is_some() {
        return Err(refuse(target, "LoRA/QLoRA fine-tuning", "emit --emit fsdp for PEFT"));
    }
    if plan.tp > 1 && !plan.sp {
        return Err(refuse(
            target,
            "tensor parallelism without sequence parallelism",
            "torchtitan's apply_tp always shards norms over the sequence",
        ));
    }
    let layers = model.total_layers();
    let (schedule, v) = match plan.schedule {
        _ if plan.pp == 1 => ("1F1B", 1),
        Schedule::OneFOneB => ("1F1B", 1),
        Schedule::Gpipe => ("GPipe", 1),
        Schedule::Interleaved => ("Interleaved1F1B", plan.vpp),
    };
    // The split: L + in + out effective layers over pp·v chunks (pipeline_parallel.py).
    let (less_first, less_last, per_chunk) = if plan.pp == 1 {
        (0, 0, layers)
    } else {
        let layout = pipeline_layouts(Layouts::Torchtitan, layers, plan.pp, v)
            .into_iter()
            .chain(std::iter::once(Layout::Even).filter(|_| layers.is_multiple_of(plan.pp * v)))
            .find(|l| l.fields() == (plan.first_stage_layers, plan.last_stage_layers))
            .ok_or_else(|| {
                refuse(
                    target,
                    format!(
                        "{layers} layers as {:?}/…/{:?} over pp {}",
                        plan.first_stage_layers, plan.last_stage_layers, plan.pp
                    ),
                    "torchtitan splits L + 1 + 1 effective layers evenly over pp·v chunks, or L evenly",
                )
            })?;
        match layout {
            Layout::Even => (0, 0, layers / (plan.pp * v)),
            _ => (1, 1, (layers + 2).div_ceil(plan.pp * v)),
        }
    };
    let local_batch = c.micro_batch * if plan.pp > 1 { plan.microbatches } else { 1 };
    // torchtitan's [activation_checkpoint]: mode none|selective|full; selective_ac_option "op"
    // (per-op SAC) or an integer k (every k-th block) — torchtitan/config/job_config.py.
    let (ac, ac_option) =
        match setup.recompute {
            Recompute::None => ("none", None),
            Recompute::Full => ("full", None),
            Recompute::Op => ("selective", Some("op".to_string())),
            Recompute::Every(k) => ("selective", Some(k.to_string())),
            Recompute::Selective | Recompute::Hf => return Err(refuse(
                target,
                format!("{} recomputation", setup.recompute),
                "torchtitan checkpoints per op (--recompute op), every k-th block (--recompute every-K) or full layers",
            )),
        };
    let mut t = String::new();
    t.push_str(&format!("# {}\n", job.header()));
    t.push_str("# torchtitan job config: run with torchrun (NGPU per node) on every node; add the dataset and tokenizer of the run.\n\n");
    t.push_str(&format!("[job]\ndescription = \"{}\"\n\n", job.header().replace('"', "'")));
    t.push_str(&format!("[model]\nname = \"{name}\"\nflavor = \"{flavor}\"\n\n"));
    t.push_str(&format!("[optimizer]\nname = \"{optimizer}\"\nimplementation = \"{implementation}\"\n\n"));
    t.push_str("[training]\n");
    t.push_str(&format!("local_batch_size = {local_batch}\n"));
    t.push_str(&format!("global_batch_size = {}\n", job.global_batch));
    t.push_str(&format!("seq_len = {}\n", setup.seq));
    t.push_str("max_norm = 1.0\n");
    t.push_str(&format!("mixed_precision_param = \"{precision}\"\nmixed_precision_reduce = \"float32\"\n"));
    t.push_str(&format!("enable_cpu_offload = {offload}\n\n"));
    t.push_str("[parallelism]\n");
    t.push_str(&format!("data_parallel_replicate_degree = {replicate}\ndata_parallel_shard_degree = {shard}\n"));
    t.push_str(&format!("fsdp_reshard_after_forward = \"{reshard}\"\n"));
    t.push_str(&format!("tensor_parallel_degree = {}\n", plan.tp));
    t.push_str(&format!("pipeline_parallel_degree = {}\n", plan.pp));
    if plan.pp > 1 {
        t.push_str(&format!("pipeline_parallel_schedule = \"{schedule}\"\n"));
        t.push_str(&format!("pipeline_parallel_layers_per_stage = {per_chunk}\n"));
        t.push_str(&format!("pipeline_parallel_first_stage_less_layers = {less_first}\n"));
        t.push_str(&format!("pipeline_parallel_last_stage_less_layers = {less_last}\n"));
        t.push_str(&format!("pipeline_parallel_microbatch_size = {}\n", c.micro_batch));
    }
    t.push_str(&format!("context_parallel_degree = {}\n", plan.cp));
    t.push_str(&format!("expert_parallel_degree = {}\n\n", plan.ep));
    t.push_str(&format!("[activation_checkpoint]\nmode = \"{ac}\"\n"));
    if let Some(option) = &ac_option {
        t.push_str(&format!("selective_ac_option = \"{option}\"\n"));
    }
    t.push_str("\n[compile]\nenable = false\n");
    Ok(vec![File { name: "torchtitan_job.toml".into(), contents: t }])
}
