//! `memplan devices`, `memplan bench matmul|attention|layer|suite` and `memplan validate`:
//! clap arguments and the functions that run them. Each `run_*` writes its table or JSON to
//! `out`, writes `-o FILE` atomically, and returns the exit code (0 ok; 1 a check failed or
//! `validate` is over its tolerance); errors are returned for the caller to print (exit 2).

use crate::bench::backend::{Backend, MockBackend, RunOptions, WgpuBackend};
use crate::bench::device::{self, fmt_bytes, Role};
use crate::bench::kernels::{AttentionKernel, AttentionShape, MatmulShape, MatmulVariant};
use crate::bench::layer::{self, LayerShape};
use crate::bench::report::{self, BenchFile, DevicesReport, KernelReport};
use crate::bench::timing::Plan;
use crate::bench::workload::CaseSpec;
use crate::bench::{nvml, Precision};
use crate::error::{Error, Result};
use crate::model::{presets, ModelSpec};
use comfy_table::{presets::UTF8_FULL_CONDENSED, Cell, CellAlignment, Table};
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Table,
    Json,
}

/// `memplan devices`
#[derive(clap::Args, Debug, Clone, Default)]
pub struct DevicesArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// Options shared by every benchmark.
#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    /// Storage dtype of the tensors: fp32 or fp16 (needs SHADER_F16). Arithmetic is fp32.
    /// The suite runs every supported dtype unless one is given.
    #[arg(long)]
    pub dtype: Option<String>,
    /// Output format on stdout.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Also write the JSON report (the calibration file) here, atomically.
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Untimed runs before the timed ones.
    #[arg(long, default_value_t = 3)]
    pub warmup: u32,
    /// Timed runs; the report gives their median, min and max.
    #[arg(long, default_value_t = 10)]
    pub reps: u32,
    /// Use the adapter whose name contains this text (see `memplan devices`; also MEMPLAN_ADAPTER).
    #[arg(long)]
    pub adapter: Option<String>,
    /// Time with the wall clock even when the adapter has GPU timestamps.
    #[arg(long)]
    pub wall_clock: bool,
    /// Skip the check of the outputs against the CPU reference.
    #[arg(long)]
    pub no_check: bool,
    /// Deterministic mock backend (scripted times; for tests and documentation).
    #[arg(long, hide = true)]
    pub mock: bool,
}

impl Default for RunArgs {
    fn default() -> Self {
        RunArgs {
            dtype: None,
            format: Format::Table,
            output: None,
            warmup: 3,
            reps: 10,
            adapter: None,
            wall_clock: false,
            no_check: false,
            mock: false,
        }
    }
}

/// Most timed runs of one benchmark.
pub const MAX_REPS: u32 = 10_000;
/// Most warm-up runs of one benchmark.
pub const MAX_WARMUP: u32 = 1_000;
/// Most sequence lengths in one `bench attention --seq` list.
pub const MAX_SEQ_VALUES: usize = 64;

impl RunArgs {
    fn precision(&self) -> Result<Precision> {
        self.dtype.as_deref().map_or(Ok(Precision::Fp32), Precision::parse)
    }
    fn options(&self) -> Result<RunOptions> {
        if self.reps == 0 {
            return Err(Error::invalid("--reps", 0, "at least 1 timed run"));
        }
        // Bounded work: the median of 10,000 runs is as good as any, and a run must end.
        if self.reps > MAX_REPS {
            return Err(Error::invalid("--reps", self.reps, format!("at most {MAX_REPS} timed runs")));
        }
        if self.warmup > MAX_WARMUP {
            return Err(Error::invalid("--warmup", self.warmup, format!("at most {MAX_WARMUP} warm-up runs")));
        }
        Ok(RunOptions {
            plan: Plan { warmup: self.warmup, reps: self.reps },
            check: !self.no_check,
            wall_clock: self.wall_clock,
            seed: 0x5EED,
        })
    }
    fn backend(&self) -> Result<Box<dyn Backend>> {
        if self.mock {
            Ok(Box::new(MockBackend::new()))
        } else {
            Ok(Box::new(WgpuBackend::open(self.adapter.as_deref())?))
        }
    }
}

/// `memplan bench`
#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub kind: BenchKind,
}

#[derive(clap::Subcommand, Debug, Clone)]
pub enum BenchKind {
    /// Tiled matrix multiply C = A·B (M×K by K×N).
    Matmul(MatmulArgs),
    /// Attention forward: naive (materialized scores, O(s²) memory) or flash (online softmax, O(s)).
    Attention(AttentionArgs),
    /// One transformer layer forward at a model preset's shapes, keeping what backward needs.
    Layer(LayerArgs),
    /// A standard set sized to the device; `-o bench.json` is the planner's calibration input.
    Suite(SuiteArgs),
}

#[derive(clap::Args, Debug, Clone)]
pub struct MatmulArgs {
    #[arg(long)]
    pub m: u64,
    #[arg(long)]
    pub n: u64,
    #[arg(long)]
    pub k: u64,
    /// Independent matrices multiplied in one dispatch.
    #[arg(long, default_value_t = 1)]
    pub batch: u64,
    /// Implementation: auto picks cooperative matrices when the adapter has them (fp32).
    #[arg(long, value_enum, default_value_t = MatmulVariant::Auto)]
    pub variant: MatmulVariant,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(clap::Args, Debug, Clone)]
pub struct AttentionArgs {
    #[arg(long, default_value_t = 1)]
    pub batch: u64,
    #[arg(long)]
    pub heads: u64,
    /// Key/value heads (GQA; 1 = MQA). Defaults to --heads.
    #[arg(long)]
    pub kv_heads: Option<u64>,
    /// Sequence length; a comma-separated list runs each (the memory curve).
    #[arg(long, value_delimiter = ',', required = true)]
    pub seq: Vec<u64>,
    #[arg(long)]
    pub head_dim: u64,
    /// Causal mask (decoder self-attention).
    #[arg(long)]
    pub causal: bool,
    /// Kernel(s): naive, flash, or both as `naive,flash`.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "flash")]
    pub kernel: Vec<AttentionKernel>,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(clap::Args, Debug, Clone)]
pub struct LayerArgs {
    /// Model preset name, a model TOML file or a Hugging Face config.json.
    #[arg(long)]
    pub model: String,
    /// Which stack's layer (default: the first).
    #[arg(long)]
    pub stack: Option<String>,
    #[arg(long, default_value_t = 1)]
    pub batch: u64,
    #[arg(long)]
    pub seq: u64,
    #[arg(long, value_enum, default_value_t = AttentionKernel::Flash)]
    pub kernel: AttentionKernel,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(clap::Args, Debug, Clone, Default)]
pub struct SuiteArgs {
    #[command(flatten)]
    pub run: RunArgs,
}

/// `memplan validate`
#[derive(clap::Args, Debug, Clone)]
pub struct ValidateArgs {
    /// Model preset name, a model TOML file or a Hugging Face config.json.
    #[arg(long)]
    pub model: String,
    /// Which stack's layer (default: the first).
    #[arg(long)]
    pub stack: Option<String>,
    #[arg(long, default_value_t = 1)]
    pub batch: u64,
    #[arg(long, default_value_t = 512)]
    pub seq: u64,
    #[arg(long, value_enum, default_value_t = AttentionKernel::Flash)]
    pub kernel: AttentionKernel,
    /// Largest relative error, in percent, before the exit code is 1.
    #[arg(long, default_value_t = 10.0)]
    pub tolerance: f64,
    /// Also hold the layer's time to the tolerance (estimate: the GPU preset's peak × its
    /// default efficiency). Without it the throughput row is informational.
    #[arg(long)]
    pub check_throughput: bool,
    #[command(flatten)]
    pub run: RunArgs,
}

// ---------------------------------------------------------------------------------------------

/// `memplan devices`: adapters and NVML; never an error when there are none.
pub fn run_devices(args: &DevicesArgs, out: &mut dyn Write) -> Result<i32> {
    let adapters = device::enumerate().iter().map(device::describe).collect();
    let report = DevicesReport { adapters, nvml: nvml::probe() };
    match args.format {
        Format::Json => writeln!(out, "{}", json(&report)?),
        Format::Table => write!(out, "{}", report::render_devices(&report)),
    }
    .map_err(stdout_error)?;
    Ok(0)
}

/// `memplan bench ...`
pub fn run_bench(args: &BenchArgs, out: &mut dyn Write) -> Result<i32> {
    let run = match &args.kind {
        BenchKind::Matmul(a) => &a.run,
        BenchKind::Attention(a) => &a.run,
        BenchKind::Layer(a) => &a.run,
        BenchKind::Suite(a) => &a.run,
    };
    // Every argument is checked before a device is opened: a bad value is reported as such, also
    // on a machine without a GPU.
    preflight_bench(args)?;
    let mut backend = run.backend()?;
    run_bench_with(backend.as_mut(), args, out)
}

/// The checks of [`run_bench_with`] that need no device.
fn preflight_bench(args: &BenchArgs) -> Result<()> {
    let run = match &args.kind {
        BenchKind::Matmul(a) => {
            MatmulShape { m: a.m, n: a.n, k: a.k, batch: a.batch }.validate()?;
            &a.run
        }
        BenchKind::Attention(a) => {
            if a.seq.len() > MAX_SEQ_VALUES {
                return Err(Error::invalid(
                    "--seq",
                    format!("a list of {} lengths", a.seq.len()),
                    format!("at most {MAX_SEQ_VALUES} sequence lengths in one run"),
                ));
            }
            for &seq in &a.seq {
                let kv_heads = a.kv_heads.unwrap_or(a.heads);
                let shape = AttentionShape {
                    batch: a.batch,
                    heads: a.heads,
                    kv_heads,
                    seq,
                    head_dim: a.head_dim,
                    causal: a.causal,
                };
                shape.validate()?;
            }
            &a.run
        }
        BenchKind::Layer(a) => {
            LayerShape::from_model(&load_model(&a.model)?, a.stack.as_deref(), a.batch, a.seq)?;
            &a.run
        }
        BenchKind::Suite(a) => &a.run,
    };
    run.precision()?;
    run.options()?;
    if let Some(path) = &run.output {
        crate::fsio::check_output(path)?;
    }
    Ok(())
}

/// [`run_bench`] on a given backend (tests pass a [`MockBackend`]).
pub fn run_bench_with(backend: &mut dyn Backend, args: &BenchArgs, out: &mut dyn Write) -> Result<i32> {
    let (run, cases) = match &args.kind {
        BenchKind::Matmul(a) => {
            let shape = MatmulShape { m: a.m, n: a.n, k: a.k, batch: a.batch };
            shape.validate()?;
            (&a.run, vec![CaseSpec::Matmul { shape, precision: a.run.precision()?, variant: a.variant }])
        }
        BenchKind::Attention(a) => {
            let p = a.run.precision()?;
            let mut cases = Vec::new();
            for &seq in &a.seq {
                for &kernel in dedup(&a.kernel).iter() {
                    let shape = AttentionShape {
                        batch: a.batch,
                        heads: a.heads,
                        kv_heads: a.kv_heads.unwrap_or(a.heads),
                        seq,
                        head_dim: a.head_dim,
                        causal: a.causal,
                    };
                    shape.validate()?;
                    cases.push(CaseSpec::Attention { shape, precision: p, kernel });
                }
            }
            (&a.run, cases)
        }
        BenchKind::Layer(a) => {
            let model = load_model(&a.model)?;
            let shape = LayerShape::from_model(&model, a.stack.as_deref(), a.batch, a.seq)?;
            (&a.run, vec![CaseSpec::Layer { shape: Box::new(shape), precision: a.run.precision()?, kernel: a.kernel }])
        }
        BenchKind::Suite(a) => {
            let precisions = match &a.run.dtype {
                Some(d) => vec![Precision::parse(d)?],
                None if backend.supports_f16() => vec![Precision::Fp32, Precision::Fp16],
                None => vec![Precision::Fp32],
            };
            (&a.run, suite(backend.is_cpu(), &precisions))
        }
    };
    let opts = run.options()?;
    // An output that cannot be written is known before any kernel runs.
    if let Some(path) = &run.output {
        crate::fsio::check_output(path)?;
    }
    let mut results = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let mut opts = opts;
        // The layer's CPU reference is expensive: check only small layers.
        if matches!(case, CaseSpec::Layer { .. }) && case.flops() > 2e9 {
            opts.check = false;
        }
        let label = format!("[{}/{}] {} {} {}", i + 1, cases.len(), case.kernel(), case.precision(), shape_line(case));
        let mut bar = Bar::new(label, run.mock);
        let r = backend.run(case, &opts, &mut |done, total, elapsed| bar.update(done, total, elapsed))?;
        bar.finish();
        results.push(r);
    }
    let file = BenchFile::new(
        backend.adapter().clone(),
        backend.preset().map(|p| p.name.clone()),
        backend.timing(&opts),
        results,
    );
    emit(&file, run, out)?;
    let failed = file.results.iter().any(|r| r.check.as_ref().is_some_and(|c| !c.passed));
    if failed {
        writeln!(
            out,
            "error: a kernel's output differs from the CPU reference beyond its tolerance (see the check column)"
        )
        .map_err(stdout_error)?;
        return Ok(1);
    }
    Ok(0)
}

fn dedup<T: PartialEq + Copy>(v: &[T]) -> Vec<T> {
    let mut out: Vec<T> = Vec::new();
    for x in v {
        if !out.contains(x) {
            out.push(*x);
        }
    }
    out
}

fn shape_line(case: &CaseSpec) -> String {
    report::shape_string(&case.shape_json())
}

/// The standard set: square matmuls, causal attention with both kernels over a range of
/// sequence lengths (the memory curve), and one GPT-2 layer, for each dtype. On a CPU adapter
/// (lavapipe, a few GFLOP/s) it takes under a minute on two cores; on a GPU, shapes large
/// enough to approach peak.
pub fn suite(cpu: bool, precisions: &[Precision]) -> Vec<CaseSpec> {
    let mut cases = Vec::new();
    let (matmuls, attn_seqs, heads, hd): (&[u64], &[u64], u64, u64) = if cpu {
        (&[128, 256, 512], &[128, 256, 512], 4, 64)
    } else {
        (&[1024, 2048, 4096, 8192], &[512, 1024, 2048, 4096, 8192], 16, 128)
    };
    for &p in precisions {
        for &n in matmuls {
            cases.push(CaseSpec::Matmul {
                shape: MatmulShape::new(n, n, n),
                precision: p,
                variant: MatmulVariant::Auto,
            });
        }
        for &seq in attn_seqs {
            for kernel in [AttentionKernel::Naive, AttentionKernel::Flash] {
                let shape = AttentionShape { batch: 1, heads, kv_heads: heads, seq, head_dim: hd, causal: true };
                cases.push(CaseSpec::Attention { shape, precision: p, kernel });
            }
        }
        // One GPT-2 layer, the model every build has.
        let (batch, seq) = if cpu { (1, 128) } else { (8, 1024) };
        if let Some(shape) = presets::model("gpt2").ok().and_then(|m| LayerShape::from_model(&m, None, batch, seq).ok())
        {
            cases.push(CaseSpec::Layer { shape: Box::new(shape), precision: p, kernel: AttentionKernel::Flash });
        }
    }
    cases
}

fn emit(file: &BenchFile, run: &RunArgs, out: &mut dyn Write) -> Result<()> {
    let text = json(file)?;
    if let Some(path) = &run.output {
        report::write_atomic(path, &format!("{text}\n"))?;
    }
    match run.format {
        Format::Json => writeln!(out, "{text}"),
        Format::Table => write!(out, "{}", report::render_bench(file)).and_then(|_| match &run.output {
            Some(path) => writeln!(out, "wrote {}", path.display()),
            None => Ok(()),
        }),
    }
    .map_err(stdout_error)
}

fn json<T: Serialize>(v: &T) -> Result<String> {
    serde_json::to_string_pretty(v)
        .map_err(|e| Error::Device { message: format!("cannot serialize the report: {e}"), hint: String::new() })
}

fn stdout_error(e: std::io::Error) -> Error {
    Error::Io { path: PathBuf::from("<stdout>"), message: e.to_string() }
}

/// A preset name, or a path to a model TOML file (or a Hugging Face `config.json`). Anything that
/// looks like a path, or exists on disk and is not a preset name, is read as a file, so a
/// directory, FIFO or device gets `crate::fsio`'s clear refusal rather than "unknown preset".
pub fn load_model(name: &str) -> Result<ModelSpec> {
    let path = Path::new(name);
    let lower = name.to_ascii_lowercase();
    let looks_like_path = lower.ends_with(".toml") || lower.ends_with(".json") || name.contains('/');
    let on_disk = std::fs::symlink_metadata(path).is_ok() && !presets::model_names().contains(&lower.as_str());
    if !(looks_like_path || on_disk) {
        return presets::model(name);
    }
    if lower.ends_with(".json") {
        crate::model::hf::from_hf_config(path)
    } else {
        presets::model_from_file(path)
    }
}

/// A progress bar on stderr that appears only when a run takes more than a moment (and stderr
/// is a terminal).
struct Bar {
    label: String,
    bar: Option<indicatif::ProgressBar>,
    disabled: bool,
}

impl Bar {
    fn new(label: String, disabled: bool) -> Self {
        Bar { label, bar: None, disabled }
    }

    fn update(&mut self, done: u32, total: u32, elapsed: Duration) {
        if self.disabled {
            return;
        }
        if self.bar.is_none() {
            // Show when the warm-up (or the runs so far) suggests more than a second in all.
            let per = elapsed.as_secs_f64() / f64::from(done.max(1));
            if elapsed < Duration::from_millis(500) && per * f64::from(total) < 1.0 {
                return;
            }
            let b = indicatif::ProgressBar::with_draw_target(
                Some(u64::from(total)),
                indicatif::ProgressDrawTarget::stderr(),
            );
            if let Ok(style) =
                indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} timed runs ({elapsed})")
            {
                b.set_style(style.progress_chars("=> "));
            }
            b.set_message(self.label.clone());
            self.bar = Some(b);
        }
        if let Some(b) = &self.bar {
            b.set_position(u64::from(done));
        }
    }

    fn finish(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// validate

/// One line of `memplan validate`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ValidateRow {
    pub quantity: String,
    pub unit: String,
    pub estimate: Option<f64>,
    /// Where the estimate comes from (`analytic model`, `harness plan`, a GPU preset).
    pub estimate_source: String,
    pub measured: Option<f64>,
    /// Who measured it (`wgpu allocator report (vulkan backend)`, `NVML`, `GPU timestamps`), or
    /// why nothing was measured (`not measurable on this adapter: ...`).
    pub measured_source: String,
    /// (measured − estimate) / estimate.
    pub relative_error: Option<f64>,
    /// Whether this row counts toward the exit code: only rows with a real measurement do.
    pub checked: bool,
    pub within_tolerance: Option<bool>,
    pub note: String,
}

/// The outcome of `memplan validate`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Every checked row was measured and is within the tolerance (exit 0).
    WithinTolerance,
    /// A checked row is over the tolerance (exit 1).
    OverTolerance,
    /// Nothing that counts could be measured on this adapter: no check was made (exit 0).
    NotMeasured,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ValidateReport {
    pub adapter: String,
    pub model: String,
    pub layer: LayerShape,
    pub dtype: String,
    pub attention_kernel: String,
    /// The analytic model's setup, in words.
    pub assumptions: Vec<String>,
    pub tolerance_percent: f64,
    pub rows: Vec<ValidateRow>,
    pub estimate_ledger: Vec<crate::memory::activations::Saved>,
    /// The buffers the harness keeps for backward, with what the device allocator gave each.
    pub measured_buffers: Vec<device::BufferRecord>,
    pub bench: KernelReport,
    /// Within tolerance, or nothing measured (then `verdict` says so).
    pub passed: bool,
    pub verdict: Verdict,
}

/// `memplan validate`: run one layer at the plan's shapes and compare with the estimate.
pub fn run_validate(args: &ValidateArgs, out: &mut dyn Write) -> Result<i32> {
    // Arguments first, then the device (see `run_bench`).
    validate_inputs(args)?;
    let mut backend = args.run.backend()?;
    run_validate_with(backend.as_mut(), args, out)
}

/// The model, the layer and the estimate `validate` compares with, from checked arguments.
fn validate_inputs(args: &ValidateArgs) -> Result<(ModelSpec, Precision, LayerShape, layer::LayerEstimate)> {
    if !(args.tolerance.is_finite() && args.tolerance >= 0.0) {
        return Err(Error::invalid("--tolerance", args.tolerance, "a percentage ≥ 0"));
    }
    let model = load_model(&args.model)?;
    let precision = args.run.precision()?;
    let shape = LayerShape::from_model(&model, args.stack.as_deref(), args.batch, args.seq)?;
    let est = layer::estimate(&model, &shape, precision, args.kernel)?;
    args.run.options()?;
    if let Some(path) = &args.run.output {
        crate::fsio::check_output(path)?;
    }
    Ok((model, precision, shape, est))
}

/// [`run_validate`] on a given backend.
pub fn run_validate_with(backend: &mut dyn Backend, args: &ValidateArgs, out: &mut dyn Write) -> Result<i32> {
    let (model, precision, shape, est) = validate_inputs(args)?;
    let case = CaseSpec::Layer { shape: Box::new(shape.clone()), precision, kernel: args.kernel };
    let mut opts = args.run.options()?;
    if case.flops() > 2e9 {
        opts.check = false;
    }
    let mut bar = Bar::new(format!("layer {} b={} s={}", model.name, args.batch, shape.seq), args.run.mock);
    let bench = backend.run(&case, &opts, &mut |d, t, e| bar.update(d, t, e))?;
    bar.finish();
    let adapter = backend.adapter().clone();
    let report = validate_report(&model, shape, precision, args, est, bench, backend.preset(), &adapter);
    let text = json(&report)?;
    if let Some(path) = &args.run.output {
        report::write_atomic(path, &format!("{text}\n"))?;
    }
    match args.run.format {
        Format::Json => writeln!(out, "{text}").map_err(stdout_error)?,
        Format::Table => {
            write!(out, "{}", render_validate(&report)).map_err(stdout_error)?;
            if let Some(path) = &args.run.output {
                writeln!(out, "wrote {}", path.display()).map_err(stdout_error)?;
            }
        }
    }
    let check_failed = report.bench.check.as_ref().is_some_and(|c| !c.passed);
    Ok(if report.verdict == Verdict::OverTolerance || check_failed { 1 } else { 0 })
}

#[allow(clippy::too_many_arguments)]
fn row(
    quantity: &str,
    unit: &str,
    (estimate, estimate_source): (Option<f64>, &str),
    (measured, measured_source): (Option<f64>, &str),
    checked: bool,
    tol: f64,
    note: &str,
) -> ValidateRow {
    let relative_error = match (estimate, measured) {
        (Some(e), Some(m)) if e != 0.0 => Some((m - e) / e),
        (Some(e), Some(m)) if e == m => Some(0.0),
        _ => None,
    };
    // Only a real measurement, with an estimate to hold it to, can decide the exit code.
    let checked = checked && relative_error.is_some();
    let within_tolerance = relative_error.map(|r| r.abs() * 100.0 <= tol + 1e-9);
    ValidateRow {
        quantity: quantity.into(),
        unit: unit.into(),
        estimate,
        estimate_source: estimate_source.into(),
        measured,
        measured_source: measured_source.into(),
        relative_error,
        checked,
        within_tolerance,
        note: note.into(),
    }
}

#[allow(clippy::too_many_arguments)]
fn validate_report(
    model: &ModelSpec,
    shape: LayerShape,
    precision: Precision,
    args: &ValidateArgs,
    est: layer::LayerEstimate,
    bench: KernelReport,
    preset: Option<&crate::hw::GpuSpec>,
    adapter: &report::AdapterReport,
) -> ValidateReport {
    let tol = args.tolerance;
    let h = &bench.memory.harness;
    const ANALYTIC: &str = "analytic model";
    // Memory is measured by the device allocator, buffer by buffer, where the backend reports
    // one (Vulkan, DX12); the harness's own byte counts are never shown as a measurement.
    let (alloc_source, not_measurable) = match &bench.memory.allocator {
        Some(a) => (a.source.clone(), String::new()),
        None => (
            String::new(),
            format!("not measurable on this adapter: the {} backend gives no allocator report", adapter.backend),
        ),
    };
    let device = |role: Role| -> (Option<f64>, String) {
        match h.device_bytes(Some(role)) {
            Some(b) if bench.memory.allocator.is_some() => (Some(b as f64), alloc_source.clone()),
            _ if bench.memory.allocator.is_some() => {
                (None, format!("not measurable on this adapter: {alloc_source} does not itemise the buffers"))
            }
            _ => (None, not_measurable.clone()),
        }
    };
    let (saved_measured, saved_source) = device(Role::Saved);
    let (weights_measured, weights_source) = device(Role::Weight);
    let mut rows = vec![
        row(
            "saved activations per layer",
            "bytes",
            (Some(est.saved_bytes as f64), ANALYTIC),
            (saved_measured, &saved_source),
            true,
            tol,
            "buffers the harness keeps for backward",
        ),
        row(
            "weights per layer",
            "bytes",
            (Some(est.weight_bytes as f64), ANALYTIC),
            (weights_measured, &weights_source),
            true,
            tol,
            "the harness has no biases",
        ),
    ];
    let (est_time, est_time_source) = match preset {
        Some(p) => {
            let peak = match precision {
                Precision::Fp32 => p.peak_flops.fp32,
                Precision::Fp16 => p.peak_flops.fp16,
            };
            (
                Some(bench.flops / (peak * p.default_efficiency)),
                format!("{} peak × default efficiency {:.0}%", p.name, 100.0 * p.default_efficiency),
            )
        }
        None => (None, "no GPU preset matches this adapter".to_string()),
    };
    let (time_measured, time_source) = match bench.timing {
        crate::bench::timing::TimingMethod::Mock => {
            (None, "not measured: the mock backend's times are scripted".to_string())
        }
        t => (Some(bench.stats.median), t.describe().to_string()),
    };
    rows.push(row(
        "layer forward time",
        "seconds",
        (est_time, &est_time_source),
        (time_measured, &time_source),
        args.check_throughput,
        tol,
        if args.check_throughput { "checked (--check-throughput)" } else { "informational without --check-throughput" },
    ));
    if let Some(a) = &bench.memory.allocator {
        let delta = a.allocated_bytes.saturating_sub(a.baseline_allocated_bytes);
        rows.push(row(
            "device allocations while building the layer",
            "bytes",
            (Some(h.total_bytes as f64), "harness plan (every buffer)"),
            (Some(delta as f64), &a.source),
            false,
            tol,
            "allocated bytes grew by this much; includes upload staging still held",
        ));
    }
    if let Some(n) = &bench.memory.nvml {
        rows.push(row(
            "NVML: process memory growth",
            "bytes",
            (Some(h.total_bytes as f64), "harness plan (every buffer)"),
            (n.process_growth_bytes().map(|b| b as f64), "NVML per-process used memory"),
            false,
            tol,
            "whole memory blocks the allocator reserved, so at least the buffers",
        ));
    }
    let checked: Vec<&ValidateRow> = rows.iter().filter(|r| r.checked).collect();
    let verdict = if checked.is_empty() {
        Verdict::NotMeasured
    } else if checked.iter().all(|r| r.within_tolerance == Some(true)) {
        Verdict::WithinTolerance
    } else {
        Verdict::OverTolerance
    };
    let measured_buffers = h.buffers.iter().filter(|b| b.role == Role::Saved).cloned().collect();
    ValidateReport {
        adapter: adapter.name.clone(),
        model: model.name.clone(),
        layer: shape,
        dtype: precision.name().into(),
        attention_kernel: args.kernel.name().into(),
        assumptions: vec![
            format!("training forward, activations and weights in {precision}, no recomputation"),
            "dropout off (the harness applies none)".into(),
            format!(
                "{} attention",
                if args.kernel == AttentionKernel::Naive { "eager (materialized scores)" } else { "fused (flash)" }
            ),
        ],
        tolerance_percent: tol,
        rows,
        estimate_ledger: est.saved,
        measured_buffers,
        bench,
        passed: verdict != Verdict::OverTolerance,
        verdict,
    }
}

fn fmt_value(v: f64, unit: &str) -> String {
    match unit {
        "bytes" => fmt_bytes(v.round() as u64),
        "seconds" => report::fmt_seconds(v),
        _ => format!("{v}"),
    }
}

/// `memplan validate` as tables.
pub fn render_validate(r: &ValidateReport) -> String {
    let mut s = String::new();
    let l = &r.layer;
    s.push_str(&format!(
        "validate: {} layer ({} stack), batch {} × seq {}, hidden {}, heads {}/{} kv, ffn {}, {} {}\n",
        r.model, l.stack, l.batch, l.seq, l.hidden, l.heads, l.kv_heads, l.ffn, r.dtype, r.attention_kernel
    ));
    s.push_str(&format!(
        "adapter: {}; kernels: {}; timing: {}\n",
        r.adapter,
        r.bench.variant,
        r.bench.timing.describe()
    ));
    s.push_str(&format!("estimate assumes: {}\n", r.assumptions.join("; ")));
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED).set_content_arrangement(comfy_table::ContentArrangement::Dynamic);
    t.set_header(vec!["quantity", "estimate", "measured", "error", "", "estimated by / measured by"]);
    for row in &r.rows {
        let err = row.relative_error.map_or("-".to_string(), |e| format!("{:+.1}%", 100.0 * e));
        let verdict = match (row.checked, row.within_tolerance) {
            (true, Some(true)) => "ok",
            (true, Some(false)) => "OVER",
            (true, None) => "n/a",
            (false, _) if row.measured.is_none() => "n/a",
            (false, _) => "info",
        };
        t.add_row(vec![
            Cell::new(&row.quantity),
            Cell::new(row.estimate.map_or("-".to_string(), |v| fmt_value(v, &row.unit)))
                .set_alignment(CellAlignment::Right),
            Cell::new(row.measured.map_or("-".to_string(), |v| fmt_value(v, &row.unit)))
                .set_alignment(CellAlignment::Right),
            Cell::new(err).set_alignment(CellAlignment::Right),
            Cell::new(verdict),
            Cell::new(format!("{} / {}; {}", row.estimate_source, row.measured_source, row.note)),
        ]);
    }
    s.push_str(&t.to_string());
    s.push('\n');
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED).set_content_arrangement(comfy_table::ContentArrangement::Dynamic);
    t.set_header(vec!["estimate: tensors saved for backward", "bytes", "harness: buffers kept", "device allocation"]);
    let n = r.estimate_ledger.len().max(r.measured_buffers.len());
    for i in 0..n {
        let e = r.estimate_ledger.get(i);
        let m = r.measured_buffers.get(i);
        t.add_row(vec![
            Cell::new(e.map_or(String::new(), |e| e.name.clone())),
            Cell::new(e.map_or(String::new(), |e| fmt_bytes(e.bytes))).set_alignment(CellAlignment::Right),
            Cell::new(m.map_or(String::new(), |m| m.label.clone())),
            Cell::new(m.map_or(String::new(), |m| m.device_bytes.map_or("not measurable".to_string(), fmt_bytes)))
                .set_alignment(CellAlignment::Right),
        ]);
    }
    s.push_str(&t.to_string());
    s.push('\n');
    let mock = r.bench.timing == crate::bench::timing::TimingMethod::Mock;
    s.push_str(&format!(
        "{}: {} TFLOP/s over {} timed runs (median {}){}\n",
        if mock { "scripted (mock backend, not a measurement)" } else { "measured" },
        report::fmt_tflops(r.bench.tflops),
        r.bench.stats.samples,
        report::fmt_seconds(r.bench.stats.median),
        match &r.bench.check {
            Some(c) if c.passed =>
                format!("; output matches the CPU reference (max rel. error {:.1e})", c.max_rel_error),
            Some(c) => format!("; OUTPUT DIFFERS from the CPU reference (max rel. error {:.1e})", c.max_rel_error),
            None if r.bench.timing == crate::bench::timing::TimingMethod::Mock =>
                "; output not checked (mock backend)".into(),
            None => "; output not checked (layer too large for the CPU reference)".into(),
        }
    ));
    s.push_str(&match r.verdict {
        Verdict::WithinTolerance => format!("result: within tolerance ({}%)\n", r.tolerance_percent),
        Verdict::OverTolerance => format!("result: OVER tolerance ({}%)\n", r.tolerance_percent),
        Verdict::NotMeasured => "result: nothing checked: no row could be measured on this adapter (the estimate is \
                                 shown, not confirmed)\n"
            .to_string(),
    });
    s
}
