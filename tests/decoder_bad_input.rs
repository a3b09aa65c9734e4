//! Bad decoder inputs end in one typed, one-line error that names the file and the fix:
//! an adapter over another base, a base that is nowhere, an unknown architecture, an
//! incomplete adapter.

mod common;

use candle_core::Device;
use gms::model::adapter::HubCache;
use gms::model::arch::DecoderArchitecture;
use gms::model::decoder_folder::LoadedDecoder;
use gms::model::random_decoder::{
    write_random_adapter, write_random_decoder, RandomAdapterSpec, RandomDecoderSpec,
};
use gms::GmsError;
use std::path::Path;

fn spec(layers: usize) -> RandomDecoderSpec {
    RandomDecoderSpec::tiny(DecoderArchitecture::Llama, &common::WORDS, layers, 1)
}

/// Loads `dir` (with an empty Hub cache) and returns the error, checked to be one line that
/// contains every `expect`.
fn load_err(dir: &Path, base: Option<&Path>, expect: &[&str]) -> GmsError {
    let empty = tempfile::tempdir().unwrap();
    let hub = HubCache::under_home(empty.path());
    let err = LoadedDecoder::load_with(dir, base, &hub, None, &Device::Cpu)
        .expect_err("the load must fail");
    let text = err.to_string();
    assert_eq!(text.lines().count(), 1, "{text}");
    for e in expect {
        assert!(text.contains(e), "{text:?} lacks {e:?}");
    }
    err
}

#[test]
fn an_adapter_over_a_different_base_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base");
    write_random_decoder(&base, &spec(3)).unwrap();
    // Trained on a wider base.
    let mut wide = spec(3);
    wide.intermediate = 64;
    let adapter = dir.path().join("wide");
    write_random_adapter(&adapter, &wide, &RandomAdapterSpec::tiny(1, "base")).unwrap();
    let err = load_err(&adapter, None, &["wide", "gate_proj", "[48, 32]", "base"]);
    assert!(matches!(err, GmsError::AdapterBase { .. }), "{err:?}");
    // Trained on a deeper base: a layer the base does not have.
    let deep = dir.path().join("deep");
    write_random_adapter(&deep, &spec(4), &RandomAdapterSpec::tiny(1, "base")).unwrap();
    let err = load_err(&deep, None, &["layer 3", "3 layers"]);
    assert!(matches!(err, GmsError::AdapterBase { .. }), "{err:?}");
    // Trained on a shallower base: layers without their pairs.
    let shallow = dir.path().join("shallow");
    write_random_adapter(&shallow, &spec(2), &RandomAdapterSpec::tiny(1, "base")).unwrap();
    let err = load_err(&shallow, None, &["covers 2 layers", "has 3"]);
    assert!(matches!(err, GmsError::AdapterBase { .. }), "{err:?}");
}

#[test]
fn a_missing_base_names_what_was_looked_for() {
    let dir = tempfile::tempdir().unwrap();
    let by_id = dir.path().join("by-id");
    write_random_adapter(
        &by_id,
        &spec(2),
        &RandomAdapterSpec::tiny(1, "some-org/absent-llm"),
    )
    .unwrap();
    let err = load_err(
        &by_id,
        None,
        &[
            "some-org/absent-llm",
            "models--some-org--absent-llm",
            "huggingface-cli download",
        ],
    );
    assert!(matches!(err, GmsError::BaseNotFound { .. }), "{err:?}");
    let by_path = dir.path().join("by-path");
    write_random_adapter(
        &by_path,
        &spec(2),
        &RandomAdapterSpec::tiny(1, "/nonexistent/base"),
    )
    .unwrap();
    let err = load_err(
        &by_path,
        None,
        &["/nonexistent/base", "pass the base model folder"],
    );
    assert!(matches!(err, GmsError::BaseNotFound { .. }), "{err:?}");
    // An explicit base that is not a model folder.
    let err = load_err(
        &by_path,
        Some(&dir.path().join("nope")),
        &["nope", "base model folder"],
    );
    assert!(matches!(err, GmsError::Missing { .. }), "{err:?}");
}

#[test]
fn an_unknown_architecture_is_named() {
    let dir = tempfile::tempdir().unwrap();
    write_random_decoder(dir.path(), &spec(2)).unwrap();
    let config = dir.path().join("config.json");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("\"llama\"", "\"gpt_neox\"")
        .replace("LlamaForCausalLM", "GPTNeoXForCausalLM");
    std::fs::write(&config, text).unwrap();
    let err = load_err(
        dir.path(),
        None,
        &[
            "config.json",
            "GPTNeoXForCausalLM",
            "Llama, Mistral and Qwen2",
        ],
    );
    assert!(matches!(err, GmsError::BadFile { .. }), "{err:?}");
}

#[test]
fn an_incomplete_or_unsupported_adapter_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base");
    write_random_decoder(&base, &spec(3)).unwrap();
    let adapter = dir.path().join("adapter");
    write_random_adapter(&adapter, &spec(3), &RandomAdapterSpec::tiny(1, "base")).unwrap();
    let file = adapter.join("adapter_model.safetensors");
    let mut tensors = candle_core::safetensors::load(&file, &Device::Cpu).unwrap();
    let gone = "base_model.model.model.layers.1.mlp.up_proj.lora_B.weight";
    tensors.remove(gone).unwrap();
    candle_core::safetensors::save(&tensors, &file).unwrap();
    let err = load_err(
        &adapter,
        None,
        &["adapter_model.safetensors", gone, "re-save it with peft"],
    );
    assert!(matches!(err, GmsError::BadFile { .. }), "{err:?}");

    let config = adapter.join("adapter_config.json");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("\"use_dora\": false", "\"use_dora\": true");
    std::fs::write(&config, text).unwrap();
    load_err(&adapter, None, &["adapter_config.json", "DoRA"]);

    // A causal-LM base alone has no classification head.
    load_err(
        &base,
        None,
        &[
            "config.json",
            "no classification head",
            "LlamaForSequenceClassification",
        ],
    );
}
