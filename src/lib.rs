//! memplan: how much GPU memory a model needs to train or serve, which parallel plan fits a
//! cluster and how fast it runs.
//!
//! The core (model, memory, hw) is pure arithmetic with no I/O beyond reading presets.
//!
//! ```
//! use memplan::model::presets;
//! let gpt2 = presets::model("gpt2").unwrap();
//! assert_eq!(memplan::model::params::count(&gpt2), 124_439_808);
//! ```

pub mod api;
pub mod bench;
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
pub mod render;
pub mod report;
pub mod scenario;
pub mod units;

pub use error::{Error, Result};
