//! Writing a model folder from tensors in memory (a merge baseline, or the base folder mergekit
//! needs): the victim's config and tokenizer files with one `model.safetensors`.

use crate::error::{GmsError, Result};
use crate::model::folder::ModelFolder;
use candle_core::{DType, Tensor};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// The Hugging Face name of a storage dtype (`config.json`'s `dtype`, mergekit's `dtype`).
pub fn hf_dtype_name(dtype: DType) -> &'static str {
    match dtype {
        DType::F16 => "float16",
        DType::BF16 => "bfloat16",
        DType::F64 => "float64",
        _ => "float32",
    }
}

/// Writes an HF folder at `out`: the victim's side files, its `config.json` with the storage
/// dtype set to `dtype`, and `tensors` (floating ones converted to `dtype`) as one
/// `model.safetensors`. Atomic: `out` appears complete or not at all.
pub fn write_model_folder(
    victim: &ModelFolder,
    tensors: &BTreeMap<String, Tensor>,
    dtype: DType,
    out: &Path,
) -> Result<()> {
    let config_path = victim.dir.join("config.json");
    let mut config: serde_json::Value = std::fs::read_to_string(&config_path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .ok_or_else(|| {
            GmsError::bad_file(
                &config_path,
                "unreadable",
                "re-save the model with transformers",
            )
        })?;
    if let Some(c) = config.as_object_mut() {
        // transformers ≥ 4.56 writes `dtype`, older versions `torch_dtype`; set whichever is there.
        let keys: Vec<&str> = ["dtype", "torch_dtype"]
            .into_iter()
            .filter(|k| c.contains_key(*k))
            .collect();
        for k in if keys.is_empty() { vec!["dtype"] } else { keys } {
            c.insert(k.to_string(), hf_dtype_name(dtype).into());
        }
    }
    let converted: BTreeMap<&String, Tensor> = tensors
        .iter()
        .map(|(name, t)| {
            let t = if t.dtype().is_float() {
                t.to_dtype(dtype)?
            } else {
                t.clone()
            };
            Ok((name, t))
        })
        .collect::<Result<_>>()?;
    crate::export::atomic::write_dir(out, |tmp| {
        crate::export::model::copy_side_files(&victim.dir, tmp)?;
        let text = serde_json::to_string_pretty(&config).expect("json");
        crate::export::atomic::write_file(
            &tmp.join("config.json"),
            format!("{text}\n").as_bytes(),
        )?;
        let meta = HashMap::from([("format".to_string(), "pt".to_string())]);
        let path = tmp.join("model.safetensors");
        safetensors::serialize_to_file(converted.iter(), Some(meta), &path)
            .map_err(|e| GmsError::output(&path, e))
    })
}
