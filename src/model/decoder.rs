//! The project's own decoder classifier: Llama, Mistral and Qwen2 with PEFT LoRA adapters.
//!
//! It reproduces transformers' `…ForSequenceClassification` (RMSNorm, rotary embeddings,
//! grouped-query attention, SwiGLU, causal + padding mask, `score` read at each row's last
//! non-padding token) and, like the encoder, runs the embeddings, any range of layers and the
//! head separately, so GMS can resume a forward pass from a cached layer boundary.
//!
//! Each of the seven modules per layer computes `W·x (+b) + s·B(A·x)`: the base weight is never
//! merged with the LoRA pair, so a substitution view ([`lora_view`]) swaps only the pair of a
//! (layer, module) cell and shares everything else. Computation is f32; base weights may stay
//! in their stored dtype and are converted per use (see [`crate::model::decoder_folder`]).
//! Which pieces come from candle-nn / candle-transformers is in docs/decoders.md.

use crate::error::{GmsError, Result};
use crate::model::adapter::LoraAdapter;
use crate::model::arch::{Module, DECODER_MODULES};
use crate::model::decoder_config::{DecoderConfig, RopeScaling};
use crate::model::folder::TensorMap;
use crate::model::lora::{module_shape, slot, LoraLinear};
use crate::model::tokenize::BatchInput;
use candle_core::{DType, Device, Tensor};
use std::path::{Path, PathBuf};

fn has_bias(m: Module, c: &DecoderConfig) -> bool {
    match m {
        Module::Q | Module::K | Module::V => c.qkv_bias,
        Module::O => c.o_bias,
        _ => c.mlp_bias,
    }
}

/// RMSNorm over the last dimension (weight kept f32).
#[derive(Debug, Clone)]
pub struct RmsNorm {
    /// Scale.
    pub weight: Tensor,
    /// Epsilon from the config.
    pub eps: f64,
}

impl RmsNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(candle_nn::ops::rms_norm(x, &self.weight, self.eps as f32)?)
    }
}

/// One decoder layer: the seven substitutable modules and the two RMSNorms.
#[derive(Debug, Clone)]
pub struct DecoderLayer {
    /// Q, K, V, O, G, U, D in [`DECODER_MODULES`] order.
    pub modules: [LoraLinear; 7],
    /// `input_layernorm`, before attention.
    pub input_norm: RmsNorm,
    /// `post_attention_layernorm`, before the MLP.
    pub post_attention_norm: RmsNorm,
}

impl DecoderLayer {
    /// The module `m`, if decoders have it.
    pub fn module(&self, m: Module) -> Option<&LoraLinear> {
        slot(m).map(|i| &self.modules[i])
    }
}

/// A decoder base model without an adapter: the shared weights every classifier over it
/// reuses, plus the `score` head when the checkpoint is a fully fine-tuned classifier.
#[derive(Debug, Clone)]
pub struct DecoderBase {
    /// The folder it was loaded from (named in errors).
    pub dir: PathBuf,
    /// The model's configuration.
    pub config: DecoderConfig,
    /// `model.embed_tokens.weight`, `[vocab, hidden]`, kept in its stored dtype (only the
    /// looked-up rows are converted).
    pub embed_tokens: Tensor,
    /// The layers, no LoRA pair set.
    pub layers: Vec<DecoderLayer>,
    /// `model.norm`, the final RMSNorm.
    pub norm: RmsNorm,
    /// `score` of a `…ForSequenceClassification` checkpoint.
    pub score: Option<LoraLinear>,
}

/// Token ids and masks prepared for the decoder's layers: causal + padding masks, rotary
/// tables and each row's pooled (last non-padding) position. Built once per batch by
/// [`DecoderClassifier::context`]; every layer of every substitution view can reuse it.
#[derive(Debug, Clone)]
pub struct DecoderContext {
    /// `[b, 1, t, t]` additive masks per distinct sliding window (`None`: full causal).
    masks: Vec<(Option<usize>, Tensor)>,
    /// `[b, 1, 1, t]` masks of the pooled query row of each sequence, per window.
    pooled_masks: Vec<(Option<usize>, Tensor)>,
    /// `[t, head_dim/2]` rotary cos and sin.
    cos: Tensor,
    sin: Tensor,
    /// `[b, 1, head_dim/2]` rotary cos and sin at each row's pooled position.
    pooled_cos: Tensor,
    pooled_sin: Tensor,
    /// `[b]` u32 indices of the pooled tokens in the flattened `[b·t]` states.
    pooled_flat: Tensor,
}

impl DecoderContext {
    fn mask(&self, window: Option<usize>, pooled: bool) -> &Tensor {
        let list = if pooled {
            &self.pooled_masks
        } else {
            &self.masks
        };
        list.iter()
            .find(|(w, _)| *w == window)
            .map(|(_, m)| m)
            .expect("a mask per window of the config")
    }
}

/// A decoder sequence classifier: a base, optionally one adapter's LoRA pairs, and a head.
#[derive(Debug, Clone)]
pub struct DecoderClassifier {
    /// The model's configuration.
    pub config: DecoderConfig,
    /// `model.embed_tokens.weight` (stored dtype).
    pub embed_tokens: Tensor,
    /// The layers, with the adapter's LoRA pairs.
    pub layers: Vec<DecoderLayer>,
    /// The final RMSNorm.
    pub norm: RmsNorm,
    /// The classification head, `[labels, hidden]` (from the adapter's `modules_to_save`, or
    /// the fine-tuned checkpoint).
    pub score: LoraLinear,
    /// Token id marking padding for the head's last-token pick (`pad_token_id`, else eos);
    /// `None` picks the last token of the attention mask.
    pub pad_id: Option<u32>,
    /// Rotary inverse frequencies, `head_dim / 2` of them.
    inv_freq: Vec<f32>,
}

struct Tensors<'a> {
    map: &'a TensorMap,
    dir: &'a Path,
}

impl Tensors<'_> {
    fn get(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let t = self.map.get(name).ok_or_else(|| {
            GmsError::bad_file(
                self.dir,
                format!("missing tensor {name}"),
                "the checkpoint is incomplete or of another architecture; re-save it with transformers",
            )
        })?;
        if t.dims() != shape {
            return Err(GmsError::bad_file(
                self.dir,
                format!(
                    "tensor {name} has shape {:?}, config.json implies {shape:?}",
                    t.dims()
                ),
                "config.json and the weights disagree; re-save the model",
            ));
        }
        Ok(t.clone())
    }

    fn f32(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        Ok(self.get(name, shape)?.to_dtype(DType::F32)?)
    }
}

impl DecoderBase {
    /// Builds the base from checkpoint tensors under their transformers names; `dir` names
    /// the source in errors. Linear weights keep the dtype they have in `map`; norms and
    /// biases become f32. Tensors are shared, not copied.
    pub fn from_tensors(
        config: &DecoderConfig,
        map: &TensorMap,
        dir: &Path,
    ) -> Result<DecoderBase> {
        let t = Tensors { map, dir };
        let c = config;
        let h = c.hidden;
        let norm = |name: String| -> Result<RmsNorm> {
            Ok(RmsNorm {
                weight: t.f32(&name, &[h])?,
                eps: c.rms_norm_eps,
            })
        };
        let mut layers = Vec::with_capacity(c.layers);
        for l in 0..c.layers {
            let module = |m: Module| -> Result<LoraLinear> {
                let (out, inp) = module_shape(m, c);
                let p = m.decoder_path(l);
                Ok(LoraLinear {
                    weight: t.get(&format!("{p}.weight"), &[out, inp])?,
                    bias: if has_bias(m, c) {
                        Some(t.f32(&format!("{p}.bias"), &[out])?)
                    } else {
                        None
                    },
                    lora: None,
                })
            };
            let modules = [
                module(Module::Q)?,
                module(Module::K)?,
                module(Module::V)?,
                module(Module::O)?,
                module(Module::G)?,
                module(Module::U)?,
                module(Module::D)?,
            ];
            layers.push(DecoderLayer {
                modules,
                input_norm: norm(format!("model.layers.{l}.input_layernorm.weight"))?,
                post_attention_norm: norm(format!(
                    "model.layers.{l}.post_attention_layernorm.weight"
                ))?,
            });
        }
        let score = match c.num_labels {
            Some(n) if c.is_classifier => Some(LoraLinear {
                weight: t.f32("score.weight", &[n, h])?,
                bias: map
                    .get("score.bias")
                    .map(|b| b.to_dtype(DType::F32))
                    .transpose()?,
                lora: None,
            }),
            _ => None,
        };
        Ok(DecoderBase {
            dir: dir.to_path_buf(),
            config: c.clone(),
            embed_tokens: t.get("model.embed_tokens.weight", &[c.vocab_size, h])?,
            layers,
            norm: norm("model.norm.weight".into())?,
            score,
        })
    }

    /// The fine-tuned classifier this checkpoint is by itself (its own `score` head).
    pub fn classifier(&self) -> Result<DecoderClassifier> {
        let dir = &self.dir;
        let score = self.score.clone().ok_or_else(|| {
            GmsError::bad_file(
                dir.join("config.json"),
                format!(
                    "a {} checkpoint has no classification head",
                    self.config.architecture.model_type()
                ),
                format!(
                    "load it with a PEFT adapter trained for sequence classification, or save a {} there",
                    self.config.architecture.classifier_class()
                ),
            )
        })?;
        Ok(self.assemble(self.layers.clone(), score))
    }

    /// The classifier of `adapter` over this base: the adapter's LoRA pairs in every module it
    /// adapts and its saved head (base weights shared, nothing merged). The adapter was
    /// checked against this base's shapes when loaded ([`LoraAdapter::load`]).
    pub fn with_adapter(&self, adapter: &LoraAdapter) -> Result<DecoderClassifier> {
        adapter.check_fits(&self.config, &self.dir)?;
        let layers = self
            .layers
            .iter()
            .zip(&adapter.layers)
            .map(|(layer, pairs)| {
                let mut layer = layer.clone();
                for (module, pair) in layer.modules.iter_mut().zip(pairs) {
                    *module = module.with_lora(pair.clone());
                }
                layer
            })
            .collect();
        let score = match (&adapter.score, &self.score) {
            (Some(s), _) => s.clone(),
            (None, Some(s)) => s.clone(),
            (None, None) => {
                return Err(GmsError::bad_file(
                    adapter.weights_path(),
                    "the adapter saves no classification head (base_model.model.score.weight) and the base has none",
                    "train the adapter with task_type SEQ_CLS so modules_to_save keeps the score head",
                ))
            }
        };
        Ok(self.assemble(layers, score))
    }

    fn assemble(&self, layers: Vec<DecoderLayer>, score: LoraLinear) -> DecoderClassifier {
        DecoderClassifier {
            config: self.config.clone(),
            embed_tokens: self.embed_tokens.clone(),
            layers,
            norm: self.norm.clone(),
            score,
            pad_id: self.config.pad_id(),
            inv_freq: inverse_frequencies(&self.config),
        }
    }

    /// The device the weights live on.
    pub fn device(&self) -> &Device {
        self.embed_tokens.device()
    }
}

/// Rotary inverse frequencies as transformers computes them (f32, with Llama 3 / linear
/// rescaling from the config).
fn inverse_frequencies(c: &DecoderConfig) -> Vec<f32> {
    let d = c.head_dim;
    let base: Vec<f32> = (0..d)
        .step_by(2)
        .map(|i| 1.0 / (c.rope_theta as f32).powf(i as f32 / d as f32))
        .collect();
    match c.rope_scaling {
        RopeScaling::None => base,
        RopeScaling::Linear { factor } => base.iter().map(|f| f / factor as f32).collect(),
        RopeScaling::Llama3 {
            factor,
            low_freq_factor,
            high_freq_factor,
            original_max_positions,
        } => {
            // transformers' _compute_llama3_parameters.
            let low_wavelen = original_max_positions / low_freq_factor;
            let high_wavelen = original_max_positions / high_freq_factor;
            base.iter()
                .map(|&f| {
                    let f = f as f64;
                    let wavelen = 2.0 * std::f64::consts::PI / f;
                    let out = if wavelen < high_wavelen {
                        f
                    } else if wavelen > low_wavelen {
                        f / factor
                    } else {
                        let smooth = (original_max_positions / wavelen - low_freq_factor)
                            / (high_freq_factor - low_freq_factor);
                        (1.0 - smooth) * f / factor + smooth * f
                    };
                    out as f32
                })
                .collect()
        }
    }
}

impl DecoderClassifier {
    /// The device the weights live on.
    pub fn device(&self) -> &Device {
        self.embed_tokens.device()
    }

    /// Number of layers.
    pub fn num_layers(&self) -> usize {
        self.layers.len()
    }

    /// Number of output labels.
    pub fn num_labels(&self) -> usize {
        self.score.weight.dims()[0]
    }

    /// Masks, rotary tables and pooled positions of one batch (see [`DecoderContext`]).
    ///
    /// Positions count from 0 in every row, as transformers does without explicit
    /// `position_ids`; batches are right-padded (`tokenize::batch_rows`), so that is each
    /// token's true position.
    pub fn context(&self, x: &BatchInput) -> Result<DecoderContext> {
        let device = x.input_ids.device();
        let (b, t) = x.input_ids.dims2()?;
        let half = self.inv_freq.len();
        let angles: Vec<f32> = (0..t)
            .flat_map(|p| self.inv_freq.iter().map(move |f| p as f32 * f))
            .collect();
        let cos = Tensor::from_vec(angles.iter().map(|a| a.cos()).collect(), (t, half), device)?;
        let sin = Tensor::from_vec(angles.iter().map(|a| a.sin()).collect(), (t, half), device)?;
        let pooled = self.pooled_positions(x)?;
        let pooled_t = Tensor::from_vec(pooled.clone(), b, device)?;
        let flat: Vec<u32> = pooled
            .iter()
            .enumerate()
            .map(|(r, &p)| (r * t) as u32 + p)
            .collect();
        let padding = x.attention_bias.to_dtype(DType::F32)?; // [b, 1, 1, t]
        let mut windows: Vec<Option<usize>> = self.config.layer_windows.clone();
        windows.sort_unstable();
        windows.dedup();
        let mut masks = Vec::new();
        let mut pooled_masks = Vec::new();
        for w in windows {
            // candle-transformers keeps keys with `i - j <= w` (w + 1 keys); transformers'
            // sliding window keeps `i - j < w` (w keys), hence w - 1.
            let causal = candle_transformers::utils::build_additive_causal_mask(
                t,
                0,
                w.map(|w| w - 1),
                device,
                DType::F32,
            )?; // [1, 1, t, t]
            masks.push((w, causal.broadcast_add(&padding)?));
            let rows = causal
                .reshape((t, t))?
                .index_select(&pooled_t, 0)?
                .reshape((b, 1, 1, t))?;
            pooled_masks.push((w, rows.add(&padding)?));
        }
        let pick = |table: &Tensor| -> Result<Tensor> {
            Ok(table.index_select(&pooled_t, 0)?.reshape((b, 1, half))?)
        };
        Ok(DecoderContext {
            pooled_cos: pick(&cos)?,
            pooled_sin: pick(&sin)?,
            masks,
            pooled_masks,
            cos,
            sin,
            pooled_flat: Tensor::from_vec(flat, b, device)?,
        })
    }

    /// Each row's pooled position: transformers' `LlamaForSequenceClassification` takes the
    /// rightmost token whose id is not the pad id (0 when every token is padding); without a
    /// pad id, the last token the attention mask keeps.
    pub fn pooled_positions(&self, x: &BatchInput) -> Result<Vec<u32>> {
        let rows = match self.pad_id {
            Some(pad) => x
                .input_ids
                .to_vec2::<u32>()?
                .iter()
                .map(|ids| ids.iter().rposition(|&id| id != pad).unwrap_or(0) as u32)
                .collect(),
            None => x
                .attention_bias
                .to_dtype(DType::F32)?
                .flatten_from(1)?
                .to_vec2::<f32>()?
                .iter()
                .map(|bias| bias.iter().rposition(|&v| v == 0.0).unwrap_or(0) as u32)
                .collect(),
        };
        Ok(rows)
    }

    /// Token embeddings `[b, t, hidden]` (f32): hidden states at layer boundary 0.
    pub fn embed(&self, x: &BatchInput) -> Result<Tensor> {
        let (b, t) = x.input_ids.dims2()?;
        Ok(self
            .embed_tokens
            .embedding(&x.input_ids.flatten_all()?)?
            .to_dtype(DType::F32)?
            .reshape((b, t, ()))?)
    }

    /// Runs layers `range` on hidden states `h` (`[b, t, hidden]`), returning the states
    /// after them. When the range ends at the last layer, only each row's pooled token is
    /// computed there (all the head reads), so the result is `[b, 1, hidden]`.
    pub fn run_layers(
        &self,
        h: Tensor,
        x: &BatchInput,
        range: std::ops::Range<usize>,
    ) -> Result<Tensor> {
        let ctx = self.context(x)?;
        self.run_layers_in(h, &ctx, range)
    }

    /// [`Self::run_layers`] with a context built beforehand.
    pub fn run_layers_in(
        &self,
        mut h: Tensor,
        ctx: &DecoderContext,
        range: std::ops::Range<usize>,
    ) -> Result<Tensor> {
        let last = self.layers.len();
        for l in range {
            h = self.layer_forward(&self.layers[l], l, &h, ctx, l + 1 == last)?;
        }
        Ok(h)
    }

    /// Runs one layer (possibly not one of `self.layers`, e.g. a substituted one) as layer
    /// `index` (which picks its sliding window).
    ///
    /// With `pooled_only`, queries and everything after attention are computed for each row's
    /// pooled token alone (keys and values still cover every token): exact for the last
    /// layer, whose other positions the head never reads. The result is then `[b, 1, hidden]`.
    pub fn layer_forward(
        &self,
        layer: &DecoderLayer,
        index: usize,
        h: &Tensor,
        ctx: &DecoderContext,
        pooled_only: bool,
    ) -> Result<Tensor> {
        let c = &self.config;
        let (b, t, hid) = h.dims3()?;
        let (heads, kv_heads, d) = (c.heads, c.kv_heads, c.head_dim);
        let window = c.layer_windows.get(index).copied().flatten();
        let [q, k, v, o, g, u, down] = &layer.modules;
        let x = h.reshape((b * t, hid))?;
        let xn = layer.input_norm.forward(&x)?;
        let split = |y: Tensor, len: usize, n: usize| -> Result<Tensor> {
            Ok(y.reshape((b, len, n, d))?.transpose(1, 2)?.contiguous()?)
        };
        let kh = split(k.forward(&xn)?, t, kv_heads)?;
        let kh = candle_nn::rotary_emb::rope(&kh, &ctx.cos, &ctx.sin)?;
        let vh = split(v.forward(&xn)?, t, kv_heads)?;
        let group = heads / kv_heads;
        let kh = candle_transformers::utils::repeat_kv(kh, group)?;
        let vh = candle_transformers::utils::repeat_kv(vh, group)?;
        let (resid, xq, tq, cos, sin) = if pooled_only {
            (
                x.index_select(&ctx.pooled_flat, 0)?,
                xn.index_select(&ctx.pooled_flat, 0)?,
                1,
                &ctx.pooled_cos,
                &ctx.pooled_sin,
            )
        } else {
            (x.clone(), xn, t, &ctx.cos, &ctx.sin)
        };
        let qh = split(q.forward(&xq)?, tq, heads)?;
        let qh = candle_nn::rotary_emb::rope(&qh, cos, sin)?;
        let scale = 1.0 / (d as f64).sqrt();
        let scores =
            (qh.matmul(&kh.t()?)? * scale)?.broadcast_add(ctx.mask(window, pooled_only))?;
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        let attn = probs
            .matmul(&vh)?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((b * tq, heads * d))?;
        let h1 = (resid + o.forward(&attn)?)?;
        let hn = layer.post_attention_norm.forward(&h1)?;
        let mlp = down.forward(&(candle_nn::ops::silu(&g.forward(&hn)?)? * u.forward(&hn)?)?)?;
        Ok((h1 + mlp)?.reshape((b, tq, hid))?)
    }

    /// Logits `[b, labels]` from the states after the last layer: `[b, 1, hidden]` as
    /// [`Self::run_layers`] returns them, or `[b, t, hidden]` (the pooled tokens are picked).
    pub fn head(&self, h: &Tensor, x: &BatchInput) -> Result<Tensor> {
        let (b, t, hid) = h.dims3()?;
        let pooled = if t == 1 {
            h.reshape((b, hid))?
        } else {
            let flat: Vec<u32> = self
                .pooled_positions(x)?
                .iter()
                .enumerate()
                .map(|(r, &p)| (r * t) as u32 + p)
                .collect();
            let idx = Tensor::from_vec(flat, b, h.device())?;
            h.reshape((b * t, hid))?.index_select(&idx, 0)?
        };
        self.score.forward(&self.norm.forward(&pooled)?)
    }

    /// Full forward pass: logits `[b, labels]`.
    pub fn logits(&self, x: &BatchInput) -> Result<Tensor> {
        let ctx = self.context(x)?;
        let h = self.embed(x)?;
        let h = self.run_layers_in(h, &ctx, 0..self.layers.len())?;
        self.head(&h, x)
    }

    /// Logits of every batch of `set` (`[rows, labels]` each, batch order), batches run side
    /// by side where the CPU set-up allows (see [`crate::model::threads`]).
    pub fn set_logits(&self, set: &crate::model::tokenize::EncodedSet) -> Result<Vec<Tensor>> {
        let workers = crate::model::threads::batch_workers(self.device());
        crate::model::threads::map_parallel(&set.batches, workers, |b| self.logits(&b.input))
    }
}

/// The victim with the chosen cells' modules taken from the donor: a view sharing both
/// classifiers' tensors, so building one costs no weight copy. `from_donor(layer, module)`
/// says which cells come from the donor. Over one shared base (victim and proxy adapters),
/// a substituted cell differs only in its LoRA pair; for fully fine-tuned decoders it takes
/// the donor's whole module. Embeddings, norms and the head stay the victim's.
pub fn lora_view(
    victim: &DecoderClassifier,
    donor: &DecoderClassifier,
    from_donor: impl Fn(usize, Module) -> bool,
) -> DecoderClassifier {
    let mut view = victim.clone();
    for (l, layer) in view.layers.iter_mut().enumerate() {
        *layer = substituted_layer(&victim.layers[l], &donor.layers[l], |m| from_donor(l, m));
    }
    view
}

/// One layer of [`lora_view`]: the victim's layer with the modules `from_donor` picks taken
/// from the donor's (reference-counted clones).
pub fn substituted_layer(
    victim: &DecoderLayer,
    donor: &DecoderLayer,
    from_donor: impl Fn(Module) -> bool,
) -> DecoderLayer {
    let mut layer = victim.clone();
    for (slot, &m) in DECODER_MODULES.iter().enumerate() {
        if from_donor(m) {
            layer.modules[slot] = donor.modules[slot].clone();
        }
    }
    layer
}

/// The cells `donor` can give `victim` (see
/// [`crate::model::layered::LayeredClassifier::substitutable`]): where both carry a LoRA
/// pair, or — for fully fine-tuned decoders — where both have their own weight. A module only
/// one of two adapters adapts, or neither (both compute the one shared base weight), is
/// never substituted.
pub fn substitutable(
    victim: &DecoderClassifier,
    donor: &DecoderClassifier,
) -> crate::model::SubstitutionMatrix {
    let mut cells = Vec::new();
    for (l, (v, d)) in victim.layers.iter().zip(&donor.layers).enumerate() {
        for ((&m, vm), dm) in DECODER_MODULES.iter().zip(&v.modules).zip(&d.modules) {
            let own = match (&vm.lora, &dm.lora) {
                (Some(_), Some(_)) => true,
                (None, None) => vm.weight.id() != dm.weight.id(),
                _ => false,
            };
            if own {
                cells.push((l, m));
            }
        }
    }
    crate::model::SubstitutionMatrix::from_cells(victim.layers.len(), &cells)
        .expect("layers of the victim")
}
