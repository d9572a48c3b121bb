use memplan::memory::activations::{layer_ledger, StackShape};
use memplan::memory::{blocks, AttentionKernel, Precision, Runtime, Setup};
use memplan::model::{modules, presets, ModelSpec};

fn data() -> serde_json::Value {
    serde_json::from_str(include_str!("data/families_saved.json")).unwrap()
}

#[test]
fn scratch_saved() {
    for r in data()["saved"].as_array().unwrap() {
        let spec: ModelSpec = presets::parse_toml(std::path::Path::new("x.toml"), r["toml"].as_str().unwrap()).unwrap();
        let batch = r["batch"].as_u64().unwrap();
        let seq = r["seq"].as_u64().unwrap();
        let setup = Setup {
            precision: Precision::Fp32,
            micro_batch: batch,
            seq: seq.max(1),
            attention: AttentionKernel::Flash,
            dropout: Some(false),
            runtime: Runtime::Cpu,
            ..Setup::default()
        };
        let ours: u64 = if r["kind"] == "layer" {
            layer_ledger(&spec.stacks[0], &StackShape::new(batch, seq, 0), &setup).iter().map(|t| t.bytes).sum()
        } else {
            blocks::ledgers(&spec, &setup).iter().map(|l| l.total()).sum()
        };
        let measured = r["saved_bytes"].as_u64().unwrap();
        println!("{}: ours {ours} measured {measured} diff {}", r["id"], ours as i64 - measured as i64);
        let _ = modules::validate(&spec);
    }
}

#[test]
fn scratch_dump() {
    for r in data()["saved"].as_array().unwrap() {
        if !r["id"].as_str().unwrap().starts_with("unet-sd15") {
            continue;
        }
        let spec: ModelSpec = presets::parse_toml(std::path::Path::new("x.toml"), r["toml"].as_str().unwrap()).unwrap();
        let setup = Setup {
            precision: Precision::Fp32,
            micro_batch: 2,
            seq: 1,
            attention: AttentionKernel::Flash,
            dropout: Some(false),
            runtime: Runtime::Cpu,
            ..Setup::default()
        };
        for l in blocks::ledgers(&spec, &setup) {
            for t in &l.tensors {
                println!("DUMP {} {} | {} | {}", t.bytes, l.block, t.name, 0);
            }
        }
    }
}

#[test]
fn scratch_vae() {
    for r in data()["saved"].as_array().unwrap() {
        if !r["id"].as_str().unwrap().starts_with("vae") {
            continue;
        }
        let spec: ModelSpec = presets::parse_toml(std::path::Path::new("x.toml"), r["toml"].as_str().unwrap()).unwrap();
        let setup = Setup {
            precision: Precision::Fp32,
            micro_batch: 2,
            seq: 1,
            attention: AttentionKernel::Flash,
            dropout: Some(false),
            runtime: Runtime::Cpu,
            ..Setup::default()
        };
        for l in blocks::ledgers(&spec, &setup) {
            println!("VAE {} {}", l.block, l.total());
        }
    }
}
