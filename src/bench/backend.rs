//! Backends run a [`CaseSpec`] and return a [`KernelReport`]: [`WgpuBackend`] on a real adapter,
//! [`MockBackend`] with scripted times and the planned buffers, so that the statistics, reports,
//! tables and JSON are deterministic in tests (hyperfine's mock executor).

use crate::bench::device::Gpu;
use crate::bench::kernels::Kernels;
use crate::bench::report::{
    AdapterFeatures, AdapterLimits, AdapterReport, AllocatorMemory, HarnessMemory, KernelReport, MemoryReport,
};
use crate::bench::timing::{measure, MockRunner, Plan, Runner, Stats, TimingMethod};
use crate::bench::workload::{self, CaseSpec};
use crate::bench::{nvml, peak};
use crate::error::Result;
use crate::hw::GpuSpec;
use std::time::Duration;

/// Options for one run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunOptions {
    pub plan: Plan,
    /// Check the output against the CPU reference before timing.
    pub check: bool,
    /// Use the wall clock even when GPU timestamps exist.
    pub wall_clock: bool,
    pub seed: u64,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions { plan: Plan::default(), check: true, wall_clock: false, seed: 0x5EED }
    }
}

/// `progress(done, total, elapsed)` after warm-up and after each batch of timed calls.
pub type Progress<'a> = &'a mut dyn FnMut(u32, u32, Duration);

pub trait Backend {
    fn adapter(&self) -> &AdapterReport;
    /// The GPU preset matched to the adapter, if any.
    fn preset(&self) -> Option<&GpuSpec>;
    /// How this backend times kernels under `opts`.
    fn timing(&self, opts: &RunOptions) -> TimingMethod;
    /// A CPU adapter (lavapipe): the suite picks small shapes.
    fn is_cpu(&self) -> bool;
    fn supports_f16(&self) -> bool;
    fn run(&mut self, case: &CaseSpec, opts: &RunOptions, progress: Progress) -> Result<KernelReport>;
}

/// Put a report together from its measured parts (shared by both backends).
#[allow(clippy::too_many_arguments)]
pub fn assemble(
    case: &CaseSpec,
    variant: String,
    timing: TimingMethod,
    warmup: u32,
    stats: Stats,
    preset: Option<&GpuSpec>,
    memory: MemoryReport,
    check: Option<crate::bench::report::CheckReport>,
) -> KernelReport {
    let flops = case.flops();
    let bytes = case.bytes_moved();
    let t = stats.median.max(1e-12);
    let tflops = flops / t / 1e12;
    let gbps = bytes / t / 1e9;
    KernelReport {
        kernel: case.kernel().to_string(),
        variant,
        dtype: case.precision().name().to_string(),
        shape: case.shape_json(),
        flops,
        bytes_moved: bytes,
        timing,
        warmup,
        stats,
        tflops,
        gbps,
        peak: preset.map(|p| peak::peak_ref(p, case.precision(), tflops, gbps)),
        memory,
        check,
    }
}

/// The real backend.
pub struct WgpuBackend {
    pub gpu: Gpu,
    preset: Option<GpuSpec>,
}

impl WgpuBackend {
    /// Open an adapter (see [`Gpu::open`]).
    pub fn open(selector: Option<&str>) -> Result<WgpuBackend> {
        let gpu = Gpu::open(selector)?;
        let preset = peak::preset_for(&gpu.report.name);
        Ok(WgpuBackend { gpu, preset })
    }
}

impl Backend for WgpuBackend {
    fn adapter(&self) -> &AdapterReport {
        &self.gpu.report
    }
    fn preset(&self) -> Option<&GpuSpec> {
        self.preset.as_ref()
    }
    fn timing(&self, opts: &RunOptions) -> TimingMethod {
        if !opts.wall_clock && self.gpu.has(wgpu::Features::TIMESTAMP_QUERY) {
            TimingMethod::GpuTimestamps
        } else {
            TimingMethod::WallClock
        }
    }
    fn is_cpu(&self) -> bool {
        self.gpu.is_cpu()
    }
    fn supports_f16(&self) -> bool {
        self.gpu.has(wgpu::Features::SHADER_F16)
    }

    fn run(&mut self, case: &CaseSpec, opts: &RunOptions, progress: Progress) -> Result<KernelReport> {
        let gpu = &self.gpu;
        let baseline = gpu.allocator();
        let nvml_before = nvml::memory_for(&gpu.report);
        let kernels = Kernels::new(gpu);
        let built = workload::build(&kernels, case, opts.seed)?;
        // Let the uploads' staging memory go before reading the allocator.
        gpu.queue.submit([]);
        gpu.wait("uploading the inputs")?;
        let allocator = gpu.allocator().map(|(allocated, reserved)| AllocatorMemory {
            source: format!("wgpu allocator report ({} backend)", gpu.report.backend),
            allocated_bytes: allocated,
            reserved_bytes: reserved,
            baseline_allocated_bytes: baseline.map_or(0, |b| b.0),
            baseline_reserved_bytes: baseline.map_or(0, |b| b.1),
        });
        // NVML after the buffers exist (before the timed runs, which allocate nothing).
        let nvml_after = nvml::memory_for(&gpu.report).map(|mut n| {
            n.process_used_before_bytes = nvml_before.as_ref().and_then(|b| b.process_used_bytes);
            n
        });
        let check = if opts.check { Some(workload::check(gpu, case, &built, opts.seed)?) } else { None };
        let mut runner = workload::GpuRunner::new(gpu, &built.dispatches, !opts.wall_clock);
        let timing = runner.timing();
        let stats = measure(&mut runner, opts.plan, progress)?;
        let memory =
            MemoryReport { harness: HarnessMemory::from_records(built.records.clone()), allocator, nvml: nvml_after };
        Ok(assemble(case, built.variant.clone(), timing, opts.plan.warmup, stats, self.preset.as_ref(), memory, check))
    }
}

/// A deterministic stand-in: 1 TFLOP/s nominal, times scripted around it (±10%), memory from
/// the case's buffer plan, no checks. It measures nothing: without `allocator_alignment` its
/// memory is "not measurable"; with it, a scripted allocator gives each buffer its bytes rounded
/// up to that alignment (for tests of what `validate` does with device-allocator figures).
pub struct MockBackend {
    pub adapter: AdapterReport,
    pub preset: Option<GpuSpec>,
    pub cpu: bool,
    pub allocator_alignment: Option<u64>,
}

impl MockBackend {
    pub fn new() -> Self {
        MockBackend { adapter: mock_adapter(), preset: None, cpu: true, allocator_alignment: None }
    }
}

impl Default for MockBackend {
    fn default() -> Self {
        Self::new()
    }
}

pub fn mock_adapter() -> AdapterReport {
    AdapterReport {
        name: "mock adapter".into(),
        backend: "mock".into(),
        device_type: "cpu".into(),
        driver: "memplan".into(),
        driver_info: "scripted times".into(),
        vendor_id: 0,
        device_id: 0,
        features: AdapterFeatures {
            shader_f16: true,
            subgroups: false,
            timestamp_query: false,
            cooperative_matrix: Vec::new(),
        },
        limits: AdapterLimits {
            max_buffer_size: 1 << 31,
            max_storage_buffer_binding_size: 1 << 27,
            max_compute_workgroup_storage_size: 32768,
            max_compute_invocations_per_workgroup: 1024,
            max_compute_workgroups_per_dimension: 65535,
            max_storage_buffers_per_shader_stage: 8,
            subgroup_min_size: 8,
            subgroup_max_size: 8,
        },
    }
}

impl Backend for MockBackend {
    fn adapter(&self) -> &AdapterReport {
        &self.adapter
    }
    fn preset(&self) -> Option<&GpuSpec> {
        self.preset.as_ref()
    }
    fn timing(&self, _opts: &RunOptions) -> TimingMethod {
        TimingMethod::Mock
    }
    fn is_cpu(&self) -> bool {
        self.cpu
    }
    fn supports_f16(&self) -> bool {
        true
    }

    fn run(&mut self, case: &CaseSpec, opts: &RunOptions, progress: Progress) -> Result<KernelReport> {
        let base = case.flops() / 1e12;
        let times = [1.0, 1.1, 0.9, 1.05, 0.95].iter().map(|f| f * base).collect();
        let mut runner = MockRunner::new(times);
        let stats = measure(&mut runner, opts.plan, progress)?;
        let mut records = workload::plan_records(&workload::plan(case));
        let allocator = self.allocator_alignment.map(|align| {
            let align = align.max(1);
            for r in &mut records {
                r.device_bytes = Some(r.allocated.div_ceil(align) * align);
            }
            let total: u64 = records.iter().filter_map(|r| r.device_bytes).sum();
            AllocatorMemory {
                source: "scripted allocator (mock backend)".into(),
                allocated_bytes: total,
                reserved_bytes: total,
                baseline_allocated_bytes: 0,
                baseline_reserved_bytes: 0,
            }
        });
        let memory = MemoryReport { harness: HarnessMemory::from_records(records), allocator, nvml: None };
        Ok(assemble(
            case,
            case.nominal_variant(),
            runner.timing(),
            opts.plan.warmup,
            stats,
            self.preset.as_ref(),
            memory,
            None,
        ))
    }
}
