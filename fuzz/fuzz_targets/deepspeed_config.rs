//! `--deepspeed-config FILE`: reading never panics, and what it returns is usable (positive
//! micro-batch, accumulation and data-parallel size; ZeRO stage 0–3).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let path = std::path::Path::new("fuzz-ds.json");
    if let Ok(ds) = memplan::scenario::read_deepspeed_config(path, text) {
        assert!(ds.micro_batch > 0 && ds.accumulation > 0 && ds.dp > 0 && ds.zero <= 3, "{ds:?}");
    }
});
