//! `memplan compare`: several models or settings side by side, budgets and baselines for CI.

use super::args::{Format, UnitsArg};
use super::estimate::write_out;
use super::flags::ScenarioFlags;
use crate::api::CompareRequest;
use crate::error::Result;
use crate::report::budget::{load_baseline, parse_growth, Budget};
use crate::report::compare::CompareReport;
use clap::Args;
use std::io::Write;
use std::path::PathBuf;

/// The keys `--set`, `--vary`, `--variant` and budget files take: every setting's key.
pub fn settings_help() -> String {
    let keys: Vec<String> = crate::scenario::settings()
        .iter()
        .map(|d| if d.choices.is_empty() { d.key.to_string() } else { format!("{} ({})", d.key, d.choices.join("/")) })
        .collect();
    format!(
        "Settings (--set, --vary, --variant, budget files) use the long flags' names without dashes; \
         the value `default` restores a setting's default: {}.",
        keys.join(", ")
    )
}

#[derive(Args, Debug, Clone)]
#[command(after_long_help = settings_help())]
pub struct CompareArgs {
    /// Models to compare: presets, `.toml` model files or `.json` Hugging Face configs.
    /// None: the model flags (--model, --params, ...).
    #[arg(value_name = "MODEL")]
    pub models: Vec<String>,
    #[command(flatten)]
    pub flags: ScenarioFlags,
    #[command(flatten)]
    pub rows: RowArgs,
    #[arg(long, value_enum, default_value = "table", help_heading = "Output")]
    pub format: Format,
    /// Display units: gib (2^30, default) or gb (10^9). JSON and CSV are in bytes.
    #[arg(long, value_enum, default_value = "gib", help_heading = "Output")]
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

/// The comparison request of a command line: the GPU columns are the `--gpu` setting.
pub fn request(flags: &ScenarioFlags, models: &[String], rows: &RowArgs) -> Result<CompareRequest> {
    let mut base = flags.scenario()?;
    let gpus = base.gpu.take().map(|n| n.0).unwrap_or_default();
    Ok(CompareRequest {
        base,
        set: rows.set.clone(),
        models: models.to_vec(),
        vary: rows.vary.clone(),
        variant: rows.variant.clone(),
        gpus,
        budget: None,
        baseline: None,
    })
}

/// Build the comparison (rows, budget, baseline) without printing it.
pub fn build(args: &CompareArgs) -> Result<CompareReport> {
    let mut req = request(&args.flags, &args.models, &args.rows)?;
    req.budget = args.budget.as_deref().map(Budget::load).transpose()?;
    if let Some(path) = &args.baseline {
        let max = args.max_growth.as_deref().map(parse_growth).transpose()?;
        req.baseline = Some((path.display().to_string(), load_baseline(path)?, max));
    }
    crate::api::compare(&req)
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
