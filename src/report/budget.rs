//! Memory budgets for CI: a TOML file of scenarios with their allowed per-GPU memory and the
//! GPUs they must fit (`memplan compare --budget`), and the change of every number against an
//! earlier `memplan compare --format json` result (`--baseline`, `--max-growth`).
//!
//! ```toml
//! [defaults]                 # settings for every scenario (keys as for --set)
//! precision = "mixed-bf16"
//!
//! [[scenario]]
//! name = "gpt2 fine-tune"    # unique: --baseline matches rows by name
//! model = "gpt2"             # a preset, or a .toml model file / .json HF config (relative to this file)
//! set = { batch = 8, seq = 1024 }
//! max_total = "20GiB"        # per-GPU total: live peak + CUDA context + workspace + fragmentation
//! max_peak_allocated = "18GiB"   # optional: live tensors only
//! must_fit = ["rtx-4090"]    # optional: GPU presets whose memory must hold the total
//! ```

use super::compare::{CompareReport, CompareRow, TERMS};
use super::printer::{markdown, table};
use crate::error::{Error, Result};
use crate::units::ByteUnits;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// A budget file as written.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetFile {
    /// Settings applied to every scenario before its own `set`.
    #[serde(default)]
    pub defaults: BTreeMap<Spanned<String>, Spanned<toml::Value>>,
    /// GPUs to show a fits column for (as `--gpu`).
    #[serde(default)]
    pub gpus: Vec<Spanned<String>>,
    #[serde(rename = "scenario")]
    pub scenarios: Vec<BudgetScenario>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetScenario {
    pub name: Spanned<String>,
    /// A model preset, or a model file (`.toml`) or Hugging Face config (`.json`). Optional when
    /// `set` names `params`, `model-file` or `hf-config`.
    #[serde(default)]
    pub model: Option<Spanned<String>>,
    #[serde(default)]
    pub set: BTreeMap<Spanned<String>, Spanned<toml::Value>>,
    #[serde(default)]
    pub max_total: Option<Spanned<String>>,
    #[serde(default)]
    pub max_peak_allocated: Option<Spanned<String>>,
    #[serde(default)]
    pub must_fit: Vec<Spanned<String>>,
}

/// A scenario with its settings as text and its limits in bytes, validated.
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    pub name: String,
    pub model: Option<String>,
    /// (key, value) in application order: defaults first, then the scenario's own.
    pub settings: Vec<(String, String)>,
    pub max_total: Option<u64>,
    pub max_peak_allocated: Option<u64>,
    pub must_fit: Vec<crate::hw::GpuSpec>,
}

#[derive(Clone, Debug)]
pub struct Budget {
    pub path: PathBuf,
    pub gpus: Vec<crate::hw::GpuSpec>,
    pub scenarios: Vec<Scenario>,
}

/// The 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

fn value_text(v: &toml::Value) -> Option<String> {
    match v {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Float(f) => Some(f.to_string()),
        toml::Value::Boolean(b) => Some(if *b { "on" } else { "off" }.to_string()),
        _ => None,
    }
}

impl Budget {
    /// Read and validate a budget file; every error names the file, the line and the field.
    pub fn load(path: &Path) -> Result<Budget> {
        let text = crate::model::presets::read(path)?;
        Budget::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Budget> {
        let raw: BudgetFile = crate::model::presets::parse_toml(path, text)?;
        let err = |span: std::ops::Range<usize>, field: String, message: String| Error::Parse {
            path: path.to_path_buf(),
            line: Some(line_of(text, span.start)),
            field: Some(field),
            message,
        };
        let settings = |table: &BTreeMap<Spanned<String>, Spanned<toml::Value>>,
                        prefix: &str|
         -> Result<Vec<(String, String)>> {
            table
                .iter()
                .map(|(k, v)| {
                    let field = format!("{prefix}.{}", k.get_ref());
                    let value = value_text(v.get_ref())
                        .ok_or_else(|| err(v.span(), field.clone(), "expected a string, number or boolean".into()))?;
                    // The key and the value are checked now, so the error points at this line.
                    let setting = crate::scenario::rows::Setting::new(k.get_ref(), &value).map_err(|e| {
                        let span = if matches!(e, Error::InvalidValue { ref what, .. } if what == "setting key") {
                            k.span()
                        } else {
                            v.span()
                        };
                        err(
                            span,
                            field.clone(),
                            format!("{e}{}", e.hint().map(|h| format!(" ({h})")).unwrap_or_default()),
                        )
                    })?;
                    Ok((setting.key, setting.value))
                })
                .collect()
        };
        let defaults = settings(&raw.defaults, "defaults")?;
        let gpu = |s: &Spanned<String>, field: &str| {
            crate::hw::GpuSpec::preset(s.get_ref()).map_err(|e| {
                err(
                    s.span(),
                    field.to_string(),
                    format!("{e}{}", e.hint().map(|h| format!(" ({h})")).unwrap_or_default()),
                )
            })
        };
        let gpus = raw.gpus.iter().map(|g| gpu(g, "gpus")).collect::<Result<Vec<_>>>()?;
        if raw.scenarios.is_empty() {
            return Err(Error::Parse {
                path: path.to_path_buf(),
                line: None,
                field: Some("scenario".into()),
                message: "no [[scenario]] tables".into(),
            });
        }
        let mut scenarios: Vec<Scenario> = Vec::new();
        for (i, s) in raw.scenarios.iter().enumerate() {
            let at = |f: &str| format!("scenario[{i}].{f}");
            let name = s.name.get_ref().trim().to_string();
            if name.is_empty() {
                return Err(err(s.name.span(), at("name"), "empty scenario name".into()));
            }
            if scenarios.iter().any(|o| o.name == name) {
                return Err(err(
                    s.name.span(),
                    at("name"),
                    format!(
                        "scenario name `{name}` is used twice (names must be unique: --baseline matches rows by name)"
                    ),
                ));
            }
            let size = |v: &Option<Spanned<String>>, f: &str| -> Result<Option<u64>> {
                v.as_ref()
                    .map(|v| {
                        crate::scenario::value::parse_size(f, v.get_ref())
                            .map_err(|e| err(v.span(), at(f), format!("{e}; expected a size such as 24GiB or 80GB")))
                    })
                    .transpose()
            };
            let max_total = size(&s.max_total, "max_total")?;
            let max_peak_allocated = size(&s.max_peak_allocated, "max_peak_allocated")?;
            let must_fit = s.must_fit.iter().map(|g| gpu(g, &at("must_fit"))).collect::<Result<Vec<_>>>()?;
            let mut own = defaults.clone();
            own.extend(settings(&s.set, &at("set"))?);
            let model = s.model.as_ref().map(|m| m.get_ref().clone());
            let has_source = model.is_some()
                || own.iter().any(|(k, _)| matches!(k.as_str(), "model" | "params" | "model-file" | "hf-config"));
            if !has_source {
                return Err(err(
                    s.name.span(),
                    at("model"),
                    format!("scenario `{name}` names no model: add model = \"gpt2\" (or set = {{ params = \"7b\" }})"),
                ));
            }
            if max_total.is_none() && max_peak_allocated.is_none() && must_fit.is_empty() {
                return Err(err(
                    s.name.span(),
                    at("max_total"),
                    format!("scenario `{name}` has no limit: add max_total, max_peak_allocated or must_fit"),
                ));
            }
            scenarios.push(Scenario { name, model, settings: own, max_total, max_peak_allocated, must_fit });
        }
        Ok(Budget { path: path.to_path_buf(), gpus, scenarios })
    }

    /// Check every limit of every scenario against its row (rows matched by name).
    pub fn check(&self, rows: &[CompareRow]) -> BudgetResult {
        let mut checks = Vec::new();
        for s in &self.scenarios {
            let Some(row) = rows.iter().find(|r| r.name == s.name) else { continue };
            let mut push = |limit: String, gpu: Option<String>, allowed: u64, actual: u64| {
                checks.push(Check::new(&s.name, limit, gpu, allowed, actual));
            };
            if let Some(max) = s.max_total {
                push("max_total".into(), None, max, row.total_bytes);
            }
            if let Some(max) = s.max_peak_allocated {
                push("max_peak_allocated".into(), None, max, row.peak_allocated_bytes);
            }
            for g in &s.must_fit {
                push("must_fit".into(), Some(g.name.clone()), g.memory_bytes, row.total_bytes);
            }
        }
        let passed = checks.iter().all(|c| c.passed);
        BudgetResult { file: self.path.display().to_string(), scenarios: self.scenarios.len(), checks, passed }
    }
}

/// One limit of one scenario.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Check {
    pub scenario: String,
    /// `max_total`, `max_peak_allocated` or `must_fit`.
    pub limit: String,
    /// The GPU of a `must_fit` check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<String>,
    pub allowed_bytes: u64,
    pub actual_bytes: u64,
    /// Bytes over the limit (0 when within).
    pub over_bytes: u64,
    /// Over the limit, percent of the limit (0 when within).
    pub over_percent: f64,
    pub passed: bool,
}

impl Check {
    fn new(scenario: &str, limit: String, gpu: Option<String>, allowed: u64, actual: u64) -> Check {
        let over = actual.saturating_sub(allowed);
        Check {
            scenario: scenario.to_string(),
            limit,
            gpu,
            allowed_bytes: allowed,
            actual_bytes: actual,
            over_bytes: over,
            over_percent: if allowed == 0 { 0.0 } else { over as f64 * 100.0 / allowed as f64 },
            passed: actual <= allowed,
        }
    }

    fn what(&self) -> String {
        match (&self.gpu, self.limit.as_str()) {
            (Some(g), _) => format!("must fit {g}"),
            (None, "max_total") => "max_total".into(),
            (None, l) => l.to_string(),
        }
    }

    fn measured(&self) -> &'static str {
        if self.limit == "max_peak_allocated" {
            "peak allocated"
        } else {
            "total"
        }
    }

    /// `gpt2: total 25.31 GiB > max_total 24.00 GiB: over by 1.31 GiB (+5.5%)`
    pub fn sentence(&self, u: ByteUnits) -> String {
        let limit = match &self.gpu {
            Some(g) => format!("{g}'s {}", u.format(self.allowed_bytes)),
            None => format!("{} {}", self.limit, u.format(self.allowed_bytes)),
        };
        format!(
            "{}: {} {} > {limit}: over by {} (+{:.1}%)",
            self.scenario,
            self.measured(),
            u.format(self.actual_bytes),
            u.format(self.over_bytes),
            self.over_percent
        )
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BudgetResult {
    pub file: String,
    pub scenarios: usize,
    pub checks: Vec<Check>,
    pub passed: bool,
}

impl BudgetResult {
    fn rows(&self, u: ByteUnits) -> Vec<Vec<String>> {
        self.checks
            .iter()
            .map(|c| {
                let margin = if c.passed {
                    format!("{} left", u.format(c.allowed_bytes - c.actual_bytes))
                } else {
                    format!("over by {} (+{:.1}%)", u.format(c.over_bytes), c.over_percent)
                };
                vec![
                    c.scenario.clone(),
                    c.what(),
                    u.format(c.allowed_bytes),
                    format!("{} {}", c.measured(), u.format(c.actual_bytes)),
                    margin,
                    if c.passed { "ok".into() } else { "OVER".into() },
                ]
            })
            .collect()
    }

    fn failures(&self) -> Vec<&Check> {
        self.checks.iter().filter(|c| !c.passed).collect()
    }

    fn summary(&self) -> String {
        let failed = self.failures();
        if failed.is_empty() {
            format!("budget {}: all {} limits of {} scenarios hold", self.file, self.checks.len(), self.scenarios)
        } else {
            let scenarios: std::collections::BTreeSet<&str> = failed.iter().map(|c| c.scenario.as_str()).collect();
            format!(
                "budget {}: {} of {} limits broken in {} of {} scenarios",
                self.file,
                failed.len(),
                self.checks.len(),
                scenarios.len(),
                self.scenarios
            )
        }
    }

    pub fn to_text(&self, u: ByteUnits) -> String {
        let mut t = table(vec!["scenario", "limit", "allowed", "actual", "margin", ""]);
        for r in self.rows(u) {
            t.add_row(r);
        }
        let mut s = format!("{}\n{t}\n", self.summary());
        for c in self.failures() {
            s.push_str(&format!("  OVER {}\n", c.sentence(u)));
        }
        s
    }

    pub fn to_markdown(&self, u: ByteUnits) -> String {
        let mut s = format!(
            "#### {} Budget\n\n{}\n\n",
            if self.passed { "✅" } else { "❌" },
            self.summary().replace(&self.file, &format!("`{}`", self.file))
        );
        for c in self.failures() {
            s.push_str(&format!("- **over**: {}\n", c.sentence(u)));
        }
        if !self.passed {
            s.push('\n');
        }
        s.push_str(&markdown(&["scenario", "limit", "allowed", "actual", "margin", ""], &self.rows(u)));
        s
    }
}

// ---------------------------------------------------------------------------------------------
// baseline

/// The change of one number against the baseline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub scenario: String,
    /// A `per_gpu`-style field, e.g. `total_bytes`.
    pub term: String,
    pub baseline_bytes: u64,
    pub bytes: u64,
    pub delta_bytes: i128,
    /// Relative change in percent; `None` when the baseline was 0.
    pub change_percent: Option<f64>,
    /// Grew by more than `--max-growth` (a term that was 0 and is not counts as growing without bound).
    pub over_max_growth: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BaselineDiff {
    pub file: String,
    pub max_growth_percent: Option<f64>,
    /// Every term of every scenario present in both results (terms that are 0 in both are left out).
    pub changes: Vec<Change>,
    /// Scenarios that are new since the baseline, and scenarios the baseline had that are gone.
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub passed: bool,
}

/// `5%`, `5`, `2.5 %` → percent.
pub fn parse_growth(text: &str) -> Result<f64> {
    let t = text.trim().trim_end_matches('%').trim();
    match t.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(Error::invalid("--max-growth", text, "a percentage such as 5% or 0.5%")),
    }
}

/// Read an earlier `memplan compare --format json` result.
pub fn load_baseline(path: &Path) -> Result<CompareReport> {
    let text = crate::model::presets::read(path)?;
    let report: CompareReport = serde_json::from_str(&text).map_err(|e| Error::Parse {
        path: path.to_path_buf(),
        line: Some(e.line()),
        field: None,
        message: format!("not a `memplan compare --format json` result: {e}"),
    })?;
    if report.schema_version != super::compare::SCHEMA_VERSION {
        return Err(Error::Parse {
            path: path.to_path_buf(),
            line: None,
            field: Some("schema_version".into()),
            message: format!(
                "schema version {} is not supported (expected {})",
                report.schema_version,
                super::compare::SCHEMA_VERSION
            ),
        });
    }
    Ok(report)
}

impl BaselineDiff {
    pub fn new(file: &str, baseline: &CompareReport, rows: &[CompareRow], max_growth: Option<f64>) -> BaselineDiff {
        let mut changes = Vec::new();
        let mut added = Vec::new();
        for r in rows {
            let Some(old) = baseline.rows.iter().find(|o| o.name == r.name) else {
                added.push(r.name.clone());
                continue;
            };
            for (field, _) in TERMS {
                let (a, b) = (old.term(field), r.term(field));
                if a == 0 && b == 0 {
                    continue;
                }
                let delta = b as i128 - a as i128;
                let pct = (a > 0).then(|| delta as f64 * 100.0 / a as f64);
                let over = match max_growth {
                    Some(max) => delta > 0 && (a == 0 || delta as f64 * 100.0 > max * a as f64),
                    None => false,
                };
                changes.push(Change {
                    scenario: r.name.clone(),
                    term: field.to_string(),
                    baseline_bytes: a,
                    bytes: b,
                    delta_bytes: delta,
                    change_percent: pct,
                    over_max_growth: over,
                });
            }
        }
        let removed =
            baseline.rows.iter().filter(|o| !rows.iter().any(|r| r.name == o.name)).map(|o| o.name.clone()).collect();
        let passed = !changes.iter().any(|c| c.over_max_growth);
        BaselineDiff { file: file.to_string(), max_growth_percent: max_growth, changes, added, removed, passed }
    }

    fn term_name(field: &str) -> &'static str {
        TERMS.iter().find(|(f, _)| *f == field).map_or("?", |(_, n)| n)
    }

    fn signed(u: ByteUnits, delta: i128) -> String {
        match delta {
            0 => "0".into(),
            d if d > 0 => format!("+{}", u.format(d as u64)),
            d => format!("-{}", u.format((-d) as u64)),
        }
    }

    fn pct(c: &Change) -> String {
        match c.change_percent {
            Some(p) if c.delta_bytes == 0 => format!("{p:.1}%"),
            Some(p) => format!("{p:+.1}%"),
            None => "new".into(),
        }
    }

    fn rows(&self, u: ByteUnits) -> Vec<Vec<String>> {
        self.changes
            .iter()
            .map(|c| {
                vec![
                    c.scenario.clone(),
                    Self::term_name(&c.term).to_string(),
                    u.format(c.baseline_bytes),
                    u.format(c.bytes),
                    Self::signed(u, c.delta_bytes),
                    Self::pct(c),
                    if c.over_max_growth { "OVER".into() } else { String::new() },
                ]
            })
            .collect()
    }

    fn summary(&self) -> String {
        let over: Vec<&Change> = self.changes.iter().filter(|c| c.over_max_growth).collect();
        let mut s = format!("against baseline {}", self.file);
        if let Some(m) = self.max_growth_percent {
            s.push_str(&format!(" (max growth {m}%)"));
        }
        s.push_str(&match (over.len(), self.max_growth_percent) {
            (_, None) => format!(": {} numbers compared", self.changes.len()),
            (0, Some(_)) => format!(": {} numbers compared, none grew over the limit", self.changes.len()),
            (n, Some(_)) => format!(": {n} of {} numbers grew over the limit", self.changes.len()),
        });
        s
    }

    fn notes(&self) -> Vec<String> {
        let mut n = Vec::new();
        if !self.added.is_empty() {
            n.push(format!("new since the baseline: {}", self.added.join(", ")));
        }
        if !self.removed.is_empty() {
            n.push(format!("in the baseline only: {}", self.removed.join(", ")));
        }
        n
    }

    pub fn to_table(&self, u: ByteUnits) -> String {
        let mut t = table(vec!["scenario", "term", "baseline", "now", "change", "%", ""]);
        for r in self.rows(u) {
            t.add_row(r);
        }
        let mut s = format!("{}\n{t}\n", self.summary());
        for n in self.notes() {
            s.push_str(&format!("  {n}\n"));
        }
        for c in self.changes.iter().filter(|c| c.over_max_growth) {
            s.push_str(&format!(
                "  OVER {}: {} grew {} → {} ({}, {})\n",
                c.scenario,
                Self::term_name(&c.term),
                u.format(c.baseline_bytes),
                u.format(c.bytes),
                Self::signed(u, c.delta_bytes),
                Self::pct(c)
            ));
        }
        s
    }

    pub fn to_markdown(&self, u: ByteUnits) -> String {
        let icon = if self.max_growth_percent.is_none() {
            ""
        } else if self.passed {
            "✅ "
        } else {
            "❌ "
        };
        let mut s = format!("#### {icon}Change against the baseline\n\n{}\n\n", self.summary());
        for n in self.notes() {
            s.push_str(&format!("- {n}\n"));
        }
        // Collapse the full list: a PR comment shows the headline first.
        s.push_str("<details><summary>every number</summary>\n\n");
        s.push_str(&markdown(&["scenario", "term", "baseline", "now", "change", "%", ""], &self.rows(u)));
        s.push_str("\n</details>\n");
        s
    }
}
