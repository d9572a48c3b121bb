//! `--deepspeed-config FILE`: reading never panics, and what it returns is usable (positive
//! micro-batch, accumulation and data-parallel size; ZeRO stage 0–3).
#![no_main]
use libfuzzer_sys::fuzz_target;
#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let path = common::temp_file("deepspeed", "json", data);
    if let Ok(ds) = memplan::cli::args::read_deepspeed_config(&path) {
        assert!(ds.micro_batch > 0 && ds.accumulation > 0 && ds.dp > 0 && ds.zero <= 3, "{ds:?}");
    }
});
