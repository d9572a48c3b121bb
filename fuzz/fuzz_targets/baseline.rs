//! `compare --baseline FILE`: reading an earlier compare result never panics, and diffing it
//! against itself finds no change.
#![no_main]
use libfuzzer_sys::fuzz_target;
#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let path = common::temp_file("baseline", "json", data);
    if let Ok(report) = memplan::report::budget::load_baseline(&path) {
        let diff = memplan::report::budget::BaselineDiff::new("fuzz", &report, &report.rows, Some(0.0));
        let _ = diff.to_table(memplan::units::ByteUnits::Gib);
        let _ = diff.to_markdown(memplan::units::ByteUnits::Gb);
    }
});
