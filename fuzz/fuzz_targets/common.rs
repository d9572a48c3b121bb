//! Shared checks: an accepted model must have a bounded parameter count, and its default
//! estimate must not wrap: mixed-bf16 weights are exactly 2 bytes per counted parameter, the
//! peak holds the weights, the total holds the peak, and nothing is near 2^64.

use memplan::memory::{estimate, states::ParamInfo, OverheadConfig, Setup};
use memplan::model::{params, validate::limits, ModelSpec};

#[allow(dead_code)]
pub fn check_model(spec: &ModelSpec) {
    let count = params::checked_count(spec).expect("an accepted model's count fits in u64");
    assert!(count <= limits::PARAMS, "accepted {count} parameters");
    let e = estimate(spec, &ParamInfo::of(spec), &Setup::default(), &OverheadConfig::default());
    assert_eq!(u128::from(e.states.weights), 2 * u128::from(count));
    assert!(e.peak_allocated >= e.states.weights);
    assert!(e.total >= e.peak_allocated);
    assert!(e.total < 1 << 63);
}

/// A file holding `data`, for parsers that read paths (one per process and target).
#[allow(dead_code)]
pub fn temp_file(target: &str, ext: &str, data: &[u8]) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("memplan-fuzz-{}-{target}.{ext}", std::process::id()));
    std::fs::write(&path, data).expect("write the fuzz input");
    path
}
