//! The planner's search: every valid combination of tp (within a node), pp (1F1B, or interleaved
//! with virtual stages), cp, ep, the sharding of model states, micro-batch, recomputation,
//! sequence parallelism and offloading; the memory model decides what fits, the step-time model
//! ranks what does, and the closest misses explain what does not.

use super::flops::{step_flops, StepFlops};
use super::time::{step_time_with_flops, StepTime, TimeConfig};
use crate::hw::GpuSpec;
use crate::memory::estimate::{estimate_stages, rank_shapes, Prepared};
use crate::parallel::layout::StageParams;
use std::collections::HashMap;

use crate::memory::states::ParamInfo;
use crate::memory::{AttentionKernel, OverheadConfig, Precision, Recompute, Setup};
use crate::model::spec::ModelSpec;
use crate::parallel::{Offload, ParallelPlan, Schedule};
use serde::Serialize;

#[derive(Clone, Debug)]
pub struct SearchConfig {
    pub gpus: u64,
    pub gpus_per_node: u64,
    /// Global batch in sequences.
    pub global_batch: u64,
    /// Extra bytes kept free on every GPU beyond the estimate's runtime overheads.
    pub headroom_bytes: u64,
    pub time: TimeConfig,
    pub overhead: OverheadConfig,
    /// Consider offloading optimizer states to the host.
    pub allow_offload: bool,
    pub top_k: usize,
    /// Largest tensor- and pipeline-parallel degrees to consider.
    pub max_tp: u64,
    pub max_pp: u64,
    /// Largest context-parallel degree; context parallelism pays off only for long sequences,
    /// so the default searches it from 8192 tokens on.
    pub max_cp: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Candidate {
    pub plan: ParallelPlan,
    pub micro_batch: u64,
    pub recompute: Recompute,
    pub worst_stage: u64,
    pub worst_total_bytes: u64,
    pub worst_peak_allocated_bytes: u64,
    pub time: StepTime,
}

/// The closest miss of a family of plans (same tp, pp, cp, ep and sharding).
#[derive(Clone, Debug, Serialize)]
pub struct Rejection {
    pub family: String,
    /// Bytes over the usable memory at the family's best attempt.
    pub over_bytes: u64,
    pub reason: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct SearchResult {
    pub evaluated: u64,
    pub fitting: u64,
    pub usable_bytes: u64,
    pub plans: Vec<Candidate>,
    pub rejections: Vec<Rejection>,
}

fn divisors(n: u64) -> Vec<u64> {
    (1..=n).filter(|d| n.is_multiple_of(*d)).collect()
}

/// Sharding choices for a data-parallel degree and precision recipe.
fn shardings(dp: u64, precision: Precision) -> Vec<(u8, bool)> {
    if dp == 1 {
        return vec![(0, false)];
    }
    let mut out = vec![(0, false), (1, false), (2, false), (3, false)];
    if matches!(precision, Precision::MegatronBf16 | Precision::MegatronFp16) {
        out.push((0, true));
    }
    out
}

/// Enumerate and evaluate the search space. `base` gives precision, optimizer, sequence, attention
/// and dropout; micro-batch and recomputation are searched.
pub fn search(model: &ModelSpec, info: &ParamInfo, base: &Setup, gpu: &GpuSpec, cfg: &SearchConfig) -> SearchResult {
    let usable = gpu.memory_bytes.saturating_sub(cfg.headroom_bytes);
    let layers = model.total_layers();
    let experts = model.stacks.iter().map(|s| s.layer.mlp.experts).max().unwrap_or(1);
    let mut evaluated = 0u64;
    let mut fitting = Vec::new();
    let mut misses: std::collections::BTreeMap<String, (u64, String)> = std::collections::BTreeMap::new();
    let node = cfg.gpus_per_node.min(cfg.gpus);
    // Caches: ledger-derived quantities per (micro-batch, recompute, tp, sp, cp), stage layouts
    // per (tp, pp, ep), FLOPs per recompute policy.
    let mut prepared: HashMap<(u64, Recompute, u64, bool, u64), Prepared> = HashMap::new();
    let mut layouts: HashMap<(u64, u64, u64), Vec<StageParams>> = HashMap::new();
    let mut flops: HashMap<Recompute, StepFlops> = HashMap::new();
    // With one stack, stage 0 dominates every middle stage (as many or more layers, at least as
    // many microbatches in flight, plus the embeddings), so only the first and last stages can
    // be the worst; models with several stacks evaluate every stage.
    let single_stack = model.stacks.len() == 1;
    for tp in divisors(node).into_iter().filter(|&t| t <= cfg.max_tp) {
        for pp in divisors(cfg.gpus / tp).into_iter().filter(|&p| p <= layers.min(cfg.max_pp)) {
            for cp in [1u64, 2, 4, 8, 16]
                .into_iter()
                .filter(|&c| c <= cfg.max_cp && (cfg.gpus / (tp * pp)).is_multiple_of(c) && base.seq.is_multiple_of(c))
            {
                if cp > 1 && base.attention == AttentionKernel::Eager {
                    continue;
                }
                let dp = cfg.gpus / (tp * pp * cp);
                let eps: Vec<u64> = if experts > 1 {
                    divisors(experts).into_iter().filter(|e| (dp * cp).is_multiple_of(*e)).collect()
                } else {
                    vec![1]
                };
                let schedules: Vec<(Schedule, u64)> = if pp == 1 {
                    vec![(Schedule::OneFOneB, 1)]
                } else {
                    let mut s = vec![(Schedule::OneFOneB, 1)];
                    for v in [2u64, 3, 4, 6, 8] {
                        if layers.is_multiple_of(pp * v) {
                            s.push((Schedule::Interleaved, v));
                        }
                    }
                    s
                };
                for ep in eps {
                    for &(schedule, vpp) in &schedules {
                        for mb in [1u64, 2, 4, 8, 16, 32] {
                            if !cfg.global_batch.is_multiple_of(dp * mb) {
                                continue;
                            }
                            let m = cfg.global_batch / (dp * mb);
                            if schedule == Schedule::Interleaved && !m.is_multiple_of(pp) {
                                continue;
                            }
                            for (zero, dist) in shardings(dp, base.precision) {
                                for recompute in [Recompute::None, Recompute::Selective, Recompute::Full] {
                                    for sp in [false, true] {
                                        if sp && tp == 1 {
                                            continue;
                                        }
                                        let offloads: &[Offload] = if cfg.allow_offload && zero >= 1 {
                                            &[Offload::None, Offload::Optimizer]
                                        } else {
                                            &[Offload::None]
                                        };
                                        for &offload in offloads {
                                            let plan = ParallelPlan {
                                                dp,
                                                tp,
                                                pp,
                                                cp,
                                                ep,
                                                sp,
                                                zero,
                                                fsdp: None,
                                                distributed_optimizer: dist,
                                                offload,
                                                schedule,
                                                vpp,
                                                microbatches: m,
                                                gpus_per_node: cfg.gpus_per_node,
                                            };
                                            if plan.validate(model, base.seq).is_err() {
                                                continue;
                                            }
                                            evaluated += 1;
                                            let setup = Setup { micro_batch: mb, recompute, ..base.clone() };
                                            let prep =
                                                prepared.entry((mb, recompute, tp, sp, cp)).or_insert_with(|| {
                                                    Prepared::new(model, &rank_shapes(model, &setup, &plan), &setup, tp)
                                                });
                                            let layout = layouts
                                                .entry((tp, pp, ep))
                                                .or_insert_with(|| crate::parallel::layout::stages(model, &plan));
                                            let stages: Vec<u64> = if single_stack {
                                                if pp == 1 {
                                                    vec![0]
                                                } else {
                                                    vec![0, pp - 1]
                                                }
                                            } else {
                                                (0..pp).collect()
                                            };
                                            let est = estimate_stages(
                                                model,
                                                info,
                                                &setup,
                                                &plan,
                                                &cfg.overhead,
                                                prep,
                                                layout,
                                                &stages,
                                                false,
                                            );
                                            let worst = est.worst();
                                            if worst.total <= usable {
                                                let counted = *flops
                                                    .entry(recompute)
                                                    .or_insert_with(|| step_flops(model, &setup, cfg.global_batch));
                                                let time = step_time_with_flops(
                                                    model,
                                                    &setup,
                                                    &plan,
                                                    &est,
                                                    gpu,
                                                    cfg.global_batch,
                                                    &cfg.time,
                                                    counted,
                                                );
                                                fitting.push(Candidate {
                                                    plan,
                                                    micro_batch: mb,
                                                    recompute,
                                                    worst_stage: est.stages[est.worst].stage,
                                                    worst_total_bytes: worst.total,
                                                    worst_peak_allocated_bytes: worst.peak_allocated,
                                                    time,
                                                });
                                            } else {
                                                let family = family(&plan);
                                                let over = worst.total - usable;
                                                let better = misses.get(&family).is_none_or(|(o, _)| over < *o);
                                                if better {
                                                    let reason = format!(
                                                        "stage {} over by {} at micro-batch {mb} with {}{}",
                                                        est.stages[est.worst].stage,
                                                        crate::units::ByteUnits::Gib.format(over),
                                                        match recompute {
                                                            Recompute::None => "no recompute",
                                                            Recompute::Selective => "selective recompute",
                                                            _ => "full recompute",
                                                        },
                                                        if sp { ", sequence parallel" } else { "" }
                                                    );
                                                    misses.insert(family, (over, reason));
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    // A family is rejected only when none of its variants fits.
    let fitting_families: std::collections::HashSet<String> = fitting.iter().map(|c| family(&c.plan)).collect();
    misses.retain(|f, _| !fitting_families.contains(f));
    let fitting_count = fitting.len() as u64;
    fitting
        .sort_by(|a, b| a.time.total_s.total_cmp(&b.time.total_s).then(a.worst_total_bytes.cmp(&b.worst_total_bytes)));
    fitting.truncate(cfg.top_k.max(1));
    let mut rejections: Vec<Rejection> =
        misses.into_iter().map(|(family, (over_bytes, reason))| Rejection { family, over_bytes, reason }).collect();
    rejections.sort_by_key(|r| r.over_bytes);
    SearchResult { evaluated, fitting: fitting_count, usable_bytes: usable, plans: fitting, rejections }
}

fn family(plan: &ParallelPlan) -> String {
    let shard =
        if plan.distributed_optimizer { "distributed optimizer".to_string() } else { format!("zero {}", plan.zero) };
    let mut s = format!("tp {} · pp {} · dp {}", plan.tp, plan.pp, plan.dp);
    if plan.cp > 1 {
        s.push_str(&format!(" · cp {}", plan.cp));
    }
    if plan.ep > 1 {
        s.push_str(&format!(" · ep {}", plan.ep));
    }
    s.push_str(&format!(" · {shard}"));
    if plan.offload != Offload::None {
        s.push_str(" · offload");
    }
    s
}
