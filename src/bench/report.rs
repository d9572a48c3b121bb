//! Serializable reports: adapters, NVML, one kernel's measurement, a suite (the calibration
//! file `memplan plan --calibration` reads), and the tables printed for each.

use crate::bench::device::{fmt_bytes, BufferRecord, Role};
use crate::bench::timing::{Stats, TimingMethod};
use crate::error::{Error, Result};
use comfy_table::{presets::UTF8_FULL_CONDENSED, Cell, CellAlignment, Table};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Version of the JSON written by `memplan bench` (bump on incompatible changes).
pub const SCHEMA_VERSION: u32 = crate::plan::gemm::BENCH_SCHEMA_VERSION;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdapterReport {
    pub name: String,
    pub backend: String,
    pub device_type: String,
    pub driver: String,
    pub driver_info: String,
    pub vendor_id: u32,
    pub device_id: u32,
    pub features: AdapterFeatures,
    pub limits: AdapterLimits,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdapterFeatures {
    pub shader_f16: bool,
    pub subgroups: bool,
    pub timestamp_query: bool,
    /// Cooperative-matrix shapes the adapter reports (`MxNxK ab->cr`); empty when none.
    pub cooperative_matrix: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdapterLimits {
    pub max_buffer_size: u64,
    pub max_storage_buffer_binding_size: u64,
    pub max_compute_workgroup_storage_size: u32,
    pub max_compute_invocations_per_workgroup: u32,
    pub max_compute_workgroups_per_dimension: u32,
    pub max_storage_buffers_per_shader_stage: u32,
    pub subgroup_min_size: u32,
    pub subgroup_max_size: u32,
}

/// NVML: either the NVIDIA GPUs it sees or why it is unavailable.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum NvmlReport {
    Available { driver: String, gpus: Vec<NvmlGpu> },
    Unavailable { reason: String },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NvmlGpu {
    pub index: u32,
    pub name: String,
    pub total_bytes: u64,
    pub used_bytes: u64,
    pub free_bytes: u64,
    /// Memory this process holds on the GPU (NVML's per-process figure), when reported.
    pub process_used_bytes: Option<u64>,
}

/// `memplan devices --format json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DevicesReport {
    pub adapters: Vec<AdapterReport>,
    pub nvml: NvmlReport,
}

/// Memory seen from the three sources, each labelled; any may be absent.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MemoryReport {
    /// The harness's own accounting: every buffer it created, by role.
    pub harness: HarnessMemory,
    /// wgpu's allocator report (Vulkan/DX12/Metal sub-allocator): live allocations and the
    /// memory blocks reserved for them, after the workload's buffers were created.
    pub allocator: Option<AllocatorMemory>,
    /// NVML's device-wide used bytes and this process's used bytes (NVIDIA only), sampled
    /// after the timed runs.
    pub nvml: Option<NvmlMemory>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HarnessMemory {
    pub buffers: Vec<BufferRecord>,
    /// Sum of tensor bytes (elements × dtype size).
    pub total_bytes: u64,
    /// Bytes of the tensors a layer keeps for backward (role `saved`).
    pub saved_bytes: u64,
    pub weight_bytes: u64,
}

impl HarnessMemory {
    /// What the device allocator gave the buffers of `role` (all buffers for `None`): `None`
    /// unless every one of them has a device figure.
    pub fn device_bytes(&self, role: Option<Role>) -> Option<u64> {
        let mut chosen = self.buffers.iter().filter(|b| role.is_none_or(|r| b.role == r)).peekable();
        chosen.peek()?;
        chosen.map(|b| b.device_bytes).sum()
    }

    pub fn from_records(buffers: Vec<BufferRecord>) -> Self {
        let sum = |r: Option<Role>| buffers.iter().filter(|b| r.is_none_or(|r| b.role == r)).map(|b| b.bytes).sum();
        HarnessMemory {
            total_bytes: sum(None),
            saved_bytes: sum(Some(Role::Saved)),
            weight_bytes: sum(Some(Role::Weight)),
            buffers,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AllocatorMemory {
    /// Where the figures come from (`wgpu allocator report (vulkan backend)`).
    #[serde(default)]
    pub source: String,
    pub allocated_bytes: u64,
    pub reserved_bytes: u64,
    /// Allocated bytes before the workload's buffers were created (device baseline).
    pub baseline_allocated_bytes: u64,
    /// Reserved bytes (memory blocks) before the workload's buffers were created.
    #[serde(default)]
    pub baseline_reserved_bytes: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NvmlMemory {
    pub gpu: String,
    pub device_used_bytes: u64,
    pub device_total_bytes: u64,
    /// This process's used bytes after the workload's buffers were created.
    pub process_used_bytes: Option<u64>,
    /// This process's used bytes before they were created (the driver context and earlier work).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process_used_before_bytes: Option<u64>,
}

impl NvmlMemory {
    /// What NVML saw this process's memory grow by while the workload's buffers were created.
    pub fn process_growth_bytes(&self) -> Option<u64> {
        Some(self.process_used_bytes?.saturating_sub(self.process_used_before_bytes?))
    }
}

/// Peak reference from a GPU preset that matches the adapter.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PeakRef {
    /// The preset's name (e.g. `h100-sxm`).
    pub preset: String,
    /// Which of the preset's peaks the kernel is compared with (`fp32`, `fp16`).
    pub dtype: String,
    pub peak_tflops: f64,
    pub peak_gbps: f64,
    pub fraction_of_peak_flops: f64,
    pub fraction_of_peak_bandwidth: f64,
}

/// The outcome of checking a kernel's output against the CPU reference.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckReport {
    /// Output elements compared (all of them, or a random sample for large shapes).
    pub compared: u64,
    pub max_abs_error: f64,
    pub max_rel_error: f64,
    pub tolerance: f64,
    pub passed: bool,
}

/// One kernel's measurement.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KernelReport {
    /// `matmul`, `attention`, `layer`.
    pub kernel: String,
    /// The implementation that ran, e.g. `tiled-128x128x8-r8x8-vec4`, `flash-bq64-bkv32`,
    /// `naive`, `coop-8x8`.
    pub variant: String,
    pub dtype: String,
    /// Shape parameters, e.g. `{"m": 512, "n": 512, "k": 512}`.
    pub shape: serde_json::Map<String, serde_json::Value>,
    /// Floating-point operations per call (multiply-add = 2).
    pub flops: f64,
    /// Minimum global-memory bytes moved per call (each input read once, outputs written once).
    pub bytes_moved: f64,
    pub timing: TimingMethod,
    pub warmup: u32,
    pub stats: Stats,
    /// FLOPs / median time.
    pub tflops: f64,
    /// Bytes moved / median time.
    pub gbps: f64,
    pub peak: Option<PeakRef>,
    pub memory: MemoryReport,
    pub check: Option<CheckReport>,
}

impl KernelReport {
    pub fn shape_string(&self) -> String {
        shape_string(&self.shape)
    }
}

/// Shape parameters in a fixed, readable order (JSON maps are sorted by key).
pub fn shape_string(shape: &serde_json::Map<String, serde_json::Value>) -> String {
    const ORDER: [&str; 13] =
        ["model", "stack", "m", "n", "k", "batch", "heads", "kv_heads", "seq", "head_dim", "hidden", "ffn", "causal"];
    let rank = |k: &str| ORDER.iter().position(|o| *o == k).unwrap_or(ORDER.len());
    let mut keys: Vec<&String> = shape.keys().collect();
    keys.sort_by_key(|k| rank(k));
    keys.iter()
        .map(|k| match &shape[k.as_str()] {
            serde_json::Value::String(s) => format!("{k}={s}"),
            v => format!("{k}={v}"),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Achieved throughput per kernel and dtype: the calibration summary.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Achieved {
    pub kernel: String,
    pub dtype: String,
    pub variant: String,
    /// Best median TFLOP/s over the suite's shapes for this kernel and dtype.
    pub tflops: f64,
    pub gbps: f64,
    pub fraction_of_peak_flops: Option<f64>,
}

/// What `memplan bench ... -o bench.json` writes: the calibration input of the planner.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BenchFile {
    pub schema_version: u32,
    pub memplan_version: String,
    pub adapter: AdapterReport,
    /// The GPU preset matched to the adapter name, if any.
    pub gpu_preset: Option<String>,
    /// How the kernels were timed (`gpu-timestamps` or `wall-clock`).
    pub timing: TimingMethod,
    /// Best achieved throughput per (kernel, dtype).
    pub achieved: Vec<Achieved>,
    /// The same, keyed for lookups: `calibration.matmul_tflops.fp32` is what
    /// `memplan plan --calibration` reads.
    pub calibration: Calibration,
    pub results: Vec<KernelReport>,
}

/// Best measured TFLOP/s by dtype name, per kernel.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    pub matmul_tflops: std::collections::BTreeMap<String, f64>,
    pub attention_tflops: std::collections::BTreeMap<String, f64>,
    pub layer_tflops: std::collections::BTreeMap<String, f64>,
}

impl Calibration {
    pub fn from_achieved(achieved: &[Achieved]) -> Self {
        let mut c = Calibration::default();
        for a in achieved {
            let map = match a.kernel.as_str() {
                "matmul" => &mut c.matmul_tflops,
                "attention" => &mut c.attention_tflops,
                "layer" => &mut c.layer_tflops,
                _ => continue,
            };
            map.insert(a.dtype.clone(), a.tflops);
        }
        c
    }
}

impl BenchFile {
    pub fn new(
        adapter: AdapterReport,
        gpu_preset: Option<String>,
        timing: TimingMethod,
        results: Vec<KernelReport>,
    ) -> Self {
        let achieved = summarize(&results);
        let calibration = Calibration::from_achieved(&achieved);
        BenchFile {
            calibration,
            schema_version: SCHEMA_VERSION,
            memplan_version: env!("CARGO_PKG_VERSION").to_string(),
            adapter,
            gpu_preset,
            timing,
            achieved,
            results,
        }
    }

    /// Best measured TFLOP/s for a kernel (`matmul`, `attention`, `layer`) and dtype.
    pub fn achieved_tflops(&self, kernel: &str, dtype: &str) -> Option<f64> {
        self.achieved.iter().find(|a| a.kernel == kernel && a.dtype == dtype).map(|a| a.tflops)
    }

    /// Read a calibration file written by `memplan bench`.
    pub fn load(path: &Path) -> Result<BenchFile> {
        let text = crate::fsio::read_text(path)?;
        let file: BenchFile = serde_json::from_str(&text).map_err(|e| Error::Parse {
            path: path.to_path_buf(),
            line: Some(e.line()),
            field: None,
            message: e.to_string(),
        })?;
        if file.schema_version != SCHEMA_VERSION {
            return Err(Error::Parse {
                path: path.to_path_buf(),
                line: None,
                field: Some("schema_version".into()),
                message: format!("schema version {} is not supported (expected {SCHEMA_VERSION})", file.schema_version),
            });
        }
        Ok(file)
    }
}

/// Best result per (kernel, dtype), in first-seen order.
pub fn summarize(results: &[KernelReport]) -> Vec<Achieved> {
    let mut out: Vec<Achieved> = Vec::new();
    for r in results {
        let frac = r.peak.as_ref().map(|p| p.fraction_of_peak_flops);
        match out.iter_mut().find(|a| a.kernel == r.kernel && a.dtype == r.dtype) {
            Some(a) if a.tflops >= r.tflops => {}
            Some(a) => {
                a.tflops = r.tflops;
                a.gbps = r.gbps;
                a.variant = r.variant.clone();
                a.fraction_of_peak_flops = frac;
            }
            None => out.push(Achieved {
                kernel: r.kernel.clone(),
                dtype: r.dtype.clone(),
                variant: r.variant.clone(),
                tflops: r.tflops,
                gbps: r.gbps,
                fraction_of_peak_flops: frac,
            }),
        }
    }
    out
}

/// Write `text` to `path` whole or not at all.
pub fn write_atomic(path: &Path, text: &str) -> Result<()> {
    crate::fsio::write_atomic(path, text.as_bytes())
}

fn table() -> Table {
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED).set_content_arrangement(comfy_table::ContentArrangement::Dynamic);
    t
}

fn right(s: impl ToString) -> Cell {
    Cell::new(s.to_string()).set_alignment(CellAlignment::Right)
}

/// Seconds as `12.3 µs`, `4.56 ms`, `1.23 s`.
pub fn fmt_seconds(s: f64) -> String {
    if s < 1e-3 {
        format!("{:.1} µs", s * 1e6)
    } else if s < 1.0 {
        format!("{:.2} ms", s * 1e3)
    } else {
        format!("{s:.2} s")
    }
}

/// TFLOP/s with enough digits for CPU adapters (which reach GFLOP/s).
pub fn fmt_tflops(t: f64) -> String {
    if t >= 1.0 {
        format!("{t:.2}")
    } else if t >= 0.01 {
        format!("{t:.3}")
    } else {
        format!("{t:.5}")
    }
}

/// The table for a list of kernel results.
pub fn results_table(results: &[KernelReport]) -> String {
    let mut t = table();
    t.set_header(vec![
        "kernel", "variant", "dtype", "shape", "median", "min", "max", "TFLOP/s", "GB/s", "% peak", "memory", "check",
    ]);
    for r in results {
        let peak = r
            .peak
            .as_ref()
            .map_or("-".to_string(), |p| format!("{:.1}% {}", 100.0 * p.fraction_of_peak_flops, p.dtype));
        let check = match &r.check {
            None => "-".to_string(),
            Some(c) if c.passed => format!("ok ({:.1e})", c.max_rel_error),
            Some(c) => format!("FAILED ({:.1e})", c.max_rel_error),
        };
        t.add_row(vec![
            Cell::new(&r.kernel),
            Cell::new(&r.variant),
            Cell::new(&r.dtype),
            Cell::new(r.shape_string()),
            right(fmt_seconds(r.stats.median)),
            right(fmt_seconds(r.stats.min)),
            right(fmt_seconds(r.stats.max)),
            right(fmt_tflops(r.tflops)),
            right(if r.gbps >= 10.0 { format!("{:.0}", r.gbps) } else { format!("{:.3}", r.gbps) }),
            right(peak),
            right(fmt_bytes(r.memory.harness.total_bytes)),
            Cell::new(check),
        ]);
    }
    t.to_string()
}

/// Table output of a run: adapter line, timing method, results, memory sources.
pub fn render_bench(file: &BenchFile) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "adapter: {} ({}, {}){}\n",
        file.adapter.name,
        file.adapter.backend,
        file.adapter.device_type,
        file.gpu_preset
            .as_ref()
            .map_or(" — no GPU preset matches this adapter, so no % of peak".to_string(), |p| format!(
                ", preset {p}"
            ))
    ));
    s.push_str(&format!(
        "timing: {} ({} timed runs after {} warm-up; median/min/max per call)\n",
        file.timing.describe(),
        file.results.first().map_or(0, |r| r.stats.samples),
        file.results.first().map_or(0, |r| r.warmup)
    ));
    s.push_str(&results_table(&file.results));
    s.push('\n');
    s.push_str(&memory_table(&file.results));
    s.push('\n');
    s
}

/// Memory of each result from the three sources.
pub fn memory_table(results: &[KernelReport]) -> String {
    let mut t = table();
    t.set_header(vec![
        "kernel",
        "shape",
        "harness buffers",
        "wgpu allocated (Δ baseline) / reserved",
        "nvml device / process",
    ]);
    for r in results {
        let alloc = r.memory.allocator.as_ref().map_or("not reported by this backend".to_string(), |a| {
            format!(
                "{} (+{}) / {}",
                fmt_bytes(a.allocated_bytes),
                fmt_bytes(a.allocated_bytes.saturating_sub(a.baseline_allocated_bytes)),
                fmt_bytes(a.reserved_bytes)
            )
        });
        let nvml = r.memory.nvml.as_ref().map_or("unavailable".to_string(), |n| {
            format!(
                "{} / {}",
                fmt_bytes(n.device_used_bytes),
                n.process_used_bytes.map_or("n/a".to_string(), fmt_bytes)
            )
        });
        t.add_row(vec![
            Cell::new(format!("{} {}", r.kernel, r.variant)),
            Cell::new(r.shape_string()),
            right(fmt_bytes(r.memory.harness.total_bytes)),
            right(alloc),
            right(nvml),
        ]);
    }
    t.to_string()
}

/// `memplan devices` as a table.
pub fn render_devices(report: &DevicesReport) -> String {
    let mut s = String::new();
    if report.adapters.is_empty() {
        s.push_str("wgpu adapters: none found (no Vulkan, Metal, DX12 or GL device is visible)\n");
        s.push_str("  hint: install a GPU driver, or Mesa's software Vulkan driver: apt-get install mesa-vulkan-drivers libvulkan1\n");
    } else {
        let mut t = table();
        t.set_header(vec![
            "#",
            "adapter",
            "backend",
            "type",
            "driver",
            "f16",
            "subgroups",
            "timestamps",
            "coop matrix",
            "max binding",
            "max buffer",
            "wg memory",
            "wg invocations",
        ]);
        for (i, a) in report.adapters.iter().enumerate() {
            let yn = |b: bool| if b { "yes" } else { "no" };
            t.add_row(vec![
                Cell::new(i),
                Cell::new(&a.name),
                Cell::new(&a.backend),
                Cell::new(&a.device_type),
                Cell::new(format!("{} {}", a.driver, a.driver_info).trim().to_string()),
                Cell::new(yn(a.features.shader_f16)),
                Cell::new(if a.features.subgroups {
                    format!("{}–{}", a.limits.subgroup_min_size, a.limits.subgroup_max_size)
                } else {
                    "no".into()
                }),
                Cell::new(yn(a.features.timestamp_query)),
                Cell::new(if a.features.cooperative_matrix.is_empty() {
                    "no".into()
                } else {
                    a.features.cooperative_matrix.join(", ")
                }),
                right(fmt_bytes(a.limits.max_storage_buffer_binding_size)),
                right(fmt_bytes(a.limits.max_buffer_size)),
                right(fmt_bytes(a.limits.max_compute_workgroup_storage_size as u64)),
                right(a.limits.max_compute_invocations_per_workgroup),
            ]);
        }
        s.push_str(
            "wgpu adapters (best first; the first is used unless --adapter or MEMPLAN_ADAPTER names another):\n",
        );
        s.push_str(&t.to_string());
        s.push('\n');
    }
    match &report.nvml {
        NvmlReport::Unavailable { reason } => s.push_str(&format!("nvml: unavailable ({reason})\n")),
        NvmlReport::Available { driver, gpus } => {
            s.push_str(&format!("nvml: driver {driver}\n"));
            let mut t = table();
            t.set_header(vec!["#", "gpu", "total", "used", "free", "this process"]);
            for g in gpus {
                t.add_row(vec![
                    Cell::new(g.index),
                    Cell::new(&g.name),
                    right(fmt_bytes(g.total_bytes)),
                    right(fmt_bytes(g.used_bytes)),
                    right(fmt_bytes(g.free_bytes)),
                    right(g.process_used_bytes.map_or("-".to_string(), fmt_bytes)),
                ]);
            }
            s.push_str(&t.to_string());
            s.push('\n');
        }
    }
    s
}
