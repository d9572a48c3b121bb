//! Drawing (feature `charts`): charts to SVG/PNG with plotters. The chart data is
//! `crate::report::chart`; nothing in the core depends on this module.

pub mod chart;
