//! NVIDIA memory through NVML (loaded at run time: memplan starts on machines without it).
//! Device-wide used/free/total and this process's used bytes (compute and graphics contexts:
//! a Vulkan device may be listed as either).

use crate::bench::report::{AdapterReport, NvmlGpu, NvmlMemory, NvmlReport};
use nvml_wrapper::enums::device::UsedGpuMemory;
use nvml_wrapper::Nvml;

/// Every NVIDIA GPU NVML sees, or why NVML is unavailable.
pub fn probe() -> NvmlReport {
    let nvml = match Nvml::init() {
        Ok(n) => n,
        Err(e) => return NvmlReport::Unavailable { reason: reason(&e) },
    };
    let driver = nvml.sys_driver_version().unwrap_or_else(|_| "unknown".into());
    let count = match nvml.device_count() {
        Ok(c) => c,
        Err(e) => return NvmlReport::Unavailable { reason: format!("cannot count devices: {e}") },
    };
    let pid = std::process::id();
    let mut gpus = Vec::new();
    for index in 0..count {
        let Ok(dev) = nvml.device_by_index(index) else {
            continue;
        };
        let name = dev.name().unwrap_or_else(|_| format!("gpu {index}"));
        let Ok(mem) = dev.memory_info() else { continue };
        let mut process = None;
        for list in [dev.running_compute_processes(), dev.running_graphics_processes()].into_iter().flatten() {
            for p in list.iter().filter(|p| p.pid == pid) {
                if let UsedGpuMemory::Used(b) = p.used_gpu_memory {
                    process = Some(process.unwrap_or(0u64).max(b));
                }
            }
        }
        gpus.push(NvmlGpu {
            index,
            name,
            total_bytes: mem.total,
            used_bytes: mem.used,
            free_bytes: mem.free,
            process_used_bytes: process,
        });
    }
    NvmlReport::Available { driver, gpus }
}

fn reason(e: &nvml_wrapper::error::NvmlError) -> String {
    match e {
        nvml_wrapper::error::NvmlError::LibloadingError(_) => {
            "libnvidia-ml.so.1 not found: no NVIDIA driver on this machine".to_string()
        }
        other => format!("NVML failed to initialise: {other}"),
    }
}

/// PCI vendor id of NVIDIA.
pub const NVIDIA_VENDOR: u32 = 0x10de;

/// The NVML memory of the GPU behind an NVIDIA wgpu adapter (matched by name, or the only
/// NVIDIA GPU when there is one); `None` for other adapters or without NVML.
pub fn memory_for(adapter: &AdapterReport) -> Option<NvmlMemory> {
    if adapter.vendor_id != NVIDIA_VENDOR {
        return None;
    }
    let NvmlReport::Available { gpus, .. } = probe() else {
        return None;
    };
    let key = adapter.name.to_lowercase();
    let gpu = gpus
        .iter()
        .find(|g| key.contains(&g.name.to_lowercase()) || g.name.to_lowercase().contains(&key))
        .or_else(|| if gpus.len() == 1 { gpus.first() } else { None })?;
    Some(NvmlMemory {
        gpu: gpu.name.clone(),
        device_used_bytes: gpu.used_bytes,
        device_total_bytes: gpu.total_bytes,
        process_used_bytes: gpu.process_used_bytes,
        process_used_before_bytes: None,
    })
}
