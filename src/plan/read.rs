//! Read launch configs back into a plan and the setup settings they fix: the Megatron-LM and
//! Megatron-DeepSpeed launchers, DeepSpeed JSON, torchtitan TOML and the Hugging Face Trainer
//! FSDP launcher that `emit` writes (and hand-written ones in the same form). Pure: text in,
//! `FromConfig` out; `read_file` adds the file and its companions (`ds_config.json`,
//! `fsdp_config.json` beside a launcher).

use crate::error::{Error, Result};
use crate::memory::{AttentionKernel, Optimizer, OptimizerImpl, Precision, Recompute};
use crate::parallel::{Fsdp, Offload, ParallelPlan, Schedule};
use serde::Serialize;
use std::path::Path;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConfigFormat {
    Megatron,
    MegatronDeepspeed,
    Deepspeed,
    Torchtitan,
    Fsdp,
}

impl ConfigFormat {
    pub fn parse(text: &str) -> Result<ConfigFormat> {
        match text.trim().to_ascii_lowercase().as_str() {
            "megatron" => Ok(ConfigFormat::Megatron),
            "megatron-deepspeed" => Ok(ConfigFormat::MegatronDeepspeed),
            "deepspeed" => Ok(ConfigFormat::Deepspeed),
            "torchtitan" => Ok(ConfigFormat::Torchtitan),
            "fsdp" => Ok(ConfigFormat::Fsdp),
            _ => Err(Error::invalid(
                "--from-config-format",
                text,
                "one of megatron, megatron-deepspeed, deepspeed, torchtitan, fsdp",
            )),
        }
    }
}

/// The model dimensions a config states, to check against the model it is estimated with.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Shape {
    pub layers: Option<u64>,
    pub hidden: Option<u64>,
    pub heads: Option<u64>,
    pub kv_heads: Option<u64>,
    pub ffn: Option<u64>,
    pub vocab: Option<u64>,
    pub experts: Option<u64>,
    pub top_k: Option<u64>,
    /// torchtitan: the registered model name and flavor.
    pub flavor: Option<(String, String)>,
}

/// What a launch config fixes.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FromConfig {
    pub format: ConfigFormat,
    pub plan: ParallelPlan,
    pub micro_batch: u64,
    pub global_batch: Option<u64>,
    pub seq: Option<u64>,
    pub precision: Option<Precision>,
    pub recompute: Option<Recompute>,
    pub attention: Option<AttentionKernel>,
    pub optimizer: Option<Optimizer>,
    pub optimizer_impl: Option<OptimizerImpl>,
    /// Hidden and attention dropout probabilities as set.
    pub dropout: Option<(f64, f64)>,
    pub capacity_factor: Option<f64>,
    pub shape: Shape,
}

fn bad(path: &str, field: &str, message: impl Into<String>) -> Error {
    Error::Parse { path: path.into(), line: None, field: Some(field.into()), message: message.into() }
}

/// Split a shell script into words: comments dropped, `\` line continuations joined, single and
/// double quotes removed.
pub fn shell_words(text: &str) -> Vec<String> {
    let joined = text.replace("\\\r\n", " ").replace("\\\n", " ");
    let mut words = Vec::new();
    for line in joined.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let mut cur = String::new();
        let mut quote: Option<char> = None;
        let mut started = false;
        for ch in line.chars() {
            match (quote, ch) {
                (None, '#') if !started => break,
                (None, '\'' | '"') => {
                    quote = Some(ch);
                    started = true;
                }
                (Some(q), c) if c == q => quote = None,
                (None, c) if c.is_whitespace() => {
                    if started {
                        words.push(std::mem::take(&mut cur));
                        started = false;
                    }
                }
                (_, c) => {
                    cur.push(c);
                    started = true;
                }
            }
        }
        if started {
            words.push(cur);
        }
    }
    words
}

/// `--flag value` and `--flag` pairs of an argument list (repeated flags: the last wins).
struct Flags {
    path: String,
    values: Vec<(String, Option<String>)>,
}

impl Flags {
    fn new(path: &str, words: &[String]) -> Flags {
        let mut values = Vec::new();
        let mut i = 0;
        while i < words.len() {
            let w = &words[i];
            if let Some(name) = w.strip_prefix("--") {
                if let Some((k, v)) = name.split_once('=') {
                    values.push((k.to_string(), Some(v.to_string())));
                } else if i + 1 < words.len() && !words[i + 1].starts_with("--") {
                    values.push((name.to_string(), Some(words[i + 1].clone())));
                    i += 1;
                } else {
                    values.push((name.to_string(), None));
                }
            }
            i += 1;
        }
        Flags { path: path.to_string(), values }
    }

    fn has(&self, k: &str) -> bool {
        self.values.iter().any(|(n, _)| n == k)
    }

    fn str(&self, k: &str) -> Option<&str> {
        self.values.iter().rev().find(|(n, _)| n == k).and_then(|(_, v)| v.as_deref())
    }

    fn u64(&self, k: &str) -> Result<Option<u64>> {
        match self.str(k) {
            None if self.has(k) => Err(bad(&self.path, k, "needs a value")),
            None => Ok(None),
            Some(v) => v
                .parse::<u64>()
                .ok()
                .filter(|n| *n > 0 || k == "zero-stage")
                .map(Some)
                .ok_or_else(|| bad(&self.path, k, format!("expected a positive integer, found `{v}`"))),
        }
    }

    fn f64(&self, k: &str) -> Result<Option<f64>> {
        match self.str(k) {
            None => Ok(None),
            Some(v) => v
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite() && *x >= 0.0)
                .map(Some)
                .ok_or_else(|| bad(&self.path, k, format!("expected a non-negative number, found `{v}`"))),
        }
    }
}

/// The world size of a torchrun launcher (`--nnodes` × `--nproc-per-node`).
fn torchrun_world(path: &str, words: &[String]) -> Result<Option<u64>> {
    let Some(start) = words.iter().position(|w| w == "torchrun") else { return Ok(None) };
    let mut nnodes = None;
    let mut nproc = None;
    let mut i = start + 1;
    while i + 1 < words.len() && words[i].starts_with("--") {
        let (k, v) = (&words[i], &words[i + 1]);
        let num = |what: &str| {
            v.parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| bad(path, what, format!("expected a positive integer, found `{v}`")))
        };
        match k.as_str() {
            "--nnodes" => nnodes = Some(num("nnodes")?),
            "--nproc-per-node" | "--nproc_per_node" => nproc = Some(num("nproc-per-node")?),
            _ => {}
        }
        i += 2;
    }
    match (nnodes, nproc) {
        (Some(a), Some(b)) => a.checked_mul(b).map(Some).ok_or_else(|| bad(path, "nnodes", "too many GPUs")),
        _ => Ok(None),
    }
}

/// The arguments after the training script (`pretrain_gpt.py`, `run_clm.py`, …).
fn script_args(words: &[String]) -> &[String] {
    match words.iter().position(|w| w.ends_with(".py")) {
        Some(i) => &words[i + 1..],
        None => words,
    }
}

fn checked_div(path: &str, what: &str, a: u64, b: u64) -> Result<u64> {
    if b == 0 || !a.is_multiple_of(b) {
        return Err(bad(path, what, format!("{a} is not a multiple of {b}")));
    }
    Ok(a / b)
}

/// A Megatron-LM or Megatron-DeepSpeed launcher; `ds_config` is the DeepSpeed JSON beside it.
pub fn megatron(path: &str, text: &str, ds_config: Option<(&str, &str)>) -> Result<FromConfig> {
    let words = shell_words(text);
    let world = torchrun_world(path, &words)?;
    let f = Flags::new(path, script_args(&words));
    let deepspeed = f.has("deepspeed") || f.has("deepspeed_config");
    let tp = f.u64("tensor-model-parallel-size")?.unwrap_or(1);
    let pp = f.u64("pipeline-model-parallel-size")?.unwrap_or(1);
    let cp = f.u64("context-parallel-size")?.unwrap_or(1);
    let ep = f.u64("expert-model-parallel-size")?.or(f.u64("moe-expert-parallel-size")?).unwrap_or(1);
    let mb = f.u64("micro-batch-size")?.ok_or_else(|| bad(path, "micro-batch-size", "missing"))?;
    let gb = f.u64("global-batch-size")?.ok_or_else(|| bad(path, "global-batch-size", "missing"))?;
    let world = world
        .ok_or_else(|| bad(path, "torchrun", "no `torchrun --nnodes N --nproc-per-node P` to give the world size"))?;
    let model_parallel = tp
        .checked_mul(pp)
        .and_then(|x| x.checked_mul(cp))
        .ok_or_else(|| bad(path, "tensor-model-parallel-size", "too large"))?;
    let dp = checked_div(path, "world size", world, model_parallel)?;
    let m = checked_div(
        path,
        "global-batch-size",
        gb,
        dp.checked_mul(mb).ok_or_else(|| bad(path, "micro-batch-size", "too large"))?,
    )?;
    let layers = f.u64("num-layers")?;
    let mut plan = ParallelPlan {
        dp,
        tp,
        pp,
        cp,
        ep,
        sp: f.has("sequence-parallel"),
        microbatches: m,
        gpus_per_node: world.min(8),
        ..ParallelPlan::single()
    };
    if let Some(n) = torchrun_per_node(&words) {
        plan.gpus_per_node = n;
    }
    // Pipeline layout and schedule.
    let account = f.has("account-for-embedding-in-pipeline-split") && f.has("account-for-loss-in-pipeline-split");
    let vps = f.u64("num-virtual-stages-per-pipeline-rank")?;
    let lpv = f.u64("num-layers-per-virtual-pipeline-stage")?;
    if let Some(v) = vps {
        plan.vpp = v;
    } else if let (Some(x), Some(l)) = (lpv, layers) {
        let slots = l + 2 * u64::from(account);
        plan.vpp = checked_div(path, "num-layers-per-virtual-pipeline-stage", slots, pp.checked_mul(x).unwrap_or(0))?;
    }
    if plan.vpp > 1 {
        plan.schedule = Schedule::Interleaved;
    }
    if account {
        let l = layers.ok_or_else(|| bad(path, "num-layers", "missing"))?;
        let per = checked_div(path, "account-for-embedding-in-pipeline-split", l + 2, pp)?;
        plan.first_stage_layers = Some(per - 1);
        plan.last_stage_layers = Some(per - 1);
    }
    if let Some(method) = f.str("pp-partition-method") {
        if method.contains("embedding") {
            let l = layers.ok_or_else(|| bad(path, "num-layers", "missing"))?;
            let per = checked_div(path, "pp-partition-method", l + 2, pp)?;
            plan.first_stage_layers = Some(per - 1);
            plan.last_stage_layers = Some(per - 1);
        }
    }
    plan.first_stage_layers = f.u64("decoder-first-pipeline-num-layers")?.or(plan.first_stage_layers);
    plan.last_stage_layers = f.u64("decoder-last-pipeline-num-layers")?.or(plan.last_stage_layers);
    // Sharding and offload.
    if f.has("use-megatron-fsdp") {
        plan.fsdp = Some(match f.str("data-parallel-sharding-strategy").unwrap_or("optim_grads_params") {
            "optim_grads_params" => Fsdp::Full,
            "optim_grads" => Fsdp::GradOp,
            other => {
                return Err(bad(
                    path,
                    "data-parallel-sharding-strategy",
                    format!("`{other}` is not modelled (optim_grads_params or optim_grads)"),
                ))
            }
        });
    } else if f.has("use-distributed-optimizer") {
        plan.distributed_optimizer = true;
        if f.has("optimizer-cpu-offload") {
            plan.offload = Offload::Optimizer;
        }
    }
    let mut out = FromConfig {
        format: if deepspeed { ConfigFormat::MegatronDeepspeed } else { ConfigFormat::Megatron },
        plan,
        micro_batch: mb,
        global_batch: Some(gb),
        seq: f.u64("seq-length")?,
        precision: Some(if deepspeed {
            if f.has("bf16") {
                Precision::MixedBf16
            } else if f.has("fp16") {
                Precision::MixedFp16
            } else {
                Precision::Fp32
            }
        } else if f.has("bf16") {
            Precision::MegatronBf16
        } else if f.has("fp16") {
            Precision::MegatronFp16
        } else {
            Precision::Fp32
        }),
        recompute: Some(match f.str("recompute-granularity") {
            Some("selective") => Recompute::Selective,
            Some("full") => Recompute::Full,
            Some(other) => {
                return Err(bad(path, "recompute-granularity", format!("`{other}`: expected selective or full")))
            }
            None if f.has("checkpoint-activations") => Recompute::Full,
            None => Recompute::None,
        }),
        attention: match f.str("attention-backend") {
            Some("unfused") => Some(AttentionKernel::Eager),
            Some(_) => Some(AttentionKernel::Flash),
            None if f.has("use-flash-attn-v2") || f.has("use-flash-attn") => Some(AttentionKernel::Flash),
            None if deepspeed => Some(AttentionKernel::Eager),
            None => None,
        },
        optimizer: match f.str("optimizer") {
            Some("adam") => Some(Optimizer::Adamw),
            Some("sgd") if f.str("sgd-momentum") == Some("0") => Some(Optimizer::Sgd),
            Some("sgd") => Some(Optimizer::SgdMomentum),
            _ => None,
        },
        optimizer_impl: None,
        dropout: match (f.f64("hidden-dropout")?, f.f64("attention-dropout")?) {
            (Some(h), Some(a)) => Some((h, a)),
            _ => None,
        },
        capacity_factor: f.f64("moe-expert-capacity-factor")?,
        shape: Shape {
            layers,
            hidden: f.u64("hidden-size")?,
            heads: f.u64("num-attention-heads")?,
            kv_heads: f.u64("num-query-groups")?.or(f.u64("num-key-value-heads")?),
            ffn: f.u64("moe-ffn-hidden-size")?.or(f.u64("ffn-hidden-size")?),
            vocab: f.u64("vocab-size")?,
            experts: f.str("num-experts").and_then(|v| v.parse().ok()),
            top_k: f.u64("moe-router-topk")?.or(f.u64("topk")?),
            flavor: None,
        },
    };
    if deepspeed {
        let zero = f.u64("zero-stage")?.unwrap_or(0);
        if zero > 3 {
            return Err(bad(path, "zero-stage", format!("{zero}: expected 0–3")));
        }
        out.plan.zero = zero as u8;
        if let Some((ds_path, ds_text)) = ds_config {
            let ds = deepspeed_json(ds_path, ds_text)?;
            if ds.micro_batch != mb || ds.plan.microbatches != m || ds.plan.zero != out.plan.zero {
                return Err(bad(
                    ds_path,
                    "train_micro_batch_size_per_gpu",
                    format!(
                        "disagrees with the launcher (micro-batch {mb}, accumulation {m}, ZeRO {} there)",
                        out.plan.zero
                    ),
                ));
            }
            if ds.global_batch != Some(gb) {
                return Err(bad(
                    ds_path,
                    "train_batch_size",
                    format!("{:?} where the launcher has {gb}", ds.global_batch),
                ));
            }
            out.plan.offload = ds.plan.offload;
            out.precision = ds.precision;
        }
    }
    Ok(out)
}

fn torchrun_per_node(words: &[String]) -> Option<u64> {
    let i = words.iter().position(|w| w == "--nproc-per-node" || w == "--nproc_per_node")?;
    words.get(i + 1)?.parse().ok()
}

/// A DeepSpeed JSON config: ZeRO stage, offload, micro-batch, accumulation, data-parallel size,
/// precision. Values of "auto" (filled in by the Hugging Face integration) are errors.
pub fn deepspeed_json(path: &str, text: &str) -> Result<FromConfig> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| Error::Parse {
        path: path.into(),
        line: Some(e.line()),
        field: None,
        message: format!("not valid JSON: {e}"),
    })?;
    let int = |pointer: &str, key: &str, default: Option<u64>, allow_zero: bool| -> Result<u64> {
        match v.pointer(pointer) {
            None | Some(serde_json::Value::Null) => default.ok_or_else(|| bad(path, key, "missing required field")),
            Some(serde_json::Value::String(s)) if s == "auto" => {
                Err(bad(path, key, "\"auto\" is filled in by the Hugging Face Trainer at run time; give a number"))
            }
            Some(x) => x
                .as_u64()
                .filter(|n| allow_zero || *n > 0)
                .ok_or_else(|| bad(path, key, format!("expected a positive integer, found {x}"))),
        }
    };
    let micro_batch = int("/train_micro_batch_size_per_gpu", "train_micro_batch_size_per_gpu", None, false)?;
    let accumulation = int("/gradient_accumulation_steps", "gradient_accumulation_steps", Some(1), false)?;
    let per_rank = micro_batch
        .checked_mul(accumulation)
        .ok_or_else(|| bad(path, "gradient_accumulation_steps", "micro-batch × accumulation is too large"))?;
    let train_batch = int("/train_batch_size", "train_batch_size", Some(per_rank), false)?;
    let dp = checked_div(path, "train_batch_size", train_batch, per_rank)?;
    let zero = int("/zero_optimization/stage", "zero_optimization.stage", Some(0), true)?;
    if zero > 3 {
        return Err(bad(path, "zero_optimization.stage", format!("expected 0, 1, 2 or 3, found {zero}")));
    }
    let device = |pointer: &str| {
        v.pointer(pointer).and_then(serde_json::Value::as_str).is_some_and(|d| d == "cpu" || d == "nvme")
    };
    let offload = if device("/zero_optimization/offload_param/device") {
        Offload::Params
    } else if device("/zero_optimization/offload_optimizer/device") {
        Offload::Optimizer
    } else {
        Offload::None
    };
    let enabled = |pointer: &str| v.pointer(pointer).and_then(serde_json::Value::as_bool).unwrap_or(false);
    let precision = if enabled("/bf16/enabled") {
        Precision::MixedBf16
    } else if enabled("/fp16/enabled") {
        Precision::MixedFp16
    } else {
        Precision::Fp32
    };
    let optimizer = match v.pointer("/optimizer/type").and_then(serde_json::Value::as_str) {
        Some(t) if t.eq_ignore_ascii_case("adamw") => Some(Optimizer::Adamw),
        Some(t) if t.eq_ignore_ascii_case("adam") => Some(Optimizer::Adam),
        _ => None,
    };
    Ok(FromConfig {
        format: ConfigFormat::Deepspeed,
        plan: ParallelPlan { dp, zero: zero as u8, offload, microbatches: accumulation, ..ParallelPlan::single() },
        micro_batch,
        global_batch: Some(train_batch),
        seq: None,
        precision: Some(precision),
        recompute: None,
        attention: None,
        optimizer,
        optimizer_impl: None,
        dropout: None,
        capacity_factor: None,
        shape: Shape::default(),
    })
}

/// A torchtitan job config (TOML).
pub fn torchtitan(path: &str, text: &str) -> Result<FromConfig> {
    let v: toml::Value = toml::from_str(text).map_err(|e| Error::Parse {
        path: path.into(),
        line: None,
        field: None,
        message: format!("not valid TOML: {e}"),
    })?;
    let get = |section: &str, key: &str| v.get(section).and_then(|s| s.get(key));
    let int = |section: &str, key: &str, default: i64| -> Result<u64> {
        match get(section, key) {
            None => u64::try_from(default).map_err(|_| bad(path, &format!("{section}.{key}"), "missing")),
            Some(x) => x.as_integer().and_then(|n| u64::try_from(n).ok()).filter(|n| *n > 0).ok_or_else(|| {
                bad(path, &format!("{section}.{key}"), format!("expected a positive integer, found {x}"))
            }),
        }
    };
    let text_of = |section: &str, key: &str| get(section, key).and_then(toml::Value::as_str);
    let replicate = int("parallelism", "data_parallel_replicate_degree", 1)?;
    let shard = int("parallelism", "data_parallel_shard_degree", -1)
        .map_err(|_| bad(path, "parallelism.data_parallel_shard_degree", "give an explicit degree (not -1)"))?;
    let tp = int("parallelism", "tensor_parallel_degree", 1)?;
    let pp = int("parallelism", "pipeline_parallel_degree", 1)?;
    let cp = int("parallelism", "context_parallel_degree", 1)?;
    let ep = int("parallelism", "expert_parallel_degree", 1)?;
    let local = int("training", "local_batch_size", 8)?;
    let seq = int("training", "seq_len", 2048)?;
    let dp = replicate.checked_mul(shard).ok_or_else(|| bad(path, "parallelism", "degrees too large"))?;
    let (micro_batch, microbatches) = if pp > 1 {
        let mb = int("parallelism", "pipeline_parallel_microbatch_size", 1)?;
        (mb, checked_div(path, "training.local_batch_size", local, mb)?)
    } else {
        let gb = int("training", "global_batch_size", i64::try_from(local.saturating_mul(dp)).unwrap_or(i64::MAX))?;
        (local, checked_div(path, "training.global_batch_size", gb, local.checked_mul(dp).unwrap_or(0))?)
    };
    let reshard = text_of("parallelism", "fsdp_reshard_after_forward").unwrap_or("default");
    let fsdp = match (replicate, shard) {
        (_, 1) => None,
        (1, _) if pp > 1 || reshard == "never" => Some(Fsdp::GradOp),
        (1, _) => Some(Fsdp::Full),
        (_, _) => Some(Fsdp::Hybrid),
    };
    let (schedule, vpp) = match text_of("parallelism", "pipeline_parallel_schedule").unwrap_or("1F1B") {
        _ if pp == 1 => (Schedule::OneFOneB, 1),
        "1F1B" => (Schedule::OneFOneB, 1),
        "GPipe" => (Schedule::Gpipe, 1),
        "Interleaved1F1B" => (Schedule::Interleaved, 0),
        other => {
            return Err(bad(
                path,
                "parallelism.pipeline_parallel_schedule",
                format!("`{other}` is not modelled (1F1B, GPipe, Interleaved1F1B)"),
            ))
        }
    };
    let mut plan = ParallelPlan {
        dp,
        tp,
        pp,
        cp,
        ep,
        sp: tp > 1,
        fsdp,
        schedule,
        vpp: vpp.max(1),
        microbatches,
        offload: if get("training", "enable_cpu_offload").and_then(toml::Value::as_bool).unwrap_or(false) {
            Offload::Params
        } else {
            Offload::None
        },
        ..ParallelPlan::single()
    };
    if pp > 1 {
        let per = int("parallelism", "pipeline_parallel_layers_per_stage", 0)
            .map_err(|_| bad(path, "parallelism.pipeline_parallel_layers_per_stage", "give the layers per stage"))?;
        let less_first = get("parallelism", "pipeline_parallel_first_stage_less_layers")
            .and_then(toml::Value::as_integer)
            .unwrap_or(1);
        let less_last = get("parallelism", "pipeline_parallel_last_stage_less_layers")
            .and_then(toml::Value::as_integer)
            .unwrap_or(1);
        // The chunks: effective layers / per; stages per rank = chunks / pp.
        plan.first_stage_layers = None;
        plan.last_stage_layers = None;
        // vpp and the uneven layout need the layer count: completed by `complete_torchtitan`.
        plan.vpp = 0;
        let _ = (per, less_first, less_last);
    }
    let (name, flavor) = (text_of("model", "name").unwrap_or("llama3"), text_of("model", "flavor").unwrap_or(""));
    Ok(FromConfig {
        format: ConfigFormat::Torchtitan,
        plan,
        micro_batch,
        global_batch: None,
        seq: Some(seq),
        precision: Some(match text_of("training", "mixed_precision_param").unwrap_or("bfloat16") {
            "float32" => Precision::Fp32,
            _ => Precision::MixedBf16,
        }),
        // torchtitan/config/job_config.py: mode defaults to "selective", selective_ac_option to
        // "2" (every second block); "op" is per-op SAC.
        recompute: Some(match text_of("activation_checkpoint", "mode").unwrap_or("selective") {
            "none" => Recompute::None,
            "full" => Recompute::Full,
            "selective" => match text_of("activation_checkpoint", "selective_ac_option").unwrap_or("2") {
                "op" => Recompute::Op,
                k => match k.parse::<u32>() {
                    Ok(k) if (1..=1000).contains(&k) => Recompute::Every(k),
                    _ => {
                        return Err(bad(
                            path,
                            "activation_checkpoint.selective_ac_option",
                            format!("`{k}`: expected \"op\" or a block frequency 1 to 1000"),
                        ))
                    }
                },
            },
            other => {
                return Err(bad(
                    path,
                    "activation_checkpoint.mode",
                    format!("`{other}` is not modelled (none, selective, full)"),
                ))
            }
        }),
        attention: Some(AttentionKernel::Flash),
        optimizer: match text_of("optimizer", "name") {
            Some("AdamW") | None => Some(Optimizer::Adamw),
            Some("Adam") => Some(Optimizer::Adam),
            Some(other) => return Err(bad(path, "optimizer.name", format!("`{other}` is not modelled (AdamW, Adam)"))),
        },
        optimizer_impl: Some(match text_of("optimizer", "implementation").unwrap_or("fused") {
            "foreach" => OptimizerImpl::Foreach,
            "for-loop" => OptimizerImpl::ForLoop,
            _ => OptimizerImpl::Fused,
        }),
        dropout: Some((0.0, 0.0)),
        capacity_factor: None,
        shape: Shape { flavor: Some((name.to_string(), flavor.to_string())), ..Shape::default() },
    })
}

/// Fill in the torchtitan pipeline split from the model's layer count: chunks =
/// (L + first_less + last_less) / layers_per_stage over pp ranks.
pub fn complete_torchtitan(fc: &mut FromConfig, text: &str, layers: u64) -> Result<()> {
    if fc.format != ConfigFormat::Torchtitan || fc.plan.pp == 1 {
        return Ok(());
    }
    let v: toml::Value = toml::from_str(text).map_err(|e| bad("torchtitan config", "parallelism", e.to_string()))?;
    let p = v.get("parallelism");
    let int = |k: &str, d: i64| p.and_then(|s| s.get(k)).and_then(toml::Value::as_integer).unwrap_or(d);
    let per = u64::try_from(int("pipeline_parallel_layers_per_stage", 0)).unwrap_or(0);
    let less_first = u64::try_from(int("pipeline_parallel_first_stage_less_layers", 1)).unwrap_or(1);
    let less_last = u64::try_from(int("pipeline_parallel_last_stage_less_layers", 1)).unwrap_or(1);
    if per == 0 {
        return Err(bad(
            "torchtitan config",
            "parallelism.pipeline_parallel_layers_per_stage",
            "give the layers per stage",
        ));
    }
    let effective = layers + less_first + less_last;
    let chunks = effective.div_ceil(per);
    let pp = fc.plan.pp;
    if !chunks.is_multiple_of(pp) {
        return Err(bad(
            "torchtitan config",
            "parallelism.pipeline_parallel_layers_per_stage",
            format!("{chunks} stages are not divisible by pipeline_parallel_degree {pp} (torchtitan raises)"),
        ));
    }
    let v_ = chunks / pp;
    fc.plan.vpp = if fc.plan.schedule == Schedule::Interleaved { v_ } else { 1 };
    if (less_first, less_last) != (0, 0) {
        match crate::plan::frameworks::torchtitan_ranks(layers, pp, v_, less_first, less_last) {
            Some((first, middle, last)) if !(first == middle && last == middle) => {
                fc.plan.first_stage_layers = Some(first);
                fc.plan.last_stage_layers = Some(last);
            }
            Some(_) => {}
            None => {
                return Err(bad(
                    "torchtitan config",
                    "parallelism.pipeline_parallel_layers_per_stage",
                    "a split whose middle ranks differ, which memplan does not model",
                ))
            }
        }
    }
    Ok(())
}

/// The Hugging Face Trainer launcher; `fsdp_config` is the JSON beside it.
pub fn fsdp(path: &str, text: &str, fsdp_config: Option<(&str, &str)>) -> Result<FromConfig> {
    let words = shell_words(text);
    let world = torchrun_world(path, &words)?
        .ok_or_else(|| bad(path, "torchrun", "no `torchrun --nnodes N --nproc-per-node P`"))?;
    let f = Flags::new(path, script_args(&words));
    let mb = f.u64("per_device_train_batch_size")?.unwrap_or(8);
    let m = f.u64("gradient_accumulation_steps")?.unwrap_or(1);
    let option = f.str("fsdp").unwrap_or("");
    let fsdp = if option.contains("full_shard") {
        Some(Fsdp::Full)
    } else if option.contains("shard_grad_op") {
        Some(Fsdp::GradOp)
    } else if option.contains("hybrid_shard") {
        Some(Fsdp::Hybrid)
    } else {
        None
    };
    let mut plan = ParallelPlan { dp: world, fsdp, microbatches: m, ..ParallelPlan::single() };
    if let Some(n) = torchrun_per_node(&words) {
        plan.gpus_per_node = n;
    }
    if option.contains("offload") {
        plan.offload = Offload::Params;
    }
    // The Trainer's gradient_checkpointing is Hugging Face's per-layer checkpointing.
    let mut recompute = if f.has("gradient_checkpointing") { Recompute::Hf } else { Recompute::None };
    if let Some((cfg_path, cfg_text)) = fsdp_config {
        let v: serde_json::Value = serde_json::from_str(cfg_text).map_err(|e| Error::Parse {
            path: cfg_path.into(),
            line: Some(e.line()),
            field: None,
            message: format!("not valid JSON: {e}"),
        })?;
        if v.get("activation_checkpointing").and_then(serde_json::Value::as_bool).unwrap_or(false) {
            if recompute == Recompute::Hf {
                // transformers' Trainer raises a ValueError on both.
                return Err(bad(path, "gradient_checkpointing", "set together with fsdp_config activation_checkpointing: the Hugging Face Trainer raises a ValueError"));
            }
            recompute = Recompute::Full;
        }
    }
    let precision = match (f.has("bf16"), f.has("fp16"), fsdp.is_some()) {
        (true, _, true) => Precision::MixedBf16,
        (true, _, false) => Precision::AmpBf16,
        (_, true, true) => Precision::MixedFp16,
        (_, true, false) => Precision::AmpFp16,
        _ => Precision::Fp32,
    };
    let (optimizer, optimizer_impl) = match f.str("optim").unwrap_or("adamw_torch") {
        "adamw_torch_fused" => (Optimizer::Adamw, Some(OptimizerImpl::Fused)),
        "adamw_torch" => (Optimizer::Adamw, Some(OptimizerImpl::Foreach)),
        "adamw_bnb_8bit" => (Optimizer::Adamw8bit, None),
        "adafactor" => (Optimizer::Adafactor, None),
        "sgd" => (Optimizer::Sgd, None),
        "lion_32bit" => (Optimizer::Lion, None),
        other => return Err(bad(path, "optim", format!("`{other}` is not modelled"))),
    };
    Ok(FromConfig {
        format: ConfigFormat::Fsdp,
        plan,
        micro_batch: mb,
        global_batch: mb.checked_mul(m).and_then(|x| x.checked_mul(world)),
        seq: f.u64("block_size")?,
        precision: Some(precision),
        recompute: Some(recompute),
        attention: None,
        optimizer: Some(optimizer),
        optimizer_impl,
        dropout: None,
        capacity_factor: None,
        shape: Shape::default(),
    })
}

/// Detect the format of a config from its text.
pub fn detect(text: &str) -> Option<ConfigFormat> {
    let t = text.trim_start();
    if t.starts_with('{') {
        return Some(ConfigFormat::Deepspeed);
    }
    if text.contains("[parallelism]") || (text.contains("[model]") && text.contains("[training]")) {
        return Some(ConfigFormat::Torchtitan);
    }
    if text.contains("--per_device_train_batch_size") || text.contains("--fsdp ") {
        return Some(ConfigFormat::Fsdp);
    }
    if text.contains("--deepspeed") {
        return Some(ConfigFormat::MegatronDeepspeed);
    }
    if text.contains("--tensor-model-parallel-size") || text.contains("--micro-batch-size") {
        return Some(ConfigFormat::Megatron);
    }
    None
}

/// Read a launch config file (and its companion beside it). `format` overrides detection.
pub fn read_file(path: &Path, format: Option<ConfigFormat>) -> Result<(FromConfig, String)> {
    let text = crate::fsio::read_text(path)?;
    let shown = path.display().to_string();
    let format = match format.or_else(|| detect(&text)) {
        Some(f) => f,
        None => {
            return Err(Error::invalid(
                "--from-config",
                &shown,
                "a Megatron-LM or Megatron-DeepSpeed launcher, a DeepSpeed JSON, a torchtitan TOML or a Hugging Face FSDP launcher (or name it with --from-config-format)",
            ))
        }
    };
    let beside = |name: &str| -> Result<Option<(String, String)>> {
        let p = path.parent().unwrap_or(Path::new(".")).join(name);
        if p.exists() {
            Ok(Some((p.display().to_string(), crate::fsio::read_text(&p)?)))
        } else {
            Ok(None)
        }
    };
    let fc = match format {
        ConfigFormat::Megatron => megatron(&shown, &text, None)?,
        ConfigFormat::MegatronDeepspeed => {
            let words = shell_words(&text);
            let name =
                Flags::new(&shown, script_args(&words)).str("deepspeed_config").unwrap_or("ds_config.json").to_string();
            let ds = beside(&name)?;
            megatron(&shown, &text, ds.as_ref().map(|(p, t)| (p.as_str(), t.as_str())))?
        }
        ConfigFormat::Deepspeed => deepspeed_json(&shown, &text)?,
        ConfigFormat::Torchtitan => torchtitan(&shown, &text)?,
        ConfigFormat::Fsdp => {
            let words = shell_words(&text);
            let name = Flags::new(&shown, script_args(&words)).str("fsdp_config").map(str::to_string);
            let cfg = match name {
                Some(n) => beside(&n)?,
                None => None,
            };
            fsdp(&shown, &text, cfg.as_ref().map(|(p, t)| (p.as_str(), t.as_str())))?
        }
    };
    Ok((fc, text))
}

impl FromConfig {
    /// Check the config against `model` (its stated dimensions must match) and fill `setup`
    /// with what the config fixes; returns the validated plan. `text` is the config's own text
    /// (torchtitan's pipeline split needs the model's layer count).
    pub fn apply(
        &mut self,
        model: &crate::model::spec::ModelSpec,
        setup: &mut crate::memory::Setup,
        text: &str,
    ) -> Result<ParallelPlan> {
        let first = model.stacks.iter().find(|s| s.causal).or(model.stacks.first());
        let checks: [(&str, Option<u64>, Option<u64>); 8] = [
            ("layers", self.shape.layers, Some(model.total_layers())),
            ("hidden size", self.shape.hidden, first.map(|s| s.layer.hidden)),
            ("attention heads", self.shape.heads, first.map(|s| s.layer.attention.heads)),
            ("key/value heads", self.shape.kv_heads, first.map(|s| s.layer.attention.kv_heads())),
            ("MLP width", self.shape.ffn, first.map(|s| s.layer.mlp.ffn)),
            ("vocabulary", self.shape.vocab, Some(model.vocab())),
            ("experts", self.shape.experts.filter(|e| *e > 1), first.map(|s| s.layer.mlp.experts)),
            (
                "experts per token",
                self.shape.top_k.filter(|_| self.shape.experts.unwrap_or(1) > 1),
                first.map(|s| s.layer.mlp.top_k),
            ),
        ];
        for (what, file, ours) in checks {
            if let (Some(f), Some(o)) = (file, ours) {
                if f != o {
                    return Err(Error::conflict(
                        format!("the config's {what} is {f}, model `{}` has {o}", model.name),
                        "estimate the config with the model it was written for (--model)",
                    ));
                }
            }
        }
        if let Some((name, flavor)) = &self.shape.flavor {
            match crate::plan::emit::torchtitan::flavor(&model.name) {
                Some((n, f)) if n == name && f == flavor => {}
                _ => {
                    return Err(Error::conflict(
                        format!("the config builds torchtitan's {name} {flavor}, not model `{}`", model.name),
                        "estimate it with the matching model (llama-3-8b = llama3 8B, llama-3-70b = llama3 70B, llama-3.1-405b = llama3 405B)",
                    ))
                }
            }
        }
        complete_torchtitan(self, text, model.total_layers())?;
        setup.micro_batch = self.micro_batch;
        if let Some(s) = self.seq {
            setup.seq = s;
        }
        if let Some(p) = self.precision {
            setup.precision = p;
        }
        if let Some(r) = self.recompute {
            setup.recompute = r;
        }
        if let Some(a) = self.attention {
            setup.attention = a;
        }
        if let Some(o) = self.optimizer {
            setup.optimizer = o;
        }
        if let Some(i) = self.optimizer_impl {
            setup.optimizer_impl = i;
        }
        if let Some(c) = self.capacity_factor {
            setup.capacity_factor = c;
        }
        if let (Some((h, a)), Some(s)) = (self.dropout, first) {
            let model_p = (s.layer.hidden_dropout, s.layer.attention.dropout);
            if (h, a) == (0.0, 0.0) && model_p != (0.0, 0.0) {
                setup.dropout = Some(false);
            } else if (h, a) != model_p && (h, a) != (0.0, 0.0) {
                return Err(Error::conflict(
                    format!(
                        "the config's dropout {h}/{a} (hidden/attention) differs from model `{}`'s {}/{}",
                        model.name, model_p.0, model_p.1
                    ),
                    "memplan models a model's own dropout or none",
                ));
            }
        }
        self.plan.validate(model, setup.seq)?;
        Ok(self.plan.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_words_join_continuations_and_strip_quotes() {
        let w = shell_words("#!/bin/bash\n# c\ntorchrun --nnodes 2 \\\n  x.py --a 'b c' --d \"e\" # tail\n");
        assert_eq!(w, vec!["torchrun", "--nnodes", "2", "x.py", "--a", "b c", "--d", "e"]);
    }

    #[test]
    fn deepspeed_json_errors_name_the_field() {
        let e = deepspeed_json("c.json", r#"{"train_micro_batch_size_per_gpu": "auto"}"#).unwrap_err().to_string();
        assert!(e.contains("train_micro_batch_size_per_gpu"), "{e}");
        let e = deepspeed_json(
            "c.json",
            r#"{"train_micro_batch_size_per_gpu": 4294967296, "gradient_accumulation_steps": 4294967296}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("too large"), "{e}");
    }
}
