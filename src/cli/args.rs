//! Output flags of `memplan estimate`; the scenario's flags come from the settings table
//! (`super::flags`).

use super::flags::ScenarioFlags;
use crate::units::ByteUnits;
use clap::{Args, ValueEnum};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
    Csv,
    Markdown,
}

/// Display units: gib (2^30) or gb (10^9).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum UnitsArg {
    Gib,
    Gb,
}

impl From<UnitsArg> for ByteUnits {
    fn from(u: UnitsArg) -> ByteUnits {
        match u {
            UnitsArg::Gib => ByteUnits::Gib,
            UnitsArg::Gb => ByteUnits::Gb,
        }
    }
}

#[derive(Args, Debug, Clone)]
pub struct OutputArgs {
    #[arg(long, value_enum, default_value = "table", help_heading = "Output")]
    pub format: Format,
    /// Display units: gib (2^30, default) or gb (10^9).
    #[arg(long, value_enum, default_value = "gib", help_heading = "Output")]
    pub units: UnitsArg,
    /// Show the per-tensor activation ledger.
    #[arg(long, help_heading = "Output")]
    pub ledger: bool,
}

#[derive(Args, Debug, Clone)]
pub struct EstimateArgs {
    #[command(flatten)]
    pub flags: ScenarioFlags,
    #[command(flatten)]
    pub output: OutputArgs,
}
