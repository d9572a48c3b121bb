//! Model families beyond plain transformer stacks (issue 7): CNN classifiers (ResNet), Stable
//! Diffusion (UNet with resolution levels, VAE, CLIP text encoders), CLIP training, BigBird's
//! block-sparse attention, LSTM sequence-to-sequence and captioning models.
//!
//! Evidence, in order: exact parameter counts against the published ones; per-tensor ledgers
//! checked by hand for small blocks; the ledgers against the tensors PyTorch's autograd really
//! saves and the peaks against measured live-tensor peaks (`tests/data/families_saved.json`,
//! written by `scripts/families_check.py` with torch 2.15, torchvision 0.29, diffusers 0.42 and
//! transformers 5.23 on CPU in fp32); scaling in batch, image size and sequence; bad inputs.

use memplan::memory::activations::{layer_ledger, StackShape};
use memplan::memory::estimate::{estimate, Estimate};
use memplan::memory::states::ParamInfo;
use memplan::memory::{blocks, AttentionKernel, OverheadConfig, Phase, Precision, Recompute, Runtime, Setup};
use memplan::model::{modules, params, presets, ModelSpec};
use serde_json::Value;

fn data() -> Value {
    serde_json::from_str(include_str!("data/families_saved.json")).unwrap()
}

fn spec_from(toml: &str) -> ModelSpec {
    let spec: ModelSpec = presets::parse_toml(std::path::Path::new("case.toml"), toml).unwrap();
    memplan::model::validate::validate(&spec).unwrap();
    spec
}

fn module_count(spec: &ModelSpec, name: &str) -> u64 {
    modules::module_params(spec.modules.iter().find(|m| m.name() == name).unwrap()).params
}

/// fp32 on CPU without dropout: the conditions `families_check.py` measured in.
fn cpu_fp32(batch: u64, seq: u64) -> Setup {
    Setup {
        precision: Precision::Fp32,
        micro_batch: batch,
        seq: seq.max(1),
        attention: AttentionKernel::Flash,
        dropout: Some(false),
        runtime: Runtime::Cpu,
        ..Setup::default()
    }
}

fn run(spec: &ModelSpec, setup: &Setup) -> Estimate {
    estimate(spec, &ParamInfo::of(spec), setup, &OverheadConfig::default())
}

fn train(batch: u64) -> Setup {
    Setup { micro_batch: batch, ..Setup::default() }
}

fn with_image(name: &str, image: u64) -> ModelSpec {
    let mut spec = presets::model(name).unwrap();
    modules::set_image_size(&mut spec, image).unwrap();
    spec
}

/// Run the CLI in process: (exit code or error message, stdout).
fn cli(args: &[&str]) -> Result<(i32, String), String> {
    use clap::Parser;
    let cli = memplan::cli::Cli::try_parse_from(std::iter::once("memplan").chain(args.iter().copied()))
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    match memplan::cli::run(cli, &mut out) {
        Ok(code) => Ok((code, String::from_utf8(out).unwrap())),
        Err(e) => Err(format!("{e} | hint: {}", e.hint().unwrap_or_default())),
    }
}

// ---------------------------------------------------------------------------------------------
// Parameter counts
// ---------------------------------------------------------------------------------------------

#[test]
fn resnet_counts_match_torchvision() {
    // torchvision/models/resnet.py, ResNet*_Weights.IMAGENET1K_V1.meta["num_params"].
    assert_eq!(params::count(&presets::model("resnet-18").unwrap()), 11_689_512);
    assert_eq!(params::count(&presets::model("resnet-50").unwrap()), 25_557_032);
    assert_eq!(params::count(&presets::model("resnet-152").unwrap()), 60_192_808);
}

#[test]
fn stable_diffusion_counts_match_diffusers() {
    // num_parameters() of the diffusers/transformers models built from
    // runwayml/stable-diffusion-v1-5 {unet,vae,text_encoder}/config.json.
    let sd = presets::model("stable-diffusion-v1-5").unwrap();
    assert_eq!(module_count(&sd, "unet"), 859_520_964);
    assert_eq!(module_count(&sd, "vae"), 83_653_863);
    assert_eq!(module_count(&sd, "text-encoder"), 123_060_480);
    assert_eq!(params::count(&sd), 1_066_235_307);
    // stabilityai/stable-diffusion-xl-base-1.0: UNet, VAE, CLIP ViT-L and OpenCLIP bigG text encoders.
    let xl = presets::model("stable-diffusion-xl-base-1.0").unwrap();
    assert_eq!(module_count(&xl, "unet"), 2_567_463_684);
    assert_eq!(module_count(&xl, "vae"), 83_653_863);
    assert_eq!(module_count(&xl, "text-encoder"), 123_060_480);
    assert_eq!(module_count(&xl, "text-encoder-2"), 694_659_840);
    assert_eq!(params::count(&xl), 3_468_837_867);
}

#[test]
fn sequence_model_counts() {
    // CLIP ViT-B/32: CLIPModel.num_parameters() (openai/clip-vit-base-patch32).
    assert_eq!(params::count(&presets::model("clip-vit-base-patch32").unwrap()), 151_277_313);
    // google/bigbird-roberta-base: BigBirdForPreTraining.num_parameters().
    assert_eq!(params::count(&presets::model("bigbird-roberta-base").unwrap()), 128_112_824);
    // Sutskever et al. 2014 §3.4: "384M parameters", plus PyTorch's LSTM biases and the softmax bias:
    // 160M + 80M embeddings, 2 × 4 layers × (4·1000·2000 + 8000), 80M + 80k softmax.
    let s2s = presets::model("lstm-seq2seq").unwrap();
    assert_eq!(params::count(&s2s), 160_000_000 + 80_000_000 + 8 * 8_008_000 + 80_080_000);
    assert_eq!(params::count(&s2s), 384_144_000);
    // Show and Tell (yunjey/pytorch-tutorial): ResNet-152 without fc + Linear(2048, 256) + BatchNorm1d(256)
    // + Embedding(10000, 256) + LSTM(256, 512) + Linear(512, 10000).
    let sat = presets::model("show-and-tell").unwrap();
    assert_eq!(module_count(&sat, "encoder"), 60_192_808 - (2048 * 1000 + 1000));
    assert_eq!(
        module_count(&sat, "decoder"),
        (2048 * 256 + 256) + 512 + 2_560_000 + (4 * 512 * (256 + 512) + 8 * 512) + 5_130_000
    );
    assert_eq!(params::count(&sat), 67_935_824);
}

#[test]
fn counts_agree_with_the_libraries() {
    // The same numbers as built by the libraries themselves (families_check.py --counts).
    let c = &data()["counts"];
    let expect = [
        ("resnet18", 11_689_512u64),
        ("resnet50", 25_557_032),
        ("resnet152", 60_192_808),
        ("sd15-unet", 859_520_964),
        ("sdxl-unet", 2_567_463_684),
        ("sd-vae", 83_653_863),
        ("clip-l-text", 123_060_480),
        ("openclip-bigg-text-projection", 694_659_840),
        ("bigbird-roberta-base-pretraining", 128_112_824),
        ("lstm-seq2seq", 384_144_000),
        ("show-and-tell", 67_935_824),
    ];
    for (k, v) in expect {
        assert_eq!(c[k].as_u64(), Some(v), "{k}");
    }
}

// ---------------------------------------------------------------------------------------------
// Ledgers by hand
// ---------------------------------------------------------------------------------------------

const TINY_RESNET: &str = r#"
name = "tiny-resnet"
architecture = "encoder"
[[modules]]
kind = "resnet"
name = "resnet"
image = 32
stem = 8
block = "basic"
layers = [1]
widths = [8]
classes = 10
"#;

#[test]
fn conv_batchnorm_relu_ledger_by_hand() {
    // Batch 2, 32×32 RGB, fp32. The stem: conv 7×7/2 → 8×16×16, BatchNorm, in-place ReLU, max-pool → 8×8×8.
    let stem = 2 * 8 * 16 * 16 * 4; // conv output (BatchNorm input), and the ReLU output (max-pool input)
    let stats = 2 * 8 * 4; // BatchNorm save_mean and save_invstd, fp32 per channel
    let indices = 2 * 8 * 8 * 8 * 8; // max-pool indices, int64
    let pooled = 2 * 8 * 8 * 8 * 4; // max-pool output, the next convolutions' input
                                    // One BasicBlock at 8×8: conv1 output, ReLU 1 output, conv2 output, block output (in-place ReLU).
    let act = 2 * 8 * 8 * 8 * 4;
    let block = 4 * act + 2 * stats;
    // Global pool → fc input (2 × 8), log-softmax over 10 classes (fp32), the loss's total weight.
    let head = 2 * 8 * 4 + 2 * 10 * 4 + 4;
    let expected = 2 * stem + stats + indices + pooled + block + head;
    assert_eq!(expected, 61_780);
    let spec = spec_from(TINY_RESNET);
    let ledgers = blocks::ledgers(&spec, &cpu_fp32(2, 1));
    assert_eq!(ledgers.iter().map(|l| l.total()).sum::<u64>(), expected);
    // In bf16 the activations halve, the statistics stay fp32, the indices int64, and conv1 saves
    // a bf16 copy of the fp32 pixels.
    let bf16 = blocks::ledgers(&spec, &Setup { precision: Precision::Bf16, ..cpu_fp32(2, 1) });
    let expected_bf16 =
        (2 * stem + pooled + 4 * act + 2 * 8 * 4 + 2 * 3 * 32 * 32 * 4) / 2 + 3 * stats + indices + 2 * 10 * 4 + 4;
    assert_eq!(bf16.iter().map(|l| l.total()).sum::<u64>(), expected_bf16);
}

#[test]
fn lstm_layer_ledger_by_hand() {
    let spec = spec_from(
        r#"
name = "one-lstm"
architecture = "encoder"
[[modules]]
kind = "lstm"
name = "lstm"
input = 8
hidden = 16
layers = 1
"#,
    );
    // Batch 2, 5 steps, fp32: the input sequence, h0/c0/hn/cn, the reserve (4 gates, cell and
    // hidden state per step: 6·H), the output sequence.
    let (b, t, i, h) = (2u64, 5u64, 8u64, 16u64);
    let expected = 4 * (b * t * i + 4 * b * h + 6 * b * t * h + b * t * h);
    assert_eq!(expected, 5312);
    let total: u64 = blocks::ledgers(&spec, &cpu_fp32(b, t)).iter().map(|l| l.total()).sum();
    assert_eq!(total, expected);
    // Parameters: 4H·(in + H) + 8H (PyTorch's bias_ih and bias_hh).
    assert_eq!(params::count(&spec), 4 * 16 * (8 + 16) + 8 * 16);
}

#[test]
fn diffusers_resnet_block_ledger_by_hand() {
    let spec = spec_from(
        r#"
name = "tiny-vae"
architecture = "encoder"
[[modules]]
kind = "vae"
name = "vae"
image = 8
channels = [32]
layers_per_block = 1
"#,
    );
    let ledgers = blocks::ledgers(&spec, &cpu_fp32(1, 1));
    let block = ledgers.iter().find(|l| l.block == "encoder down 0 resnet 0").unwrap();
    // 32 channels at 8×8, batch 1, fp32: input (GroupNorm and shortcut input), GroupNorm mean and
    // rstd (fp32, 32 groups), its output (SiLU input), SiLU output (conv1 input); the same after conv1.
    let e = 32 * 64 * 4;
    let stats = 2 * 32 * 4;
    assert_eq!(block.total(), 6 * e + 2 * stats);
}

// ---------------------------------------------------------------------------------------------
// Against PyTorch
// ---------------------------------------------------------------------------------------------

#[test]
fn ledgers_equal_autograd_saved_tensors() {
    // Distinct storages reached through saved_tensors_hooks (parameters, buffers and inputs
    // excluded) for ResNet-50/18, the SD v1.5 and SDXL UNet layouts, a trainable VAE, BigBird's
    // block-sparse layer at two lengths and CLIP ViT-B/32.
    let records = data()["saved"].as_array().unwrap().clone();
    assert!(records.len() >= 8);
    for r in &records {
        let id = r["id"].as_str().unwrap();
        let batch = r["batch"].as_u64().unwrap();
        let seq = r["seq"].as_u64().unwrap();
        let measured = r["saved_bytes"].as_u64().unwrap();
        let setup = cpu_fp32(batch, seq);
        let ours: u64 = match r["kind"].as_str().unwrap() {
            "modules" => {
                blocks::ledgers(&spec_from(r["toml"].as_str().unwrap()), &setup).iter().map(|l| l.total()).sum()
            }
            "layer" => {
                let spec = spec_from(r["toml"].as_str().unwrap());
                layer_ledger(&spec.stacks[0], &StackShape::new(batch, seq, 0), &setup).iter().map(|t| t.bytes).sum()
            }
            _ => {
                // A whole preset: its ledger, less the pixel values (an input there, excluded by the probe).
                let spec = presets::model(r["preset"].as_str().unwrap()).unwrap();
                let e = run(&spec, &setup);
                let pixels = 4 * batch * 3 * 224 * 224;
                e.ledger.iter().map(|l| l.bytes * l.count).sum::<u64>() - pixels
            }
        };
        if id.starts_with("clip") {
            // Both towers are exact; the contrastive head is a bound (4 fp32 b×b tensors where
            // PyTorch keeps 3 in the activation dtype, and no L2-norm intermediates).
            let err = (ours as f64 - measured as f64) / measured as f64;
            assert!(err.abs() < 0.001, "{id}: ours {ours}, measured {measured}");
        } else {
            assert_eq!(ours, measured, "{id}");
        }
    }
}

#[test]
fn peaks_match_measured_live_tensors() {
    // Peak of live tensor storage (the dispatch-level tracker of measure.py): a full ResNet-50
    // training step (second step, AdamW foreach) and no-grad forwards of ResNet-50, the SD v1.5
    // UNet (batch 2 for classifier-free guidance) and the SD v1.5 VAE decoder, fp32 on CPU.
    let mut checked = 0;
    for r in data()["peaks"].as_array().unwrap() {
        let id = r["id"].as_str().unwrap();
        let mut spec = presets::model(r["model"].as_str().unwrap()).unwrap();
        if let Some(part) = r["part"].as_str() {
            spec.modules.retain(|m| m.name() == part);
        }
        modules::set_image_size(&mut spec, r["image"].as_u64().unwrap()).unwrap();
        let phase = if r["phase"] == "train" { Phase::Train } else { Phase::Inference };
        let setup = Setup { phase, ..cpu_fp32(r["batch"].as_u64().unwrap(), 1) };
        let ours = run(&spec, &setup).peak_allocated as f64;
        let measured = r["peak_bytes"].as_u64().unwrap() as f64;
        let err = (ours - measured) / measured;
        assert!(err.abs() < 0.005, "{id}: ours {ours}, measured {measured}, error {:.3}%", 100.0 * err);
        checked += 1;
    }
    assert_eq!(checked, 4);
}

// ---------------------------------------------------------------------------------------------
// Scaling
// ---------------------------------------------------------------------------------------------

#[test]
fn resnet_grows_with_batch_and_image() {
    let spec = presets::model("resnet-50").unwrap();
    let peaks: Vec<u64> = [8, 16, 32].iter().map(|&b| run(&spec, &train(b)).peak_allocated).collect();
    assert!(peaks.windows(2).all(|w| w[0] < w[1]), "{peaks:?}");
    // Activations follow the pixels: 448² has 4× the pixels of 224² (only per-channel BatchNorm
    // statistics and the pooled features stay).
    let small = run(&with_image("resnet-50", 224), &train(16)).activations;
    let large = run(&with_image("resnet-50", 448), &train(16)).activations;
    let ratio = large as f64 / small as f64;
    assert!((3.98..4.0).contains(&ratio), "{ratio}");
    let mid = run(&with_image("resnet-50", 320), &train(16)).activations;
    assert!(small < mid && mid < large);
}

#[test]
fn stable_diffusion_grows_with_image_and_batch() {
    for phase in [Phase::Train, Phase::Inference] {
        let at = |image, batch| {
            run(&with_image("stable-diffusion-v1-5", image), &Setup { phase, micro_batch: batch, ..Setup::default() })
                .peak_allocated
        };
        assert!(at(512, 1) < at(768, 1) && at(768, 1) < at(1024, 1), "{phase:?}");
        assert!(at(512, 1) < at(512, 2) && at(512, 2) < at(512, 4), "{phase:?}");
    }
}

#[test]
fn lstm_grows_with_sequence() {
    let spec = presets::model("lstm-seq2seq").unwrap();
    let act = |seq| run(&spec, &Setup { seq, tgt_seq: seq, micro_batch: 32, ..Setup::default() }).activations;
    assert!(act(32) < act(64) && act(64) < act(128));
    // Everything an LSTM keeps is per step but h0, c0, hn and cn (4 layers × batch 32 × 1000, bf16,
    // in the encoder and the decoder): doubling both lengths doubles the rest.
    let states = 2 * 4 * (4 * 32 * 1000 * 2);
    assert_eq!(act(128) + states, 2 * act(64));
}

fn attention_core(spec: &ModelSpec, seq: u64, setup: &Setup) -> u64 {
    layer_ledger(&spec.stacks[0], &StackShape::new(1, seq, 0), &Setup { seq, ..setup.clone() })
        .iter()
        .filter(|t| t.attention_core)
        .map(|t| t.bytes)
        .sum()
}

#[test]
fn bigbird_attention_is_linear_in_sequence() {
    let sparse = presets::model("bigbird-roberta-base").unwrap();
    let mut dense = sparse.clone();
    dense.stacks[0].layer.attention.sparse = None;
    let eager = Setup { attention: AttentionKernel::Eager, dropout: Some(false), ..Setup::default() };
    // Doubling the sequence doubles the block-sparse core (the middle blocks are n − 4 of n, so a
    // little more than double), and quadruples dense attention's scores.
    let s = attention_core(&sparse, 4096, &eager) as f64 / attention_core(&sparse, 2048, &eager) as f64;
    assert!((2.0..2.06).contains(&s), "sparse ratio {s}");
    let d = attention_core(&dense, 4096, &eager) as f64 / attention_core(&dense, 2048, &eager) as f64;
    assert!((3.99..=4.0).contains(&d), "dense ratio {d}");
    // At 4096 tokens the sparse core is less than half of dense attention's (Hugging Face's
    // implementation copies keys and values per block), and the gap widens with the length.
    assert!(attention_core(&sparse, 4096, &eager) * 2 < attention_core(&dense, 4096, &eager));
    assert!(attention_core(&sparse, 16384, &eager) * 8 < attention_core(&dense, 16384, &eager));
    // Hugging Face falls back to full attention up to (5 + 2·3)·64 = 704 tokens.
    let short = Setup { seq: 512, ..eager.clone() };
    assert_eq!(
        layer_ledger(&sparse.stacks[0], &StackShape::new(1, 512, 0), &short),
        layer_ledger(&dense.stacks[0], &StackShape::new(1, 512, 0), &short)
    );
    // The whole training estimate follows: at 4096 tokens BigBird needs less than dense attention.
    let long = Setup { seq: 4096, micro_batch: 2, ..eager };
    assert!(run(&sparse, &long).activations < run(&dense, &long).activations);
    // Inference uses the same sparse sizes.
    let inf = Setup { phase: Phase::Inference, ..long };
    assert!(run(&sparse, &inf).peak_allocated <= run(&dense, &inf).peak_allocated);
}

#[test]
fn clip_contrastive_logits_are_quadratic_in_batch() {
    let spec = presets::model("clip-vit-base-patch32").unwrap();
    let logits = |b| {
        run(&spec, &train(b))
            .ledger
            .iter()
            .find(|l| l.tensor.starts_with("contrastive logits"))
            .map(|l| l.bytes)
            .unwrap()
    };
    assert_eq!(logits(512), 4 * logits(256));
    // logits_per_image and the two log-softmaxes, b × b each in the activation dtype (bf16 under
    // the default mixed-bf16 recipe): 3 · 2 · 256².
    assert_eq!(logits(256), 3 * 2 * 256 * 256);
    // Both towers train: text at 77 tokens, vision at 50 patches; the towers dominate at batch 256.
    let e = run(&spec, &train(256));
    assert!(e.activations > 10 * logits(256));
    let peak = e.peak_allocated;
    assert!(peak < run(&spec, &train(512)).peak_allocated);
}

// ---------------------------------------------------------------------------------------------
// Model states, recomputation, inference
// ---------------------------------------------------------------------------------------------

#[test]
fn frozen_modules_hold_weights_only() {
    // SD v1.5 fine-tuning: the UNet trains (mixed-bf16: 2 + 2 + 12 bytes per parameter), the VAE
    // and the text encoder are frozen in bf16.
    let sd = presets::model("stable-diffusion-v1-5").unwrap();
    let e = run(&sd, &train(1));
    let unet = 859_520_964u64;
    let frozen = 83_653_863 + 123_060_480;
    assert_eq!(e.states.weights, 2 * unet + 2 * frozen);
    assert_eq!(e.states.gradients, 2 * unet);
    assert_eq!(e.states.optimizer, 12 * unet);
    assert_eq!(e.parameters, unet + frozen);
    // Inference: every weight, no gradients.
    let inf = run(&sd, &Setup { phase: Phase::Inference, ..Setup::default() });
    assert_eq!(inf.states.weights, 2 * (unet + frozen));
}

#[test]
fn checkpointing_keeps_block_inputs() {
    let sd = presets::model("stable-diffusion-v1-5").unwrap();
    let none = run(&sd, &train(4)).activations;
    let selective = run(&sd, &Setup { recompute: Recompute::Selective, ..train(4) }).activations;
    let full = run(&sd, &Setup { recompute: Recompute::Full, ..train(4) }).activations;
    assert!(full * 5 < none, "full {full}, none {none}");
    assert!(selective < none && full < selective);
}

#[test]
fn inference_runs_the_unet_on_twice_the_batch() {
    let sd = presets::model("stable-diffusion-v1-5").unwrap();
    let shapes = blocks::module_shapes(&sd, &Setup { phase: Phase::Inference, micro_batch: 3, ..Setup::default() });
    let unet = sd.modules.iter().position(|m| m.name() == "unet").unwrap();
    assert_eq!(shapes[unet].batch, 6);
    assert_eq!(shapes[unet].resolution, 64);
    let mut no_cfg = sd.clone();
    if let modules::Module::Unet(u) = &mut no_cfg.modules[unet] {
        u.guidance = false;
    }
    let with = run(&sd, &Setup { phase: Phase::Inference, micro_batch: 4, ..Setup::default() }).peak_allocated;
    let without = run(&no_cfg, &Setup { phase: Phase::Inference, micro_batch: 4, ..Setup::default() }).peak_allocated;
    assert!(without <= with);
}

#[test]
fn every_family_estimates_in_both_phases() {
    for name in [
        "resnet-18",
        "resnet-50",
        "resnet-152",
        "stable-diffusion-v1-5",
        "stable-diffusion-xl-base-1.0",
        "bigbird-roberta-base",
        "lstm-seq2seq",
        "show-and-tell",
        "clip-vit-base-patch32",
    ] {
        let spec = presets::model(name).unwrap();
        for phase in [Phase::Train, Phase::Inference] {
            let e = run(&spec, &Setup { phase, micro_batch: 2, seq: 256, tgt_seq: 64, ..Setup::default() });
            assert!(e.peak_allocated > e.states.weights, "{name} {phase:?}");
            assert!(e.total > e.peak_allocated);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// CLI and bad inputs
// ---------------------------------------------------------------------------------------------

#[test]
fn cli_estimates_resnet_at_an_image_size() {
    let (code, out) =
        cli(&["estimate", "--model", "resnet-50", "--batch", "64", "--image-size", "224", "--format", "json"]).unwrap();
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["model"]["parameters"], 25_557_032);
    assert!(v["per_gpu"]["activations_bytes"].as_u64().unwrap() > 1 << 30);
    assert!(v["assumptions"].as_array().unwrap().iter().any(|a| a.as_str().unwrap().contains("224×224")));
    let (_, table) =
        cli(&["estimate", "--model", "stable-diffusion-v1-5", "--phase", "inference", "--image-size", "768"]).unwrap();
    assert!(table.contains("96×96 latents of 768×768 images, batch 2 (classifier-free guidance)"), "{table}");
    // `compare` varies the image size like any other setting.
    let (code, table) = cli(&["compare", "resnet-50", "--vary", "image-size=224,448", "--batch", "32"]).unwrap();
    assert_eq!(code, 0);
    assert!(table.contains("resnet-50 image-size=448"), "{table}");
    // Data parallelism with ZeRO works for module models.
    let (code, _) = cli(&["estimate", "--model", "resnet-50", "--dp", "4", "--zero", "2"]).unwrap();
    assert_eq!(code, 0);
}

#[test]
fn bad_inputs_are_clear_errors() {
    let err = |args: &[&str]| cli(args).expect_err("an error");
    let e = err(&["estimate", "--model", "resnet-50", "--image-size", "250"]);
    assert!(e.contains("not a multiple of 32") && e.contains("224 or 256"), "{e}");
    let e = err(&["estimate", "--model", "stable-diffusion-v1-5", "--image-size", "500"]);
    assert!(e.contains("multiple of 64"), "{e}");
    let e = err(&["estimate", "--model", "gpt2", "--image-size", "224"]);
    assert!(e.contains("reads no images"), "{e}");
    let e = err(&["estimate", "--model", "vit-base-patch16-224", "--image-size", "384"]);
    assert!(e.contains("position table"), "{e}");
    let e = err(&["estimate", "--model", "resnet-50", "--image-size", "0"]);
    assert!(e.contains("--image-size"), "{e}");
    let e = err(&["estimate", "--model", "resnet-50", "--tp", "2"]);
    assert!(e.contains("transformer stacks only") && e.contains("data parallelism"), "{e}");
    let e = err(&["plan", "--model", "stable-diffusion-v1-5", "--gpus", "8xh100-sxm", "--global-batch", "64"]);
    assert!(e.contains("memplan estimate"), "{e}");
    let e = err(&["estimate", "--model", "stable-diffusion-v1-5", "--finetune", "lora"]);
    assert!(e.contains("LoRA is modelled for transformer stacks"), "{e}");
    let e = err(&["estimate", "--model", "stable-diffusion-v1-5", "--phase", "inference", "--weights", "int8"]);
    assert!(e.contains("quantized weights are modelled for transformer layer matrices"), "{e}");
}

#[test]
fn malformed_modules_are_rejected() {
    let parse = |toml: &str| -> Result<ModelSpec, String> {
        let text = |e: memplan::Error| format!("{e} | hint: {}", e.hint().unwrap_or_default());
        let spec: ModelSpec = presets::parse_toml(std::path::Path::new("bad.toml"), toml).map_err(text)?;
        memplan::model::validate::validate(&spec).map_err(text)?;
        Ok(spec)
    };
    let unet = |extra: &str| {
        format!(
            "name = \"u\"\narchitecture = \"encoder\"\n[[modules]]\nkind = \"unet\"\nname = \"unet\"\nimage = 512\n\
             layers_per_block = 2\nmid_depth = 1\ncross_attention_dim = 768\n{extra}"
        )
    };
    let e = parse(&unet("channels = [320, 640]\ntransformer_depth = [1]\nheads = [8, 8]\n")).unwrap_err();
    assert!(e.contains("one value per level"), "{e}");
    let e = parse(&unet("channels = [320, 650]\ntransformer_depth = [1, 1]\nheads = [8, 8]\n")).unwrap_err();
    assert!(e.contains("multiples of the heads and of the groups"), "{e}");
    assert!(parse(&unet("channels = [320, 640]\ntransformer_depth = [1, 1]\nheads = [8, 8]\n")).is_ok());
    let e = parse("name = \"r\"\narchitecture = \"encoder\"\n[[modules]]\nkind = \"resnet\"\nname = \"r\"\nimage = 224\nstem = 64\nblock = \"basic\"\nlayers = [2, 2]\nwidths = [64]\n").unwrap_err();
    assert!(e.contains("one width per stage"), "{e}");
    let e = parse("name = \"r\"\narchitecture = \"encoder\"\n[[modules]]\nkind = \"resnet\"\nname = \"r\"\nimage = 224\nstem = 64\nblock = \"basic\"\nlayers = [2]\nwidths = [64]\ncolour = 1\n").unwrap_err();
    assert!(e.contains("colour"), "{e}");
    let e = parse("name = \"e\"\narchitecture = \"encoder\"\n").unwrap_err();
    assert!(e.contains("no stacks and no modules"), "{e}");
    // Block-sparse attention belongs to bidirectional self-attention.
    let mut gpt2 = presets::model("gpt2").unwrap();
    gpt2.stacks[0].layer.attention.sparse = Some(modules::BlockSparse { block: 64, random: 3 });
    let e = memplan::model::validate::validate(&gpt2).unwrap_err().to_string();
    assert!(e.contains("block-sparse"), "{e}");
}
