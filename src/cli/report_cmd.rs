//! `memplan report -o report.html|report.md`: a capacity report in one file.

use super::args::UnitsArg;
use super::estimate::write_out;
use super::flags::ModelStepFlags;
use crate::api::report::{Capacity, ReportRequest};
use crate::error::{Error, Result};
use crate::render::chart as draw;
use crate::report::chart::ImageFormat;
use clap::{Args, ValueEnum};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ChartFiles {
    Svg,
    Png,
}

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// The model: a preset, `.toml` model file or `.json` Hugging Face config (none: the model flags).
    #[arg(value_name = "MODEL")]
    pub model_name: Option<String>,
    #[command(flatten)]
    pub flags: ModelStepFlags,
    /// GPUs to check, comma-separated presets; `NxGPU` entries (e.g. 64xh100-sxm) are also
    /// planned as clusters. Default: every preset, and plans on 8 × h100-sxm.
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub gpus: Vec<String>,
    #[arg(long, default_value = "8")]
    pub gpus_per_node: u64,
    /// Global batch for the plans: sequences (`1536`) or tokens (`4Mtok`). Default: about 1M tokens.
    #[arg(long)]
    pub global_batch: Option<String>,
    /// Matmul efficiency for the plans' step time (default: the GPU preset's).
    #[arg(long)]
    pub efficiency: Option<f64>,
    /// Plans listed per cluster.
    #[arg(long, default_value = "5")]
    pub top: usize,
    /// Output: `.html` (self-contained, charts inline) or `.md` (chart files written beside it).
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: PathBuf,
    /// Chart files for a Markdown report.
    #[arg(long, value_enum, default_value = "svg")]
    pub charts: ChartFiles,
    #[arg(long, value_enum, default_value = "gib")]
    pub units: UnitsArg,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Doc {
    Html,
    Markdown,
}

fn doc_kind(path: &Path) -> Result<Doc> {
    match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("html" | "htm") => Ok(Doc::Html),
        Some("md" | "markdown") => Ok(Doc::Markdown),
        _ => {
            Err(Error::invalid("-o", path.display(), "a path ending in .html or .md (the extension picks the format)"))
        }
    }
}

pub fn run(args: &ReportArgs, out: &mut dyn Write) -> Result<i32> {
    let kind = doc_kind(&args.output)?;
    // An output that cannot be written is known before any planning.
    crate::fsio::check_output(&args.output)?;
    let mut base = args.flags.scenario()?;
    if let Some(m) = &args.model_name {
        base.set_model(m)?;
    }
    let request = ReportRequest {
        base,
        gpus: args.gpus.clone(),
        gpus_per_node: args.gpus_per_node,
        global_batch: args.global_batch.clone(),
        efficiency: args.efficiency,
        top: args.top.max(1) as u64,
        units: args.units.into(),
    };
    let Capacity { document: doc, charts } = crate::api::report::capacity(&request)?;
    match kind {
        Doc::Html => {
            let mut svgs = Vec::new();
            for (id, _, c) in &charts {
                svgs.push((id.clone(), draw::to_svg(c)?));
            }
            let html = doc.to_html(&|id| svgs.iter().find(|(i, _)| i == id).map(|(_, s)| s.clone()));
            draw::write_text(&args.output, &html)?;
            write_out(out, &format!("wrote {}\n", args.output.display()))?;
        }
        Doc::Markdown => {
            let stem = args.output.file_stem().and_then(|s| s.to_str()).unwrap_or("report").to_string();
            let dir = args.output.parent().unwrap_or(Path::new(""));
            let ext = match args.charts {
                ChartFiles::Svg => "svg",
                ChartFiles::Png => "png",
            };
            // The document and its charts are one output set: every file is rendered and staged
            // first, then all are placed, so a chart that cannot be written leaves no document
            // (and no other chart) behind.
            let mut files = Vec::new();
            let mut set: Vec<(PathBuf, Vec<u8>)> = Vec::new();
            for (id, _, c) in &charts {
                let file = format!("{stem}-{id}.{ext}");
                let path = dir.join(&file);
                debug_assert!(ImageFormat::from_path(&path).is_ok());
                crate::fsio::check_output(&path)?;
                set.push((path.clone(), draw::encode(c, &path)?));
                files.push((id.clone(), file));
            }
            let md = doc.to_markdown(&|id| files.iter().find(|(i, _)| i == id).map(|(_, f)| f.clone()));
            set.insert(0, (args.output.clone(), md.into_bytes()));
            crate::fsio::write_set_atomic(&set)?;
            let mut msg = String::new();
            for (p, _) in &set {
                msg.push_str(&format!("wrote {}\n", p.display()));
            }
            write_out(out, &msg)?;
        }
    }
    Ok(0)
}
