//! `memplan completions bash|zsh|fish|powershell|elvish`: the completion script on stdout.

use super::estimate::write_out;
use crate::error::Result;
use clap::{Args, CommandFactory};
use clap_complete::Shell;
use std::io::Write;

#[derive(Args, Debug)]
#[command(after_long_help = "Install, for example:\n  \
bash: memplan completions bash > ~/.local/share/bash-completion/completions/memplan\n  \
zsh:  memplan completions zsh > ~/.zfunc/_memplan   (with fpath+=~/.zfunc before compinit)\n  \
fish: memplan completions fish > ~/.config/fish/completions/memplan.fish")]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: Shell,
}

pub fn run(args: &CompletionsArgs, out: &mut dyn Write) -> Result<i32> {
    let mut cmd = super::Cli::command();
    let mut buf = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "memplan", &mut buf);
    write_out(out, &String::from_utf8_lossy(&buf))?;
    Ok(0)
}
