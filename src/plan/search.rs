//! The planner's search: every combination of tp (within a node), pp (1F1B, or interleaved with
//! virtual stages; even or uneven layouts), cp, ep, the sharding of model states, micro-batch,
//! recomputation, sequence parallelism and offloading **that some framework runs** (the rules
//! of `frameworks`). The memory model decides what fits (once per plan), the step-time model
//! ranks each framework that can run it, and the closest misses explain what does not.
//!
//! Degrees come from the divisors of the GPU count, found by factorisation so that absurd
//! cluster sizes (10^12 GPUs) stay instant; the number of candidates is capped, with a clear
//! error beyond the cap.

use super::flops::{step_flops, StepFlops};
use super::frameworks::{capabilities, pipeline_layouts, Capabilities, Layout, Sharding};
use super::time::{costs, stage_work, step_time_with, Costs, Kernels, StageWork, StepTime, TimeConfig};
use crate::error::{Error, Result};
use crate::framework::Framework;
use crate::hw::GpuSpec;
use crate::memory::estimate::{estimate_stages, rank_shapes, Prepared};
use crate::memory::states::ParamInfo;
use crate::memory::{AttentionKernel, OverheadConfig, Recompute, Setup};
use crate::model::spec::ModelSpec;
use crate::parallel::layout::StageParams;
use crate::parallel::{Offload, ParallelPlan, Schedule};
use serde::Serialize;
use std::collections::HashMap;

/// FxHash (rustc's hasher): the search's caches are keyed by small integer tuples, for which
/// SipHash's DoS resistance is not needed and its cost shows.
#[derive(Default, Clone, Copy)]
pub struct FxHasher(u64);

impl std::hash::Hasher for FxHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(b));
        }
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_u8(&mut self, i: u8) {
        self.write_u64(u64::from(i));
    }
    fn write_u32(&mut self, i: u32) {
        self.write_u64(u64::from(i));
    }
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }
}

type Fx = std::hash::BuildHasherDefault<FxHasher>;
type FxMap<K, V> = HashMap<K, V, Fx>;

/// Default cap on the candidates one search evaluates (about 5 s at the benchmarked rate).
pub const MAX_CANDIDATES: u64 = 5_000_000;

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
    /// Consider offloading to the host.
    pub allow_offload: bool,
    pub top_k: usize,
    /// Largest tensor- and pipeline-parallel degrees to consider.
    pub max_tp: u64,
    pub max_pp: u64,
    /// Largest context-parallel degree; context parallelism pays off only for long sequences,
    /// so the default searches it from 8192 tokens on.
    pub max_cp: u64,
    /// Frameworks whose plans are searched (`--framework`, default: every training framework).
    pub frameworks: Vec<Framework>,
    /// Recomputation policies searched (`--recompute` given: that one only).
    pub recompute: Vec<Recompute>,
    /// Stop with an error beyond this many candidates.
    pub max_candidates: u64,
    /// The micro-batch, when given (`batch`); otherwise 1 to 32 in powers of two are searched.
    pub micro_batch: Option<u64>,
    /// Each framework's own setup: its profile's defaults for what the user did not give
    /// (precision recipe, optimizer implementation, attention kernel) and its memory mechanisms
    /// (`memory::mechanisms`), so a plan is sized with the tensors the framework that runs it
    /// keeps. A framework not listed uses the base setup.
    pub setups: Vec<(Framework, Setup)>,
}

impl SearchConfig {
    /// A configuration for `gpus` GPUs with the GPU preset's time model and every framework.
    pub fn new(gpus: u64, gpus_per_node: u64, global_batch: u64, gpu: &GpuSpec, setup: &Setup) -> SearchConfig {
        SearchConfig {
            gpus,
            gpus_per_node,
            global_batch,
            headroom_bytes: 0,
            time: TimeConfig::for_gpu(gpu, setup, gpus_per_node),
            overhead: OverheadConfig::default(),
            allow_offload: false,
            top_k: 10,
            max_tp: u64::MAX,
            max_pp: u64::MAX,
            max_cp: if setup.seq >= 8192 { 16 } else { 1 },
            frameworks: super::frameworks::TRAINING.to_vec(),
            recompute: Recompute::NAMED.to_vec(),
            max_candidates: MAX_CANDIDATES,
            micro_batch: None,
            setups: Vec::new(),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Candidate {
    /// The framework that runs this plan fastest.
    pub framework: Framework,
    /// Other frameworks that can run the same plan (at their own step time).
    pub also_runs_on: Vec<Framework>,
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
    /// Candidate (framework, plan) pairs evaluated.
    pub evaluated: u64,
    pub fitting: u64,
    pub usable_bytes: u64,
    pub plans: Vec<Candidate>,
    pub rejections: Vec<Rejection>,
}

/// Prime factors of `n` up to `limit` by trial division, and the cofactor left (1, a prime,
/// or a product of primes above `limit`).
fn factorise(mut n: u64, limit: u64) -> (Vec<(u64, u32)>, u64) {
    let mut out = Vec::new();
    let mut d = 2u64;
    while d <= limit && d.saturating_mul(d) <= n {
        if n.is_multiple_of(d) {
            let mut e = 0;
            while n.is_multiple_of(d) {
                n /= d;
                e += 1;
            }
            out.push((d, e));
        }
        d += if d == 2 { 1 } else { 2 };
    }
    (out, n)
}

/// The divisors of `n` that are at most `bound`, in increasing order, from its factorisation
/// (so that n = 10^12 costs what n = 10^3 does). `bound` is capped at 10^6.
pub fn divisors_up_to(n: u64, bound: u64) -> Vec<u64> {
    const LIMIT: u64 = 1_000_000;
    let bound = bound.min(n).min(LIMIT);
    if n == 0 || bound == 0 {
        return Vec::new();
    }
    let (mut primes, rest) = factorise(n, LIMIT);
    // A cofactor at most LIMIT² with no factor up to LIMIT is prime; a larger one has only
    // factors above LIMIT ≥ bound, so it never contributes.
    if rest > 1 && rest <= bound {
        primes.push((rest, 1));
    }
    let mut out = vec![1u64];
    for (p, e) in primes {
        let len = out.len();
        for i in 0..len {
            let mut v = out[i];
            for _ in 0..e {
                match v.checked_mul(p) {
                    Some(x) if x <= bound => {
                        v = x;
                        out.push(v);
                    }
                    _ => break,
                }
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// Small, hashable identity of a plan family for the rejection table.
type FamilyKey = (u64, u64, u64, u64, u64, u8, u8, bool, u8);

fn family_key(p: &ParallelPlan) -> FamilyKey {
    let fsdp = match p.fsdp {
        None => 0,
        Some(crate::parallel::Fsdp::Full) => 1,
        Some(crate::parallel::Fsdp::GradOp) => 2,
        Some(crate::parallel::Fsdp::Hybrid) => 3,
    };
    let off = match p.offload {
        Offload::None => 0,
        Offload::Optimizer => 1,
        Offload::Params => 2,
    };
    (p.tp, p.pp, p.dp, p.cp, p.ep, p.zero, fsdp, p.distributed_optimizer, off)
}

struct Miss {
    over: u64,
    plan: ParallelPlan,
    stage: u64,
    mb: u64,
    recompute: Recompute,
}

/// Enumerate and evaluate the search space. `base` gives precision, optimizer, sequence,
/// attention and dropout; micro-batch and recomputation are searched.
pub fn search(
    model: &ModelSpec,
    info: &ParamInfo,
    base: &Setup,
    gpu: &GpuSpec,
    cfg: &SearchConfig,
) -> Result<SearchResult> {
    // What PyTorch can use on the GPU (`total_memory`, its `[runtime]` table), less the headroom.
    let usable = gpu.usable_bytes().saturating_sub(cfg.headroom_bytes);
    let layers = model.total_layers();
    let experts = model.stacks.iter().map(|s| s.layer.mlp.experts).max().unwrap_or(1);
    let template = |f: Framework| cfg.setups.iter().find(|(g, _)| *g == f).map_or(base, |(_, s)| s);
    let caps: Vec<Capabilities> = cfg
        .frameworks
        .iter()
        .filter_map(|f| capabilities(*f))
        .filter(|c| c.accepts_precision(template(c.framework).precision))
        .collect();
    if caps.is_empty() {
        let names: Vec<&str> = cfg.frameworks.iter().map(|f| f.name()).collect();
        return Err(Error::conflict(
            format!("no framework among {} runs --precision {}", names.join(", "), base.precision.name()),
            "megatron runs megatron-bf16/megatron-fp16; deepspeed and torchtitan mixed-bf16; pytorch and hf-trainer amp-bf16",
        ));
    }
    let any = |f: &dyn Fn(&Capabilities) -> bool| caps.iter().any(f);
    // Frameworks with equal setups share one memory estimate: class[i] is the first framework
    // with framework i's setup.
    let tmpl: Vec<&Setup> = caps.iter().map(|c| template(c.framework)).collect();
    let class: Vec<usize> = (0..caps.len()).map(|i| (0..=i).find(|j| tmpl[*j] == tmpl[i]).unwrap_or(i)).collect();
    // The step-time model also depends on each framework's kernels: tclass[i] is the first
    // framework with framework i's setup and kernels (the layer-cost cache key).
    let kernels: Vec<Kernels> = caps.iter().zip(&tmpl).map(|(c, t)| Kernels::of(c.framework, t.precision)).collect();
    let tclass: Vec<usize> = (0..caps.len())
        .map(|i| (0..=i).find(|j| tmpl[*j] == tmpl[i] && kernels[*j] == kernels[i]).unwrap_or(i))
        .collect();
    let mut evaluated = 0u64;
    // The fitting candidates that can still make the list: with k frameworks a plan appears at
    // most k times, so the best top_k·k candidates hold the best top_k distinct plans. Beyond
    // twice that, the slower half is dropped (and the cut-off time remembered).
    let mut fitting: Vec<Candidate> = Vec::new();
    let mut fitting_count = 0u64;
    let mut fitting_families: std::collections::HashSet<FamilyKey, Fx> = Default::default();
    let keep = cfg.top_k.max(1).saturating_mul(caps.len().max(1));
    let mut cutoff = f64::INFINITY;
    let mut misses: FxMap<FamilyKey, Miss> = FxMap::default();
    let node = cfg.gpus_per_node.min(cfg.gpus).max(1);
    // Caches: ledger-derived memory quantities per (micro-batch, recompute, tp, sp, cp), stage
    // layouts per (tp, pp, ep, layout), time costs per (micro-batch, recompute, tp, sp, cp, ep),
    // FLOPs per recompute policy.
    let mut prepared: FxMap<(u64, Recompute, u64, bool, u64, usize), Prepared> = FxMap::default();
    #[allow(clippy::type_complexity)]
    let mut layouts: FxMap<(u64, u64, u64, Option<u64>, Option<u64>), (Vec<StageParams>, Vec<StageWork>)> =
        FxMap::default();
    // One setup per (micro-batch, recompute, mechanism class), built once.
    let mut setups: FxMap<(u64, Recompute, usize), Setup> = FxMap::default();
    // (micro-batch, recompute, tp, sp, cp, ep, setup class)
    type CostKey = (u64, Recompute, u64, bool, u64, u64, usize);
    let mut time_costs: FxMap<CostKey, Costs> = FxMap::default();
    let mut flops: FxMap<Recompute, StepFlops> = FxMap::default();
    // With one stack, stage 0 dominates every middle stage of an even layout (as many or more
    // layers, at least as many micro-batches in flight, plus the embeddings), so only the first
    // and last stages can be the worst; an uneven layout adds stage 1 (more layers than stage 0,
    // one micro-batch fewer in flight). Models with several stacks evaluate every stage.
    let single_stack = model.stacks.len() == 1;
    let micro_batches: Vec<u64> = cfg.micro_batch.map_or_else(|| vec![1, 2, 4, 8, 16, 32], |b| vec![b]);
    let max_pp = layers.min(cfg.max_pp);
    let all_stages: Vec<u64> = if single_stack { Vec::new() } else { (0..max_pp.min(1_000_000)).collect() };
    for tp in divisors_up_to(node, cfg.max_tp) {
        if tp > 1 && !any(&|c| c.tensor_parallel) {
            continue;
        }
        for pp in divisors_up_to(cfg.gpus / tp, max_pp) {
            if pp > 1 && !any(&|c| c.pipeline) {
                continue;
            }
            for cp in [1u64, 2, 4, 8, 16] {
                if cp > cfg.max_cp || !(cfg.gpus / (tp * pp)).is_multiple_of(cp) || !base.seq.is_multiple_of(cp) {
                    continue;
                }
                if cp > 1 && (base.attention == AttentionKernel::Eager || !any(&|c| c.context_parallel)) {
                    continue;
                }
                let dp = cfg.gpus / (tp * pp * cp);
                let eps: Vec<u64> = if experts > 1 {
                    divisors_up_to(experts, experts)
                        .into_iter()
                        .filter(|e| *e == 1 || (any(&|c| c.expert_parallel) && (dp * cp).is_multiple_of(*e)))
                        .collect()
                } else {
                    vec![1]
                };
                let mut schedules: Vec<(Schedule, u64)> = vec![(Schedule::OneFOneB, 1)];
                if pp > 1 && any(&|c| c.schedules.contains(&Schedule::Interleaved)) {
                    for v in [2u64, 3, 4, 6, 8] {
                        if pp * v <= layers + 2 {
                            schedules.push((Schedule::Interleaved, v));
                        }
                    }
                }
                for &ep in &eps {
                    for &(schedule, vpp) in &schedules {
                        // The layouts each framework expresses here, and their union.
                        let per_cap: Vec<Vec<Layout>> = caps
                            .iter()
                            .map(|c| {
                                if pp == 1 {
                                    vec![Layout::Even]
                                } else if c.pipeline && c.schedules.contains(&schedule) {
                                    pipeline_layouts(c.layouts, layers, pp, vpp)
                                } else {
                                    Vec::new()
                                }
                            })
                            .collect();
                        let mut union: Vec<Layout> = Vec::new();
                        for l in per_cap.iter().flatten() {
                            if !union.iter().any(|u| u.fields() == l.fields()) {
                                union.push(*l);
                            }
                        }
                        for layout in union {
                            let (first_stage_layers, last_stage_layers) = layout.fields();
                            // Frameworks that express this layout, as a bit set (checked once here,
                            // not per candidate).
                            let mut layout_mask = 0u32;
                            for (i, layouts) in per_cap.iter().enumerate() {
                                if layouts.iter().any(|l| l.fields() == layout.fields()) {
                                    layout_mask |= 1 << i;
                                }
                            }
                            for &mb in &micro_batches {
                                let Some(per_step) = dp.checked_mul(mb) else { continue };
                                if !cfg.global_batch.is_multiple_of(per_step) {
                                    continue;
                                }
                                let m = cfg.global_batch / per_step;
                                if schedule == Schedule::Interleaved && !m.is_multiple_of(pp) {
                                    continue;
                                }
                                let mut shardings: Vec<Sharding> = Vec::new();
                                for c in &caps {
                                    for s in c.shardings(dp, pp, tp, cp) {
                                        if !shardings.contains(s) {
                                            shardings.push(*s);
                                        }
                                    }
                                }
                                for &sharding in &shardings {
                                    let (zero, fsdp, distributed_optimizer) = sharding.fields();
                                    let mut sharding_mask = 0u32;
                                    for (i, c) in caps.iter().enumerate() {
                                        if c.shardings(dp, pp, tp, cp).contains(&sharding) {
                                            sharding_mask |= 1 << i;
                                        }
                                    }
                                    let mask = layout_mask & sharding_mask;
                                    for &recompute in &cfg.recompute {
                                        for sp in [false, true] {
                                            if sp && tp == 1 {
                                                continue;
                                            }
                                            // Three offload modes at most: a fixed array, not a
                                            // vector per (sharding, recompute, sp).
                                            let mut offloads = [Offload::None; 3];
                                            let mut n_offloads = 1;
                                            if cfg.allow_offload {
                                                for c in &caps {
                                                    for o in c.offloads(sharding) {
                                                        if !offloads[..n_offloads].contains(o) {
                                                            offloads[n_offloads] = *o;
                                                            n_offloads += 1;
                                                        }
                                                    }
                                                }
                                            }
                                            for &offload in &offloads[..n_offloads] {
                                                let plan = ParallelPlan {
                                                    dp,
                                                    tp,
                                                    pp,
                                                    cp,
                                                    ep,
                                                    sp,
                                                    zero,
                                                    fsdp,
                                                    distributed_optimizer,
                                                    offload,
                                                    schedule,
                                                    vpp,
                                                    microbatches: m,
                                                    gpus_per_node: cfg.gpus_per_node,
                                                    first_stage_layers,
                                                    last_stage_layers,
                                                };
                                                // Frameworks that run this plan, as a bit set.
                                                let mut runners = 0u32;
                                                for (i, c) in caps.iter().enumerate() {
                                                    if mask & (1 << i) != 0
                                                        && c.check(&plan, recompute, tmpl[i].precision, base.seq)
                                                            .is_none()
                                                    {
                                                        runners |= 1 << i;
                                                    }
                                                }
                                                if runners == 0 || plan.validate(model, base.seq).is_err() {
                                                    continue;
                                                }
                                                evaluated += u64::from(runners.count_ones());
                                                if evaluated > cfg.max_candidates {
                                                    return Err(Error::conflict(
                                                        format!(
                                                            "the plan search has more than {} candidates (the cap)",
                                                            cfg.max_candidates
                                                        ),
                                                        "narrow it with --framework, --max-tp, --max-pp, --max-cp or --recompute",
                                                    ));
                                                }
                                                let (layout_params, work) = layouts
                                                    .entry((tp, pp, ep, first_stage_layers, last_stage_layers))
                                                    .or_insert_with(|| {
                                                        let l = crate::parallel::layout::stages(model, &plan);
                                                        let w = stage_work(&l);
                                                        (l, w)
                                                    });
                                                let few = [0, 1, pp - 1];
                                                let stages: &[u64] = if !single_stack {
                                                    &all_stages[..pp as usize]
                                                } else if pp == 1 {
                                                    &few[..1]
                                                } else if plan.uneven() && pp > 2 {
                                                    &few
                                                } else {
                                                    &[0, pp - 1]
                                                };
                                                // One memory estimate per mechanism class among the runners.
                                                let mut sized: [Option<(u64, u64, u64)>; 32] = [None; 32];
                                                let mut any_fits = false;
                                                for i in (0..caps.len()).filter(|i| runners & (1 << i) != 0) {
                                                    let k = class[i];
                                                    if sized[k].is_some() {
                                                        any_fits |= sized[k].is_some_and(|(t, _, _)| t <= usable);
                                                        continue;
                                                    }
                                                    let setup = setups.entry((mb, recompute, k)).or_insert_with(|| {
                                                        Setup { micro_batch: mb, recompute, ..tmpl[k].clone() }
                                                    });
                                                    let setup = &*setup;
                                                    let prep = prepared
                                                        .entry((mb, recompute, tp, sp, cp, k))
                                                        .or_insert_with(|| {
                                                            Prepared::new(
                                                                model,
                                                                &rank_shapes(model, setup, &plan),
                                                                setup,
                                                                tp,
                                                            )
                                                        });
                                                    let est = estimate_stages(
                                                        model,
                                                        info,
                                                        setup,
                                                        &plan,
                                                        &cfg.overhead,
                                                        prep,
                                                        layout_params,
                                                        stages,
                                                        false,
                                                    );
                                                    let worst = est.worst();
                                                    let stage = est.stages[est.worst].stage;
                                                    sized[k] = Some((worst.total, worst.peak_allocated, stage));
                                                    if worst.total > usable {
                                                        let over = worst.total - usable;
                                                        let key = family_key(&plan);
                                                        let better = misses.get(&key).is_none_or(|m| over < m.over);
                                                        if better {
                                                            misses.insert(
                                                                key,
                                                                Miss { over, stage, plan: plan.clone(), mb, recompute },
                                                            );
                                                        }
                                                    } else {
                                                        any_fits = true;
                                                    }
                                                }
                                                if !any_fits {
                                                    continue;
                                                }
                                                let counted = *flops.entry(recompute).or_insert_with(|| {
                                                    step_flops(
                                                        model,
                                                        setups
                                                            .get(&(
                                                                mb,
                                                                recompute,
                                                                class[runners.trailing_zeros() as usize],
                                                            ))
                                                            .unwrap_or(base),
                                                        cfg.global_batch,
                                                    )
                                                });
                                                for i in (0..caps.len()).filter(|i| runners & (1 << i) != 0) {
                                                    let Some((total, peak, stage)) =
                                                        sized[class[i]].filter(|(t, _, _)| *t <= usable)
                                                    else {
                                                        continue;
                                                    };
                                                    let setup = setups.get(&(mb, recompute, class[i])).unwrap_or(base);
                                                    let c = time_costs
                                                        .entry((mb, recompute, tp, sp, cp, ep, tclass[i]))
                                                        .or_insert_with(|| {
                                                            costs(model, setup, &plan, &cfg.time, kernels[i])
                                                        });
                                                    let sync = caps[i].grad_sync(sharding, pp);
                                                    let time = step_time_with(
                                                        model,
                                                        setup,
                                                        &plan,
                                                        sync,
                                                        kernels[i],
                                                        work,
                                                        c,
                                                        cfg.global_batch,
                                                        &cfg.time,
                                                        counted,
                                                    );
                                                    fitting_count += 1;
                                                    fitting_families.insert(family_key(&plan));
                                                    if time.total_s > cutoff {
                                                        continue;
                                                    }
                                                    fitting.push(Candidate {
                                                        framework: caps[i].framework,
                                                        also_runs_on: Vec::new(),
                                                        plan: plan.clone(),
                                                        micro_batch: mb,
                                                        recompute,
                                                        worst_stage: stage,
                                                        worst_total_bytes: total,
                                                        worst_peak_allocated_bytes: peak,
                                                        time,
                                                    });
                                                    if keep < usize::MAX / 2 && fitting.len() >= 2 * keep.max(64) {
                                                        fitting.select_nth_unstable_by(keep - 1, |a, b| {
                                                            a.time.total_s.total_cmp(&b.time.total_s)
                                                        });
                                                        fitting.truncate(keep);
                                                        cutoff = fitting
                                                            .iter()
                                                            .map(|c| c.time.total_s)
                                                            .fold(f64::NEG_INFINITY, f64::max);
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
    }
    // A family is rejected only when none of its variants fits.
    misses.retain(|k, _| !fitting_families.contains(k));
    // Sort keys, not the candidates themselves.
    let mut order: Vec<(f64, u64, Framework, u32)> =
        fitting.iter().enumerate().map(|(i, c)| (c.time.total_s, c.worst_total_bytes, c.framework, i as u32)).collect();
    order.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)).then(a.3.cmp(&b.3)));
    // One row per plan: the fastest framework, the others named beside it.
    let top = cfg.top_k.max(1);
    let mut plans: Vec<Candidate> = Vec::with_capacity(top.min(1024));
    let mut seen: std::collections::HashSet<(ParallelPlan, u64, Recompute), Fx> = Default::default();
    for &(_, _, _, i) in &order {
        if plans.len() >= top {
            break;
        }
        let c = &fitting[i as usize];
        if !seen.insert((c.plan.clone(), c.micro_batch, c.recompute)) {
            continue;
        }
        plans.push(c.clone());
    }
    for c in &mut plans {
        c.also_runs_on = caps
            .iter()
            .filter(|k| {
                k.framework != c.framework
                    && k.refuses_plan(&c.plan, c.recompute, base.precision, layers, base.seq).is_none()
            })
            .map(|k| k.framework)
            .collect();
    }
    let mut rejections: Vec<Rejection> = misses
        .into_values()
        .map(|m| Rejection {
            family: family(&m.plan),
            over_bytes: m.over,
            reason: format!(
                "stage {} over by {} at micro-batch {} with {}{}",
                m.stage,
                crate::units::ByteUnits::Gib.format(m.over),
                m.mb,
                if m.recompute == Recompute::None {
                    "no recompute".to_string()
                } else {
                    format!("{} recompute", m.recompute)
                },
                if m.plan.sp { ", sequence parallel" } else { "" }
            ),
        })
        .collect();
    rejections.sort_by(|a, b| a.over_bytes.cmp(&b.over_bytes).then(a.family.cmp(&b.family)));
    Ok(SearchResult { evaluated, fitting: fitting_count, usable_bytes: usable, plans, rejections })
}

fn family(plan: &ParallelPlan) -> String {
    let shard = match (plan.fsdp, plan.distributed_optimizer) {
        (Some(f), _) => format!("fsdp {}", format!("{f:?}").to_lowercase()),
        (None, true) => "distributed optimizer".to_string(),
        (None, false) => format!("zero {}", plan.zero),
    };
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

/// The plan a framework would run for the given degrees: used to evaluate a published plan
/// (or any fixed plan) with the same models the search uses.
#[allow(clippy::too_many_arguments)]
pub fn evaluate(
    model: &ModelSpec,
    info: &ParamInfo,
    setup: &Setup,
    plan: &ParallelPlan,
    framework: Framework,
    gpu: &GpuSpec,
    cfg: &SearchConfig,
) -> Result<Candidate> {
    let caps = capabilities(framework)
        .ok_or_else(|| Error::invalid("--framework", framework.name(), "a training framework"))?;
    plan.validate(model, setup.seq)?;
    if let Some(why) = caps.refuses_plan(plan, setup.recompute, setup.precision, model.total_layers(), setup.seq) {
        return Err(Error::conflict(why, "choose a plan this framework runs"));
    }
    let est = crate::memory::estimate::estimate_plan(model, info, setup, plan, &cfg.overhead);
    let layout = crate::parallel::layout::stages(model, plan);
    let k = Kernels::of(framework, setup.precision);
    let c = costs(model, setup, plan, &cfg.time, k);
    let sync = caps.grad_sync(Sharding::of(plan), plan.pp);
    let time = step_time_with(
        model,
        setup,
        plan,
        sync,
        k,
        &stage_work(&layout),
        &c,
        cfg.global_batch,
        &cfg.time,
        step_flops(model, setup, cfg.global_batch),
    );
    let worst = est.worst();
    let _ = gpu;
    Ok(Candidate {
        framework,
        also_runs_on: Vec::new(),
        plan: plan.clone(),
        micro_batch: setup.micro_batch,
        recompute: setup.recompute,
        worst_stage: est.stages[est.worst].stage,
        worst_total_bytes: worst.total,
        worst_peak_allocated_bytes: worst.peak_allocated,
        time,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn divisors_by_factorisation() {
        assert_eq!(divisors_up_to(12, 100), vec![1, 2, 3, 4, 6, 12]);
        assert_eq!(divisors_up_to(1536, 12), vec![1, 2, 3, 4, 6, 8, 12]);
        assert_eq!(divisors_up_to(97, 1000), vec![1, 97]);
        // 10^12 and a large prime: instant, and only small divisors.
        let d = divisors_up_to(1_000_000_000_000, 128);
        assert_eq!(d, vec![1, 2, 4, 5, 8, 10, 16, 20, 25, 32, 40, 50, 64, 80, 100, 125, 128]);
        assert_eq!(divisors_up_to(18_446_744_073_709_551_557, 1000), vec![1]);
        assert_eq!(divisors_up_to(0, 10), Vec::<u64>::new());
    }
}
