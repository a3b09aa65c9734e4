//! PEFT LoRA adapters: `adapter_config.json` + `adapter_model.safetensors`, checked against
//! the base they are put on, and the base model's location (a folder, or a Hub id in the
//! local Hugging Face cache; gms never downloads).

use crate::error::{GmsError, Result};
use crate::model::arch::{Module, DECODER_MODULES};
use crate::model::decoder_config::DecoderConfig;
use crate::model::folder::for_each_tensor;
use crate::model::lora::{module_shape, slot, LoraLinear, LoraPair};
use candle_core::{DType, Device, Tensor};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The parts of `adapter_config.json` gms uses.
#[derive(Debug, Clone, PartialEq)]
pub struct AdapterConfig {
    /// LoRA rank `r`.
    pub r: usize,
    /// `lora_alpha`.
    pub lora_alpha: f64,
    /// `rank_pattern`: ranks of the modules whose path ends with a key (PEFT matches
    /// `(.*\.)?(key)$`; gms takes keys without regular-expression syntax), in file order.
    pub rank_pattern: Vec<(String, usize)>,
    /// `alpha_pattern`: `lora_alpha` per module, keyed like `rank_pattern`.
    pub alpha_pattern: Vec<(String, f64)>,
    /// rsLoRA: scale by `alpha / √r` instead of `alpha / r`.
    pub use_rslora: bool,
    /// The adapted projections, when `target_modules` lists them (or says `all-linear`);
    /// `None` for a regular expression, whose matches gms takes from the weights file.
    pub targets: Option<Vec<Module>>,
    /// Layers adapted (`layers_to_transform`); `None`: all.
    pub layers_to_transform: Option<Vec<usize>>,
    /// `modules_to_save` (the trained head, for sequence classification).
    pub modules_to_save: Vec<String>,
    /// `base_model_name_or_path`: a folder or a Hub id.
    pub base_model: Option<String>,
    /// `revision` of the base on the Hub, if pinned.
    pub revision: Option<String>,
}

impl AdapterConfig {
    /// Reads and validates `adapter_config.json`.
    pub fn from_file(path: &Path) -> Result<AdapterConfig> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                GmsError::Missing {
                    path: path.to_path_buf(),
                    what: "PEFT adapter config",
                    fix: "point at a folder saved by peft (adapter_config.json + adapter_model.safetensors)",
                }
            } else {
                GmsError::bad_file(path, e.to_string(), "check the file's permissions")
            }
        })?;
        let value: Value = serde_json::from_str(&text).map_err(|e| {
            GmsError::bad_file(
                path,
                format!("invalid JSON ({e})"),
                "re-save the adapter with peft",
            )
        })?;
        Self::from_json(&value).map_err(|problem| {
            GmsError::bad_file(
                path,
                problem,
                "gms applies plain LoRA adapters (peft LoraConfig) on q/k/v/o/gate/up/down_proj",
            )
        })
    }

    /// Builds the config from parsed JSON; the error is a description of the problem.
    pub fn from_json(v: &Value) -> std::result::Result<AdapterConfig, String> {
        let peft_type = v["peft_type"].as_str().unwrap_or("LORA");
        if peft_type != "LORA" {
            return Err(format!("peft_type {peft_type} is not LoRA"));
        }
        let r = v["r"].as_u64().ok_or("missing integer \"r\"")? as usize;
        if r == 0 {
            return Err("r is 0".into());
        }
        let flag = |key: &str| v[key].as_bool().unwrap_or(false);
        for (key, what) in [
            ("use_dora", "DoRA"),
            ("fan_in_fan_out", "fan_in_fan_out (Conv1D layers)"),
            ("lora_bias", "LoRA biases"),
        ] {
            if flag(key) {
                return Err(format!("{what} is not supported"));
            }
        }
        if let Some(bias) = v["bias"].as_str().filter(|b| *b != "none") {
            return Err(format!(
                "bias \"{bias}\" is not supported (the adapter would change base biases)"
            ));
        }
        let pattern = |key: &str| -> std::result::Result<Vec<(String, f64)>, String> {
            let Some(map) = v[key].as_object() else {
                return Ok(Vec::new());
            };
            map.iter()
                .map(|(k, n)| {
                    if k.chars().any(|c| "*+?()[]{}|^$\\".contains(c)) {
                        return Err(format!(
                            "{key} key \"{k}\" is a regular expression; gms reads module names or paths only"
                        ));
                    }
                    let n = n
                        .as_f64()
                        .filter(|n| *n > 0.0)
                        .ok_or_else(|| format!("{key} \"{k}\" is not a positive number"))?;
                    Ok((k.clone(), n))
                })
                .collect()
        };
        let rank_pattern = pattern("rank_pattern")?
            .into_iter()
            .map(|(k, n)| (k, n as usize))
            .collect();
        let alpha_pattern = pattern("alpha_pattern")?;
        let targets = match &v["target_modules"] {
            Value::String(s) if s == "all-linear" => Some(DECODER_MODULES.to_vec()),
            Value::String(_) => None,
            Value::Array(list) => Some(
                list.iter()
                    .map(|t| {
                        let name = t.as_str().unwrap_or("?");
                        // A PEFT target matches a module by its last name component.
                        let short = name.rsplit('.').next().unwrap_or(name);
                        Module::from_proj_name(short).ok_or_else(|| {
                            format!("target module {name} is not one of q/k/v/o/gate/up/down_proj")
                        })
                    })
                    .collect::<std::result::Result<Vec<_>, String>>()?,
            ),
            _ => return Err("missing \"target_modules\"".into()),
        };
        let layers_to_transform = match &v["layers_to_transform"] {
            Value::Number(n) => Some(vec![n.as_u64().unwrap_or(0) as usize]),
            Value::Array(a) => Some(
                a.iter()
                    .map(|n| n.as_u64().map(|n| n as usize))
                    .collect::<Option<Vec<_>>>()
                    .ok_or("layers_to_transform holds a non-integer")?,
            ),
            _ => None,
        };
        let strings = |key: &str| -> Vec<String> {
            v[key]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        Ok(AdapterConfig {
            r,
            // peft's LoraConfig default.
            lora_alpha: v["lora_alpha"].as_f64().unwrap_or(8.0),
            rank_pattern,
            alpha_pattern,
            use_rslora: flag("use_rslora"),
            targets,
            layers_to_transform,
            modules_to_save: strings("modules_to_save"),
            base_model: v["base_model_name_or_path"]
                .as_str()
                .filter(|s| !s.is_empty())
                .map(str::to_string),
            revision: v["revision"].as_str().map(str::to_string),
        })
    }

    /// The rank and LoRA scale of the module at `path` (e.g.
    /// `model.layers.3.self_attn.q_proj`): `rank_pattern` / `alpha_pattern` where a key
    /// matches it as PEFT matches (the path is the key or ends with `.key`), else `r` /
    /// `lora_alpha`. Fails when two keys of one pattern match (PEFT would take the first in
    /// its dict order; gms does not guess).
    pub fn rank_and_scale(&self, path: &str) -> std::result::Result<(usize, f64), String> {
        let (r, alpha) = self.rank_and_alpha(path)?;
        Ok((r, Self::scale_of(alpha, r, self.use_rslora)))
    }

    /// The rank and `lora_alpha` of the module at `path` (see [`Self::rank_and_scale`]).
    pub fn rank_and_alpha(&self, path: &str) -> std::result::Result<(usize, f64), String> {
        fn find<'a, T>(
            list: &'a [(String, T)],
            path: &str,
            what: &str,
        ) -> std::result::Result<Option<&'a T>, String> {
            let hits: Vec<&(String, T)> = list
                .iter()
                .filter(|(k, _)| path == k || path.ends_with(&format!(".{k}")))
                .collect();
            match hits.as_slice() {
                [] => Ok(None),
                [(_, v)] => Ok(Some(v)),
                _ => Err(format!("several {what} keys match {path}")),
            }
        }
        let r = find(&self.rank_pattern, path, "rank_pattern")?
            .copied()
            .unwrap_or(self.r);
        let alpha = find(&self.alpha_pattern, path, "alpha_pattern")?
            .copied()
            .unwrap_or(self.lora_alpha);
        Ok((r, alpha))
    }

    fn scale_of(alpha: f64, r: usize, rslora: bool) -> f64 {
        if rslora {
            alpha / (r as f64).sqrt()
        } else {
            alpha / r as f64
        }
    }

    /// The LoRA scale `s` of `W·x + s·B(A·x)`: `lora_alpha / r`, or `lora_alpha / √r` with
    /// rsLoRA (peft's `LoraLayer.update_layer`).
    pub fn scale(&self) -> f64 {
        Self::scale_of(self.lora_alpha, self.r, self.use_rslora)
    }
}

/// A PEFT LoRA adapter loaded for one base: a LoRA pair per adapted (layer, module) cell and
/// the saved classification head.
#[derive(Debug, Clone)]
pub struct LoraAdapter {
    /// The adapter folder.
    pub dir: PathBuf,
    /// Its parsed `adapter_config.json`.
    pub config: AdapterConfig,
    /// Per layer of the base, the pair of each module in [`DECODER_MODULES`] order
    /// (`None` where the adapter leaves the module alone).
    pub layers: Vec<[Option<LoraPair>; 7]>,
    /// The trained `score` head (`base_model.model.score.weight`), f32.
    pub score: Option<LoraLinear>,
}

/// Prefix peft gives every saved tensor of a model it wraps.
pub const PEFT_PREFIX: &str = "base_model.model.";

impl LoraAdapter {
    /// Path of the adapter's weights file.
    pub fn weights_path(&self) -> PathBuf {
        self.dir.join("adapter_model.safetensors")
    }

    /// Loads the adapter in `dir` for the base whose config is `base` (in `base_dir`, named
    /// in errors): every LoRA pair must fit the base's module shapes and layer count, and
    /// every listed target module of every adapted layer must have both halves.
    pub fn load(
        dir: &Path,
        base: &DecoderConfig,
        base_dir: &Path,
        device: &Device,
    ) -> Result<LoraAdapter> {
        let config = AdapterConfig::from_file(&dir.join("adapter_config.json"))?;
        let file = dir.join("adapter_model.safetensors");
        if !file.is_file() {
            if dir.join("adapter_model.bin").exists() {
                return Err(GmsError::bad_file(
                    dir.join("adapter_model.bin"),
                    "not a safetensors adapter (gms never reads pickle files)",
                    "re-save it with peft: model.save_pretrained(DIR, safe_serialization=True)",
                ));
            }
            return Err(GmsError::Missing {
                path: file,
                what: "adapter weights",
                fix:
                    "the adapter folder needs adapter_model.safetensors next to adapter_config.json",
            });
        }
        let mismatch = |problem: String| GmsError::AdapterBase {
            adapter: dir.to_path_buf(),
            base: base_dir.to_path_buf(),
            problem,
        };
        let unsupported = |name: &str| {
            GmsError::bad_file(
                &file,
                format!("unsupported tensor {name}"),
                "gms applies LoRA pairs on q/k/v/o/gate/up/down_proj and a saved score head; re-train the adapter with those only",
            )
        };
        // (layer, module) -> (A, B)
        let mut halves: BTreeMap<(usize, Module), [Option<Tensor>; 2]> = BTreeMap::new();
        let mut score_weight = None;
        let mut score_bias = None;
        for_each_tensor(&file, |name, tensor| {
            let rest = name
                .strip_prefix(PEFT_PREFIX)
                .ok_or_else(|| unsupported(name))?;
            let tensor = tensor.to_dtype(DType::F32)?;
            crate::model::folder::check_finite(&file, name, &tensor)?;
            let tensor = tensor.to_device(device)?;
            match rest {
                "score.weight" => score_weight = Some(tensor),
                "score.bias" => score_bias = Some(tensor),
                _ => {
                    let (layer, module, half) =
                        parse_lora_name(rest).ok_or_else(|| unsupported(name))?;
                    halves.entry((layer, module)).or_default()[half] = Some(tensor);
                }
            }
            Ok(())
        })?;
        let adapted_layers = halves.keys().map(|(l, _)| l + 1).max().unwrap_or(0);
        if adapted_layers > base.layers {
            return Err(mismatch(format!(
                "the adapter has LoRA weights for layer {}, the base has {} layers",
                adapted_layers - 1,
                base.layers
            )));
        }
        if let Some(&l) = config
            .layers_to_transform
            .iter()
            .flatten()
            .find(|&&l| l >= base.layers)
        {
            return Err(mismatch(format!(
                "layers_to_transform names layer {l}, the base has {} layers",
                base.layers
            )));
        }
        let expected_layers: Vec<usize> = match &config.layers_to_transform {
            Some(list) => list.clone(),
            None => (0..base.layers).collect(),
        };
        if let Some(targets) = &config.targets {
            if config.layers_to_transform.is_none()
                && adapted_layers > 0
                && adapted_layers < base.layers
            {
                return Err(mismatch(format!(
                    "the adapter covers {adapted_layers} layers, the base has {}",
                    base.layers
                )));
            }
            for &l in &expected_layers {
                for &m in targets {
                    if !halves.contains_key(&(l, m)) {
                        return Err(missing_tensor(&file, l, m, 0));
                    }
                }
            }
        }
        let mut layers: Vec<[Option<LoraPair>; 7]> = vec![Default::default(); base.layers];
        for ((l, m), [a, b]) in halves {
            let (a, b) = match (a, b) {
                (Some(a), Some(b)) => (a, b),
                (None, _) => return Err(missing_tensor(&file, l, m, 0)),
                (_, None) => return Err(missing_tensor(&file, l, m, 1)),
            };
            let (r, scale) = config
                .rank_and_scale(&m.decoder_path(l))
                .map_err(|problem| {
                    GmsError::bad_file(
                        dir.join("adapter_config.json"),
                        problem,
                        "give each module one rank_pattern / alpha_pattern key",
                    )
                })?;
            let (out, inp) = module_shape(m, base);
            let ok = a.dims() == [r, inp] && b.dims() == [out, r];
            if !ok {
                let (a_dims, b_dims) = (a.dims(), b.dims());
                let fits_base = a_dims.get(1) == Some(&inp) && b_dims.first() == Some(&out);
                return Err(if fits_base {
                    GmsError::bad_file(
                        &file,
                        format!(
                            "{} is {a_dims:?}, adapter_config.json says r = {r}",
                            lora_name(l, m, 0),
                        ),
                        "the adapter's files disagree; re-save it with peft",
                    )
                } else {
                    mismatch(format!(
                        "its LoRA pair for {} is B {b_dims:?} · A {a_dims:?}, the base's weight is [{out}, {inp}]",
                        m.decoder_path(l),
                    ))
                });
            }
            let i = slot(m).expect("parse_lora_name yields decoder modules");
            layers[l][i] = Some(LoraPair { a, b, scale });
        }
        let score = match score_weight {
            Some(w) => {
                if w.dims().len() != 2 || w.dims()[1] != base.hidden {
                    return Err(mismatch(format!(
                        "the saved score head is {:?}, the base's hidden size is {}",
                        w.dims(),
                        base.hidden
                    )));
                }
                Some(LoraLinear {
                    weight: w,
                    bias: score_bias,
                    lora: None,
                })
            }
            None if config.modules_to_save.iter().any(|m| m == "score") => {
                return Err(GmsError::bad_file(
                    &file,
                    format!(
                        "missing tensor {PEFT_PREFIX}score.weight (modules_to_save lists score)"
                    ),
                    "the adapter is incomplete; re-save it with peft (model.save_pretrained)",
                ))
            }
            None => None,
        };
        Ok(LoraAdapter {
            dir: dir.to_path_buf(),
            config,
            layers,
            score,
        })
    }

    /// Checks that the adapter fits a base with `config` (layer count and module shapes).
    pub fn check_fits(&self, config: &DecoderConfig, base_dir: &Path) -> Result<()> {
        let problem = if self.layers.len() != config.layers {
            Some(format!(
                "the adapter was loaded for {} layers, the base has {}",
                self.layers.len(),
                config.layers
            ))
        } else {
            self.layers.iter().enumerate().find_map(|(l, pairs)| {
                DECODER_MODULES.iter().zip(pairs).find_map(|(&m, pair)| {
                    let pair = pair.as_ref()?;
                    let (out, inp) = module_shape(m, config);
                    (pair.a.dims()[1] != inp || pair.b.dims()[0] != out).then(|| {
                        format!(
                            "layer {l} {} does not match [{out}, {inp}]",
                            m.proj_name().unwrap_or("?")
                        )
                    })
                })
            })
        };
        match problem {
            None => Ok(()),
            Some(problem) => Err(GmsError::AdapterBase {
                adapter: self.dir.clone(),
                base: base_dir.to_path_buf(),
                problem,
            }),
        }
    }

    /// Number of (layer, module) cells the adapter adapts.
    pub fn adapted_cells(&self) -> usize {
        self.layers
            .iter()
            .map(|l| l.iter().filter(|p| p.is_some()).count())
            .sum()
    }
}

/// The peft name of one half of a pair, e.g.
/// `base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight`.
pub fn lora_name(layer: usize, module: Module, half: usize) -> String {
    format!(
        "{PEFT_PREFIX}{}.lora_{}.weight",
        module.decoder_path(layer),
        ["A", "B"][half]
    )
}

fn missing_tensor(file: &Path, l: usize, m: Module, half: usize) -> GmsError {
    GmsError::bad_file(
        file,
        format!("missing tensor {}", lora_name(l, m, half)),
        "the adapter is incomplete (adapter_config.json lists the module as a target); re-save it with peft",
    )
}

/// `model.layers.{l}.{self_attn|mlp}.{proj}.lora_{A|B}.weight` → (l, module, 0 for A / 1 for B).
fn parse_lora_name(rest: &str) -> Option<(usize, Module, usize)> {
    let rest = rest.strip_prefix("model.layers.")?;
    let (layer, rest) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let (block, rest) = rest.split_once('.')?;
    let (proj, rest) = rest.split_once('.')?;
    let module = Module::from_proj_name(proj)?;
    if module.decoder_path(layer) != format!("model.layers.{layer}.{block}.{proj}") {
        return None;
    }
    let half = match rest {
        "lora_A.weight" => 0,
        "lora_B.weight" => 1,
        _ => return None,
    };
    Some((layer, module, half))
}

/// The local Hugging Face hub cache (`hub/models--ORG--NAME/…`), read-only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubCache {
    /// The `hub` folder.
    pub dir: PathBuf,
}

impl HubCache {
    /// The cache `huggingface_hub` uses: `HF_HUB_CACHE`, else `$HF_HOME/hub`, else
    /// `$XDG_CACHE_HOME/huggingface/hub`, else `~/.cache/huggingface/hub`.
    pub fn from_env() -> HubCache {
        let var = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let dir = var("HF_HUB_CACHE")
            .or_else(|| var("HF_HOME").map(|h| h.join("hub")))
            .or_else(|| var("XDG_CACHE_HOME").map(|c| c.join("huggingface/hub")))
            .or_else(|| var("HOME").map(|h| h.join(".cache/huggingface/hub")))
            .unwrap_or_else(|| PathBuf::from(".cache/huggingface/hub"));
        HubCache { dir }
    }

    /// The cache under an explicit `HF_HOME`.
    pub fn under_home(hf_home: &Path) -> HubCache {
        HubCache {
            dir: hf_home.join("hub"),
        }
    }

    /// The snapshot folder of Hub model `id` (`ORG/NAME`) at `revision` (a branch or tag
    /// resolved through `refs/`, or a commit), `main` when `None`; `None` if not cached.
    pub fn snapshot(&self, id: &str, revision: Option<&str>) -> Option<PathBuf> {
        let repo = self.dir.join(format!("models--{}", id.replace('/', "--")));
        let rev = revision.unwrap_or("main");
        let commit = std::fs::read_to_string(repo.join("refs").join(rev))
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| rev.to_string());
        let snap = repo.join("snapshots").join(commit);
        snap.join("config.json").is_file().then_some(snap)
    }
}

/// Where the base model of the adapter in `adapter_dir` lives: `explicit` when given; else
/// its `base_model_name_or_path` as a folder (absolute, or relative to the adapter folder or
/// to the folder holding it), else as a Hub id in `hub`. Nothing is downloaded.
pub fn resolve_base(
    adapter_dir: &Path,
    config: &AdapterConfig,
    explicit: Option<&Path>,
    hub: &HubCache,
) -> Result<PathBuf> {
    if let Some(dir) = explicit {
        return if dir.join("config.json").is_file() {
            Ok(dir.to_path_buf())
        } else {
            Err(GmsError::Missing {
                path: dir.to_path_buf(),
                what: "base model folder",
                fix: "pass the folder of the base model the adapter was trained on (config.json, *.safetensors)",
            })
        };
    }
    let config_path = adapter_dir.join("adapter_config.json");
    let Some(name) = &config.base_model else {
        return Err(GmsError::bad_file(
            config_path,
            "no base_model_name_or_path",
            "pass the base model folder explicitly",
        ));
    };
    let path = Path::new(name);
    let mut looked = Vec::new();
    let candidates: Vec<PathBuf> = if path.is_absolute() {
        vec![path.to_path_buf()]
    } else {
        let mut c = vec![adapter_dir.join(path)];
        if let Some(parent) = adapter_dir.parent() {
            c.push(parent.join(path));
        }
        c
    };
    for dir in candidates {
        if dir.join("config.json").is_file() {
            return Ok(dir);
        }
        looked.push(dir.display().to_string());
    }
    // A Hub id is `NAME` or `ORG/NAME`; an absolute path or one with more parts is a folder.
    let is_hub_id = !path.is_absolute() && name.split('/').count() <= 2 && !name.starts_with('.');
    if is_hub_id {
        if let Some(snap) = hub.snapshot(name, config.revision.as_deref()) {
            return Ok(snap);
        }
        looked.push(format!(
            "{}/models--{}",
            hub.dir.display(),
            name.replace('/', "--")
        ));
    }
    Err(GmsError::BaseNotFound {
        adapter: config_path,
        base: name.clone(),
        looked: looked.join(", "),
        fix: if is_hub_id {
            format!("download it first (huggingface-cli download {name}), set HF_HOME to the cache holding it, or pass the base model folder explicitly")
        } else {
            "pass the base model folder explicitly".to_string()
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kit_config_and_scale() {
        let v = json!({"peft_type": "LORA", "r": 8, "lora_alpha": 16, "use_rslora": false,
            "target_modules": ["q_proj", "gate_proj", "v_proj", "o_proj", "up_proj", "down_proj", "k_proj"],
            "modules_to_save": ["classifier", "score"], "base_model_name_or_path": "smollm2_base",
            "bias": "none", "rank_pattern": {}, "alpha_pattern": {}, "revision": null});
        let c = AdapterConfig::from_json(&v).unwrap();
        assert_eq!(c.scale(), 2.0);
        assert_eq!(c.targets.as_ref().unwrap().len(), 7);
        let mut v = v;
        v["use_rslora"] = json!(true);
        let c = AdapterConfig::from_json(&v).unwrap();
        assert!((c.scale() - 16.0 / 8f64.sqrt()).abs() < 1e-12);
        v["use_dora"] = json!(true);
        assert!(AdapterConfig::from_json(&v).unwrap_err().contains("DoRA"));
    }

    #[test]
    fn rank_and_alpha_patterns_match_as_peft_does() {
        let v = json!({"r": 8, "lora_alpha": 16, "target_modules": ["q_proj"],
            "rank_pattern": {"model.layers.1.self_attn.q_proj": 4, "layers.2.self_attn.q_proj": 2},
            "alpha_pattern": {"model.layers.1.self_attn.q_proj": 4}});
        let c = AdapterConfig::from_json(&v).unwrap();
        assert_eq!(
            c.rank_and_scale("model.layers.0.self_attn.q_proj"),
            Ok((8, 2.0))
        );
        assert_eq!(
            c.rank_and_scale("model.layers.1.self_attn.q_proj"),
            Ok((4, 1.0))
        );
        assert_eq!(
            c.rank_and_scale("model.layers.2.self_attn.q_proj"),
            Ok((2, 8.0))
        );
        // `layer.1` must not catch `layer.11`.
        assert_eq!(
            c.rank_and_scale("model.layers.11.self_attn.q_proj"),
            Ok((8, 2.0))
        );
        let mut regex = v.clone();
        regex["rank_pattern"] = json!({"layers\\.[0-9]+\\.q_proj": 4});
        assert!(AdapterConfig::from_json(&regex)
            .unwrap_err()
            .contains("regular expression"));
        let mut twice = v;
        twice["rank_pattern"] = json!({"q_proj": 4, "self_attn.q_proj": 2});
        let c = AdapterConfig::from_json(&twice).unwrap();
        assert!(c.rank_and_scale("model.layers.0.self_attn.q_proj").is_err());
    }

    #[test]
    fn parses_peft_names() {
        assert_eq!(
            parse_lora_name("model.layers.12.mlp.up_proj.lora_B.weight"),
            Some((12, Module::U, 1))
        );
        assert_eq!(
            parse_lora_name("model.layers.1.mlp.q_proj.lora_A.weight"),
            None
        );
        assert_eq!(parse_lora_name("model.embed_tokens.lora_A.weight"), None);
        assert_eq!(
            lora_name(3, Module::Q, 0),
            "base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight"
        );
    }

    #[test]
    fn hub_snapshot_via_refs() {
        let dir = tempfile::tempdir().unwrap();
        let hub = HubCache::under_home(dir.path());
        let repo = hub.dir.join("models--org--name");
        std::fs::create_dir_all(repo.join("refs")).unwrap();
        std::fs::create_dir_all(repo.join("snapshots/abc")).unwrap();
        std::fs::write(repo.join("refs/main"), "abc").unwrap();
        assert_eq!(hub.snapshot("org/name", None), None, "no config.json yet");
        std::fs::write(repo.join("snapshots/abc/config.json"), "{}").unwrap();
        assert_eq!(
            hub.snapshot("org/name", None),
            Some(repo.join("snapshots/abc"))
        );
        assert_eq!(
            hub.snapshot("org/name", Some("abc")),
            Some(repo.join("snapshots/abc"))
        );
        assert_eq!(hub.snapshot("org/other", None), None);
    }
}
