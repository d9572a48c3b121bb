//! `memplan estimate`: flags → scenario → `api::estimate` → printed report.

use super::args::{EstimateArgs, Format};
use crate::error::Result;
use std::io::Write;

pub fn run(args: &EstimateArgs, out: &mut dyn Write) -> Result<i32> {
    let resolved = args.flags.scenario()?.resolve()?;
    let report = crate::api::estimate_resolved(&resolved)?;
    let units = args.output.units.into();
    let text = match args.output.format {
        Format::Table => report.to_table(units, args.output.ledger),
        Format::Json => report.to_json() + "\n",
        Format::Csv => report.to_csv(),
        Format::Markdown => report.to_markdown(units),
    };
    write_out(out, &text)?;
    Ok(if crate::api::fits_chosen(&resolved, &report) { 0 } else { 1 })
}

pub(crate) fn write_out(out: &mut dyn Write, text: &str) -> Result<()> {
    // A closed pipe (e.g. `| head`) is not an error worth a message.
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(crate::Error::Io { path: "<stdout>".into(), message: e.to_string() }),
    }
}
