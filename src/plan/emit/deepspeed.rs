//! DeepSpeed: `ds_config.json` (keys from DeepSpeed's configuration documentation:
//! `train_batch_size` = micro-batch × accumulation × data-parallel ranks, `zero_optimization`,
//! `bf16`/`fp16`) and the Megatron-DeepSpeed launcher that builds the model, its tensor and
//! pipeline parallelism (the pipe engine), recomputation and MoE layers.

use super::megatron::{layout_args, shape_args, Dialect};
use super::{refuse, script, torchrun, File, Job};
use crate::error::Result;
use crate::memory::{AttentionKernel, Optimizer, Precision, Recompute};
use crate::parallel::Offload;
use serde_json::{json, Value};

/// DeepSpeed's `reduce_bucket_size`, as the memory model assumes (`parallel::sharding`).
pub const REDUCE_BUCKET: u64 = crate::memory::sharding::DEEPSPEED_BUCKET_ELEMENTS;

pub fn config(job: &Job) -> Result<Value> {
    let target = "DeepSpeed";
    let c = job.candidate;
    let plan = &c.plan;
    let setup = job.run_setup();
    if plan.fsdp.is_some() || plan.distributed_optimizer {
        return Err(refuse(target, "FSDP or Megatron's distributed optimizer", "DeepSpeed shards with ZeRO stages"));
    }
    if plan.pp > 1 && plan.zero >= 2 {
        return Err(refuse(
            target,
            format!("ZeRO-{} with pipeline parallelism", plan.zero),
            "deepspeed/runtime/pipe/engine.py refuses ZeRO-2/3 under the pipe engine; use ZeRO-1",
        ));
    }
    let mut zero = json!({
        "stage": plan.zero,
        "overlap_comm": true,
        "contiguous_gradients": true,
        "reduce_bucket_size": REDUCE_BUCKET,
        "allgather_bucket_size": REDUCE_BUCKET,
    });
    match plan.offload {
        Offload::None => {}
        Offload::Optimizer if plan.zero >= 1 => {
            zero["offload_optimizer"] = json!({"device": "cpu", "pin_memory": true});
        }
        Offload::Params if plan.zero == 3 => {
            zero["offload_optimizer"] = json!({"device": "cpu", "pin_memory": true});
            zero["offload_param"] = json!({"device": "cpu", "pin_memory": true});
        }
        other => {
            return Err(refuse(
                target,
                format!("{other:?} offload at ZeRO-{}", plan.zero),
                "offload needs ZeRO ≥ 1 (parameters: ZeRO-3)",
            ))
        }
    }
    let optimizer = match setup.optimizer {
        Optimizer::Adamw => {
            json!({"type": "AdamW", "params": {"lr": 1e-4, "betas": [0.9, 0.95], "eps": 1e-8, "weight_decay": 0.1}})
        }
        Optimizer::Adam => json!({"type": "Adam", "params": {"lr": 1e-4, "betas": [0.9, 0.95], "eps": 1e-8}}),
        other => {
            return Err(refuse(target, format!("the {} optimizer in ds_config", other.name()), "use adamw or adam"))
        }
    };
    let mut cfg = json!({
        "train_batch_size": job.global_batch,
        "train_micro_batch_size_per_gpu": c.micro_batch,
        "gradient_accumulation_steps": plan.microbatches,
        "gradient_clipping": 1.0,
        "zero_optimization": zero,
        "optimizer": optimizer,
        "steps_per_print": 10,
        "wall_clock_breakdown": false,
    });
    match setup.precision {
        Precision::MixedBf16 => cfg["bf16"] = json!({"enabled": true}),
        Precision::MixedFp16 => cfg["fp16"] = json!({"enabled": true, "loss_scale": 0, "initial_scale_power": 16}),
        Precision::Fp32 => {}
        other => {
            return Err(refuse(
                target,
                format!("the {} precision recipe", other.name()),
                "DeepSpeed keeps 16-bit weights and grads with fp32 master states: --precision mixed-bf16",
            ))
        }
    }
    if setup.recompute == Recompute::Full {
        // Megatron-DeepSpeed's --deepspeed-activation-checkpointing reads this section.
        cfg["activation_checkpointing"] = json!({
            "partition_activations": false,
            "contiguous_memory_optimization": false,
            "cpu_checkpointing": false,
            "number_checkpoints": null,
            "synchronize_checkpoint_boundary": false,
            "profile": false
        });
    }
    Ok(cfg)
}

/// Megatron-DeepSpeed `pretrain_gpt.py` arguments for the candidate.
pub fn args(job: &Job) -> Result<Vec<String>> {
    let target = "Megatron-DeepSpeed";
    let c = job.candidate;
    let plan = &c.plan;
    let setup = job.run_setup();
    if plan.cp > 1 || plan.sp {
        return Err(refuse(target, "context or sequence parallelism", "emit for Megatron-LM or torchtitan"));
    }
    let mut a = vec![
        "--deepspeed".to_string(),
        "--deepspeed_config ds_config.json".to_string(),
        format!("--zero-stage {}", plan.zero),
        format!("--tensor-model-parallel-size {}", plan.tp),
        format!("--pipeline-model-parallel-size {}", plan.pp),
    ];
    if plan.pp == 1 {
        a.push("--no-pipeline-parallel".into());
    }
    a.extend(layout_args(job, Dialect::MegatronDeepSpeed)?);
    if plan.ep > 1 {
        a.push(format!("--moe-expert-parallel-size {}", plan.ep));
    }
    a.push(format!("--micro-batch-size {}", c.micro_batch));
    a.push(format!("--global-batch-size {}", job.global_batch));
    match setup.precision {
        Precision::MixedBf16 => a.push("--bf16".into()),
        Precision::MixedFp16 => a.push("--fp16".into()),
        _ => {}
    }
    match setup.recompute {
        Recompute::None => {}
        Recompute::Full => {
            a.push("--checkpoint-activations".into());
            a.push("--deepspeed-activation-checkpointing".into());
        }
        Recompute::Selective | Recompute::Op | Recompute::Hf | Recompute::Every(_) => {
            return Err(refuse(
                target,
                format!("{} recomputation", setup.recompute),
                "use full recomputation, or emit for Megatron-LM (selective) or torchtitan (op, every-k)",
            ))
        }
    }
    if matches!(setup.attention, AttentionKernel::Flash | AttentionKernel::FlashAttn2) {
        a.push("--use-flash-attn-v2".into());
    }
    if setup.finetune.lora().is_some() {
        return Err(refuse(target, "LoRA/QLoRA fine-tuning", "emit --emit fsdp for PEFT"));
    }
    a.extend(shape_args(job, Dialect::MegatronDeepSpeed)?);
    Ok(a)
}

pub fn render(job: &Job) -> Result<Vec<File>> {
    let cfg = config(job)?;
    let args = args(job)?;
    let header = vec![
        job.header(),
        "Megatron-DeepSpeed: run on every node with NODE_RANK and MASTER_ADDR set, beside ds_config.json; add --data-path".into(),
        "and the tokenizer of the run (NullTokenizer stands for one of the same vocabulary size).".into(),
    ];
    let command = format!("{} \\\n  pretrain_gpt.py", torchrun(job));
    Ok(vec![
        File {
            name: "ds_config.json".into(),
            contents: serde_json::to_string_pretty(&cfg).expect("json serialises") + "\n",
        },
        File { name: "launch_deepspeed.sh".into(), contents: script(&header, &command, &args) },
    ])
}
