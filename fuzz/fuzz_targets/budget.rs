//! `compare --budget FILE`: parsing and validating a budget never panics; an accepted budget has
//! scenarios, each with a model and a limit.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(b) = memplan::report::budget::Budget::parse(std::path::Path::new("fuzz-budget.toml"), text) {
        assert!(!b.scenarios.is_empty());
        for s in &b.scenarios {
            assert!(s.max_total.is_some() || s.max_peak_allocated.is_some() || !s.must_fit.is_empty());
        }
    }
});
