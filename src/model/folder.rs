//! A Hugging Face model folder on disk: config, tokenizer and safetensors weights.
//!
//! Weights are memory-mapped, checked (readable, finite) and converted to f32 once; the
//! folder itself is only ever read.

use crate::error::{GmsError, Result};
use crate::model::config::ModelConfig;
use candle_core::safetensors::Load;
use candle_core::{DType, Device, Tensor};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Tensors of one model by their checkpoint names, f32, on the compute device.
pub type TensorMap = HashMap<String, Tensor>;

/// A model folder found on disk, not yet loaded.
#[derive(Debug, Clone)]
pub struct ModelFolder {
    /// The folder.
    pub dir: PathBuf,
    /// Its parsed `config.json`.
    pub config: ModelConfig,
    /// Its safetensors files (one, or the shards named by the index).
    pub weight_files: Vec<PathBuf>,
}

impl ModelFolder {
    /// Finds config and weights in `dir`; refuses pickle checkpoints.
    pub fn open(dir: &Path) -> Result<ModelFolder> {
        if !dir.is_dir() {
            return Err(GmsError::Missing {
                path: dir.to_path_buf(),
                what: "model folder",
                fix: "pass a folder holding config.json, tokenizer.json and *.safetensors",
            });
        }
        let config = ModelConfig::from_file(&dir.join("config.json"))?;
        let weight_files = find_weight_files(dir)?;
        Ok(ModelFolder {
            dir: dir.to_path_buf(),
            config,
            weight_files,
        })
    }

    /// Path of the folder's `tokenizer.json`.
    pub fn tokenizer_path(&self) -> PathBuf {
        self.dir.join("tokenizer.json")
    }

    /// Reads every tensor as f32 onto `device`, failing on unreadable files and NaN/inf values.
    pub fn load_tensors(&self, device: &Device) -> Result<TensorMap> {
        let mut map = TensorMap::new();
        for file in &self.weight_files {
            for_each_tensor(file, |name, tensor| {
                let t = tensor.to_dtype(DType::F32)?;
                check_finite(file, name, &t)?;
                map.insert(name.to_string(), t.to_device(device)?);
                Ok(())
            })?;
        }
        Ok(map)
    }

    /// Storage dtype of the weights, read from the first floating tensor of the first file.
    pub fn stored_dtype(&self) -> Result<DType> {
        let mut found = None;
        for_each_tensor(&self.weight_files[0], |_, t| {
            if found.is_none() && t.dtype().is_float() {
                found = Some(t.dtype());
            }
            Ok(())
        })?;
        Ok(found.unwrap_or(DType::F32))
    }

    /// sha256 over `config.json` and every weight file, in order: identifies the model an
    /// output came from.
    pub fn fingerprint(&self) -> Result<String> {
        let mut files = vec![self.dir.join("config.json")];
        files.extend(self.weight_files.iter().cloned());
        sha256_files(&files)
    }
}

/// Hex sha256 over the concatenated contents of `files`.
pub fn sha256_files(files: &[PathBuf]) -> Result<String> {
    let mut hasher = Sha256::new();
    for f in files {
        let mut file = std::fs::File::open(f)
            .map_err(|e| GmsError::bad_file(f, e.to_string(), "check the file's permissions"))?;
        std::io::copy(&mut file, &mut hasher)
            .map_err(|e| GmsError::bad_file(f, e.to_string(), "check the file's permissions"))?;
    }
    Ok(format!("{:x}", hasher.finalize()))
}

/// The safetensors files of the folder `dir`: `model.safetensors`, or the shards its index names;
/// refuses pickle checkpoints with the command that converts them.
pub fn find_weight_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let single = dir.join("model.safetensors");
    if single.is_file() {
        return Ok(vec![single]);
    }
    let index = dir.join("model.safetensors.index.json");
    if index.is_file() {
        return shards_from_index(dir, &index);
    }
    for pickle in [
        "pytorch_model.bin",
        "pytorch_model.bin.index.json",
        "tf_model.h5",
    ] {
        if dir.join(pickle).exists() {
            return Err(GmsError::bad_file(
                dir.join(pickle),
                "not a safetensors checkpoint (gms never reads pickle files)",
                "convert it: python -c \"from transformers import AutoModelForSequenceClassification as M; M.from_pretrained('DIR').save_pretrained('DIR', safe_serialization=True)\"",
            ));
        }
    }
    Err(GmsError::Missing {
        path: single,
        what: "model weights",
        fix: "the folder needs model.safetensors or model.safetensors.index.json with its shards",
    })
}

fn shards_from_index(dir: &Path, index: &Path) -> Result<Vec<PathBuf>> {
    let bad =
        |problem: String| GmsError::bad_file(index, problem, "re-save the model with transformers");
    let text = std::fs::read_to_string(index).map_err(|e| bad(e.to_string()))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| bad(format!("invalid JSON ({e})")))?;
    let map = value["weight_map"]
        .as_object()
        .ok_or_else(|| bad("no \"weight_map\"".into()))?;
    let mut names: Vec<&str> = map.values().filter_map(|v| v.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    if names.is_empty() {
        return Err(bad("empty \"weight_map\"".into()));
    }
    names
        .into_iter()
        .map(|n| {
            let p = dir.join(n);
            if p.is_file() {
                Ok(p)
            } else {
                Err(GmsError::Missing {
                    path: p,
                    what: "weight shard named by model.safetensors.index.json",
                    fix: "copy the missing shard into the folder or re-save the model",
                })
            }
        })
        .collect()
}

/// Memory-maps a safetensors file and hands each tensor (in its stored dtype, on the CPU) to
/// `f`.
pub fn for_each_tensor(file: &Path, mut f: impl FnMut(&str, Tensor) -> Result<()>) -> Result<()> {
    let unreadable = |problem: String| {
        GmsError::bad_file(
            file,
            problem,
            "the file is truncated or not safetensors; copy or re-save it",
        )
    };
    let handle = std::fs::File::open(file).map_err(|e| unreadable(e.to_string()))?;
    // SAFETY: the mapping is read-only and gms never writes input folders; a file changed by
    // another process while mapped is outside what any loader can guard against.
    let mmap = unsafe { memmap2::Mmap::map(&handle) }.map_err(|e| unreadable(e.to_string()))?;
    let st = safetensors::SafeTensors::deserialize(&mmap)
        .map_err(|e| unreadable(format!("cannot parse safetensors ({e})")))?;
    for (name, view) in st.tensors() {
        let tensor = view
            .load(&Device::Cpu)
            .map_err(|e| unreadable(format!("tensor {name}: {e}")))?;
        f(&name, tensor)?;
    }
    Ok(())
}

fn check_finite(file: &Path, name: &str, t: &Tensor) -> Result<()> {
    let values = t.flatten_all()?.to_vec1::<f32>()?;
    if let Some(v) = values.iter().find(|v| !v.is_finite()) {
        return Err(GmsError::bad_file(
            file,
            format!("tensor {name} holds {v}"),
            "the model is corrupt (NaN/inf weights); retrain or re-export it",
        ));
    }
    Ok(())
}
