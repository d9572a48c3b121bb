//! `chart bench FILE` and `plan --calibration FILE`: bench and validate JSON never panic the
//! readers, and a chart is drawn from whatever they accept.
#![no_main]
use libfuzzer_sys::fuzz_target;
#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let path = common::temp_file("bench", "json", data);
    let _ = memplan::bench::report::BenchFile::load(&path);
    if let Ok((_, items)) = memplan::bench::chart::bench_items(&path) {
        for i in &items {
            for (e, m) in i.bytes.iter().chain(i.tflops.iter()) {
                assert!(e.is_none_or(f64::is_finite) && m.is_none_or(f64::is_finite), "{i:?}");
            }
        }
    }
});
