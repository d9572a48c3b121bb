//! Model TOML files (`--model-file`, preset folders): parse + validate never panic, and an
//! accepted model is counted and estimated without wrapping.
#![no_main]
use libfuzzer_sys::fuzz_target;
#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(spec) = memplan::model::user_presets::parse_model(std::path::Path::new("fuzz.toml"), text) {
        common::check_model(&spec);
    }
});
