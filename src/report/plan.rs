//! The `memplan plan` report: ranked plans with memory and step-time breakdown, rejections,
//! and (JSON) everything a notebook needs.

use crate::hw::GpuSpec;
use crate::memory::Setup;
use crate::model::spec::ModelSpec;
use crate::plan::search::{Candidate, Rejection, SearchConfig, SearchResult};
use crate::report::printer::table;
use crate::units::{format_count, ByteUnits};
use serde::Serialize;

#[derive(Clone, Debug, Serialize)]
pub struct PlanRow {
    pub rank: usize,
    pub description: String,
    #[serde(flatten)]
    pub candidate: Candidate,
    /// Days to train `tokens` (when given).
    pub days_to_train: Option<f64>,
    /// Dollars at `price` per GPU-hour (when both given).
    pub cost_usd: Option<f64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct PlanReport {
    pub model: String,
    pub parameters: u64,
    pub setup: Setup,
    pub gpus: u64,
    pub gpu: String,
    pub gpus_per_node: u64,
    pub global_batch_sequences: u64,
    pub global_batch_tokens: u64,
    pub usable_bytes_per_gpu: u64,
    pub headroom: String,
    /// GEMM ceiling as a fraction of the dense peak, and where it comes from.
    pub efficiency: f64,
    pub efficiency_source: String,
    /// Data-parallel overlap given with --overlap (otherwise each framework's mechanism).
    pub overlap: Option<f64>,
    /// Frameworks searched.
    pub frameworks: Vec<String>,
    /// The precision recipes and optimizers the searched frameworks' plans are sized and timed
    /// with (each framework's own defaults for what was not given; `setup` is the base they start
    /// from), one entry per recipe with the frameworks that use it, in search order.
    pub recipes: Vec<Recipe>,
    pub evaluated: u64,
    pub fitting: u64,
    pub plans: Vec<PlanRow>,
    pub rejections: Vec<Rejection>,
    pub tokens: Option<u64>,
    pub price_per_gpu_hour: Option<f64>,
    /// When nothing fits: the smallest change that would.
    pub suggestion: Option<String>,
    /// Settings outside physical sense, calibrations measured elsewhere, limits not applied.
    pub warnings: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Recipe {
    pub precision: String,
    pub optimizer: String,
    pub frameworks: Vec<String>,
}

/// `cfg`'s frameworks grouped by the precision and optimizer of their setups.
fn recipes(cfg: &SearchConfig, base: &Setup) -> Vec<Recipe> {
    let mut out: Vec<Recipe> = Vec::new();
    for f in &cfg.frameworks {
        let s = cfg.setups.iter().find(|(g, _)| g == f).map_or(base, |(_, s)| s);
        let (precision, optimizer) = (s.precision.name(), s.optimizer.name());
        match out.iter_mut().find(|r| r.precision == precision && r.optimizer == optimizer) {
            Some(r) => r.frameworks.push(f.name().to_string()),
            None => out.push(Recipe {
                precision: precision.to_string(),
                optimizer: optimizer.to_string(),
                frameworks: vec![f.name().to_string()],
            }),
        }
    }
    out
}

impl PlanReport {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        model: &ModelSpec,
        parameters: u64,
        setup: &Setup,
        gpu: &GpuSpec,
        cfg: &SearchConfig,
        result: &SearchResult,
        tokens: Option<u64>,
        price: Option<f64>,
    ) -> Self {
        let plans = result
            .plans
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let days = tokens.map(|t| t as f64 / c.time.tokens_per_s / 86400.0);
                let cost = days.zip(price).map(|(d, p)| d * 24.0 * cfg.gpus as f64 * p);
                PlanRow {
                    rank: i + 1,
                    description: c.plan.describe(),
                    candidate: c.clone(),
                    days_to_train: days,
                    cost_usd: cost,
                }
            })
            .collect();
        PlanReport {
            model: model.name.clone(),
            parameters,
            setup: setup.clone(),
            gpus: cfg.gpus,
            gpu: gpu.name.clone(),
            gpus_per_node: cfg.gpus_per_node,
            global_batch_sequences: cfg.global_batch,
            global_batch_tokens: cfg.global_batch.saturating_mul(setup.seq),
            usable_bytes_per_gpu: result.usable_bytes,
            headroom: format!(
                "each plan's total includes the CUDA context ({}) and a {:.0}% fragmentation margin; {} more kept free",
                ByteUnits::Gib.format(cfg.overhead.cuda_context_bytes),
                cfg.overhead.fragmentation * 100.0,
                ByteUnits::Gib.format(cfg.headroom_bytes)
            ),
            efficiency: cfg.time.gemm.max,
            efficiency_source: cfg.time.gemm.source.clone(),
            overlap: cfg.time.overlap,
            frameworks: cfg.frameworks.iter().map(|f| f.name().to_string()).collect(),
            recipes: recipes(cfg, setup),
            evaluated: result.evaluated,
            fitting: result.fitting,
            plans,
            rejections: result.rejections.clone(),
            tokens,
            price_per_gpu_hour: price,
            suggestion: None,
            warnings: Vec::new(),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("plan report serialises")
    }

    pub fn to_table(&self, explain: bool) -> String {
        let u = ByteUnits::Gib;
        let mut s = format!(
            "{} ({} parameters) on {} × {} ({} per node), global batch {} sequences × {} tokens\n",
            self.model,
            format_count(self.parameters),
            self.gpus,
            self.gpu,
            self.gpus_per_node,
            self.global_batch_sequences,
            self.setup.seq
        );
        // One recipe for all frameworks, or each framework's own (Megatron's fp32 main grads).
        let recipe = match self.recipes.as_slice() {
            [one] => format!("precision {}, optimizer {}", one.precision, one.optimizer),
            [] => format!("precision {}, optimizer {}", self.setup.precision.name(), self.setup.optimizer.name()),
            many => {
                let each: Vec<String> = many
                    .iter()
                    .map(|r| format!("{} + {} for {}", r.precision, r.optimizer, r.frameworks.join(", ")))
                    .collect();
                format!("each framework's own recipe: {}", each.join("; "))
            }
        };
        s.push_str(&format!("  {recipe}\n"));
        s.push_str(&format!(
            "  attention {:?}; GEMMs at up to {:.0}% of the dense peak ({}), {}\n",
            self.setup.attention,
            self.efficiency * 100.0,
            self.efficiency_source,
            match self.overlap {
                Some(o) => format!("{:.0}% of DP communication overlapped (--overlap)", o * 100.0),
                None => "DP communication overlapped as each framework does".to_string(),
            }
        ));
        s.push_str(&format!("  frameworks searched: {}\n", self.frameworks.join(", ")));
        for w in &self.warnings {
            s.push_str(&format!("  warning: {w}\n"));
        }
        s.push_str(&format!(
            "  fits when the worst rank's total ≤ {} ({})\n",
            u.format(self.usable_bytes_per_gpu),
            self.headroom
        ));
        s.push_str(&format!("  {} plans evaluated, {} fit\n", self.evaluated, self.fitting));
        if !self.plans.is_empty() {
            let mut t = table(vec![
                "#",
                "framework",
                "plan",
                "micro-batch",
                "recompute",
                "memory (GiB, worst rank)",
                "step (s)",
                "compute / bubble / comm (s)",
                "tokens/s",
                "MFU",
                "HFU",
                "to train",
            ]);
            for r in &self.plans {
                let c = &r.candidate;
                let tm = &c.time;
                let comm = tm.tp_comm_s + tm.pp_comm_s + tm.dp_comm_s + tm.moe_comm_s + tm.cp_comm_s + tm.offload_s;
                let framework = if c.also_runs_on.is_empty() {
                    c.framework.to_string()
                } else {
                    format!(
                        "{} (also {})",
                        c.framework,
                        c.also_runs_on.iter().map(|f| f.name()).collect::<Vec<_>>().join(", ")
                    )
                };
                let train = match (r.days_to_train, r.cost_usd) {
                    (Some(d), Some(c)) => format!("{d:.1} days, ${}", format_count(c.round() as u64)),
                    (Some(d), None) => format!("{d:.1} days"),
                    _ => "-".into(),
                };
                t.add_row(vec![
                    r.rank.to_string(),
                    framework,
                    r.description.clone(),
                    c.micro_batch.to_string(),
                    format!("{:?}", c.recompute).to_lowercase(),
                    format!("{} (stage {})", u.format(c.worst_total_bytes), c.worst_stage),
                    format!("{:.3}", tm.total_s),
                    format!("{:.3} / {:.3} / {:.3}", tm.compute_s, tm.bubble_s, comm),
                    format_count(tm.tokens_per_s.round() as u64),
                    format!("{:.1}%", tm.mfu * 100.0),
                    format!("{:.1}%", tm.hfu * 100.0),
                    train,
                ]);
            }
            s.push_str(&t.to_string());
            s.push('\n');
        } else {
            s.push_str("no plan fits.\n");
            match &self.suggestion {
                Some(change) => s.push_str(&format!("smallest change that would fit: {change}\n")),
                None => s.push_str("no offloading, shorter sequence or up to 16× more GPUs would fit either\n"),
            }
        }
        if explain {
            s.push_str(&self.rejections_table());
        }
        s
    }

    pub fn rejections_table(&self) -> String {
        if self.rejections.is_empty() {
            return String::new();
        }
        let mut t = table(vec!["rejected family (closest miss)", "reason"]);
        for r in self.rejections.iter().take(12) {
            t.add_row(vec![r.family.clone(), r.reason.clone()]);
        }
        format!("rejected plans:\n{t}\n")
    }
}
