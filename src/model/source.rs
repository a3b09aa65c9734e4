//! A model as the command line names it, recognised by family — an encoder folder, a PEFT
//! LoRA adapter over a decoder base, or a fully fine-tuned decoder — and a victim/proxy pair
//! of them loaded for GMS (an adapter pair shares one base in memory).

use crate::error::{GmsError, Result};
use crate::model::adapter::{resolve_base, AdapterConfig, HubCache, LoraAdapter};
use crate::model::arch::DecoderArchitecture;
use crate::model::arch::{letters, ModelArchitecture, Module, DECODER_MODULES};
use crate::model::decoder_folder::{DecoderFolder, LoadedDecoder};
use crate::model::folder::ModelFolder;
use crate::model::LoadedModel;
use candle_core::Device;
use std::path::{Path, PathBuf};

/// Where a model comes from, as far as writing a purified model and fingerprinting need.
#[derive(Debug, Clone)]
pub enum ModelSource {
    /// An encoder classifier folder.
    Encoder(ModelFolder),
    /// A decoder: its base folder, and the adapter folder when it is base + PEFT LoRA (else
    /// the base is itself a fine-tuned `…ForSequenceClassification`).
    Decoder {
        /// The base (or fine-tuned) model folder.
        base: DecoderFolder,
        /// The PEFT adapter folder.
        adapter: Option<PathBuf>,
    },
}

/// Whether `dir` holds a decoder: a PEFT adapter folder, or a model folder whose
/// `config.json` names a Llama, Mistral or Qwen2 model.
pub fn is_decoder(dir: &Path) -> bool {
    if DecoderFolder::is_adapter(dir) {
        return true;
    }
    std::fs::read_to_string(dir.join("config.json"))
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .is_some_and(|v| DecoderArchitecture::from_config(&v).is_some())
}

impl ModelSource {
    /// Recognises the model in `dir` without loading weights; an adapter's base is `base`
    /// when given, else its `base_model_name_or_path` (a folder, or a Hub id in the local
    /// Hugging Face cache).
    pub fn open(dir: &Path, base: Option<&Path>) -> Result<ModelSource> {
        if !is_decoder(dir) {
            if base.is_some() {
                return Err(GmsError::BadArgument {
                    flag: "--base",
                    value: dir.display().to_string(),
                    problem: "--base is for PEFT adapters; this is an encoder model folder".into(),
                });
            }
            return Ok(ModelSource::Encoder(ModelFolder::open(dir)?));
        }
        if !DecoderFolder::is_adapter(dir) {
            return Ok(ModelSource::Decoder {
                base: DecoderFolder::open(dir)?,
                adapter: None,
            });
        }
        let config = AdapterConfig::from_file(&dir.join("adapter_config.json"))?;
        let base_dir = resolve_base(dir, &config, base, &HubCache::from_env())?;
        Ok(ModelSource::Decoder {
            base: DecoderFolder::open(&base_dir)?,
            adapter: Some(dir.to_path_buf()),
        })
    }

    /// `Some(dir)` when `dir` is a PEFT adapter folder (its base not looked up), else `None`.
    pub fn open_unresolved(dir: &Path) -> Result<Option<PathBuf>> {
        if DecoderFolder::is_adapter(dir) {
            AdapterConfig::from_file(&dir.join("adapter_config.json"))?;
            return Ok(Some(dir.to_path_buf()));
        }
        Ok(None)
    }

    /// The folder the user named (the adapter folder for an adapter).
    pub fn dir(&self) -> &Path {
        match self {
            ModelSource::Encoder(f) => &f.dir,
            ModelSource::Decoder {
                adapter: Some(a), ..
            } => a,
            ModelSource::Decoder { base, .. } => &base.dir,
        }
    }

    /// The architecture, and with it the module list.
    pub fn architecture(&self) -> ModelArchitecture {
        match self {
            ModelSource::Encoder(f) => ModelArchitecture::Encoder(f.config.architecture),
            ModelSource::Decoder { base, .. } => {
                ModelArchitecture::Decoder(base.config.architecture)
            }
        }
    }

    /// Number of transformer layers.
    pub fn num_layers(&self) -> usize {
        match self {
            ModelSource::Encoder(f) => f.config.layers,
            ModelSource::Decoder { base, .. } => base.config.layers,
        }
    }

    /// sha256 identifying the model: an encoder's or a fine-tuned decoder's `config.json` and
    /// weight files; for an adapter, its `adapter_config.json` and weights only (the base is
    /// fingerprinted once, [`Self::base_fingerprint`]: a 7B base takes a while to hash).
    pub fn fingerprint(&self) -> Result<String> {
        match self {
            ModelSource::Encoder(f) => f.fingerprint(),
            ModelSource::Decoder {
                adapter: Some(a), ..
            } => crate::model::folder::sha256_files(&[
                a.join("adapter_config.json"),
                a.join("adapter_model.safetensors"),
            ]),
            ModelSource::Decoder { base, .. } => base.fingerprint(),
        }
    }

    /// The fingerprint of an adapter's base folder (`config.json` and weight files).
    pub fn base_fingerprint(&self) -> Result<Option<String>> {
        match self {
            ModelSource::Decoder {
                base,
                adapter: Some(_),
            } => Ok(Some(base.fingerprint()?)),
            _ => Ok(None),
        }
    }

    /// The base folder of an adapter.
    pub fn base_dir(&self) -> Option<&Path> {
        match self {
            ModelSource::Decoder {
                base,
                adapter: Some(_),
            } => Some(&base.dir),
            _ => None,
        }
    }
}

/// A victim and a proxy of one architecture, loaded.
// Built once per session and taken apart at once: boxing the larger variant buys nothing.
#[allow(clippy::large_enum_variant)]
pub enum LoadedPair {
    /// Two encoder classifiers.
    Encoder {
        /// The victim.
        victim: LoadedModel,
        /// The proxy.
        proxy: LoadedModel,
    },
    /// Two decoders: adapters over one shared base, or two fine-tuned models.
    Decoder {
        /// The victim.
        victim: LoadedDecoder,
        /// The proxy.
        proxy: LoadedDecoder,
    },
}

impl LoadedPair {
    /// Loads the victim in `victim` and the proxy in `proxy` (adapters over `base` when
    /// given), checks they can exchange modules, and returns warnings to show the user
    /// (adapters that adapt different modules or ranks).
    pub fn load(
        victim: &Path,
        proxy: &Path,
        base: Option<&Path>,
        device: &Device,
    ) -> Result<(LoadedPair, Vec<String>)> {
        let mismatch = |problem: String| GmsError::Mismatch {
            victim: victim.to_path_buf(),
            proxy: proxy.to_path_buf(),
            problem,
        };
        let family = |d: &Path| if is_decoder(d) { "decoder" } else { "encoder" };
        if is_decoder(victim) != is_decoder(proxy) {
            return Err(mismatch(format!(
                "the victim is an {} and the proxy a {}",
                family(victim),
                family(proxy)
            )));
        }
        if !is_decoder(victim) {
            if base.is_some() {
                return Err(GmsError::BadArgument {
                    flag: "--base",
                    value: victim.display().to_string(),
                    problem: "--base is for PEFT adapters; these are encoder model folders".into(),
                });
            }
            let v = LoadedModel::load(victim, device)?;
            let p = LoadedModel::load(proxy, device)?;
            v.folder.check_pair(&p.folder)?;
            return Ok((
                LoadedPair::Encoder {
                    victim: v,
                    proxy: p,
                },
                Vec::new(),
            ));
        }
        match (
            DecoderFolder::is_adapter(victim),
            DecoderFolder::is_adapter(proxy),
        ) {
            (true, true) => {
                let v = LoadedDecoder::load(victim, base, device)?;
                if base.is_none() {
                    check_same_base(&v, proxy)?;
                }
                let p = v.with_adapter_dir(proxy, device)?;
                let warnings = adapter_differences(&v, &p);
                Ok((LoadedPair::Decoder { victim: v, proxy: p }, warnings))
            }
            (false, false) => {
                if base.is_some() {
                    return Err(GmsError::BadArgument {
                        flag: "--base",
                        value: victim.display().to_string(),
                        problem: "--base is for PEFT adapters; victim and proxy are full models"
                            .into(),
                    });
                }
                let v = LoadedDecoder::load(victim, None, device)?;
                let p = LoadedDecoder::load(proxy, None, device)?;
                if let Some(problem) = v.base.config.body_mismatch(&p.base.config) {
                    return Err(mismatch(problem));
                }
                Ok((LoadedPair::Decoder { victim: v, proxy: p }, Vec::new()))
            }
            (v, _) => Err(mismatch(format!(
                "the {} is a PEFT adapter and the {} a full model; give two adapters over one base or two fine-tuned models",
                if v { "victim" } else { "proxy" },
                if v { "proxy" } else { "victim" },
            ))),
        }
    }

    /// The victim's and the proxy's sources.
    pub fn sources(&self) -> (ModelSource, ModelSource) {
        match self {
            LoadedPair::Encoder { victim, proxy } => (
                ModelSource::Encoder(victim.folder.clone()),
                ModelSource::Encoder(proxy.folder.clone()),
            ),
            LoadedPair::Decoder { victim, proxy } => {
                let source = |d: &LoadedDecoder| ModelSource::Decoder {
                    base: d.base_folder.clone(),
                    adapter: d.adapter.as_ref().map(|a| a.dir.clone()),
                };
                (source(victim), source(proxy))
            }
        }
    }
}

/// Fails when the proxy adapter names a base other than the one the victim's was loaded on
/// (a different folder with another config or other weight files). A proxy whose base is not
/// on this machine is put on the victim's base: its LoRA shapes are still checked.
fn check_same_base(victim: &LoadedDecoder, proxy: &Path) -> Result<()> {
    let config = AdapterConfig::from_file(&proxy.join("adapter_config.json"))?;
    let Ok(dir) = resolve_base(proxy, &config, None, &HubCache::from_env()) else {
        return Ok(());
    };
    let canonical = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    if canonical(&dir) == canonical(&victim.base_folder.dir) {
        return Ok(());
    }
    let theirs = DecoderFolder::open(&dir)?;
    if theirs.config == victim.base_folder.config
        && samples(&theirs.weight_files) == samples(&victim.base_folder.weight_files)
    {
        // A copy of the same base (same config, same sizes and sampled bytes).
        return Ok(());
    }
    Err(GmsError::AdapterBase {
        adapter: proxy.to_path_buf(),
        base: victim.base_folder.dir.clone(),
        problem: format!(
            "it was trained on {}, the victim adapter on {}",
            dir.display(),
            victim.base_folder.dir.display()
        ),
    })
}

/// Each file's size and 16 windows of 4 KiB spread over it: two copies of one checkpoint
/// agree, two different checkpoints of one shape practically never do, and a 7B base is not
/// read whole (hashing it takes a minute).
fn samples(files: &[PathBuf]) -> Vec<(u64, Vec<u8>)> {
    use std::io::{Read, Seek, SeekFrom};
    files
        .iter()
        .map(|f| {
            let Ok(mut file) = std::fs::File::open(f) else {
                return (0, Vec::new());
            };
            let len = file.metadata().map(|m| m.len()).unwrap_or(0);
            let mut bytes = Vec::new();
            for i in 0..16u64 {
                let mut window = vec![0u8; 4096];
                let at = len.saturating_sub(4096) * i / 15;
                let n = file
                    .seek(SeekFrom::Start(at))
                    .and_then(|_| file.read(&mut window))
                    .unwrap_or(0);
                bytes.extend_from_slice(&window[..n]);
            }
            (len, bytes)
        })
        .collect()
}

/// What differs between two adapters in what GMS can substitute, said for a warning: the
/// modules (or layers) each adapts, and the ranks and scales.
pub fn adapter_differences(victim: &LoadedDecoder, proxy: &LoadedDecoder) -> Vec<String> {
    let (Some(v), Some(p)) = (&victim.adapter, &proxy.adapter) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let adapted = |a: &LoraAdapter| -> Vec<Module> {
        DECODER_MODULES
            .iter()
            .enumerate()
            .filter(|(i, _)| a.layers.iter().any(|l| l[*i].is_some()))
            .map(|(_, &m)| m)
            .collect()
    };
    let (vm, pm) = (adapted(v), adapted(p));
    if vm != pm {
        let both: Vec<Module> = vm.iter().copied().filter(|m| pm.contains(m)).collect();
        out.push(format!(
            "the victim adapter adapts {} and the proxy adapter {}: GMS substitutes only {} (the modules both adapt); the others stay the victim's",
            letters(&vm),
            letters(&pm),
            if both.is_empty() { "nothing".to_string() } else { letters(&both) }
        ));
    } else {
        let layer_set = |a: &LoraAdapter| -> Vec<usize> {
            (0..a.layers.len())
                .filter(|&l| a.layers[l].iter().any(Option::is_some))
                .collect()
        };
        if layer_set(v) != layer_set(p) {
            out.push(
                "the victim and proxy adapters adapt different layers: GMS substitutes only the layers both adapt"
                    .to_string(),
            );
        }
    }
    let (vc, pc) = (&v.config, &p.config);
    if vc.r != pc.r || vc.scale() != pc.scale() {
        out.push(format!(
            "the adapters' ranks or scales differ (victim r {} α {}, proxy r {} α {}): a substituted module takes the proxy's pair with the proxy's scale",
            vc.r, vc.lora_alpha, pc.r, pc.lora_alpha
        ));
    }
    out
}
