//! The library API every face calls (CLI, Python, web): a [`Scenario`] in, typed reports out.
//! The reports' serde form is the JSON contract: `memplan estimate --format json`, Python's
//! `.to_dict()` and the web API's responses are the same objects.
//!
//! ```
//! use memplan::{api, scenario::Scenario};
//! let s = Scenario::from_pairs([("model", "gpt2"), ("batch", "2"), ("seq", "512")]).unwrap();
//! let report = api::estimate(&s).unwrap();
//! assert_eq!(report.model.parameters, 124_439_808);
//! ```

pub mod charts;
pub mod report;

use crate::error::{Error, Result};
use crate::hw::GpuSpec;
use crate::plan::search::{search, SearchConfig, SearchResult};
use crate::report::budget::{BaselineDiff, Budget};
use crate::report::compare::{CompareReport, CompareRow};
use crate::report::estimate::{EstimateReport, Serving};
use crate::report::plan::PlanReport;
use crate::scenario::rows::{expand, in_row, Row, Setting};
use crate::scenario::{Group, Resolved, ResolvedSearch, Scenario, ServingChoice};
use serde::Serialize;
use std::collections::BTreeMap;

pub use crate::scenario::{setting, settings, SettingDef};

/// The entry points that take settings by name (Python's keyword arguments, the web API's
/// fields): which settings each one uses. The CLI's `estimate` and `plan` flags are these sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entry {
    Estimate,
    Plan,
}

impl Entry {
    pub fn name(self) -> &'static str {
        match self {
            Entry::Estimate => "estimate",
            Entry::Plan => "plan",
        }
    }

    /// Whether this entry point uses the setting: `estimate` one plan (no search bounds);
    /// `plan` the model, the step and the cluster it searches.
    pub fn takes(self, d: &SettingDef) -> bool {
        match self {
            Entry::Estimate => d.group != Group::Search,
            Entry::Plan => {
                matches!(
                    d.group,
                    Group::Model | Group::Training | Group::FineTune | Group::Runtime | Group::Search | Group::Gpu
                ) || matches!(d.key, "gpus" | "gpus-per-node" | "global-batch")
            }
        }
    }

    /// Refuse a setting this entry point would ignore (the CLI refuses it as an unknown flag).
    /// The settings that fix a plan are left to `plan` itself, which says why it refuses them.
    pub fn check(self, s: &Scenario) -> Result<()> {
        for (key, _) in s.entries() {
            let d = setting(key)?;
            if self.takes(d) || (self == Entry::Plan && d.group == Group::Parallel) {
                continue;
            }
            let hint = match self {
                Entry::Estimate => "drop it, or search plans with `plan` (it takes --gpus and the search bounds)",
                Entry::Plan => "drop it: `plan` searches training plans; serving settings belong to `estimate`",
            };
            let other = if self == Entry::Plan { Entry::Estimate } else { Entry::Plan };
            return Err(Error::conflict(
                format!("--{key} is a setting of `{}`, not of `{}`", other.name(), self.name()),
                hint,
            ));
        }
        Ok(())
    }
}

/// One row of the settings table as the faces read it: the definition, its group's heading
/// and which entry points use it (Python's `memplan.settings()`, the web API's `/api/settings`).
#[derive(Clone, Debug, Serialize)]
pub struct SettingInfo {
    #[serde(flatten)]
    pub def: &'static SettingDef,
    pub heading: &'static str,
    pub estimate: bool,
    pub plan: bool,
    /// `plan` chooses this setting itself, so a value given does not change the search.
    pub plan_searches: bool,
}

/// Settings the plan search enumerates although `plan` takes them (`plan::search::search`
/// loops over micro-batches 1–32 and every recomputation policy).
const PLAN_SEARCHES: &[&str] = &["batch", "recompute"];

/// The settings table, in order.
pub fn settings_table() -> Vec<SettingInfo> {
    settings()
        .iter()
        .map(|d| SettingInfo {
            def: d,
            heading: d.group.heading(),
            estimate: Entry::Estimate.takes(d),
            plan: Entry::Plan.takes(d),
            plan_searches: PLAN_SEARCHES.contains(&d.key),
        })
        .collect()
}

/// Per-GPU memory of one scenario, term by term, with the fit on each GPU checked and, for
/// inference with a KV cache, how many concurrent sequences fit.
pub fn estimate(s: &Scenario) -> Result<EstimateReport> {
    estimate_resolved(&s.resolve()?)
}

/// [`estimate`] of an already resolved scenario.
pub fn estimate_resolved(r: &Resolved) -> Result<EstimateReport> {
    let est = r.estimate();
    let setup = r.setup();
    let model = r.model();
    let mut report = EstimateReport::new(&model.spec, model.params, model.derived, setup, &est, r.gpus());
    report.framework = crate::report::estimate::FrameworkInfo::of(r.profile());
    if !setup.training() && setup.kv_cache && est.worst().kv_cache > 0 {
        // Capacity: the total with one sequence, less that sequence's KV cache, is the base;
        // each more sequence adds its KV cache and the fragmentation margin on it.
        if let Ok(one) = r.with_micro_batch(1) {
            let single = one.estimate();
            let w = single.worst();
            let per_seq = w.kv_cache;
            let step = per_seq + (per_seq as f64 * r.overheads().fragmentation).round() as u64;
            let serving = Serving {
                context_tokens: crate::memory::kv_cache::cached_tokens(one.setup().seq, one.setup()),
                kv_bytes_per_sequence: per_seq,
                base_bytes: w.total.saturating_sub(step),
                bytes_per_sequence: step,
            };
            for f in &mut report.fits {
                f.max_concurrent_sequences = Some(serving.max_sequences(f.usable_bytes));
            }
            report.serving = Some(serving);
        }
    }
    if let Some(ServingChoice::Vllm { release, settings }) = r.serving() {
        let c = vllm_capacity(r, &est, *release, settings)?;
        {
            for (f, (_, b)) in report.fits.iter_mut().zip(&c.per_gpu) {
                f.max_concurrent_sequences = Some(b.max_concurrency.floor() as u64);
                // vLLM refuses to start when one request of max_model_len does not fit.
                f.fits = b.kv_tokens >= b.max_model_len;
            }
            report.serving_framework = Some(c);
        }
    }
    Ok(report)
}

/// vLLM's start-up budget on each GPU (the worst pipeline stage's weights on one rank).
fn vllm_capacity(
    r: &Resolved,
    est: &crate::memory::estimate::PlanEstimate,
    release: crate::memory::serving::Release,
    settings: &crate::memory::serving::VllmSettings,
) -> Result<crate::report::capacity::ServingCapacity> {
    use crate::memory::serving::{vllm_budget, VllmDevice};
    let setup = r.setup();
    let act = setup.precision.activation_dtype();
    let kv = setup.kv_dtype.unwrap_or(act);
    let weights = est.worst().states.weights;
    let mut per_gpu = Vec::new();
    for g in r.gpus() {
        let device = VllmDevice {
            name: g.name.clone(),
            // What torch.cuda.mem_get_info reports: the GPU's runtime total_memory.
            total_memory: g.usable_bytes(),
            cuda_context: r.overheads().cuda_context_bytes,
            nvlink: g.interconnect.intra_node.to_ascii_lowercase().contains("nvlink"),
        };
        let budget = vllm_budget(&r.model().spec, weights, r.plan().tp, act, kv, &device, settings, release)?;
        per_gpu.push((g.name.clone(), budget));
    }
    Ok(crate::report::capacity::ServingCapacity { framework: "vllm".into(), version: release.to_string(), per_gpu })
}

/// Whether the estimate fits every GPU the scenario chose (`gpu`); always true when none was
/// chosen (every preset is listed instead).
pub fn fits_chosen(r: &Resolved, report: &EstimateReport) -> bool {
    !r.gpus_chosen() || report.fits.iter().all(|f| f.fits)
}

/// A plan search's report and the search result the launch configs are emitted from.
#[derive(Clone, Debug)]
pub struct Planned {
    pub resolved: ResolvedSearch,
    pub result: SearchResult,
    pub report: PlanReport,
}

/// Search the plans that fit the scenario's cluster and rank them by predicted step time.
pub fn plan(s: &Scenario) -> Result<Planned> {
    plan_resolved(s.resolve_search()?)
}

/// [`plan`] restricted to the frameworks a launch config is written for (`memplan plan --emit`):
/// what is searched is what can be emitted.
pub fn plan_for(s: &Scenario, frameworks: &[crate::framework::Framework]) -> Result<Planned> {
    let mut r = s.resolve_search()?;
    let kept: Vec<_> = r.config.frameworks.iter().copied().filter(|f| frameworks.contains(f)).collect();
    if kept.is_empty() {
        let names = |fs: &[crate::framework::Framework]| fs.iter().map(|f| f.name()).collect::<Vec<_>>().join(", ");
        return Err(Error::conflict(
            format!(
                "the launch config is written for {}, none of which is searched here ({})",
                names(frameworks),
                names(&r.config.frameworks)
            ),
            "drop --framework, or emit for the framework searched (--emit auto)",
        ));
    }
    r.config.frameworks = kept;
    plan_resolved(r)
}

impl Planned {
    /// The setup a framework's plans were sized with (its own defaults for what was not given).
    pub fn setup_for(&self, framework: crate::framework::Framework) -> &crate::memory::Setup {
        self.resolved.config.setups.iter().find(|(f, _)| *f == framework).map_or(self.resolved.base.setup(), |(_, s)| s)
    }
}

/// [`plan`] of an already resolved search.
pub fn plan_resolved(r: ResolvedSearch) -> Result<Planned> {
    let base = &r.base;
    let model = base.model();
    let result = search(&model.spec, base.info(), base.setup(), &r.gpu, &r.config)?;
    let mut report =
        PlanReport::new(&model.spec, model.params, base.setup(), &r.gpu, &r.config, &result, r.tokens, r.price);
    report.warnings = r.warnings.clone();
    if result.plans.is_empty() {
        report.suggestion = smallest_change(&r);
    }
    Ok(Planned { resolved: r, result, report })
}

/// The smallest change that makes some plan fit: offloading, a shorter sequence, or more GPUs.
fn smallest_change(r: &ResolvedSearch) -> Option<String> {
    let base = &r.base;
    let (model, info, gpu, cfg) = (&base.model().spec, base.info(), &r.gpu, &r.config);
    let best = |setup: &crate::memory::Setup, cfg: &SearchConfig| {
        search(model, info, setup, gpu, &SearchConfig { top_k: 1, ..cfg.clone() })
            .ok()
            .and_then(|r| r.plans.into_iter().next())
    };
    let setup = base.setup();
    if !cfg.allow_offload {
        if let Some(p) = best(setup, &SearchConfig { allow_offload: true, ..cfg.clone() }) {
            return Some(format!(
                "offloading optimizer states (--allow-offload) would fit: {} ({})",
                p.plan.describe(),
                p.framework
            ));
        }
    }
    for div in [2u64, 4, 8] {
        let seq = setup.seq / div;
        if seq >= 128 && setup.seq.is_multiple_of(div) {
            let shorter = crate::memory::Setup { seq, tgt_seq: setup.tgt_seq.min(seq), ..setup.clone() };
            if let Some(p) = best(&shorter, cfg) {
                return Some(format!(
                    "a sequence of {seq} tokens (--seq {seq}) would fit: {} ({})",
                    p.plan.describe(),
                    p.framework
                ));
            }
        }
    }
    for mult in [2u64, 4, 8, 16] {
        let Some(gpus) = cfg.gpus.checked_mul(mult).filter(|g| *g <= crate::scenario::settings::bounds::GPUS) else {
            break;
        };
        if cfg.global_batch >= gpus / cfg.gpus_per_node.max(1) {
            let node = cfg.gpus_per_node.max(cfg.gpus.min(8));
            let mut c = SearchConfig { gpus, gpus_per_node: node, ..cfg.clone() };
            c.time.links.gpus_per_node = node;
            if let Some(p) = best(setup, &c) {
                return Some(format!("{gpus} GPUs ({mult}× more) would fit: {} ({})", p.plan.describe(), p.framework));
            }
        }
    }
    None
}

/// What a comparison compares.
#[derive(Clone, Debug, Default)]
pub struct CompareRequest {
    /// Settings shared by every row.
    pub base: Scenario,
    /// `key=value` applied to every row first.
    pub set: Vec<String>,
    /// Model names (presets, `.toml` files, `.json` configs); empty: the base scenario's model.
    pub models: Vec<String>,
    /// `key=v1,v2,...`: one row per value (several: their product).
    pub vary: Vec<String>,
    /// `key=value,key=value`: one row each.
    pub variant: Vec<String>,
    /// GPU presets, one fits column each; empty: the budget's, else every preset is checked.
    pub gpus: Vec<String>,
    /// Scenarios and limits from a budget file (instead of models × variants).
    pub budget: Option<Budget>,
    /// An earlier comparison to diff against, with its label and the largest growth allowed.
    pub baseline: Option<(String, CompareReport, Option<f64>)>,
}

/// Several scenarios side by side, with budgets and a baseline diff for CI.
pub fn compare(req: &CompareRequest) -> Result<CompareReport> {
    let rows = compare_rows(req)?;
    let mut columns = gpus_from(&req.gpus)?;
    if columns.is_empty() {
        if let Some(b) = &req.budget {
            columns = b.gpus.clone();
        }
    }
    let checked = if columns.is_empty() { GpuSpec::all()? } else { columns.clone() };
    let evaluated = evaluate_rows(&rows, &checked)?;
    let compare_rows: Vec<CompareRow> = evaluated
        .iter()
        .zip(&rows)
        .map(|((name, ev), row)| {
            let settings: BTreeMap<String, String> =
                row.settings.iter().map(|x| (x.key.clone(), x.value.clone())).collect();
            CompareRow::new(name.clone(), settings, &ev.report)
        })
        .collect();
    let mut report =
        CompareReport::new(&columns, compare_rows.clone(), crate::report::compare::shared_assumptions(&compare_rows));
    if let Some(b) = &req.budget {
        report.budget = Some(b.check(&compare_rows));
    }
    if let Some((label, old, max)) = &req.baseline {
        report.baseline = Some(BaselineDiff::new(label, old, &compare_rows, *max));
    }
    Ok(report)
}

/// The rows of a comparison: from the budget file, or models × variants.
pub fn compare_rows(req: &CompareRequest) -> Result<Vec<Row>> {
    let Some(budget) = &req.budget else {
        return expand(&req.base, &req.set, &req.models, &req.vary, &req.variant);
    };
    if !req.models.is_empty() || !req.vary.is_empty() || !req.variant.is_empty() {
        return Err(Error::conflict(
            "--budget takes its scenarios from the file",
            "drop the model names, --vary and --variant, or put them in the budget file",
        ));
    }
    let dir = budget.path.parent().map(std::path::Path::to_path_buf);
    let mut base = req.base.clone();
    for s in &req.set {
        Setting::parse("--set", s)?.apply(&mut base)?;
    }
    budget
        .scenarios
        .iter()
        .map(|s| {
            let mut scenario = base.clone();
            let mut settings = Vec::new();
            if let Some(m) = &s.model {
                Setting::new("model", m)?.apply(&mut scenario)?;
            }
            for (k, v) in &s.settings {
                let setting = Setting::new(k, v)?;
                setting.apply(&mut scenario)?;
                settings.push(setting);
            }
            if let Some(d) = &dir {
                scenario.rebase_paths(d);
            }
            Ok(Row { name: Some(s.name.clone()), settings, scenario })
        })
        .collect()
}

/// A resolved scenario with its estimate and report (a row of a comparison or chart).
#[derive(Clone, Debug)]
pub struct Evaluated {
    pub resolved: Resolved,
    pub model: crate::scenario::ResolvedModel,
    pub setup: crate::memory::Setup,
    pub plan: crate::parallel::ParallelPlan,
    pub estimate: crate::memory::estimate::PlanEstimate,
    pub report: EstimateReport,
}

impl Evaluated {
    pub fn new(resolved: Resolved) -> Result<Evaluated> {
        let report = estimate_resolved(&resolved)?;
        Ok(Evaluated {
            model: resolved.model().clone(),
            setup: resolved.setup().clone(),
            plan: resolved.plan().clone(),
            estimate: resolved.estimate(),
            report,
            resolved,
        })
    }

    /// The largest micro-batch that fits `capacity` bytes (see [`Resolved::max_micro_batch`]).
    pub fn max_micro_batch(&self, capacity: u64, limit: u64) -> u64 {
        self.resolved.max_micro_batch(capacity, limit)
    }
}

/// Resolve and estimate one scenario, checked against `gpus` (empty: every preset).
pub fn evaluate(s: &Scenario, gpus: &[GpuSpec]) -> Result<Evaluated> {
    let mut s = s.clone();
    if !gpus.is_empty() {
        s.gpu = Some(crate::scenario::value::Names(gpus.iter().map(|g| g.name.clone()).collect()));
    }
    Evaluated::new(s.resolve()?)
}

/// Resolve and estimate every row; rows are named `<model> <key=value ...>` and made unique.
pub fn evaluate_rows(rows: &[Row], gpus: &[GpuSpec]) -> Result<Vec<(String, Evaluated)>> {
    let mut out: Vec<(String, Evaluated)> = Vec::new();
    for row in rows {
        let label = row.name.clone().unwrap_or_else(|| {
            let mut parts = vec![row.scenario.get("model").unwrap_or_default()];
            parts.extend(row.settings.iter().filter(|x| x.key != "model").map(|x| x.to_string()));
            parts.join(" ")
        });
        let ev = in_row(label.trim(), || evaluate(&row.scenario, gpus))?;
        let mut name = match &row.name {
            Some(n) => n.clone(),
            None => {
                let mut parts = vec![ev.report.model.name.clone()];
                parts.extend(row.settings.iter().filter(|x| x.key != "model").map(|x| x.to_string()));
                parts.join(" ")
            }
        };
        if out.iter().any(|(n, _)| *n == name) {
            let mut i = 2;
            while out.iter().any(|(n, _)| *n == format!("{name} #{i}")) {
                i += 1;
            }
            name = format!("{name} #{i}");
        }
        out.push((name, ev));
    }
    Ok(out)
}

/// GPU presets from names (each may be a comma-separated list), without repeats.
pub fn gpus_from(names: &[String]) -> Result<Vec<GpuSpec>> {
    let mut out: Vec<GpuSpec> = Vec::new();
    for n in names.iter().flat_map(|n| n.split(',')).map(str::trim).filter(|n| !n.is_empty()) {
        let g = GpuSpec::preset(n)?;
        if !out.iter().any(|o| o.name == g.name) {
            out.push(g);
        }
    }
    Ok(out)
}

/// A model preset's summary.
#[derive(Clone, Debug, Serialize)]
pub struct ModelPreset {
    pub name: String,
    pub family: String,
    pub architecture: &'static str,
    pub parameters: u64,
}

/// A GPU preset's summary.
#[derive(Clone, Debug, Serialize)]
pub struct GpuPreset {
    pub name: String,
    pub memory_bytes: u64,
}

/// The presets (built-in and users' own).
#[derive(Clone, Debug, Serialize)]
pub struct Presets {
    pub models: Vec<ModelPreset>,
    pub gpus: Vec<GpuPreset>,
}

pub fn presets() -> Result<Presets> {
    let models = crate::model::presets::model_names()
        .into_iter()
        .map(|n| {
            let spec = crate::model::presets::model(n)?;
            Ok(ModelPreset {
                name: n.to_string(),
                family: spec.family.clone(),
                architecture: spec.architecture.name(),
                parameters: crate::model::params::count(&spec),
            })
        })
        .collect::<Result<_>>()?;
    let gpus = GpuSpec::all()?.into_iter().map(|g| GpuPreset { name: g.name, memory_bytes: g.memory_bytes }).collect();
    Ok(Presets { models, gpus })
}
