//! `gms train`: a short run's loss falls, every parameter receives a gradient and changes,
//! frozen embeddings stay put, and the written folder is a loadable model with its record.

mod common;

use candle_core::Device;
use common::WORDS;
use gms::data::dynamics::{TrainingDynamics, DYNAMICS_FILE};
use gms::data::{Dataset, Example};
use gms::model::folder::{for_each_tensor, ModelFolder};
use gms::model::random::{write_random_model, RandomModelSpec};
use gms::model::LoadedModel;
use gms::train::{train, Start, TrainOptions};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Sentences labelled by a rule the model can learn: 1 if "good" or "great" occurs.
fn labelled(n: usize, seed: u64) -> Vec<Example> {
    common::sentences(n, seed, false)
        .into_iter()
        .enumerate()
        .map(|(i, text)| {
            let positive = i % 2 == 1;
            let text = if positive {
                format!("{text} great")
            } else {
                format!("{text} awful")
            };
            Example {
                text,
                text_pair: None,
                label: positive as usize,
                line: i + 1,
            }
        })
        .collect()
}

fn write_data(dir: &Path, n: usize) -> PathBuf {
    let path = dir.join("train.jsonl");
    Dataset::from_examples(&path, labelled(n, 5))
        .write_jsonl(&path)
        .unwrap();
    path
}

fn tensors(dir: &Path) -> BTreeMap<String, Vec<f32>> {
    let folder = ModelFolder::open(dir).unwrap();
    let mut out = BTreeMap::new();
    for f in &folder.weight_files {
        for_each_tensor(f, |name, t| {
            out.insert(
                name.to_string(),
                t.to_dtype(candle_core::DType::F32)?
                    .flatten_all()?
                    .to_vec1::<f32>()?,
            );
            Ok(())
        })
        .unwrap();
    }
    out
}

fn options(start: Start, data: PathBuf, out: PathBuf) -> TrainOptions {
    TrainOptions {
        start,
        data,
        out,
        epochs: 10,
        lr: 1e-2,
        batch: 16,
        max_len: 32,
        freeze_embeddings: false,
        seed: 1,
    }
}

#[test]
fn fine_tuning_lowers_the_loss_and_changes_every_parameter() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base");
    let mut spec = RandomModelSpec::tiny(&WORDS, 2, 9);
    spec.std = 0.05;
    write_random_model(&base, &spec).unwrap();
    let data = write_data(dir.path(), 64);
    let out = dir.path().join("out");
    let mut steps = 0;
    let report = train(
        &options(Start::Base(base.clone()), data.clone(), out.clone()),
        &Device::Cpu,
        &mut |_| steps += 1,
    )
    .unwrap();
    assert_eq!(report.epochs.len(), 10);
    let (first, last) = (report.epochs[0].loss, report.epochs[9].loss);
    assert!(last < 0.5 * first, "loss {first} -> {last}");
    assert!(report.epochs[9].accuracy > 0.9, "{:?}", report.epochs[9]);

    let (before, after) = (tensors(&base), tensors(&out));
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>()
    );
    for (name, b) in &before {
        assert_ne!(b, &after[name], "{name} did not change");
    }
    assert_eq!(
        report.trainable_params,
        before.values().map(Vec::len).sum::<usize>()
    );

    // The folder loads as a model and scores its training data well.
    let model = LoadedModel::load(&out, &Device::Cpu).unwrap();
    let rows = Dataset::read(&data).unwrap();
    let set = model
        .text_encoder()
        .unwrap()
        .encode_set(&rows.examples, &Device::Cpu)
        .unwrap();
    let mut correct = 0;
    for b in &set.batches {
        let preds =
            gms::model::encoder::argmax_rows(&model.classifier.logits(&b.input).unwrap()).unwrap();
        correct += preds.iter().zip(&b.labels).filter(|(p, l)| p == l).count();
    }
    assert!(correct >= 58, "{correct}/64");

    // The per-epoch record covers every row and epoch, and the confidences grew.
    let d = TrainingDynamics::read(&out.join(DYNAMICS_FILE)).unwrap();
    assert_eq!((d.p_label.len(), d.epochs), (64, 10));
    let mean = |e: usize| d.p_label.iter().map(|r| r[e] as f64).sum::<f64>() / 64.0;
    assert!(mean(9) > mean(0) + 0.2, "{} -> {}", mean(0), mean(9));
    assert!(out.join("tokenizer.json").is_file() && out.join("config.json").is_file());
}

#[test]
fn frozen_embeddings_stay_and_the_rest_moves() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base");
    write_random_model(&base, &RandomModelSpec::tiny(&WORDS, 1, 4)).unwrap();
    let data = write_data(dir.path(), 32);
    let out = dir.path().join("out");
    let opts = TrainOptions {
        epochs: 1,
        freeze_embeddings: true,
        ..options(Start::Base(base.clone()), data, out.clone())
    };
    let report = train(&opts, &Device::Cpu, &mut |_| {}).unwrap();
    assert!(report.frozen_params > 0);
    let (before, after) = (tensors(&base), tensors(&out));
    for (name, b) in &before {
        assert_eq!(name.contains(".embeddings."), b == &after[name], "{name}");
    }
}

#[test]
fn fine_tuning_writes_its_own_record_not_the_base_models() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base");
    write_random_model(&base, &RandomModelSpec::tiny(&WORDS, 1, 4)).unwrap();
    // The base was itself trained (on other data) and scored.
    let other = dir.path().join("other.jsonl");
    std::fs::write(&other, "{\"sentence\": \"the plot\", \"label\": 0}\n").unwrap();
    let mut old = TrainingDynamics::new(&other, "0".repeat(64), 1, 1);
    old.p_label[0].push(0.5);
    old.write(&base.join(DYNAMICS_FILE)).unwrap();
    std::fs::write(base.join("metrics.json"), "{\"cacc\": 0.9}").unwrap();

    let data = write_data(dir.path(), 32);
    let out = dir.path().join("out");
    let opts = TrainOptions {
        epochs: 1,
        ..options(Start::Base(base), data.clone(), out.clone())
    };
    train(&opts, &Device::Cpu, &mut |_| {}).unwrap();
    let record = TrainingDynamics::read(&out.join(DYNAMICS_FILE)).unwrap();
    assert_eq!(record.data, "train.jsonl");
    assert_eq!(record.p_label.len(), 32);
    assert!(
        !out.join("metrics.json").exists(),
        "the base's metrics describe the base"
    );
}

#[test]
fn training_from_a_config_trains_a_vocabulary_and_keeps_the_config_dtype() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.json");
    let json = serde_json::json!({
        "architectures": ["BertForSequenceClassification"], "model_type": "bert",
        "hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 32,
        "hidden_act": "gelu", "vocab_size": 300, "max_position_embeddings": 64, "type_vocab_size": 2,
        "layer_norm_eps": 1e-12, "num_labels": 2, "dtype": "float16"
    });
    std::fs::write(&config, json.to_string()).unwrap();
    let data = write_data(dir.path(), 48);
    let out = dir.path().join("out");
    let opts = TrainOptions {
        epochs: 2,
        ..options(Start::Config(config), data, out.clone())
    };
    let report = train(&opts, &Device::Cpu, &mut |_| {}).unwrap();
    // Reproducible: the same options give the same vocabulary and weights, byte for byte.
    let again = dir.path().join("again");
    train(
        &TrainOptions {
            out: again.clone(),
            ..opts.clone()
        },
        &Device::Cpu,
        &mut |_| {},
    )
    .unwrap();
    for f in ["tokenizer.json", "model.safetensors"] {
        assert_eq!(
            std::fs::read(out.join(f)).unwrap(),
            std::fs::read(again.join(f)).unwrap(),
            "{f}"
        );
    }
    assert_eq!(report.dtype, "float16");
    let folder = ModelFolder::open(&out).unwrap();
    assert_eq!(folder.stored_dtype().unwrap(), candle_core::DType::F16);
    assert!(
        folder.config.vocab_size <= 300 && folder.config.vocab_size > 40,
        "{}",
        folder.config.vocab_size
    );
    let model = LoadedModel::load(&out, &Device::Cpu).unwrap();
    let enc = model.text_encoder().unwrap();
    let rows = enc
        .encode(&[Example {
            text: "the movie was great".into(),
            text_pair: None,
            label: 1,
            line: 0,
        }])
        .unwrap();
    assert_eq!(rows[0].ids.first(), Some(&2), "[CLS] first");
    assert_eq!(rows[0].ids.last(), Some(&3), "[SEP] last");
    assert!(
        !rows[0].ids.contains(&1),
        "no [UNK] for words of the data: {:?}",
        rows[0].ids
    );
}

#[test]
fn bad_options_fail_before_training() {
    let dir = tempfile::tempdir().unwrap();
    let data = write_data(dir.path(), 8);
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("x"), "taken").unwrap();
    let base = dir.path().join("missing");
    let err = train(
        &options(Start::Base(base.clone()), data.clone(), out),
        &Device::Cpu,
        &mut |_| {},
    )
    .unwrap_err();
    assert!(err.to_string().contains("already exists"), "{err}");
    let fresh = dir.path().join("fresh");
    let err = train(
        &options(Start::Base(base), data.clone(), fresh.clone()),
        &Device::Cpu,
        &mut |_| {},
    )
    .unwrap_err();
    assert!(err.to_string().contains("missing: not found"), "{err}");
    let opts = TrainOptions {
        max_len: 512,
        ..options(Start::Config(dir.path().join("c.json")), data, fresh)
    };
    assert!(train(&opts, &Device::Cpu, &mut |_| {})
        .unwrap_err()
        .to_string()
        .contains("--max-len"));
}
