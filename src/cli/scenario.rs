//! Scenarios shared by `compare`, `chart` and `report`: a model plus the same training flags
//! `estimate` takes, with `key=value` settings (`--set`, `--vary`, `--variant`, budget files)
//! applied on top of the parsed flags.
//!
//! A setting's key is the long flag's name without the dashes (`batch`, `recompute`, `tp`,
//! `zero`, `kv-heads`, ...; `_` may stand for `-`), and its value is what the flag takes. Applying
//! settings to the parsed argument structs (rather than re-parsing a command line) keeps one
//! validation path: the settings end up in the same `resolve` functions as the flags.

use super::args::{
    AttentionArg, FinetuneArg, FsdpArg, KvDtypeArg, ModelArgs, OffloadArg, OptimizerArg, OptimizerImplArg, PhaseArg,
    PlanArgs, PrecisionArg, RecomputeArg, RuntimeArg, ScaleDtypeArg, ScheduleArg, SetupArgs, WeightsArg,
};
use crate::error::{Error, Result};
use crate::hw::GpuSpec;
use crate::memory::estimate::{estimate_plan, PlanEstimate};
use crate::memory::states::ParamInfo;
use crate::memory::{OverheadConfig, Setup};
use crate::parallel::plan::PLAN_KEYS;
use crate::parallel::ParallelPlan;
use crate::report::estimate::EstimateReport;
use clap::ValueEnum;
use std::path::PathBuf;

/// The model and setup keys `--set`/`--vary`/budget files accept, in the order `--help` lists
/// them; the parallel-plan keys (`crate::parallel::plan::PLAN_KEYS`) follow.
pub const SETUP_KEYS: &[&str] = &[
    "model",
    "params",
    "model-file",
    "hf-config",
    "layers",
    "hidden",
    "heads",
    "kv-heads",
    "ffn",
    "vocab",
    "phase",
    "precision",
    "optimizer",
    "optimizer-impl",
    "batch",
    "seq",
    "tgt-seq",
    "image-size",
    "recompute",
    "attention",
    "dropout",
    "kv-cache",
    "runtime",
    "capacity-factor",
    "finetune",
    "lora-rank",
    "lora-alpha",
    "lora-targets",
    "lora-dropout",
    "double-quant",
    "paged-optimizer",
    "weights",
    "group-size",
    "scale-dtype",
    "kv-dtype",
    "max-batch",
    "context",
    "block-size",
    "cuda-context",
    "fragmentation",
];

/// The flags of one scenario, before validation.
#[derive(Clone, Debug)]
pub struct ScenarioArgs {
    pub model: ModelArgs,
    pub setup: SetupArgs,
    pub plan: PlanArgs,
}

/// One `key=value` setting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setting {
    pub key: String,
    pub value: String,
}

impl Setting {
    /// `batch=4` → (batch, 4). The key is normalised (`kv_heads` → `kv-heads`) and checked.
    pub fn parse(what: &str, text: &str) -> Result<Setting> {
        let (key, value) = text.split_once('=').ok_or_else(|| {
            Error::invalid(what, text, "key=value, e.g. batch=4 or recompute=full (keys: memplan compare --help)")
        })?;
        Setting::new(key, value)
    }

    /// Every accepted key: the setup keys, then the plan keys.
    pub fn keys() -> impl Iterator<Item = &'static str> {
        SETUP_KEYS.iter().chain(PLAN_KEYS).copied()
    }

    pub fn new(key: &str, value: &str) -> Result<Setting> {
        let key = key.trim().to_ascii_lowercase().replace('_', "-");
        if !Setting::keys().any(|k| k == key) {
            let all = Setting::keys().collect::<Vec<_>>().join(", ");
            let mut expected = format!("one of {all}");
            let suggestions = crate::error::closest(&key, Setting::keys());
            if let Some(s) = suggestions.first() {
                expected = format!("`{s}`? (valid keys: {all})");
            }
            return Err(Error::invalid("setting key", &key, expected));
        }
        Ok(Setting { key, value: value.trim().to_string() })
    }
}

impl std::fmt::Display for Setting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}={}", self.key, self.value)
    }
}

/// `--vary batch=1,2,4` → one setting per value.
pub fn parse_vary(text: &str) -> Result<Vec<Setting>> {
    let first = Setting::parse("--vary", text)?;
    let values: Vec<&str> = first.value.split(',').map(str::trim).filter(|v| !v.is_empty()).collect();
    if values.is_empty() {
        return Err(Error::invalid("--vary", text, "key=v1,v2,..., e.g. batch=1,2,4,8"));
    }
    values.into_iter().map(|v| Setting::new(&first.key, v)).collect()
}

/// `--variant tp=8,zero=1` → the settings of one variant row.
pub fn parse_variant(text: &str) -> Result<Vec<Setting>> {
    text.split(',').filter(|p| !p.trim().is_empty()).map(|p| Setting::parse("--variant", p)).collect()
}

/// The variants of a comparison: the cartesian product of every `--vary` (in the order given),
/// then each `--variant`. No `--vary`/`--variant`: one variant with no settings.
pub fn variants(vary: &[String], variant: &[String]) -> Result<Vec<Vec<Setting>>> {
    let mut rows: Vec<Vec<Setting>> = vec![Vec::new()];
    for v in vary {
        let values = parse_vary(v)?;
        rows = rows
            .into_iter()
            .flat_map(|row| {
                values.iter().map(move |s| {
                    let mut r = row.clone();
                    r.push(s.clone());
                    r
                })
            })
            .collect();
    }
    if !variant.is_empty() {
        let named: Vec<Vec<Setting>> = variant.iter().map(|v| parse_variant(v)).collect::<Result<_>>()?;
        rows = rows
            .into_iter()
            .flat_map(|row| {
                named.iter().map(move |n| {
                    let mut r = row.clone();
                    r.extend(n.iter().cloned());
                    r
                })
            })
            .collect();
    }
    Ok(rows)
}

fn enum_value<T: ValueEnum>(key: &str, value: &str) -> Result<T> {
    T::from_str(value, true).map_err(|_| {
        let names: Vec<String> = T::value_variants()
            .iter()
            .filter_map(|v| v.to_possible_value())
            .map(|p| p.get_name().to_string())
            .collect();
        Error::invalid(key, value, format!("one of {}", names.join(", ")))
    })
}

fn int(key: &str, value: &str) -> Result<u64> {
    crate::units::parse_count(key, value)
}

fn float(key: &str, value: &str) -> Result<f64> {
    value.parse().map_err(|_| Error::invalid(key, value, "a number"))
}

fn switch(key: &str, value: &str) -> Result<bool> {
    match value.to_ascii_lowercase().as_str() {
        "on" | "true" | "yes" | "1" => Ok(true),
        "off" | "false" | "no" | "0" => Ok(false),
        _ => Err(Error::invalid(key, value, "on or off")),
    }
}

impl ScenarioArgs {
    pub fn new(model: &ModelArgs, setup: &SetupArgs, plan: &PlanArgs) -> Self {
        ScenarioArgs { model: model.clone(), setup: setup.clone(), plan: plan.clone() }
    }

    /// Use a model name: a preset, or a file (`.toml` model preset, `.json` Hugging Face config).
    pub fn set_model(&mut self, name: &str) {
        self.clear_source();
        let m = &mut self.model;
        let path = std::path::Path::new(name);
        let is_file = path.is_file();
        match path.extension().and_then(|e| e.to_str()) {
            Some("toml") if is_file => m.model_file = Some(path.to_path_buf()),
            Some("json") if is_file => m.hf_config = Some(path.to_path_buf()),
            _ => m.model = Some(name.to_string()),
        }
    }

    fn clear_source(&mut self) {
        let m = &mut self.model;
        m.params = None;
        m.model = None;
        m.hf_config = None;
        m.model_file = None;
    }

    /// Apply one setting, as if its flag had been given. Paths are taken relative to `base`.
    pub fn apply(&mut self, s: &Setting, base: Option<&std::path::Path>) -> Result<()> {
        let (k, v) = (s.key.as_str(), s.value.as_str());
        let flag = format!("setting `{k}`");
        let flag = flag.as_str();
        let path = |v: &str| -> PathBuf {
            let p = PathBuf::from(v);
            match base {
                Some(b) if p.is_relative() => b.join(p),
                _ => p,
            }
        };
        let (m, st, p) = (&mut self.model, &mut self.setup, &mut self.plan);
        match k {
            "model" => {
                let p = path(v);
                self.set_model(if p.is_file() { p.to_str().unwrap_or(v) } else { v });
            }
            "params" => {
                self.clear_source();
                self.model.params = Some(v.to_string());
            }
            "model-file" => {
                self.clear_source();
                self.model.model_file = Some(path(v));
            }
            "hf-config" => {
                self.clear_source();
                self.model.hf_config = Some(path(v));
            }
            "layers" => m.layers = Some(int(flag, v)?),
            "hidden" => m.hidden = Some(int(flag, v)?),
            "heads" => m.heads = Some(int(flag, v)?),
            "kv-heads" => m.kv_heads = Some(int(flag, v)?),
            "ffn" => m.ffn = Some(int(flag, v)?),
            "vocab" => m.vocab = Some(int(flag, v)?),
            "phase" => st.phase = enum_value::<PhaseArg>(flag, v)?,
            "precision" => st.precision = enum_value::<PrecisionArg>(flag, v)?,
            "optimizer" => st.optimizer = enum_value::<OptimizerArg>(flag, v)?,
            "optimizer-impl" => st.optimizer_impl = enum_value::<OptimizerImplArg>(flag, v)?,
            "batch" => st.batch = int(flag, v)?.to_string(),
            "seq" => st.seq = Some(int(flag, v)?.to_string()),
            "tgt-seq" => st.tgt_seq = Some(int(flag, v)?.to_string()),
            "image-size" => st.image_size = Some(int(flag, v)?),
            "recompute" => st.recompute = Some(enum_value::<RecomputeArg>(flag, v)?),
            "attention" => st.attention = enum_value::<AttentionArg>(flag, v)?,
            "dropout" => {
                if v.eq_ignore_ascii_case("model") {
                    (st.dropout, st.no_dropout) = (false, false);
                } else {
                    let on = switch(flag, v)?;
                    (st.dropout, st.no_dropout) = (on, !on);
                }
            }
            "kv-cache" => {
                let on = switch(flag, v)?;
                (st.kv_cache, st.no_kv_cache) = (on, !on);
            }
            "runtime" => st.runtime = enum_value::<RuntimeArg>(flag, v)?,
            "capacity-factor" => st.capacity_factor = float(flag, v)?,
            "finetune" => st.finetune = enum_value::<FinetuneArg>(flag, v)?,
            "lora-rank" => st.lora_rank = int(flag, v)?,
            "lora-alpha" => st.lora_alpha = float(flag, v)?,
            "lora-targets" => st.lora_targets = v.to_string(),
            "lora-dropout" => st.lora_dropout = float(flag, v)?,
            "double-quant" => st.double_quant = switch(flag, v)?,
            "paged-optimizer" => st.paged_optimizer = switch(flag, v)?,
            "weights" => {
                st.weights =
                    if v.eq_ignore_ascii_case("none") { None } else { Some(enum_value::<WeightsArg>(flag, v)?) }
            }
            "group-size" => st.group_size = Some(int(flag, v)?),
            "scale-dtype" => st.scale_dtype = Some(enum_value::<ScaleDtypeArg>(flag, v)?),
            "kv-dtype" => st.kv_dtype = Some(enum_value::<KvDtypeArg>(flag, v)?),
            "max-batch" => st.max_batch = Some(int(flag, v)?.to_string()),
            "context" => st.context = Some(int(flag, v)?.to_string()),
            "block-size" => st.block_size = Some(int(flag, v)?),
            "cuda-context" => {
                super::args::parse_bytes(flag, v)?;
                st.cuda_context = v.to_string();
            }
            "fragmentation" => st.fragmentation = float(flag, v)?,
            "dp" => p.dp = Some(int(flag, v)?),
            "tp" => p.tp = int(flag, v)?,
            "sp" => p.sp = switch(flag, v)?,
            "pp" => p.pp = int(flag, v)?,
            "schedule" => p.schedule = enum_value::<ScheduleArg>(flag, v)?,
            "vpp" => p.vpp = int(flag, v)?,
            "microbatches" => p.microbatches = Some(int(flag, v)?),
            "global-batch" => p.global_batch = Some(int(flag, v)?),
            "cp" => p.cp = int(flag, v)?,
            "ep" => p.ep = int(flag, v)?,
            "zero" => {
                p.zero = match v {
                    "0" | "1" | "2" | "3" => v.parse().unwrap_or(0),
                    _ => return Err(Error::invalid(flag, v, "0, 1, 2 or 3")),
                }
            }
            "fsdp" => {
                p.fsdp = if v.eq_ignore_ascii_case("none") || v.eq_ignore_ascii_case("off") {
                    None
                } else {
                    Some(enum_value::<FsdpArg>(flag, v)?)
                }
            }
            "distributed-optimizer" => p.distributed_optimizer = switch(flag, v)?,
            "offload" => p.offload = enum_value::<OffloadArg>(flag, v)?,
            "gpus" => p.gpus = Some(int(flag, v)?),
            "gpus-per-node" => p.gpus_per_node = int(flag, v)?,
            other => return Err(Error::invalid("setting key", other, Setting::keys().collect::<Vec<_>>().join(", "))),
        }
        Ok(())
    }

    pub fn apply_all(&mut self, settings: &[Setting], base: Option<&std::path::Path>) -> Result<()> {
        for s in settings {
            self.apply(s, base)?;
        }
        Ok(())
    }

    /// Validate the flags and estimate: the same path as `memplan estimate`.
    pub fn evaluate(&self, gpus: &[GpuSpec]) -> Result<Evaluated> {
        let mut model = self.model.resolve()?;
        self.setup.apply_image_size(&mut model.spec)?;
        let mut setup = self.setup.resolve(&model.spec)?;
        if let Some(path) = &self.plan.deepspeed_config {
            let ds = super::args::read_deepspeed_config(path)?;
            setup.micro_batch = ds.micro_batch;
            setup.precision = ds.precision;
        }
        let overheads = self.setup.overheads()?;
        let plan = self.plan.resolve(&model.spec, &setup)?;
        let info =
            if model.derived { ParamInfo::with_count(&model.spec, model.params) } else { ParamInfo::of(&model.spec) };
        let estimate = estimate_plan(&model.spec, &info, &setup, &plan, &overheads);
        let report = EstimateReport::new(&model.spec, model.params, model.derived, &setup, &estimate, gpus);
        Ok(Evaluated { model, info, setup, plan, overheads, estimate, report })
    }
}

/// A validated, estimated scenario.
#[derive(Clone, Debug)]
pub struct Evaluated {
    pub model: super::args::ResolvedModel,
    pub info: ParamInfo,
    pub setup: Setup,
    pub plan: ParallelPlan,
    pub overheads: OverheadConfig,
    pub estimate: PlanEstimate,
    pub report: EstimateReport,
}

impl Evaluated {
    /// The worst rank's total (live peak + runtime overheads) with another setup.
    pub fn total_with(&self, setup: &Setup) -> u64 {
        estimate_plan(&self.model.spec, &self.info, setup, &self.plan, &self.overheads).worst().total
    }

    /// The largest micro-batch whose worst-rank total fits in `capacity` bytes (0: not even
    /// one sequence), searched up to `limit`. Memory grows with the micro-batch, so a doubling
    /// search followed by bisection finds it in O(log) estimates.
    pub fn max_micro_batch(&self, capacity: u64, limit: u64) -> u64 {
        let fits = |b: u64| self.total_with(&Setup { micro_batch: b, ..self.setup.clone() }) <= capacity;
        if !fits(1) {
            return 0;
        }
        let mut lo = 1; // fits
        let mut hi = 2;
        while hi <= limit && fits(hi) {
            lo = hi;
            hi *= 2;
        }
        if hi > limit {
            if fits(limit) {
                return limit;
            }
            hi = limit;
        }
        // lo fits, hi does not
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if fits(mid) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        lo
    }
}

/// GPU presets from `--gpu` values (each may be a comma-separated list).
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

#[derive(clap::Parser, Debug)]
struct DefaultFlags {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    setup: SetupArgs,
    #[command(flatten)]
    plan: PlanArgs,
}

impl ScenarioArgs {
    /// The flags' defaults (what `memplan estimate` uses when no flag is given).
    pub fn probe() -> ScenarioArgs {
        use clap::Parser;
        let d = DefaultFlags::parse_from(["memplan"]);
        ScenarioArgs { model: d.model, setup: d.setup, plan: d.plan }
    }
}

/// Run `f` and prefix any error with the scenario's name.
pub fn in_scenario<T>(name: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    f().map_err(|e| {
        let hint = e.hint().unwrap_or_default();
        Error::conflict(format!("scenario `{name}`: {e}"), hint)
    })
}

/// A scenario with its row name and the settings that distinguish it.
#[derive(Clone, Debug)]
pub struct Named {
    /// Fixed name (budget scenarios); `None`: the model's name followed by the settings.
    pub name: Option<String>,
    pub settings: Vec<Setting>,
    pub args: ScenarioArgs,
}

/// Models × variants: one scenario per model (positional names; none: the model flags) and
/// per variant of `--vary`/`--variant`, each with `--set` applied first.
pub fn expand(
    base: &ScenarioArgs,
    set: &[String],
    models: &[String],
    vary: &[String],
    variant: &[String],
) -> Result<Vec<Named>> {
    let mut base = base.clone();
    for s in set {
        base.apply(&Setting::parse("--set", s)?, None)?;
    }
    let variants = variants(vary, variant)?;
    let models: Vec<Option<&String>> = if models.is_empty() { vec![None] } else { models.iter().map(Some).collect() };
    let mut out = Vec::new();
    for m in models {
        for v in &variants {
            let mut args = base.clone();
            if let Some(m) = m {
                args.set_model(m);
            }
            args.apply_all(v, None)?;
            out.push(Named { name: None, settings: v.clone(), args });
        }
    }
    Ok(out)
}

/// Evaluate every scenario; rows are named `<model> <key=value ...>` and made unique.
pub fn evaluate_all(scenarios: &[Named], gpus: &[GpuSpec]) -> Result<Vec<(String, Evaluated)>> {
    let mut out: Vec<(String, Evaluated)> = Vec::new();
    for s in scenarios {
        let label = s.name.clone().unwrap_or_else(|| {
            let mut parts = vec![s.args.model.model.clone().unwrap_or_default()];
            parts.extend(s.settings.iter().filter(|x| x.key != "model").map(|x| x.to_string()));
            parts.join(" ")
        });
        let ev = in_scenario(label.trim(), || s.args.evaluate(gpus))?;
        let mut name = match &s.name {
            Some(n) => n.clone(),
            None => {
                let mut parts = vec![ev.report.model.name.clone()];
                parts.extend(s.settings.iter().filter(|x| x.key != "model").map(|x| x.to_string()));
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
