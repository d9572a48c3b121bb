use memplan::model::{modules, params, presets};

#[test]
fn scratch_counts() {
    for name in ["resnet-18", "resnet-50", "resnet-152", "stable-diffusion-v1-5", "stable-diffusion-xl-base-1.0", "bigbird-roberta-base", "lstm-seq2seq", "show-and-tell"] {
        let m = presets::model(name).unwrap();
        let per: Vec<(String, u64)> = m.modules.iter().map(|x| (x.name().to_string(), modules::module_params(x).params)).collect();
        println!("{name}: total {} modules {:?}", params::count(&m), per);
    }
}
