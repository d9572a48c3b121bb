//! Hugging Face config.json import never panics; an accepted model is counted and estimated
//! without wrapping.
#![no_main]
use libfuzzer_sys::fuzz_target;
#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(spec) = memplan::model::hf::from_hf_json("fuzz", text) {
        common::check_model(&spec);
    }
});
