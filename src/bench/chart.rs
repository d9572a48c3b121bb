//! The `memplan chart bench` data: measured against estimated bytes and throughput from
//! `memplan bench -o` and `memplan validate --format json` files.

use crate::error::{Error, Result};
use crate::hw::GpuSpec;
use crate::report::chart::{Bars, Body, Chart, Series};
use std::path::{Path, PathBuf};

// ---------------------------------------------------------------------------------------------
// bench

/// One compared item: bytes or throughput, estimated and measured.
#[derive(Clone, Debug, PartialEq)]
pub struct BenchItem {
    pub label: String,
    pub bytes: Option<Pair>,
    pub tflops: Option<Pair>,
}

/// Items of a `memplan bench -o` file (kernels: harness-planned vs allocator bytes; preset
/// peak × default efficiency vs measured TFLOP/s) or a `memplan validate --format json` file
/// (analytic estimate vs measured bytes; throughput from the layer's FLOPs over each time).
/// (estimate, measured).
pub type Pair = (Option<f64>, Option<f64>);

pub fn bench_items(path: &Path) -> Result<(String, Vec<BenchItem>)> {
    let (source, items) = read_bench_items(path)?;
    // Bytes and throughput are non-negative and finite; anything else is a damaged file.
    for i in &items {
        for (what, pair) in [("bytes", i.bytes), ("TFLOP/s", i.tflops)] {
            let Some((e, m)) = pair else { continue };
            for (side, v) in [("estimate", e), ("measured", m)] {
                if let Some(v) = v.filter(|v| !(v.is_finite() && *v >= 0.0)) {
                    return Err(Error::Parse {
                        path: path.to_path_buf(),
                        line: None,
                        field: Some(i.label.clone()),
                        message: format!("{side} {what} {v} is not a non-negative finite number"),
                    });
                }
            }
        }
    }
    Ok((source, items))
}

fn read_bench_items(path: &Path) -> Result<(String, Vec<BenchItem>)> {
    let text = crate::model::presets::read(path)?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| Error::Parse {
        path: path.to_path_buf(),
        line: Some(e.line()),
        field: None,
        message: format!("not valid JSON: {e}"),
    })?;
    if v.get("results").is_some() && v.get("schema_version").is_some() {
        let file = crate::bench::report::BenchFile::load(path)?;
        let eff = file.gpu_preset.as_deref().and_then(|g| GpuSpec::preset(g).ok()).map(|g| g.default_efficiency);
        let items = file
            .results
            .iter()
            .map(|r| {
                let measured = r
                    .memory
                    .allocator
                    .as_ref()
                    .map(|a| a.allocated_bytes.saturating_sub(a.baseline_allocated_bytes) as f64);
                BenchItem {
                    label: kernel_label(r),
                    bytes: Some((Some(r.memory.harness.total_bytes as f64), measured)),
                    tflops: Some((r.peak.as_ref().zip(eff).map(|(p, e)| p.peak_tflops * e), Some(r.tflops))),
                }
            })
            .collect();
        return Ok((
            format!("{}; timing: {}", file.adapter.name, file.timing.describe().split(" (").next().unwrap_or("")),
            items,
        ));
    }
    if let (Some(rows), Some(bench)) = (v.get("rows").and_then(|r| r.as_array()), v.get("bench")) {
        let model = v.get("model").and_then(|m| m.as_str()).unwrap_or("layer");
        let flops = bench.get("flops").and_then(|f| f.as_f64()).unwrap_or(0.0);
        let num = |r: &serde_json::Value, k: &str| r.get(k).and_then(|x| x.as_f64());
        let mut items = Vec::new();
        for (i, r) in rows.iter().enumerate() {
            // A value that is present must be a number (null: not estimated or not measured).
            for k in ["estimate", "measured"] {
                if let Some(x) = r.get(k).filter(|x| !x.is_null() && !x.is_number()) {
                    return Err(Error::Parse {
                        path: path.to_path_buf(),
                        line: None,
                        field: Some(format!("rows[{i}].{k}")),
                        message: format!("expected a number or null, found {x}"),
                    });
                }
            }
            let q = r.get("quantity").and_then(|q| q.as_str()).unwrap_or("?");
            match r.get("unit").and_then(|u| u.as_str()) {
                Some("bytes") if num(r, "estimate").is_some() || num(r, "measured").is_some() => {
                    items.push(BenchItem {
                        label: format!("{model}: {q}"),
                        bytes: Some((num(r, "estimate"), num(r, "measured"))),
                        tflops: None,
                    })
                }
                Some("seconds") if flops > 0.0 => {
                    let t = |x: Option<f64>| x.filter(|s| *s > 0.0).map(|s| flops / s / 1e12);
                    items.push(BenchItem {
                        label: format!("{model}: layer forward"),
                        bytes: None,
                        tflops: Some((t(num(r, "estimate")), t(num(r, "measured")))),
                    });
                }
                _ => {}
            }
        }
        let adapter = v.get("adapter").and_then(|a| a.as_str()).unwrap_or("unknown adapter");
        return Ok((adapter.to_string(), items));
    }
    Err(Error::Parse {
        path: path.to_path_buf(),
        line: None,
        field: None,
        message: "neither a `memplan bench -o` file (results, schema_version) nor a `memplan validate --format json` result (rows, bench)".into(),
    })
}

/// A short name for a kernel measurement: `matmul fp32 512×512×512`, `attention flash fp16
/// b1 h32/8 s1024 d128 causal`, `layer gpt2 fp32 b1 s128`.
fn kernel_label(r: &crate::bench::report::KernelReport) -> String {
    let get = |k: &str| r.shape.get(k).map(|v| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()));
    let g = |k: &str| get(k).unwrap_or_else(|| "?".into());
    match r.kernel.as_str() {
        "matmul" => {
            let batch = get("batch").filter(|b| b != "1").map(|b| format!(" ×{b}")).unwrap_or_default();
            format!("matmul {} {}×{}×{}{batch}", r.dtype, g("m"), g("n"), g("k"))
        }
        "attention" => {
            let kind = r.variant.split(['-', '_']).next().unwrap_or(&r.variant);
            let causal = if get("causal").as_deref() == Some("true") { " causal" } else { "" };
            format!(
                "attention {kind} {} b{} h{}/{} s{} d{}{causal}",
                r.dtype,
                g("batch"),
                g("heads"),
                g("kv_heads"),
                g("seq"),
                g("head_dim")
            )
        }
        "layer" => format!("layer {} {} b{} s{}", g("model"), r.dtype, g("batch"), g("seq")),
        other => format!("{other} {} {}", r.dtype, r.shape_string()),
    }
}

pub fn build_bench(files: &[PathBuf]) -> Result<Chart> {
    let mut items = Vec::new();
    let mut sources = Vec::new();
    for f in files {
        let (source, mut it) = bench_items(f)?;
        sources.push(source);
        items.append(&mut it);
    }
    let panel = |pick: fn(&BenchItem) -> Option<Pair>, scale: f64, title: &str, fmt: fn(f64) -> String| {
        let rows: Vec<(&BenchItem, Pair)> = items.iter().filter_map(|i| pick(i).map(|p| (i, p))).collect();
        let est: Vec<Option<f64>> = rows.iter().map(|(_, (e, _))| e.map(|x| x / scale)).collect();
        let mea: Vec<Option<f64>> = rows.iter().map(|(_, (_, m))| m.map(|x| x / scale)).collect();
        let label =
            |v: &[Option<f64>], missing: &str| v.iter().map(|x| x.map_or(missing.to_string(), fmt)).collect::<Vec<_>>();
        Bars {
            categories: rows.iter().map(|(i, _)| i.label.clone()).collect(),
            labels: vec![label(&est, "no estimate"), label(&mea, "not measured")],
            series: vec![
                Series { name: "estimate".into(), values: est },
                Series { name: "measured".into(), values: mea },
            ],
            colors: vec![1, 5],
            stacked: false,
            value_title: title.to_string(),
            refs: Vec::new(),
        }
    };
    let max_bytes = items.iter().filter_map(|i| i.bytes).flat_map(|(a, b)| [a, b]).flatten().fold(0.0, f64::max);
    let (scale, unit) =
        if max_bytes >= (1u64 << 30) as f64 { ((1u64 << 30) as f64, "GiB") } else { ((1u64 << 20) as f64, "MiB") };
    let fmt_bytes: fn(f64) -> String = |v| format!("{v:.2}");
    let fmt_tf: fn(f64) -> String = crate::report::chart::sig3;
    let mut panels = Vec::new();
    let bytes = panel(|i| i.bytes, scale, &format!("bytes ({unit})"), fmt_bytes);
    if !bytes.categories.is_empty() {
        panels.push((format!("memory ({unit})"), bytes));
    }
    let tf = panel(|i| i.tflops, 1.0, "throughput (TFLOP/s)", fmt_tf);
    if !tf.categories.is_empty() {
        panels.push(("throughput (TFLOP/s)".to_string(), tf));
    }
    if panels.is_empty() {
        return Err(Error::invalid(
            "bench files",
            files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", "),
            "files with byte or time measurements",
        ));
    }
    let rows = panels.iter().map(|(_, b)| b.categories.len()).sum::<usize>().max(1) as u32;
    sources.sort();
    sources.dedup();
    // An adapter named once with its timing does not need a second mention.
    let with_timing: Vec<String> = sources.iter().filter(|s| s.contains("; timing: ")).cloned().collect();
    sources.retain(|s| s.contains("; timing: ") || !with_timing.iter().any(|t| t.starts_with(&format!("{s};"))));
    Ok(Chart {
        title: "Measured against estimated".into(),
        subtitle: vec![
            format!("measured on {}", sources.join(", ")),
            "kernels: estimate = the harness's planned buffers and the GPU preset's peak × default efficiency; layers: the analytic model".into(),
        ],
        width: 1200,
        height: (170 + rows * 52 + 110 * panels.len() as u32).max(420),
        body: Body::Panels(panels),
    })
}
