//! Built-in GPU presets: every one loads, memory is the total the driver reports (MiB × 2^20)
//! where that is documented, and the figures shared with tests/data/validation/REFERENCES.md
//! agree with it.

use memplan::hw::GpuSpec;

const MIB: u64 = 1 << 20;

#[test]
fn every_gpu_preset_loads_with_sane_figures() {
    let all = GpuSpec::all().unwrap();
    let mut names: Vec<&str> = all.iter().map(|g| g.name.as_str()).collect();
    names.sort();
    let expected = [
        "a100-40gb",
        "a100-80gb",
        "a10g",
        "b200",
        "h100-pcie",
        "h100-sxm",
        "h200",
        "l4",
        "l40s",
        "mi250x",
        "mi300x",
        "rtx-3090",
        "rtx-4090",
        "t4",
        "v100-16gb",
        "v100-32gb",
    ];
    assert_eq!(names, expected);
    for g in &all {
        // The file stem is the preset's own name.
        assert_eq!(GpuSpec::preset(&g.name).unwrap(), *g);
        assert!(g.memory_bytes > 10 * (1 << 30), "{}", g.name);
        assert!(g.memory_bandwidth > 1e11 && g.memory_bandwidth < 1e13, "{}", g.name);
        // Tensor-core half precision is never slower than FP32 on these parts, and dense
        // figures stay below 2.5 PFLOP/s for 16-bit (B200 is the largest at 2.25).
        assert!(g.peak_flops.fp16 >= g.peak_flops.fp32, "{}", g.name);
        assert!(g.peak_flops.fp16 <= 2.5e15, "{}", g.name);
        if let Some(bf16) = g.peak_flops.bf16 {
            assert!(bf16 >= g.peak_flops.fp32, "{}", g.name);
        }
        assert!(g.interconnect.intra_node_bandwidth > 1e10, "{}", g.name);
        assert!((0.0..=1.0).contains(&g.default_efficiency), "{}", g.name);
    }
}

#[test]
fn memory_is_the_driver_reported_total() {
    // nvidia-smi memory.total (MiB) as public logs show it for each part; AMD totals in bytes
    // from rocm-smi / HIP.
    for (name, bytes) in [
        ("v100-16gb", 16160 * MIB),
        ("v100-32gb", 32510 * MIB),
        ("a100-40gb", 40960 * MIB),
        ("a100-80gb", 81920 * MIB),
        ("h100-sxm", 81559 * MIB),
        ("h100-pcie", 81559 * MIB),
        ("h200", 143771 * MIB),
        ("b200", 183359 * MIB),
        ("l4", 23034 * MIB),
        ("l40s", 46068 * MIB),
        ("a10g", 23028 * MIB),
        ("t4", 15360 * MIB),
        ("rtx-3090", 24576 * MIB),
        ("rtx-4090", 24564 * MIB),
        ("mi250x", 68_702_699_520),
        ("mi300x", 206_141_652_992),
    ] {
        assert_eq!(GpuSpec::preset(name).unwrap().memory_bytes, bytes, "{name}");
    }
}

#[test]
fn reference_hardware_figures() {
    // tests/data/validation/REFERENCES.md "Hardware (dense, no sparsity)".
    for name in ["h100-sxm", "h200"] {
        let g = GpuSpec::preset(name).unwrap();
        assert_eq!(g.peak_flops.fp32, 66.9e12);
        assert_eq!(g.peak_flops.tf32, Some(494.7e12));
        assert_eq!(g.peak_flops.bf16, Some(989.4e12));
        assert_eq!(g.peak_flops.fp8, Some(1978.9e12));
    }
    assert_eq!(GpuSpec::preset("h100-sxm").unwrap().memory_bandwidth, 3.35e12);
    assert_eq!(GpuSpec::preset("h200").unwrap().memory_bandwidth, 4.8e12);
    let a100 = GpuSpec::preset("a100-80gb").unwrap();
    assert_eq!((a100.peak_flops.fp32, a100.peak_flops.bf16), (19.5e12, Some(312e12)));
    assert!((a100.memory_bandwidth - 2.0e12).abs() < 0.05e12);
    // Parts without BF16 say so instead of inventing a figure.
    for name in ["v100-16gb", "v100-32gb", "t4"] {
        assert_eq!(GpuSpec::preset(name).unwrap().peak_flops.bf16, None, "{name}");
    }
}
