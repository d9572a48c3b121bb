//! memplan: how much GPU memory a model needs to train or serve, which parallel plan fits a
//! cluster and how fast it runs.
//!
//! Layers, each importing only those below it:
//! - core: `units`, `dtype`, `error`, `fsio` (the file rules), `model`, `hw`, `framework`,
//!   `parallel`, `memory`, `plan` — pure arithmetic, no I/O beyond reading presets;
//! - `scenario`: every setting defined once, and `Scenario::resolve` that checks them;
//! - `report` (report data and text rendering) and `api` (scenario in, reports out);
//! - faces and edges behind Cargo features: `cli` (the binary and its web page), `gpu` (`bench`,
//!   the wgpu harness), `charts` (`render`, plotters). `--no-default-features` builds the core.
//!
//! ```
//! use memplan::model::presets;
//! let gpt2 = presets::model("gpt2").unwrap();
//! assert_eq!(memplan::model::params::count(&gpt2), 124_439_808);
//! ```

pub mod api;
#[cfg(feature = "gpu")]
pub mod bench;
#[cfg(feature = "cli")]
pub mod cli;
pub mod dtype;
pub mod error;
pub mod framework;
pub mod fsio;
pub mod hw;
pub mod memory;
pub mod model;
pub mod parallel;
pub mod plan;
#[cfg(feature = "charts")]
pub mod render;
pub mod report;
pub mod scenario;
#[cfg(feature = "cli")]
pub mod serve;
pub mod units;

pub use error::{Error, Result};
