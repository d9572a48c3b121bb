//! Model descriptions: the architecture graph (`spec`), exact parameter counts (`params`),
//! a decoder shape derived from a bare parameter count (`derive`), Hugging Face config
//! import (`hf`), blocks that are not transformer layers (`modules`: CNNs, UNets, VAEs, LSTMs),
//! validation and preset loading (`presets`).

pub mod derive;
pub mod hf;
pub mod modules;
pub mod params;
pub mod presets;
pub mod spec;
pub mod user_presets;
pub mod validate;

pub use spec::*;
