//! `memplan estimate`.

use super::args::{EstimateArgs, Format};
use crate::error::Result;
use crate::hw::GpuSpec;
use crate::memory::{estimate::estimate_plan, states::ParamInfo};
use crate::report::estimate::{EstimateReport, Serving};
use std::io::Write;

pub fn run(args: &EstimateArgs, out: &mut dyn Write) -> Result<i32> {
    let mut model = args.model.resolve()?;
    args.setup.apply_image_size(&mut model.spec)?;
    let mut setup = args.setup.resolve(&model.spec)?;
    if let Some(path) = &args.plan.deepspeed_config {
        let ds = super::args::read_deepspeed_config(path)?;
        setup.micro_batch = ds.micro_batch;
        setup.precision = ds.precision;
    }
    let overheads = args.setup.overheads()?;
    let plan = match &args.plan.from_config {
        Some(path) => {
            let p = &args.plan;
            let given = [
                ("--dp", p.dp.is_some()),
                ("--tp", p.tp != 1),
                ("--pp", p.pp != 1),
                ("--cp", p.cp != 1),
                ("--ep", p.ep != 1),
                ("--sp", p.sp),
                ("--vpp", p.vpp != 1),
                ("--zero", p.zero != 0),
                ("--fsdp", p.fsdp.is_some()),
                ("--distributed-optimizer", p.distributed_optimizer),
                ("--microbatches", p.microbatches.is_some()),
                ("--global-batch", p.global_batch.is_some()),
                ("--gpus", p.gpus.is_some()),
            ];
            if let Some((flag, _)) = given.iter().find(|(_, on)| *on) {
                return Err(crate::Error::conflict(
                    format!("{flag} with --from-config: the config fixes the plan"),
                    "drop the flag, or edit the config",
                ));
            }
            let format = p.from_config_format.as_deref().map(crate::plan::read::ConfigFormat::parse).transpose()?;
            let (mut fc, text) = crate::plan::read::read_file(path, format)?;
            fc.apply(&model.spec, &mut setup, &text)?
        }
        None => args.plan.resolve(&model.spec, &setup)?,
    };
    let info =
        if model.derived { ParamInfo::with_count(&model.spec, model.params) } else { ParamInfo::of(&model.spec) };
    let gpus = match &args.output.gpu {
        Some(name) => vec![GpuSpec::preset(name)?],
        None => GpuSpec::all()?,
    };
    let est = estimate_plan(&model.spec, &info, &setup, &plan, &overheads);
    let mut report = EstimateReport::new(&model.spec, model.params, model.derived, &setup, &est, &gpus);
    if !setup.training() && setup.kv_cache && est.worst().kv_cache > 0 {
        // Capacity: the total with one sequence, less that sequence's KV cache, is the base; each
        // more sequence adds its KV cache and the fragmentation margin on it.
        let one = crate::memory::Setup { micro_batch: 1, ..setup.clone() };
        let single = estimate_plan(&model.spec, &info, &one, &plan, &overheads);
        let w = single.worst();
        let per_seq = w.kv_cache;
        let step = per_seq + (per_seq as f64 * overheads.fragmentation).round() as u64;
        let serving = Serving {
            context_tokens: crate::memory::kv_cache::cached_tokens(one.seq, &one),
            kv_bytes_per_sequence: per_seq,
            base_bytes: w.total.saturating_sub(step),
            bytes_per_sequence: step,
        };
        for f in &mut report.fits {
            f.max_concurrent_sequences = Some(serving.max_sequences(f.memory_bytes));
        }
        report.serving = Some(serving);
    }
    let units = args.output.units.into();
    let text = match args.output.format {
        Format::Table => report.to_table(units, args.output.ledger),
        Format::Json => report.to_json() + "\n",
        Format::Csv => report.to_csv(),
        Format::Markdown => report.to_markdown(units),
    };
    write_out(out, &text)?;
    let fits = args.output.gpu.is_none() || report.fits.iter().all(|f| f.fits);
    Ok(if fits { 0 } else { 1 })
}

pub(crate) fn write_out(out: &mut dyn Write, text: &str) -> Result<()> {
    // A closed pipe (e.g. `| head`) is not an error worth a message.
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(crate::Error::Io { path: "<stdout>".into(), message: e.to_string() }),
    }
}
