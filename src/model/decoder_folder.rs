//! Decoder models on disk: a base folder (Llama/Mistral/Qwen2; bf16, f16 or f32; one
//! safetensors file or shards), optionally under a PEFT LoRA adapter, loaded for computation.
//!
//! Memory: a 7B base is 14 GB in bf16 and 28 GB in f32. Computation is f32 either way; what
//! differs is when the conversion happens ([`WeightStorage`]). Bases up to
//! [`F32_BODY_LIMIT_BYTES`] are converted once at load (no per-batch cost; the kit's 135M
//! base is 0.4 GB in f32); larger ones keep their stored dtype and each linear module
//! converts its weight as it runs (one transient f32 copy of one matrix per worker; on the
//! CPU the conversion is a few percent of that module's matmul time at 512 tokens per
//! batch). The token embedding always stays as stored: only the looked-up rows are converted.

use crate::error::{GmsError, Result};
use crate::model::adapter::{resolve_base, AdapterConfig, HubCache, LoraAdapter};
use crate::model::arch::DECODER_MODULES;
use crate::model::decoder::{DecoderBase, DecoderClassifier};
use crate::model::decoder_config::DecoderConfig;
use crate::model::decoder_tokenize::DecoderTextEncoder;
use crate::model::folder::{check_finite, find_weight_files, for_each_tensor, TensorMap};
use crate::model::lora::module_shape;
use candle_core::{DType, Device};
use std::path::{Path, PathBuf};

/// Largest linear-weight body (in f32 bytes) converted to f32 at load: 4 GiB, i.e. ~1B
/// parameters, which still fits a 16 GB machine next to activations and a second copy of
/// nothing (the adapters add megabytes); a 7B base stays at its 14 GB bf16.
pub const F32_BODY_LIMIT_BYTES: usize = 4 << 30;

/// When base linear weights become f32.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightStorage {
    /// Converted once at load.
    F32,
    /// Kept in the checkpoint's dtype, converted per use.
    Stored,
}

impl WeightStorage {
    /// [`WeightStorage::F32`] when the layers' weights take at most
    /// [`F32_BODY_LIMIT_BYTES`] in f32, else [`WeightStorage::Stored`].
    pub fn auto(config: &DecoderConfig) -> WeightStorage {
        let per_layer: usize = DECODER_MODULES
            .iter()
            .map(|&m| {
                let (o, i) = module_shape(m, config);
                o * i
            })
            .sum();
        if per_layer * config.layers * 4 <= F32_BODY_LIMIT_BYTES {
            WeightStorage::F32
        } else {
            WeightStorage::Stored
        }
    }
}

/// A decoder model folder (a base, or a fully fine-tuned classifier) found on disk.
#[derive(Debug, Clone)]
pub struct DecoderFolder {
    /// The folder.
    pub dir: PathBuf,
    /// Its parsed `config.json`.
    pub config: DecoderConfig,
    /// Its safetensors files (one, or the shards named by the index).
    pub weight_files: Vec<PathBuf>,
}

impl DecoderFolder {
    /// Finds config and weights in `dir`.
    pub fn open(dir: &Path) -> Result<DecoderFolder> {
        if !dir.is_dir() {
            return Err(GmsError::Missing {
                path: dir.to_path_buf(),
                what: "decoder model folder",
                fix: "pass a folder holding config.json, tokenizer.json and *.safetensors",
            });
        }
        Ok(DecoderFolder {
            dir: dir.to_path_buf(),
            config: DecoderConfig::from_file(&dir.join("config.json"))?,
            weight_files: find_weight_files(dir)?,
        })
    }

    /// Whether `dir` is a PEFT adapter folder rather than a model folder.
    pub fn is_adapter(dir: &Path) -> bool {
        dir.join("adapter_config.json").is_file()
    }

    /// Loads the tensors the classifier needs onto `device` (skipping `lm_head`), linear
    /// weights as `storage` says (`None`: [`WeightStorage::auto`]), failing on NaN/inf.
    pub fn load_base(
        &self,
        device: &Device,
        storage: Option<WeightStorage>,
    ) -> Result<DecoderBase> {
        let storage = storage.unwrap_or_else(|| WeightStorage::auto(&self.config));
        let mut map = TensorMap::new();
        for file in &self.weight_files {
            for_each_tensor(file, |name, tensor| {
                let wanted = (name.starts_with("model.") && !name.ends_with("rotary_emb.inv_freq"))
                    || name.starts_with("score.");
                if !wanted {
                    return Ok(());
                }
                let f32 = tensor.to_dtype(DType::F32)?;
                check_finite(file, name, &f32)?;
                let keep_stored = matches!(tensor.dtype(), DType::BF16 | DType::F16)
                    && (storage == WeightStorage::Stored || name == "model.embed_tokens.weight");
                let t = if keep_stored { tensor } else { f32 };
                map.insert(name.to_string(), t.to_device(device)?);
                Ok(())
            })?;
        }
        DecoderBase::from_tensors(&self.config, &map, &self.dir)
    }

    /// sha256 over `config.json` and every weight file, in order.
    pub fn fingerprint(&self) -> Result<String> {
        let mut files = vec![self.dir.join("config.json")];
        files.extend(self.weight_files.iter().cloned());
        crate::model::folder::sha256_files(&files)
    }
}

/// A decoder classifier loaded for computation: its base, the adapter (if any) and the
/// classifier they make.
#[derive(Debug, Clone)]
pub struct LoadedDecoder {
    /// The base model folder (the model itself when there is no adapter).
    pub base_folder: DecoderFolder,
    /// The loaded base, shared by every adapter put on it.
    pub base: DecoderBase,
    /// The adapter, when the model is base + PEFT LoRA.
    pub adapter: Option<LoraAdapter>,
    /// Base + adapter (or the fine-tuned checkpoint) as a classifier.
    pub classifier: DecoderClassifier,
}

impl LoadedDecoder {
    /// Loads `dir`: a PEFT adapter folder (its base from `base`, else from the adapter's
    /// `base_model_name_or_path`, looked up in the Hugging Face cache of the environment), or
    /// a fully fine-tuned `…ForSequenceClassification` folder.
    pub fn load(dir: &Path, base: Option<&Path>, device: &Device) -> Result<LoadedDecoder> {
        Self::load_with(dir, base, &HubCache::from_env(), None, device)
    }

    /// [`Self::load`] with an explicit Hub cache and weight storage.
    pub fn load_with(
        dir: &Path,
        base: Option<&Path>,
        hub: &HubCache,
        storage: Option<WeightStorage>,
        device: &Device,
    ) -> Result<LoadedDecoder> {
        if !DecoderFolder::is_adapter(dir) {
            let folder = DecoderFolder::open(dir)?;
            let loaded = folder.load_base(device, storage)?;
            return Ok(LoadedDecoder {
                classifier: loaded.classifier()?,
                base_folder: folder,
                base: loaded,
                adapter: None,
            });
        }
        let config = AdapterConfig::from_file(&dir.join("adapter_config.json"))?;
        let base_dir = resolve_base(dir, &config, base, hub)?;
        let folder = DecoderFolder::open(&base_dir)?;
        let loaded = folder.load_base(device, storage)?;
        Self::adapter_over(folder, loaded, dir, device)
    }

    /// Another adapter over this model's base (sharing its tensors), e.g. the proxy over the
    /// victim's base. The adapter's own `base_model_name_or_path` is not consulted: it must
    /// fit this base's shapes.
    pub fn with_adapter_dir(&self, dir: &Path, device: &Device) -> Result<LoadedDecoder> {
        Self::adapter_over(self.base_folder.clone(), self.base.clone(), dir, device)
    }

    fn adapter_over(
        base_folder: DecoderFolder,
        base: DecoderBase,
        dir: &Path,
        device: &Device,
    ) -> Result<LoadedDecoder> {
        let adapter = LoraAdapter::load(dir, &base.config, &base.dir, device)?;
        Ok(LoadedDecoder {
            classifier: base.with_adapter(&adapter)?,
            base_folder,
            base,
            adapter: Some(adapter),
        })
    }

    /// sha256 over the adapter's `adapter_config.json` and weights (when there is an adapter),
    /// then the base's `config.json` and weight files: identifies the model an output came
    /// from.
    pub fn fingerprint(&self) -> Result<String> {
        let mut files = Vec::new();
        if let Some(a) = &self.adapter {
            files.push(a.dir.join("adapter_config.json"));
            files.push(a.weights_path());
        }
        files.push(self.base_folder.dir.join("config.json"));
        files.extend(self.base_folder.weight_files.iter().cloned());
        crate::model::folder::sha256_files(&files)
    }

    /// The folder whose `tokenizer.json` the model uses: the adapter's when it saved one, else
    /// the base's.
    pub fn tokenizer_dir(&self) -> &Path {
        match &self.adapter {
            Some(a) if a.dir.join("tokenizer.json").is_file() => &a.dir,
            _ => &self.base_folder.dir,
        }
    }

    /// The model's tokenizer, set up for evaluation.
    pub fn text_encoder(&self) -> Result<DecoderTextEncoder> {
        DecoderTextEncoder::load(self.tokenizer_dir(), &self.base.config)
    }
}
