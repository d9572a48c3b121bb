//! A `ParallelPlan` and its validation. Degrees multiply to the GPU count:
//! gpus = dp · tp · pp · cp (expert parallelism reuses data-parallel ranks for experts).

use crate::error::{Error, Result};
use crate::model::spec::ModelSpec;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fsdp {
    /// FULL_SHARD (FSDP2 `reshard_after_forward=True`): weights, grads, optimizer sharded; the
    /// current and the prefetched unit are gathered.
    Full,
    /// SHARD_GRAD_OP (ZeRO-2-like): weights stay gathered from forward to backward.
    GradOp,
    /// HYBRID_SHARD: full sharding inside a node, replication across nodes.
    Hybrid,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Offload {
    #[default]
    None,
    /// ZeRO-Offload: optimizer states and fp32 gradients live in host memory; the step runs on CPU.
    Optimizer,
    /// ZeRO-Infinity: parameters too (ZeRO-3 or FSDP full only).
    Params,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Schedule {
    /// All forward passes, then all backward passes: every microbatch in flight.
    Gpipe,
    /// PipeDream-flush / Megatron 1F1B: stage i holds p − i microbatches.
    #[default]
    #[serde(rename = "1f1b")]
    OneFOneB,
    /// Megatron interleaved 1F1B with `vpp` model chunks per stage.
    Interleaved,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ParallelPlan {
    pub dp: u64,
    pub tp: u64,
    pub pp: u64,
    pub cp: u64,
    pub ep: u64,
    /// Megatron sequence parallelism (needs tp > 1).
    pub sp: bool,
    /// ZeRO stage 0–3 over the data-parallel ranks (Rajbhandari et al. 2020).
    pub zero: u8,
    pub fsdp: Option<Fsdp>,
    /// Megatron's distributed optimizer: optimizer states sharded over dp.
    pub distributed_optimizer: bool,
    pub offload: Offload,
    pub schedule: Schedule,
    /// Virtual pipeline stages (model chunks) per rank for the interleaved schedule.
    pub vpp: u64,
    /// Microbatches per step per pipeline (gradient-accumulation steps when pp = 1).
    pub microbatches: u64,
    pub gpus_per_node: u64,
    /// Transformer layers on the first and on the last pipeline stage when they differ from an
    /// even split; the middle stages share the rest evenly (Megatron-LM
    /// `--decoder-first-pipeline-num-layers`/`--decoder-last-pipeline-num-layers`, or its
    /// `--account-for-embedding-in-pipeline-split`; torchtitan
    /// `pipeline_parallel_first_stage_less_layers`). `None`: as even as possible.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_stage_layers: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_stage_layers: Option<u64>,
}

impl Default for ParallelPlan {
    fn default() -> Self {
        ParallelPlan::single()
    }
}

impl ParallelPlan {
    /// One GPU, no parallelism, one microbatch.
    pub fn single() -> Self {
        ParallelPlan {
            dp: 1,
            tp: 1,
            pp: 1,
            cp: 1,
            ep: 1,
            sp: false,
            zero: 0,
            fsdp: None,
            distributed_optimizer: false,
            offload: Offload::None,
            schedule: Schedule::OneFOneB,
            vpp: 1,
            microbatches: 1,
            gpus_per_node: 8,
            first_stage_layers: None,
            last_stage_layers: None,
        }
    }

    /// The pipeline layout is uneven (first or last stage set apart).
    pub fn uneven(&self) -> bool {
        self.first_stage_layers.is_some() || self.last_stage_layers.is_some()
    }

    pub fn gpus(&self) -> u64 {
        self.dp * self.tp * self.pp * self.cp
    }

    pub fn is_single(&self) -> bool {
        self.gpus() == 1
    }

    /// Weights sharded over the data-parallel ranks (ZeRO-3, FSDP full or hybrid).
    pub fn shards_weights(&self) -> bool {
        self.zero >= 3 || matches!(self.fsdp, Some(Fsdp::Full | Fsdp::Hybrid))
    }

    pub fn shards_grads(&self) -> bool {
        self.zero >= 2 || self.fsdp.is_some()
    }

    pub fn shards_optimizer(&self) -> bool {
        self.zero >= 1 || self.fsdp.is_some() || self.distributed_optimizer
    }

    /// Ranks a sharded state is divided over: dp, or the data-parallel ranks inside one node
    /// for FSDP hybrid sharding.
    pub fn shard_degree(&self) -> u64 {
        match self.fsdp {
            Some(Fsdp::Hybrid) => (self.gpus_per_node / (self.tp * self.cp).max(1)).clamp(1, self.dp),
            _ => self.dp,
        }
    }

    /// A short description such as `dp 8 · tp 4 · pp 2 (1f1b, m 8) · zero 1`.
    pub fn describe(&self) -> String {
        let mut parts = vec![format!("dp {}", self.dp)];
        if self.tp > 1 {
            parts.push(format!("tp {}{}", self.tp, if self.sp { "+sp" } else { "" }));
        }
        if self.pp > 1 {
            let sched = match self.schedule {
                Schedule::Gpipe => "gpipe".to_string(),
                Schedule::OneFOneB => "1f1b".to_string(),
                Schedule::Interleaved => format!("interleaved v {}", self.vpp),
            };
            let layout = match (self.first_stage_layers, self.last_stage_layers) {
                (None, None) => String::new(),
                (f, l) => format!(
                    ", layers {}/…/{}",
                    f.map_or("even".to_string(), |f| f.to_string()),
                    l.map_or("even".to_string(), |l| l.to_string())
                ),
            };
            parts.push(format!("pp {} ({sched}, m {}{layout})", self.pp, self.microbatches));
        } else if self.microbatches > 1 {
            parts.push(format!("grad accum {}", self.microbatches));
        }
        if self.cp > 1 {
            parts.push(format!("cp {}", self.cp));
        }
        if self.ep > 1 {
            parts.push(format!("ep {}", self.ep));
        }
        if let Some(f) = self.fsdp {
            parts.push(format!("fsdp {}", format!("{f:?}").to_lowercase()));
        } else if self.zero > 0 {
            parts.push(format!("zero {}", self.zero));
        }
        if self.distributed_optimizer {
            parts.push("distributed optimizer".into());
        }
        match self.offload {
            Offload::None => {}
            Offload::Optimizer => parts.push("offload optimizer".into()),
            Offload::Params => parts.push("offload params+optimizer".into()),
        }
        parts.join(" · ")
    }

    /// Every impossible combination is an error naming the values and what would be valid.
    pub fn validate(&self, model: &ModelSpec, seq: u64) -> Result<()> {
        for (flag, v) in [
            ("--dp", self.dp),
            ("--tp", self.tp),
            ("--pp", self.pp),
            ("--cp", self.cp),
            ("--ep", self.ep),
            ("--vpp", self.vpp),
            ("--microbatches", self.microbatches),
            ("--gpus-per-node", self.gpus_per_node),
        ] {
            if v == 0 {
                return Err(Error::invalid(flag, v, "a positive integer"));
            }
        }
        if self.zero > 3 {
            return Err(Error::invalid("--zero", self.zero, "0, 1, 2 or 3"));
        }
        if self.fsdp.is_some() && self.zero > 0 {
            return Err(Error::conflict(
                format!("--fsdp and --zero {} both shard the model", self.zero),
                "choose one: FSDP full ≈ ZeRO-3, grad-op ≈ ZeRO-2",
            ));
        }
        if self.distributed_optimizer && (self.zero >= 2 || self.fsdp.is_some()) {
            return Err(Error::conflict(
                format!(
                    "--distributed-optimizer (Megatron) with {}",
                    if self.fsdp.is_some() { "--fsdp".to_string() } else { format!("--zero {}", self.zero) }
                ),
                "Megatron's distributed optimizer already shards optimizer states (ZeRO-1); drop one",
            ));
        }
        if self.offload == Offload::Params && !self.shards_weights() {
            return Err(Error::conflict(
                "--offload params needs sharded parameters",
                "use it with --zero 3 or --fsdp full",
            ));
        }
        if self.offload == Offload::Optimizer && !self.shards_optimizer() {
            return Err(Error::conflict(
                "--offload optimizer needs sharded optimizer states",
                "use it with --zero 1, 2 or 3 (ZeRO-Offload) or --fsdp",
            ));
        }
        if self.sp && self.tp == 1 {
            return Err(Error::conflict("--sp (sequence parallel) needs tensor parallelism", "add --tp 2 or more"));
        }
        if self.ep > 1 && model.stacks.iter().all(|s| s.layer.mlp.experts == 1) {
            return Err(Error::conflict(
                format!("--ep {} on a model without experts", self.ep),
                "expert parallelism applies to MoE models only",
            ));
        }
        for s in &model.stacks {
            let a = &s.layer.attention;
            if a.heads % self.tp != 0 {
                return Err(Error::invalid(
                    format!("--tp for stack `{}`", s.name),
                    self.tp,
                    format!("a divisor of its {} attention heads", a.heads),
                ));
            }
            let kv = a.kv_heads();
            if kv % self.tp != 0 && !self.tp.is_multiple_of(kv) {
                return Err(Error::invalid(
                    format!("--tp for stack `{}`", s.name),
                    self.tp,
                    format!("a divisor or a multiple of its {kv} key/value heads"),
                ));
            }
            let experts = s.layer.mlp.experts;
            if self.ep > 1 && experts % self.ep != 0 {
                return Err(Error::invalid(
                    "--ep",
                    self.ep,
                    format!("a divisor of the {experts} experts of stack `{}`", s.name),
                ));
            }
        }
        if self.ep > 1 && !(self.dp * self.cp).is_multiple_of(self.ep) {
            return Err(Error::invalid(
                "--ep",
                self.ep,
                format!("a divisor of dp·cp = {} (experts are spread over data-parallel ranks)", self.dp * self.cp),
            ));
        }
        if !model.modules.is_empty() && (self.tp > 1 || self.pp > 1 || self.cp > 1) {
            return Err(Error::conflict(
                format!(
                    "--tp {} --pp {} --cp {} with model `{}`: tensor, pipeline and context parallelism are modelled for transformer stacks only",
                    self.tp, self.pp, self.cp, model.name
                ),
                "use data parallelism (--dp, --zero, --fsdp) for models with convolutional, UNet or LSTM modules",
            ));
        }
        let layers = model.total_layers();
        if self.pp > layers.max(1) {
            return Err(Error::invalid("--pp", self.pp, format!("at most the model's {layers} layers")));
        }
        if self.uneven() {
            crate::parallel::pipeline::uneven_middle(layers, self)?;
        }
        if self.schedule == Schedule::Interleaved {
            if self.pp == 1 {
                return Err(Error::conflict(
                    "--schedule interleaved needs --pp 2 or more",
                    "use --schedule 1f1b or add pipeline stages",
                ));
            }
            if self.uneven() {
                // Each stage's layers are split into vpp model chunks.
                let middle = crate::parallel::pipeline::uneven_middle(layers, self)?;
                let fewest = [self.first_stage_layers, self.last_stage_layers, (self.pp > 2).then_some(middle)]
                    .into_iter()
                    .flatten()
                    .min()
                    .unwrap_or(0);
                if fewest < self.vpp {
                    return Err(Error::invalid(
                        "--vpp",
                        self.vpp,
                        format!("at most the {fewest} layers of the smallest pipeline stage"),
                    ));
                }
            } else if !layers.is_multiple_of(self.pp.saturating_mul(self.vpp)) {
                return Err(Error::invalid(
                    "--vpp",
                    self.vpp,
                    format!("a value with pp · vpp dividing the {layers} layers (pp = {})", self.pp),
                ));
            }
            if !self.microbatches.is_multiple_of(self.pp) {
                return Err(Error::invalid(
                    "--microbatches",
                    self.microbatches,
                    format!("a multiple of pp = {} for the interleaved schedule", self.pp),
                ));
            }
        } else if self.vpp > 1 {
            return Err(Error::conflict(
                format!("--vpp {} without the interleaved schedule", self.vpp),
                "add --schedule interleaved",
            ));
        }
        if self.cp > 1 && !seq.is_multiple_of(self.cp) {
            return Err(Error::invalid("--cp", self.cp, format!("a divisor of the sequence length {seq}")));
        }
        Ok(())
    }
}
