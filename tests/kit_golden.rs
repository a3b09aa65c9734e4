//! The forward pass reproduces the golden logits `transformers` computed for the kit's models.

mod common;

use candle_core::Device;
use gms::data::{Dataset, Example};
use gms::model::LoadedModel;

fn check_model(name: &str) {
    let Some(models) = common::kit_models("golden logits") else {
        return;
    };
    let kit = common::kit_dir("golden logits").unwrap();
    let model = LoadedModel::load(&models.join(name), &Device::Cpu).unwrap();
    let enc = model.text_encoder().unwrap();
    let golden: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(kit.join(format!("golden/{name}.json"))).unwrap(),
    )
    .unwrap();
    let mut worst = 0f32;
    for (set, v) in golden.as_object().unwrap() {
        let sentences: Vec<Example> = v["sentences"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| Example {
                text: s.as_str().unwrap().into(),
                text_pair: None,
                label: 0,
                line: 0,
            })
            .collect();
        let want: Vec<Vec<f32>> = serde_json::from_value(v["logits"].clone()).unwrap();
        let encoded = enc
            .encode_set(
                &Dataset::from_examples("golden", sentences).examples,
                &Device::Cpu,
            )
            .unwrap();
        for batch in &encoded.batches {
            let got = model
                .classifier
                .logits(&batch.input)
                .unwrap()
                .to_vec2::<f32>()
                .unwrap();
            for (r, &row) in batch.rows.iter().enumerate() {
                for (g, w) in got[r].iter().zip(&want[row]) {
                    worst = worst.max((g - w).abs());
                }
            }
        }
        println!("{name}/{set}: checked {} rows", want.len());
    }
    println!("{name}: max |logit diff| = {worst:e}");
    assert!(worst <= 1e-4, "{name}: max |logit diff| {worst} > 1e-4");
}

#[test]
fn badnet_victim_matches_transformers() {
    check_model("sst2_badnet");
}

#[test]
fn sent_victim_matches_transformers() {
    check_model("sst2_sent");
}

#[test]
fn proxy_matches_transformers() {
    check_model("sst2_proxy_uci");
}
