//! `memplan serve`: the web page and its JSON API on 127.0.0.1 (see `crate::serve`).

use super::estimate::write_out;
use crate::error::Result;
use clap::Args;
use std::io::Write;

#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// Port on 127.0.0.1 (0: a free one; the URL is printed).
    #[arg(long, default_value_t = 8765)]
    pub port: u16,
}

pub fn run(args: &ServeArgs, out: &mut dyn Write) -> Result<i32> {
    let server = crate::serve::Server::bind(args.port)?;
    write_out(out, &format!("memplan: serving on {} (127.0.0.1 only; Ctrl-C stops)\n", server.url()))?;
    server.run();
    Ok(0)
}
