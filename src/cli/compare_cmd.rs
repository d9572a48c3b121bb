//! `memplan compare`: several models or settings side by side, budgets and baselines for CI.

use super::args::{Format, ModelArgs, PlanArgs, SetupArgs, UnitsArg};
use super::estimate::write_out;
use super::scenario::{evaluate_all, expand, gpus_from, Named, ScenarioArgs, Setting};
use crate::error::{Error, Result};
use crate::hw::GpuSpec;
use crate::report::budget::{load_baseline, parse_growth, BaselineDiff, Budget};
use crate::report::compare::{CompareReport, CompareRow};
use clap::Args;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

pub const SETTINGS_HELP: &str =
    "Settings (--set, --vary, --variant, budget files) use the long flags' names without dashes: \
model, params, model-file, hf-config, layers, hidden, heads, kv-heads, ffn, vocab, phase, precision, optimizer, \
optimizer-impl, batch, seq, tgt-seq, recompute, attention, dropout (on/off/model), kv-cache (on/off), runtime, \
capacity-factor, finetune, lora-rank, lora-alpha, lora-targets, lora-dropout, double-quant (on/off), \
paged-optimizer (on/off), weights (none/int8/int4/nf4/fp8), group-size, scale-dtype, kv-dtype, max-batch, context, \
block-size, cuda-context, fragmentation, dp, tp, sp (on/off), pp, schedule, vpp, microbatches, global-batch, \
cp, ep, zero, fsdp (none/full/grad-op/hybrid), distributed-optimizer (on/off), offload, gpus, gpus-per-node.";

#[derive(Args, Debug, Clone)]
#[command(after_long_help = SETTINGS_HELP)]
pub struct CompareArgs {
    /// Models to compare: presets, `.toml` model files or `.json` Hugging Face configs.
    /// None: the model flags (--model, --params, ...).
    #[arg(value_name = "MODEL")]
    pub models: Vec<String>,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub setup: SetupArgs,
    #[command(flatten)]
    pub plan: PlanArgs,
    #[command(flatten)]
    pub rows: RowArgs,
    /// GPU presets to check, one fits column each (repeat or separate with commas). Default:
    /// every preset is checked and the table names the smallest that fits.
    #[arg(long, value_name = "GPU", value_delimiter = ',')]
    pub gpu: Vec<String>,
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Display units: gib (2^30, default) or gb (10^9). JSON and CSV are in bytes.
    #[arg(long, value_enum, default_value = "gib")]
    pub units: UnitsArg,
    /// A TOML file of scenarios and their memory limits (see examples/budget.toml); exit 1 when
    /// a limit is broken.
    #[arg(long, value_name = "FILE")]
    pub budget: Option<PathBuf>,
    /// An earlier `memplan compare --format json` result: show the change of every number.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    /// With --baseline: exit 1 when any number grew by more than this (e.g. 5%).
    #[arg(long, value_name = "PERCENT", requires = "baseline")]
    pub max_growth: Option<String>,
}

/// Rows of a comparison: settings on top of the flags, and the variants.
#[derive(Args, Debug, Clone, Default)]
pub struct RowArgs {
    /// A setting for every row, KEY=VALUE (repeatable), e.g. --set recompute=full.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// One row per value, KEY=V1,V2,... (repeatable: the rows are the product), e.g.
    /// --vary batch=1,2,4,8.
    #[arg(long, value_name = "KEY=V1,V2")]
    pub vary: Vec<String>,
    /// One row with these settings, KEY=VALUE,KEY=VALUE (repeatable), e.g. --variant tp=8,zero=1.
    #[arg(long, value_name = "KEY=VALUE,...")]
    pub variant: Vec<String>,
}

/// Assumptions shared by every row: the setup fields that do not vary, in words.
pub fn shared_assumptions(rows: &[CompareRow]) -> Vec<String> {
    let Some(first) = rows.first() else { return Vec::new() };
    let same = |f: &dyn Fn(&CompareRow) -> String| rows.iter().all(|r| f(r) == f(first)).then(|| f(first));
    let mut parts = Vec::new();
    type Field<'a> = (&'a str, &'a dyn Fn(&CompareRow) -> String);
    let fields: [Field; 7] = [
        ("phase", &|r| r.phase.clone()),
        ("precision", &|r| format!("precision {}", r.precision)),
        ("micro-batch", &|r| format!("micro-batch {}", r.micro_batch)),
        ("seq", &|r| format!("seq {}", r.seq)),
        ("recompute", &|r| format!("recompute {}", r.recompute)),
        ("attention", &|r| format!("{} attention", r.attention)),
        ("plan", &|r| if r.plan == "dp 1" { "one GPU, no parallelism".into() } else { r.plan.clone() }),
    ];
    let mut varying = Vec::new();
    for (name, f) in fields {
        match same(f) {
            Some(v) => parts.push(v),
            None => varying.push(name),
        }
    }
    let mut out = vec![format!("same for every row: {}", parts.join(" · "))];
    if !varying.is_empty() {
        out.push(format!("differs between rows: {}", varying.join(", ")));
    }
    out.push("bytes are exact; shown in GiB = 2^30 unless --units gb".into());
    out
}

/// The scenarios of a run: from the budget file, or models × variants.
fn scenarios(args: &CompareArgs, budget: Option<&Budget>) -> Result<Vec<Named>> {
    let base = ScenarioArgs::new(&args.model, &args.setup, &args.plan);
    let Some(budget) = budget else {
        return expand(&base, &args.rows.set, &args.models, &args.rows.vary, &args.rows.variant);
    };
    if !args.models.is_empty() || !args.rows.vary.is_empty() || !args.rows.variant.is_empty() {
        return Err(Error::conflict(
            "--budget takes its scenarios from the file",
            "drop the model names, --vary and --variant, or put them in the budget file",
        ));
    }
    let dir = budget.path.parent().map(std::path::Path::to_path_buf);
    let mut base = base;
    for s in &args.rows.set {
        base.apply(&Setting::parse("--set", s)?, None)?;
    }
    budget
        .scenarios
        .iter()
        .map(|s| {
            let mut a = base.clone();
            if let Some(m) = &s.model {
                a.apply(&Setting::new("model", m)?, dir.as_deref())?;
            }
            let settings: Vec<Setting> = s.settings.iter().map(|(k, v)| Setting::new(k, v)).collect::<Result<_>>()?;
            a.apply_all(&settings, dir.as_deref())?;
            Ok(Named { name: Some(s.name.clone()), settings, args: a })
        })
        .collect()
}

/// Build the comparison (rows, budget, baseline) without printing it.
pub fn build(args: &CompareArgs) -> Result<CompareReport> {
    let budget = args.budget.as_deref().map(Budget::load).transpose()?;
    let mut columns = gpus_from(&args.gpu)?;
    if columns.is_empty() {
        if let Some(b) = &budget {
            columns = b.gpus.clone();
        }
    }
    let checked = if columns.is_empty() { GpuSpec::all()? } else { columns.clone() };
    let scenarios = scenarios(args, budget.as_ref())?;
    let rows: Vec<CompareRow> = evaluate_all(&scenarios, &checked)?
        .into_iter()
        .zip(&scenarios)
        .map(|((name, ev), s)| {
            let settings: BTreeMap<String, String> =
                s.settings.iter().map(|x| (x.key.clone(), x.value.clone())).collect();
            CompareRow::new(name, settings, &ev.report)
        })
        .collect();
    let mut report = CompareReport::new(&columns, rows.clone(), shared_assumptions(&rows));
    if let Some(b) = &budget {
        report.budget = Some(b.check(&rows));
    }
    if let Some(path) = &args.baseline {
        let max = args.max_growth.as_deref().map(parse_growth).transpose()?;
        let old = load_baseline(path)?;
        report.baseline = Some(BaselineDiff::new(&path.display().to_string(), &old, &rows, max));
    }
    Ok(report)
}

pub fn run(args: &CompareArgs, out: &mut dyn Write) -> Result<i32> {
    let report = build(args)?;
    let units = args.units.into();
    let text = match args.format {
        Format::Table => report.to_table(units),
        Format::Json => report.to_json() + "\n",
        Format::Csv => report.to_csv(),
        Format::Markdown => report.to_markdown(units),
    };
    write_out(out, &text)?;
    let failed =
        report.budget.as_ref().is_some_and(|b| !b.passed) || report.baseline.as_ref().is_some_and(|d| !d.passed);
    Ok(if failed { 1 } else { 0 })
}
