//! Launch configs for the chosen plan: a DeepSpeed JSON config (key names as in DeepSpeed's
//! configuration documentation), the Megatron-LM argument list (`megatron/training/arguments.py`
//! flag names), and a torchrun command for PyTorch FSDP through the Hugging Face Trainer
//! (`--fsdp` and `--fsdp_config` as in `TrainingArguments`). Files are written atomically.

use super::search::Candidate;
use crate::error::{Error, Result};
use crate::memory::{Precision, Recompute, Setup};
use crate::model::spec::ModelSpec;
use crate::parallel::{Offload, Schedule};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    DeepSpeed,
    Megatron,
    Fsdp,
}

/// Write `contents` to `path` whole or not at all.
pub fn write_atomic(path: &Path, contents: &str) -> Result<()> {
    crate::fsio::write_atomic(path, contents.as_bytes())
}

/// The DeepSpeed config for a plan's data-parallel part (ZeRO stage, offload, batch sizes,
/// precision). DeepSpeed checks train_batch_size = micro × accumulation × data-parallel ranks.
pub fn deepspeed_config(setup: &Setup, c: &Candidate, global_batch: u64) -> Value {
    let plan = &c.plan;
    let mut zero = json!({
        "stage": plan.zero,
        "overlap_comm": true,
        "contiguous_gradients": true,
        "reduce_bucket_size": 500_000_000u64,
    });
    if plan.offload != Offload::None {
        zero["offload_optimizer"] = json!({"device": "cpu", "pin_memory": true});
    }
    if plan.offload == Offload::Params {
        zero["offload_param"] = json!({"device": "cpu", "pin_memory": true});
    }
    let mut cfg = json!({
        "train_batch_size": global_batch,
        "train_micro_batch_size_per_gpu": c.micro_batch,
        "gradient_accumulation_steps": plan.microbatches,
        "gradient_clipping": 1.0,
        "zero_optimization": zero,
        "optimizer": {"type": "AdamW", "params": {"lr": 1e-4, "betas": [0.9, 0.95], "eps": 1e-8, "weight_decay": 0.1}},
    });
    match setup.precision {
        Precision::Fp16 | Precision::MixedFp16 | Precision::AmpFp16 | Precision::MegatronFp16 => {
            cfg["fp16"] = json!({"enabled": true, "loss_scale": 0, "initial_scale_power": 16});
        }
        Precision::Fp32 => {}
        _ => cfg["bf16"] = json!({"enabled": true}),
    }
    cfg
}

/// Megatron-LM arguments, one flag per line.
pub fn megatron_args(model: &ModelSpec, setup: &Setup, c: &Candidate, global_batch: u64) -> Vec<String> {
    let plan = &c.plan;
    let mut a = vec![
        format!("--tensor-model-parallel-size {}", plan.tp),
        format!("--pipeline-model-parallel-size {}", plan.pp),
    ];
    if plan.schedule == Schedule::Interleaved {
        a.push(format!("--num-layers-per-virtual-pipeline-stage {}", model.total_layers() / (plan.pp * plan.vpp)));
    }
    if plan.sp {
        a.push("--sequence-parallel".into());
    }
    if plan.cp > 1 {
        a.push(format!("--context-parallel-size {}", plan.cp));
    }
    if plan.ep > 1 {
        a.push(format!("--expert-model-parallel-size {}", plan.ep));
    }
    match c.recompute.coarse() {
        Recompute::None => {}
        Recompute::Selective => a.push("--recompute-granularity selective".into()),
        _ => {
            a.push("--recompute-granularity full".into());
            a.push("--recompute-method uniform".into());
            a.push("--recompute-num-layers 1".into());
        }
    }
    a.push(format!("--micro-batch-size {}", c.micro_batch));
    a.push(format!("--global-batch-size {global_batch}"));
    if plan.distributed_optimizer {
        a.push("--use-distributed-optimizer".into());
    }
    match setup.precision {
        Precision::Fp16 | Precision::MixedFp16 | Precision::AmpFp16 | Precision::MegatronFp16 => {
            a.push("--fp16".into())
        }
        Precision::Fp32 => {}
        _ => a.push("--bf16".into()),
    }
    if let Some(s) = model.stacks.iter().find(|s| s.causal).or(model.stacks.first()) {
        let at = &s.layer.attention;
        a.push(format!("--num-layers {}", s.layers));
        a.push(format!("--hidden-size {}", s.layer.hidden));
        a.push(format!("--ffn-hidden-size {}", s.layer.mlp.ffn));
        a.push(format!("--num-attention-heads {}", at.heads));
        if at.kv_heads() != at.heads {
            a.push("--group-query-attention".into());
            a.push(format!("--num-query-groups {}", at.kv_heads()));
        }
        if s.layer.mlp.gated {
            a.push("--swiglu".into());
        }
        if s.layer.mlp.experts > 1 {
            a.push(format!("--num-experts {}", s.layer.mlp.experts));
            a.push(format!("--moe-router-topk {}", s.layer.mlp.top_k));
        }
    }
    a.push(format!("--seq-length {}", setup.seq));
    a.push(format!("--max-position-embeddings {}", setup.seq));
    a
}

/// The Hugging Face Trainer FSDP config (`--fsdp_config`).
pub fn fsdp_config(c: &Candidate) -> Value {
    json!({
        "backward_prefetch": "backward_pre",
        "forward_prefetch": false,
        "limit_all_gathers": true,
        "use_orig_params": true,
        "sync_module_states": true,
        "cpu_ram_efficient_loading": true,
        "activation_checkpointing": c.recompute.coarse() == Recompute::Full,
    })
}

/// `--fsdp` option string for the Hugging Face Trainer.
pub fn fsdp_option(c: &Candidate) -> String {
    let mut s = match c.plan.zero {
        1 | 2 if c.plan.dp > 1 => "shard_grad_op".to_string(),
        0 => "no_shard".to_string(),
        _ => "full_shard".to_string(),
    };
    if c.plan.offload != Offload::None {
        s.push_str(" offload");
    }
    s.push_str(" auto_wrap");
    s
}

pub fn emit(
    engine: Engine,
    model: &ModelSpec,
    setup: &Setup,
    c: &Candidate,
    global_batch: u64,
    dir: &Path,
) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|e| Error::Io { path: dir.to_path_buf(), message: e.to_string() })?;
    let mut written = Vec::new();
    match engine {
        Engine::DeepSpeed => {
            if c.plan.tp > 1 || c.plan.pp > 1 || c.plan.cp > 1 {
                return Err(Error::conflict(
                    format!(
                        "DeepSpeed's config expresses data parallelism and ZeRO only; the best plan uses {}",
                        c.plan.describe()
                    ),
                    "emit --emit megatron for tensor/pipeline plans, or restrict the search with --max-tp 1 --max-pp 1",
                ));
            }
            let path = dir.join("ds_config.json");
            write_atomic(
                &path,
                &(serde_json::to_string_pretty(&deepspeed_config(setup, c, global_batch)).expect("json") + "\n"),
            )?;
            written.push(path);
        }
        Engine::Megatron => {
            let path = dir.join("megatron_args.txt");
            write_atomic(&path, &(megatron_args(model, setup, c, global_batch).join("\n") + "\n"))?;
            written.push(path);
        }
        Engine::Fsdp => {
            if c.plan.tp > 1 || c.plan.pp > 1 || c.plan.cp > 1 {
                return Err(Error::conflict(
                    format!(
                        "the FSDP launcher shards over data parallelism only; the best plan uses {}",
                        c.plan.describe()
                    ),
                    "use --emit megatron, or restrict the search with --max-tp 1 --max-pp 1",
                ));
            }
            let cfg = dir.join("fsdp_config.json");
            write_atomic(&cfg, &(serde_json::to_string_pretty(&fsdp_config(c)).expect("json") + "\n"))?;
            let nodes = (c.plan.gpus()).div_ceil(c.plan.gpus_per_node).max(1);
            let per_node = c.plan.gpus().min(c.plan.gpus_per_node);
            let precision = match setup.precision {
                Precision::Fp16 | Precision::MixedFp16 | Precision::AmpFp16 | Precision::MegatronFp16 => " --fp16",
                Precision::Fp32 => "",
                _ => " --bf16",
            };
            let script = format!(
                "#!/usr/bin/env bash\n# PyTorch FSDP through the Hugging Face Trainer; run on every node with NODE_RANK and MASTER_ADDR set.\n\
                 torchrun --nnodes {nodes} --nproc-per-node {per_node} --node-rank \"${{NODE_RANK:-0}}\" --master-addr \"${{MASTER_ADDR:-127.0.0.1}}\" --master-port 29500 \\\n  \
                 train.py --per_device_train_batch_size {} --gradient_accumulation_steps {}{precision} \\\n  \
                 --fsdp \"{}\" --fsdp_config {}{}\n",
                c.micro_batch,
                c.plan.microbatches,
                fsdp_option(c),
                cfg.file_name().and_then(|n| n.to_str()).unwrap_or("fsdp_config.json"),
                if c.recompute.coarse() == Recompute::Full { " --gradient_checkpointing" } else { "" }
            );
            let path = dir.join("launch_fsdp.sh");
            write_atomic(&path, &script)?;
            written.push(cfg);
            written.push(path);
        }
    }
    Ok(written)
}
