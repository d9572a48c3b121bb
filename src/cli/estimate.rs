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
    let plan = args.plan.resolve(&model.spec, &setup)?;
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
    if let Some(super::args::ServingChoice::Vllm { release, settings }) = args.setup.serving()? {
        report.serving_framework =
            Some(vllm_capacity(&model.spec, &setup, &plan, &est, &gpus, &overheads, release, settings)?);
        if let Some(c) = &report.serving_framework {
            for (f, (_, b)) in report.fits.iter_mut().zip(&c.per_gpu) {
                f.max_concurrent_sequences = Some(b.max_concurrency.floor() as u64);
                // vLLM refuses to start when one request of max_model_len does not fit.
                f.fits = b.kv_tokens >= b.max_model_len;
            }
        }
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

/// vLLM's start-up budget on each GPU (the worst pipeline stage's weights on one rank).
#[allow(clippy::too_many_arguments)]
fn vllm_capacity(
    model: &crate::model::ModelSpec,
    setup: &crate::memory::Setup,
    plan: &crate::parallel::ParallelPlan,
    est: &crate::memory::estimate::PlanEstimate,
    gpus: &[GpuSpec],
    overheads: &crate::memory::OverheadConfig,
    release: crate::memory::serving::Release,
    mut settings: crate::memory::serving::VllmSettings,
) -> Result<crate::report::capacity::ServingCapacity> {
    use crate::memory::serving::{vllm_budget, VllmDevice};
    settings.max_model_len = setup.context.unwrap_or(setup.seq);
    let act = setup.precision.activation_dtype();
    let kv = setup.kv_dtype.unwrap_or(act);
    let weights = est.worst().states.weights;
    let mut per_gpu = Vec::new();
    for g in gpus {
        let device = VllmDevice {
            name: g.name.clone(),
            // What torch.cuda.mem_get_info reports; the preset's memory until GPU runtime facts say it.
            total_memory: g.memory_bytes,
            cuda_context: overheads.cuda_context_bytes,
            nvlink: g.interconnect.intra_node.to_ascii_lowercase().contains("nvlink"),
        };
        per_gpu.push((g.name.clone(), vllm_budget(model, weights, plan.tp, act, kv, &device, &settings, release)?));
    }
    Ok(crate::report::capacity::ServingCapacity { framework: "vllm".into(), version: release.to_string(), per_gpu })
}
