//! `memplan compare`: one row per scenario (a model, or a model with `key=value` settings), a
//! column per memory term, and whether each GPU fits. Renders as a table, JSON (the contract
//! that `--baseline` reads back), CSV and Markdown (for a pull-request comment).
//!
//! The terms are the `per_gpu` fields of `memplan estimate --format json` for the worst rank;
//! `total` is the reserved total (live peak + CUDA context + workspace + fragmentation margin).

use super::budget::{BaselineDiff, BudgetResult};
use super::estimate::EstimateReport;
use super::printer::{csv_field, markdown, table};
use crate::hw::GpuSpec;
use crate::units::{format_count, ByteUnits};
use comfy_table::{Cell, CellAlignment};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Version of the JSON layout; `--baseline` refuses other versions.
pub const SCHEMA_VERSION: u32 = 1;

/// The memory terms of a row, in display order: (JSON field, table header).
pub const TERMS: &[(&str, &str)] = &[
    ("weights_bytes", "weights"),
    ("gradients_bytes", "gradients"),
    ("optimizer_states_bytes", "optimizer"),
    ("activations_bytes", "activations"),
    ("other_activations_bytes", "other act."),
    ("kv_cache_bytes", "KV cache"),
    ("peak_allocated_bytes", "peak allocated"),
    ("runtime_overhead_bytes", "overheads"),
    ("total_bytes", "total"),
];

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GpuCapacity {
    pub gpu: String,
    pub memory_bytes: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RowFit {
    pub gpu: String,
    pub fits: bool,
    /// Memory left on the GPU (negative: missing), bytes.
    pub headroom_bytes: i128,
}

/// One scenario's per-GPU memory (the worst rank).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CompareRow {
    /// Unique row name: the model, then its settings (`gpt2 batch=4`), or the budget scenario's name.
    pub name: String,
    pub model: String,
    pub parameters: u64,
    /// The settings applied on top of the command-line flags.
    pub settings: BTreeMap<String, String>,
    pub phase: String,
    pub precision: String,
    pub micro_batch: u64,
    pub seq: u64,
    pub recompute: String,
    pub attention: String,
    /// The parallel plan (`dp 1` for one GPU).
    pub plan: String,
    pub weights_bytes: u64,
    pub gradients_bytes: u64,
    pub optimizer_states_bytes: u64,
    pub activations_bytes: u64,
    pub other_activations_bytes: u64,
    pub kv_cache_bytes: u64,
    pub peak_allocated_bytes: u64,
    pub runtime_overhead_bytes: u64,
    pub total_bytes: u64,
    /// Where the step peaks (`optimizer-step`, `loss-backward`, ...).
    pub peak_point: String,
    pub fits: Vec<RowFit>,
}

impl CompareRow {
    pub fn new(name: String, settings: BTreeMap<String, String>, r: &EstimateReport) -> Self {
        let p = &r.per_gpu;
        let lower = |s: String| s.to_lowercase();
        CompareRow {
            name,
            model: r.model.name.clone(),
            parameters: r.model.parameters,
            settings,
            phase: lower(format!("{:?}", r.setup.phase)),
            precision: r.setup.precision.name().to_string(),
            micro_batch: r.setup.micro_batch,
            seq: r.setup.seq,
            recompute: lower(format!("{:?}", r.setup.recompute)),
            attention: lower(format!("{:?}", r.setup.attention)),
            plan: r.plan.describe(),
            weights_bytes: p.weights_bytes,
            gradients_bytes: p.gradients_bytes,
            optimizer_states_bytes: p.optimizer_states_bytes,
            activations_bytes: p.activations_bytes,
            other_activations_bytes: p.other_activations_bytes,
            kv_cache_bytes: p.kv_cache_bytes,
            peak_allocated_bytes: p.peak_allocated_bytes,
            runtime_overhead_bytes: p.runtime_overhead_bytes,
            total_bytes: p.total_bytes,
            peak_point: r.peak.point.clone(),
            fits: r
                .fits
                .iter()
                .map(|f| RowFit { gpu: f.gpu.clone(), fits: f.fits, headroom_bytes: f.headroom_bytes })
                .collect(),
        }
    }

    /// A term's bytes by its JSON field name (see [`TERMS`]).
    pub fn term(&self, field: &str) -> u64 {
        match field {
            "weights_bytes" => self.weights_bytes,
            "gradients_bytes" => self.gradients_bytes,
            "optimizer_states_bytes" => self.optimizer_states_bytes,
            "activations_bytes" => self.activations_bytes,
            "other_activations_bytes" => self.other_activations_bytes,
            "kv_cache_bytes" => self.kv_cache_bytes,
            "peak_allocated_bytes" => self.peak_allocated_bytes,
            "runtime_overhead_bytes" => self.runtime_overhead_bytes,
            "total_bytes" => self.total_bytes,
            _ => 0,
        }
    }
}

/// A setup field of a row, as text.
type RowText = fn(&CompareRow) -> String;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CompareReport {
    pub schema_version: u32,
    /// The GPUs given with `--gpu` (one fits column each); empty: every preset is checked and
    /// the table shows the smallest that fits.
    pub gpus: Vec<GpuCapacity>,
    pub rows: Vec<CompareRow>,
    /// Settings shared by every row, in words.
    pub assumptions: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<BudgetResult>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<BaselineDiff>,
}

impl CompareReport {
    pub fn new(gpus: &[GpuSpec], rows: Vec<CompareRow>, assumptions: Vec<String>) -> Self {
        CompareReport {
            schema_version: SCHEMA_VERSION,
            gpus: gpus.iter().map(|g| GpuCapacity { gpu: g.name.clone(), memory_bytes: g.memory_bytes }).collect(),
            rows,
            assumptions,
            budget: None,
            baseline: None,
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("compare report serialises")
    }

    /// Terms shown in the table and Markdown: those that are not zero in every row.
    fn shown_terms(&self) -> Vec<(&'static str, &'static str)> {
        TERMS
            .iter()
            .copied()
            .filter(|(f, _)| {
                matches!(*f, "peak_allocated_bytes" | "total_bytes") || self.rows.iter().any(|r| r.term(f) > 0)
            })
            .collect()
    }

    /// Shown setting columns: every setting key used by some row.
    fn setting_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = Vec::new();
        for r in &self.rows {
            for k in r.settings.keys() {
                if !keys.contains(k) {
                    keys.push(k.clone());
                }
            }
        }
        keys
    }

    /// Setup fields that differ between rows and are not already in the row names (settings):
    /// shown as columns so every row is explained.
    fn setup_columns(&self) -> Vec<(&'static str, RowText)> {
        let fields: [(&'static str, &[&str], RowText); 7] = [
            ("phase", &["phase"], |r| r.phase.clone()),
            ("precision", &["precision"], |r| r.precision.clone()),
            ("micro-batch", &["batch"], |r| r.micro_batch.to_string()),
            ("seq", &["seq"], |r| r.seq.to_string()),
            ("recompute", &["recompute"], |r| r.recompute.clone()),
            ("attention", &["attention"], |r| r.attention.clone()),
            ("plan", crate::scenario::settings::plan_keys(), |r| r.plan.clone()),
        ];
        let Some(first) = self.rows.first() else { return Vec::new() };
        fields
            .into_iter()
            .filter(|(_, keys, f)| {
                let varies = self.rows.iter().any(|r| f(r) != f(first));
                // Already in every row's name (`gpt2 batch=4`)?
                let named = self.rows.iter().all(|r| {
                    keys.iter().any(|k| r.settings.get(*k).is_some_and(|v| r.name.contains(&format!("{k}={v}"))))
                });
                varies && !named
            })
            .map(|(name, _, f)| (name, f))
            .collect()
    }

    fn fit_cells(&self, row: &CompareRow, u: ByteUnits) -> Vec<String> {
        if self.gpus.is_empty() {
            // Smallest preset that fits (ties: name order).
            let best = row
                .fits
                .iter()
                .filter(|f| f.fits)
                .min_by_key(|f| (f.headroom_bytes, f.gpu.clone()))
                .map(|f| format!("{} ({})", f.gpu, u.format((f.headroom_bytes + row.total_bytes as i128) as u64)))
                .unwrap_or_else(|| "none".into());
            return vec![best];
        }
        self.gpus
            .iter()
            .map(|g| match row.fits.iter().find(|f| f.gpu == g.gpu) {
                Some(f) if f.fits => format!("yes ({} free)", u.format(f.headroom_bytes as u64)),
                Some(f) => format!("no (short {})", u.format((-f.headroom_bytes) as u64)),
                None => "-".into(),
            })
            .collect()
    }

    fn header(&self, u: ByteUnits) -> Vec<String> {
        let mut h = vec!["scenario".to_string(), "params".to_string()];
        h.extend(self.setup_columns().iter().map(|(name, _)| name.to_string()));
        h.extend(self.shown_terms().iter().map(|(_, name)| name.to_string()));
        if self.gpus.is_empty() {
            h.push("smallest GPU that fits".into());
        } else {
            h.extend(
                self.gpus.iter().map(|g| format!("{} ({})", g.gpu, u.format(g.memory_bytes).replace(".00 ", " "))),
            );
        }
        h
    }

    fn cells(&self, row: &CompareRow, u: ByteUnits) -> Vec<String> {
        let mut c = vec![row.name.clone(), format_count(row.parameters)];
        c.extend(self.setup_columns().iter().map(|(_, f)| f(row)));
        c.extend(self.shown_terms().iter().map(|(f, _)| u.format(row.term(f))));
        c.extend(self.fit_cells(row, u));
        c
    }

    pub fn to_table(&self, u: ByteUnits) -> String {
        let mut s = String::new();
        for a in &self.assumptions {
            s.push_str(&format!("{a}\n"));
        }
        s.push_str(&format!("per GPU (worst rank), {}; total = peak allocated + runtime overheads\n", u.label()));
        let header = self.header(u);
        let mut t = table(header.iter().map(String::as_str).collect());
        let first_term = 2 + self.setup_columns().len();
        let terms = first_term..first_term + self.shown_terms().len();
        for r in &self.rows {
            let cells = self.cells(r, u);
            t.add_row(cells.into_iter().enumerate().map(|(i, c)| {
                let cell = Cell::new(c);
                if i == 1 || terms.contains(&i) {
                    cell.set_alignment(CellAlignment::Right)
                } else {
                    cell
                }
            }));
        }
        s.push_str(&t.to_string());
        s.push('\n');
        if let Some(b) = &self.budget {
            s.push_str(&b.to_text(u));
        }
        if let Some(d) = &self.baseline {
            s.push_str(&d.to_table(u));
        }
        s
    }

    pub fn to_markdown(&self, u: ByteUnits) -> String {
        let mut s = String::from("### memplan compare\n\n");
        for a in &self.assumptions {
            s.push_str(&format!("- {a}\n"));
        }
        s.push_str(&format!("- per GPU (worst rank), {}; total = peak allocated + runtime overheads\n\n", u.label()));
        let header = self.header(u);
        let rows: Vec<Vec<String>> = self.rows.iter().map(|r| self.cells(r, u)).collect();
        s.push_str(&markdown(&header.iter().map(String::as_str).collect::<Vec<_>>(), &rows));
        if let Some(b) = &self.budget {
            s.push('\n');
            s.push_str(&b.to_markdown(u));
        }
        if let Some(d) = &self.baseline {
            s.push('\n');
            s.push_str(&d.to_markdown(u));
        }
        s
    }

    /// One line per row, every term in bytes, one `fits_<gpu>` column per GPU (all presets when
    /// no `--gpu` was given).
    pub fn to_csv(&self) -> String {
        let keys = self.setting_keys();
        let gpus: Vec<String> = match self.rows.first() {
            Some(r) => r.fits.iter().map(|f| f.gpu.clone()).collect(),
            None => Vec::new(),
        };
        let mut header: Vec<String> = vec!["name".into(), "model".into(), "parameters".into()];
        header.extend(keys.iter().cloned());
        header.extend(
            ["phase", "precision", "micro_batch", "seq", "recompute", "attention", "plan"]
                .iter()
                .map(|s| s.to_string()),
        );
        header.extend(TERMS.iter().map(|(f, _)| f.to_string()));
        header.push("peak_point".into());
        header.extend(gpus.iter().map(|g| format!("fits_{g}")));
        let mut s = header.iter().map(|h| csv_field(h)).collect::<Vec<_>>().join(",");
        s.push('\n');
        for r in &self.rows {
            let mut v: Vec<String> = vec![r.name.clone(), r.model.clone(), r.parameters.to_string()];
            v.extend(keys.iter().map(|k| r.settings.get(k).cloned().unwrap_or_default()));
            v.extend([
                r.phase.clone(),
                r.precision.clone(),
                r.micro_batch.to_string(),
                r.seq.to_string(),
                r.recompute.clone(),
                r.attention.clone(),
                r.plan.clone(),
            ]);
            v.extend(TERMS.iter().map(|(f, _)| r.term(f).to_string()));
            v.push(r.peak_point.clone());
            v.extend(gpus.iter().map(|g| {
                r.fits.iter().find(|f| &f.gpu == g).map_or("", |f| if f.fits { "yes" } else { "no" }).to_string()
            }));
            s.push_str(&v.iter().map(|x| csv_field(x)).collect::<Vec<_>>().join(","));
            s.push('\n');
        }
        s
    }
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
