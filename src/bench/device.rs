//! wgpu device setup: adapter discovery and selection, the device with every feature the
//! benchmarks can use, captured errors (never wgpu's panicking default handler), buffer
//! helpers with the harness's own byte accounting, and read-back.
//!
//! Errors from wgpu arrive three ways and all become [`Error::Device`]:
//! - validation / out-of-memory / internal errors inside an error scope ([`Gpu::scoped`]);
//! - errors outside any scope, caught by the uncaptured-error handler installed at device
//!   creation and checked after each submission ([`Gpu::check`]);
//! - a lost device, recorded by the device-lost callback and checked the same way.

use crate::bench::report::{AdapterFeatures, AdapterLimits, AdapterReport};
use crate::error::{Error, Result};
use std::sync::{Arc, Mutex};

/// Environment variable that picks an adapter by (case-insensitive) substring of its name,
/// like `--adapter`.
pub const ADAPTER_ENV: &str = "MEMPLAN_ADAPTER";

pub(crate) fn device_error(message: impl Into<String>, hint: impl Into<String>) -> Error {
    Error::Device { message: message.into(), hint: hint.into() }
}

fn instance() -> wgpu::Instance {
    wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env())
}

/// Every adapter wgpu can see on this machine (all backends), best first: discrete GPUs,
/// then integrated, virtual, CPU; Vulkan/Metal/DX12 before GL.
pub fn enumerate() -> Vec<wgpu::Adapter> {
    let mut adapters = pollster::block_on(instance().enumerate_adapters(wgpu::Backends::all()));
    adapters.sort_by_key(|a| rank(&a.get_info()));
    adapters
}

fn rank(info: &wgpu::AdapterInfo) -> (u8, u8) {
    let ty = match info.device_type {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    };
    let backend = match info.backend {
        wgpu::Backend::Vulkan | wgpu::Backend::Metal | wgpu::Backend::Dx12 => 0,
        wgpu::Backend::Gl => 1,
        _ => 2,
    };
    (ty, backend)
}

/// Describe an adapter for `memplan devices` and for every report.
pub fn describe(adapter: &wgpu::Adapter) -> AdapterReport {
    let info = adapter.get_info();
    let f = adapter.features();
    let l = adapter.limits();
    let coop = if f.contains(wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX) {
        adapter
            .cooperative_matrix_properties()
            .iter()
            .map(|p| format!("{}x{}x{} {:?}->{:?}", p.m_size, p.n_size, p.k_size, p.ab_type, p.cr_type).to_lowercase())
            .collect()
    } else {
        Vec::new()
    };
    AdapterReport {
        name: info.name.clone(),
        backend: format!("{:?}", info.backend).to_lowercase(),
        device_type: device_type_name(info.device_type).to_string(),
        driver: info.driver.clone(),
        driver_info: info.driver_info.clone(),
        vendor_id: info.vendor,
        device_id: info.device,
        features: AdapterFeatures {
            shader_f16: f.contains(wgpu::Features::SHADER_F16),
            subgroups: f.contains(wgpu::Features::SUBGROUP),
            timestamp_query: f.contains(wgpu::Features::TIMESTAMP_QUERY),
            cooperative_matrix: coop,
        },
        limits: AdapterLimits {
            max_buffer_size: l.max_buffer_size,
            max_storage_buffer_binding_size: l.max_storage_buffer_binding_size,
            max_compute_workgroup_storage_size: l.max_compute_workgroup_storage_size,
            max_compute_invocations_per_workgroup: l.max_compute_invocations_per_workgroup,
            max_compute_workgroups_per_dimension: l.max_compute_workgroups_per_dimension,
            max_storage_buffers_per_shader_stage: l.max_storage_buffers_per_shader_stage,
            subgroup_min_size: info.subgroup_min_size,
            subgroup_max_size: info.subgroup_max_size,
        },
    }
}

pub fn device_type_name(t: wgpu::DeviceType) -> &'static str {
    match t {
        wgpu::DeviceType::DiscreteGpu => "discrete-gpu",
        wgpu::DeviceType::IntegratedGpu => "integrated-gpu",
        wgpu::DeviceType::VirtualGpu => "virtual-gpu",
        wgpu::DeviceType::Cpu => "cpu",
        wgpu::DeviceType::Other => "other",
    }
}

/// A usage role for the harness's byte accounting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Model weights.
    Weight,
    /// An activation the layer keeps for the backward pass.
    Saved,
    /// Input data that is not part of the model's memory (benchmark inputs).
    Input,
    /// Outputs and temporaries freed after the forward pass.
    Workspace,
}

/// One buffer the harness created.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BufferRecord {
    pub label: String,
    pub role: Role,
    /// Bytes the tensor needs (elements × dtype size).
    pub bytes: u64,
    /// Bytes actually requested from wgpu (rounded up to 16 for vector access).
    pub allocated: u64,
    /// Bytes the device allocator gave this buffer: the size of its allocation in wgpu's
    /// allocator report (the driver's memory requirement for the buffer, with its alignment).
    /// `None` where the backend gives no allocator report (GL, Metal) or for planned buffers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_bytes: Option<u64>,
}

/// An opened device with the benchmarks' features enabled.
pub struct Gpu {
    pub adapter: wgpu::Adapter,
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub report: AdapterReport,
    pub features: wgpu::Features,
    pub limits: wgpu::Limits,
    /// 8×8 f32 cooperative-matrix support (the configuration wgpu 30's WGSL implements).
    pub coop_f32_8x8: bool,
    errors: Arc<Mutex<Vec<String>>>,
    lost: Arc<Mutex<Option<String>>>,
    ledger: Mutex<Vec<BufferRecord>>,
}

impl std::fmt::Debug for Gpu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gpu").field("adapter", &self.report.name).finish()
    }
}

impl Gpu {
    /// Open the best adapter, or the first whose name contains `selector` (case-insensitive;
    /// `MEMPLAN_ADAPTER` when `selector` is `None`).
    pub fn open(selector: Option<&str>) -> Result<Gpu> {
        let env = std::env::var(ADAPTER_ENV).ok().filter(|s| !s.trim().is_empty());
        let selector = selector.map(str::to_string).or(env);
        let adapters = enumerate();
        if adapters.is_empty() {
            return Err(device_error(
                "no GPU adapter found (wgpu sees no Vulkan, Metal, DX12 or GL device)",
                "install a GPU driver, or Mesa's software Vulkan driver: \
                 apt-get install mesa-vulkan-drivers libvulkan1",
            ));
        }
        let adapter = match &selector {
            None => adapters.into_iter().next().expect("non-empty"),
            Some(sel) => {
                let key = sel.to_lowercase();
                let names: Vec<String> = adapters.iter().map(|a| a.get_info().name).collect();
                match adapters.into_iter().find(|a| a.get_info().name.to_lowercase().contains(&key)) {
                    Some(a) => a,
                    None => {
                        return Err(device_error(
                            format!("no adapter name contains `{sel}`"),
                            format!("available adapters: {}", names.join(", ")),
                        ))
                    }
                }
            }
        };
        Gpu::from_adapter(adapter)
    }

    pub fn from_adapter(adapter: wgpu::Adapter) -> Result<Gpu> {
        let report = describe(&adapter);
        let available = adapter.features();
        let wanted = wgpu::Features::SHADER_F16
            | wgpu::Features::SUBGROUP
            | wgpu::Features::TIMESTAMP_QUERY
            | wgpu::Features::TIMESTAMP_QUERY_INSIDE_ENCODERS
            | wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX;
        let features = available & wanted;
        let info = adapter.get_info();
        let coop_f32_8x8 = features.contains(wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX)
            && info.subgroup_min_size == info.subgroup_max_size
            && adapter.cooperative_matrix_properties().iter().any(|p| {
                p.m_size == 8
                    && p.n_size == 8
                    && p.k_size == 8
                    && p.ab_type == wgpu::CooperativeScalarType::F32
                    && p.cr_type == wgpu::CooperativeScalarType::F32
            });
        let experimental = if features.contains(wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX) {
            // SAFETY: the only experimental feature requested is cooperative matrices, used by
            // one kernel that is chosen only when the adapter reports the 8×8 f32 shape.
            unsafe { wgpu::ExperimentalFeatures::enabled() }
        } else {
            wgpu::ExperimentalFeatures::disabled()
        };
        // Ask for the adapter's own limits: the defaults cap buffers far below what GPUs offer.
        let limits = adapter.limits();
        let desc = wgpu::DeviceDescriptor {
            label: Some("memplan-bench"),
            required_features: features,
            required_limits: limits.clone(),
            experimental_features: experimental,
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        };
        let (device, queue) = pollster::block_on(adapter.request_device(&desc)).map_err(|e| {
            device_error(
                format!("cannot open a device on adapter `{}`: {e}", report.name),
                "pick another adapter with --adapter (see `memplan devices`)",
            )
        })?;
        let errors: Arc<Mutex<Vec<String>>> = Arc::default();
        let sink = errors.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            if let Ok(mut v) = sink.lock() {
                v.push(e.to_string());
            }
        }));
        let lost: Arc<Mutex<Option<String>>> = Arc::default();
        let lost_sink = lost.clone();
        device.set_device_lost_callback(move |reason, message| {
            if let Ok(mut l) = lost_sink.lock() {
                *l = Some(format!("{reason:?}: {message}"));
            }
        });
        Ok(Gpu {
            adapter,
            device,
            queue,
            report,
            features,
            limits,
            coop_f32_8x8,
            errors,
            lost,
            ledger: Mutex::default(),
        })
    }

    pub fn has(&self, f: wgpu::Features) -> bool {
        self.features.contains(f)
    }

    pub fn is_cpu(&self) -> bool {
        self.adapter.get_info().device_type == wgpu::DeviceType::Cpu
    }

    /// Fail with the first error wgpu reported outside a scope, or the device-lost reason.
    pub fn check(&self, during: &str) -> Result<()> {
        if let Some(reason) = self.lost.lock().ok().and_then(|l| l.clone()) {
            return Err(device_error(
                format!("the GPU device was lost during {during} ({reason})"),
                "the driver reset the device (a kernel may have run too long); retry with smaller shapes",
            ));
        }
        let first = self.errors.lock().ok().and_then(|mut v| {
            let first = v.first().cloned();
            v.clear();
            first
        });
        match first {
            Some(msg) => Err(device_error(
                format!("wgpu reported an error during {during}: {}", first_line(&msg)),
                "this is a bug in memplan's kernels or the driver; please report it with `memplan devices` output",
            )),
            None => Ok(()),
        }
    }

    /// Run `f` inside validation, out-of-memory and internal error scopes.
    pub fn scoped<T>(&self, during: &str, f: impl FnOnce() -> T) -> Result<T> {
        let internal = self.device.push_error_scope(wgpu::ErrorFilter::Internal);
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let out = f();
        let v = pollster::block_on(validation.pop());
        let o = pollster::block_on(oom.pop());
        let i = pollster::block_on(internal.pop());
        if let Some(e) = o {
            return Err(device_error(
                format!("out of GPU memory during {during}: {}", first_line(&e.to_string())),
                "reduce the shapes (--batch, --seq, --m/--n/--k) or free GPU memory",
            ));
        }
        if let Some(e) = v.or(i) {
            return Err(device_error(
                format!("wgpu rejected {during}: {}", first_line(&e.to_string())),
                "the shapes may exceed this adapter's limits; see `memplan devices`",
            ));
        }
        self.check(during)?;
        Ok(out)
    }

    /// Wait for all submitted work.
    pub fn wait(&self, during: &str) -> Result<()> {
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| device_error(format!("waiting for the GPU failed during {during}: {e}"), ""))?;
        self.check(during)
    }

    /// Check that a storage binding of `bytes` fits the adapter's limits.
    pub fn check_binding(&self, label: &str, bytes: u64) -> Result<()> {
        let max_binding = self.limits.max_storage_buffer_binding_size;
        let max_buffer = self.limits.max_buffer_size;
        if bytes > max_binding.min(max_buffer) {
            return Err(device_error(
                format!(
                    "{label} needs a {} storage buffer, over this adapter's limit of {} per binding",
                    fmt_bytes(bytes),
                    fmt_bytes(max_binding.min(max_buffer))
                ),
                "use smaller shapes (or --kernel flash for attention); `memplan devices` lists the limits",
            ));
        }
        Ok(())
    }

    /// A storage buffer of `bytes` (at least 16, rounded up to 16) recorded in the ledger.
    pub fn storage(&self, label: &str, role: Role, bytes: u64, contents: Option<&[u8]>) -> Result<wgpu::Buffer> {
        self.check_binding(label, bytes)?;
        let allocated = bytes.max(16).div_ceil(16) * 16;
        let usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST;
        let before = self.device.generate_allocator_report();
        let buffer = self.scoped(&format!("creating buffer `{label}`"), || {
            self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: allocated,
                usage,
                mapped_at_creation: false,
            })
        })?;
        let device_bytes =
            before.zip(self.device.generate_allocator_report()).and_then(|(b, a)| new_allocation(label, &b, &a));
        if let Some(data) = contents {
            let mut padded;
            let data = if data.len() % 4 != 0 {
                padded = data.to_vec();
                padded.resize(data.len().div_ceil(4) * 4, 0);
                &padded[..]
            } else {
                data
            };
            self.queue.write_buffer(&buffer, 0, data);
        }
        if let Ok(mut l) = self.ledger.lock() {
            l.push(BufferRecord { label: label.to_string(), role, bytes, allocated, device_bytes });
        }
        Ok(buffer)
    }

    /// A small uniform buffer (not recorded: it is not part of the workload's memory).
    pub fn uniform(&self, label: &str, data: &[u8]) -> Result<wgpu::Buffer> {
        let size = (data.len() as u64).max(16).div_ceil(16) * 16;
        let buffer = self.scoped(&format!("creating uniform `{label}`"), || {
            self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size,
                usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        })?;
        self.queue.write_buffer(&buffer, 0, data);
        Ok(buffer)
    }

    /// Fill `buffer` with a byte pattern (used to poison outputs before a checked run).
    pub fn fill(&self, buffer: &wgpu::Buffer, word: u32) {
        let words = (buffer.size() / 4) as usize;
        let data = vec![word; words];
        self.queue.write_buffer(buffer, 0, bytemuck::cast_slice(&data));
    }

    /// Copy `bytes` bytes of `buffer` back to the CPU.
    pub fn read(&self, buffer: &wgpu::Buffer, bytes: u64) -> Result<Vec<u8>> {
        let size = bytes.div_ceil(4) * 4;
        let staging = self.scoped("creating a read-back buffer", || {
            self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("read-back"),
                size: size.max(4),
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        })?;
        let mut enc = self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("read-back") });
        enc.copy_buffer_to_buffer(buffer, 0, &staging, 0, size);
        self.queue.submit([enc.finish()]);
        let result: Arc<Mutex<Option<std::result::Result<(), wgpu::BufferAsyncError>>>> = Arc::default();
        let slot = result.clone();
        staging.map_async(wgpu::MapMode::Read, .., move |r| {
            if let Ok(mut s) = slot.lock() {
                *s = Some(r);
            }
        });
        self.wait("read-back")?;
        let mapped = result.lock().ok().and_then(|mut s| s.take());
        match mapped {
            Some(Ok(())) => {}
            other => {
                return Err(device_error(format!("mapping the read-back buffer failed ({other:?})"), ""));
            }
        }
        let out = {
            let view = staging
                .get_mapped_range(..)
                .map_err(|e| device_error(format!("reading the mapped buffer failed: {e:?}"), ""))?;
            view[..bytes as usize].to_vec()
        };
        staging.unmap();
        Ok(out)
    }

    /// Buffers created since the last [`Gpu::take_ledger`].
    pub fn take_ledger(&self) -> Vec<BufferRecord> {
        self.ledger.lock().map(|mut l| std::mem::take(&mut *l)).unwrap_or_default()
    }

    /// wgpu's allocator report: (allocated, reserved) bytes, where the backend gives one.
    pub fn allocator(&self) -> Option<(u64, u64)> {
        self.device.generate_allocator_report().map(|r| (r.total_allocated_bytes, r.total_reserved_bytes))
    }

    /// Timestamp period in nanoseconds per tick.
    pub fn timestamp_period(&self) -> f64 {
        self.queue.get_timestamp_period() as f64
    }
}

/// The size of the allocation that appeared in the allocator report between `before` and
/// `after` for the buffer `label` (gpu-allocator names each allocation after its buffer's label;
/// wgpu-hal `vulkan::Device::create_buffer`). Allocations present before, or freed meanwhile,
/// do not count; when labels are discarded, a single new allocation is taken as the buffer's.
pub fn new_allocation(label: &str, before: &wgpu::AllocatorReport, after: &wgpu::AllocatorReport) -> Option<u64> {
    let mut seen: std::collections::HashMap<(&str, u64, u64), usize> = std::collections::HashMap::new();
    for a in &before.allocations {
        *seen.entry((a.name.as_str(), a.offset, a.size)).or_default() += 1;
    }
    let mut fresh = Vec::new();
    for a in &after.allocations {
        match seen.get_mut(&(a.name.as_str(), a.offset, a.size)) {
            Some(n) if *n > 0 => *n -= 1,
            _ => fresh.push(a),
        }
    }
    let named: Vec<u64> = fresh.iter().filter(|a| a.name == label).map(|a| a.size).collect();
    match (named.as_slice(), fresh.as_slice()) {
        ([size], _) => Some(*size),
        ([], [only]) => Some(only.size),
        _ => None,
    }
}

fn first_line(s: &str) -> String {
    // wgpu's messages are multi-line with a cause chain; keep them short but complete.
    s.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ")
}

/// `1.5 GiB`, `128 MiB`, `4 KiB`, `12 B`.
pub fn fmt_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else if v >= 100.0 || (v - v.round()).abs() < 1e-9 {
        format!("{v:.0} {}", UNITS[u])
    } else {
        format!("{v:.2} {}", UNITS[u])
    }
}
