//! The project's own encoder classifier: BERT, RoBERTa/XLM-R and DistilBERT.
//!
//! Built from tensors under their Hugging Face names, it runs the embeddings, any range of
//! layers and the head separately, so GMS can resume a forward pass from a cached layer
//! boundary. Evaluation follows docs/algorithm.md §Evaluation conventions: f32, no dropout,
//! erf GELU, eps from the config.

use crate::error::{GmsError, Result};
use crate::model::arch::{Architecture, Module, ENCODER_MODULES};
use crate::model::config::{Activation, ModelConfig};
use crate::model::folder::TensorMap;
use crate::model::tokenize::BatchInput;
use candle_core::{DType, Tensor, D};
use std::path::Path;

/// A linear layer `y = x·Wᵀ + b` with the checkpoint's `[out, in]` weight.
#[derive(Debug, Clone)]
pub struct Linear {
    /// `[out, in]` weight.
    pub weight: Tensor,
    /// `[out]` bias.
    pub bias: Tensor,
}

impl Linear {
    /// Applies the layer to `x` of shape `[n, in]` (or `[.., in]`, flattened by the caller).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        // candle's CUDA matmul takes only row- or column-major operands, in the backward pass
        // too ("matmul is only supported for contiguous tensors" while training; docs/gpu.md
        // §Contiguous matmul operands). A
        // trained weight (a `Var`) on the GPU gets a contiguous transposed copy; evaluation and
        // the CPU keep the free transposed view.
        let y = if self.weight.is_variable() && self.weight.device().is_cuda() {
            x.contiguous()?.matmul(&self.weight.t()?.contiguous()?)?
        } else {
            x.matmul(&self.weight.t()?)?
        };
        Ok(y.broadcast_add(&self.bias)?)
    }

    fn to_dtype(&self, dtype: DType) -> Result<Linear> {
        Ok(Linear {
            weight: self.weight.to_dtype(dtype)?,
            bias: self.bias.to_dtype(dtype)?,
        })
    }
}

/// LayerNorm over the last dimension.
#[derive(Debug, Clone)]
pub struct Norm {
    /// Scale (γ).
    pub weight: Tensor,
    /// Shift (β).
    pub bias: Tensor,
    /// Epsilon from the config.
    pub eps: f64,
}

impl Norm {
    fn to_dtype(&self, dtype: DType) -> Result<Norm> {
        Ok(Norm {
            weight: self.weight.to_dtype(dtype)?,
            bias: self.bias.to_dtype(dtype)?,
            eps: self.eps,
        })
    }

    fn forward(&self, x: &Tensor, trainable: bool) -> Result<Tensor> {
        // candle-nn's fused layer_norm has no backward pass (docs/algorithm.md §Training):
        // training composes it.
        Ok(if trainable {
            candle_nn::ops::layer_norm_slow(x, &self.weight, &self.bias, self.eps as f32)?
        } else {
            candle_nn::ops::layer_norm(x, &self.weight, &self.bias, self.eps as f32)?
        })
    }
}

/// One transformer layer: the six substitutable modules and the two LayerNorms.
#[derive(Debug, Clone)]
pub struct EncoderLayer {
    /// Q, K, V, O, F, P in [`ENCODER_MODULES`] order.
    pub modules: [Linear; 6],
    /// LayerNorm after attention.
    pub attn_norm: Norm,
    /// LayerNorm after the feed-forward block.
    pub out_norm: Norm,
}

/// Token, position and type embeddings plus their LayerNorm.
#[derive(Debug, Clone)]
pub struct Embeddings {
    word: Tensor,
    position: Tensor,
    token_type: Option<Tensor>,
    norm: Norm,
}

/// The classification head on the first token.
#[derive(Debug, Clone)]
pub enum Head {
    /// BERT: pooler (dense + tanh) then classifier.
    Bert {
        /// `bert.pooler.dense`.
        pooler: Linear,
        /// `classifier`: hidden → labels.
        classifier: Linear,
    },
    /// RoBERTa: `classifier.dense` + tanh then `classifier.out_proj`.
    Roberta {
        /// `classifier.dense`.
        dense: Linear,
        /// `classifier.out_proj`: hidden → labels.
        out_proj: Linear,
    },
    /// DistilBERT: `pre_classifier` + ReLU then `classifier`.
    DistilBert {
        /// `pre_classifier`.
        pre_classifier: Linear,
        /// `classifier`: hidden → labels.
        classifier: Linear,
    },
}

/// An encoder sequence classifier.
#[derive(Debug, Clone)]
pub struct Classifier {
    /// The model's configuration.
    pub config: ModelConfig,
    /// Embedding block.
    pub embeddings: Embeddings,
    /// Transformer layers.
    pub layers: Vec<EncoderLayer>,
    /// Classification head.
    pub head: Head,
    /// Use composed (differentiable) LayerNorm and softmax.
    pub trainable: bool,
}

struct Tensors<'a> {
    map: &'a TensorMap,
    dir: &'a Path,
}

impl Tensors<'_> {
    fn get(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let t = self
            .map
            .get(name)
            .or_else(|| {
                // Old TF-converted checkpoints name LayerNorm parameters gamma/beta.
                let alt = name
                    .strip_suffix("LayerNorm.weight")
                    .map(|s| format!("{s}LayerNorm.gamma"))
                    .or_else(|| name.strip_suffix("LayerNorm.bias").map(|s| format!("{s}LayerNorm.beta")))?;
                self.map.get(&alt)
            })
            .ok_or_else(|| {
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

    fn linear(&self, prefix: &str, out: usize, inp: usize) -> Result<Linear> {
        Ok(Linear {
            weight: self.get(&format!("{prefix}.weight"), &[out, inp])?,
            bias: self.get(&format!("{prefix}.bias"), &[out])?,
        })
    }

    fn norm(&self, prefix: &str, size: usize, eps: f64) -> Result<Norm> {
        Ok(Norm {
            weight: self.get(&format!("{prefix}.weight"), &[size])?,
            bias: self.get(&format!("{prefix}.bias"), &[size])?,
            eps,
        })
    }
}

impl Classifier {
    /// Builds the classifier from checkpoint tensors; `dir` names the source in errors.
    ///
    /// The tensors are shared, not copied (candle tensors are reference-counted).
    pub fn from_tensors(config: &ModelConfig, map: &TensorMap, dir: &Path) -> Result<Classifier> {
        let t = Tensors { map, dir };
        let c = config;
        let (h, i, eps) = (c.hidden, c.intermediate, c.layer_norm_eps);
        let arch = c.architecture;
        let names = arch.embedding_names();
        let embeddings = Embeddings {
            word: t.get(&names.word, &[c.vocab_size, h])?,
            position: t.get(&names.position, &[c.max_positions, h])?,
            token_type: names
                .token_type
                .as_deref()
                .map(|name| t.get(name, &[c.type_vocab_size, h]))
                .transpose()?,
            norm: t.norm(&names.norm, h, eps)?,
        };
        let mut layers = Vec::with_capacity(c.layers);
        for l in 0..c.layers {
            let module = |m: Module| {
                let (o, n) = m.shape(h, i);
                t.linear(&arch.module_path(l, m), o, n)
            };
            let [attn_norm, out_norm] = arch.layer_norm_names(l);
            layers.push(EncoderLayer {
                modules: [
                    module(Module::Q)?,
                    module(Module::K)?,
                    module(Module::V)?,
                    module(Module::O)?,
                    module(Module::F)?,
                    module(Module::P)?,
                ],
                attn_norm: t.norm(&attn_norm, h, eps)?,
                out_norm: t.norm(&out_norm, h, eps)?,
            });
        }
        let [inner, outer] = arch.head_names();
        let (inner, outer) = (t.linear(inner, h, h)?, t.linear(outer, c.num_labels, h)?);
        let head = match arch {
            Architecture::Bert => Head::Bert {
                pooler: inner,
                classifier: outer,
            },
            Architecture::Roberta => Head::Roberta {
                dense: inner,
                out_proj: outer,
            },
            Architecture::DistilBert => Head::DistilBert {
                pre_classifier: inner,
                classifier: outer,
            },
        };
        Ok(Classifier {
            config: c.clone(),
            embeddings,
            layers,
            head,
            trainable: false,
        })
    }

    /// The same classifier with every tensor converted to `dtype` (e.g. bf16 for fast GPU
    /// evaluation). Batches for it need an attention bias in the same dtype
    /// ([`crate::model::tokenize::EncodedSet::to_dtype`]).
    pub fn to_dtype(&self, dtype: DType) -> Result<Classifier> {
        let e = &self.embeddings;
        let embeddings = Embeddings {
            word: e.word.to_dtype(dtype)?,
            position: e.position.to_dtype(dtype)?,
            token_type: e
                .token_type
                .as_ref()
                .map(|t| t.to_dtype(dtype))
                .transpose()?,
            norm: e.norm.to_dtype(dtype)?,
        };
        let layers = self
            .layers
            .iter()
            .map(|l| {
                let m = &l.modules;
                Ok(EncoderLayer {
                    modules: [
                        m[0].to_dtype(dtype)?,
                        m[1].to_dtype(dtype)?,
                        m[2].to_dtype(dtype)?,
                        m[3].to_dtype(dtype)?,
                        m[4].to_dtype(dtype)?,
                        m[5].to_dtype(dtype)?,
                    ],
                    attn_norm: l.attn_norm.to_dtype(dtype)?,
                    out_norm: l.out_norm.to_dtype(dtype)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let head = match &self.head {
            Head::Bert { pooler, classifier } => Head::Bert {
                pooler: pooler.to_dtype(dtype)?,
                classifier: classifier.to_dtype(dtype)?,
            },
            Head::Roberta { dense, out_proj } => Head::Roberta {
                dense: dense.to_dtype(dtype)?,
                out_proj: out_proj.to_dtype(dtype)?,
            },
            Head::DistilBert {
                pre_classifier,
                classifier,
            } => Head::DistilBert {
                pre_classifier: pre_classifier.to_dtype(dtype)?,
                classifier: classifier.to_dtype(dtype)?,
            },
        };
        Ok(Classifier {
            config: self.config.clone(),
            embeddings,
            layers,
            head,
            trainable: self.trainable,
        })
    }

    /// The dtype of the weights (f32 unless converted by [`Self::to_dtype`]).
    pub fn dtype(&self) -> DType {
        self.embeddings.word.dtype()
    }

    /// The device the weights live on.
    pub fn device(&self) -> &candle_core::Device {
        self.embeddings.word.device()
    }

    /// Embedding output `[b, t, h]`: hidden states at layer boundary 0.
    pub fn embed(&self, x: &BatchInput) -> Result<Tensor> {
        let e = &self.embeddings;
        let (b, t) = x.input_ids.dims2()?;
        let flat = |ids: &Tensor, table: &Tensor| -> Result<Tensor> {
            Ok(table.embedding(&ids.flatten_all()?)?.reshape((b, t, ()))?)
        };
        let mut h = flat(&x.input_ids, &e.word)?.add(&flat(&x.position_ids, &e.position)?)?;
        if let Some(tt) = &e.token_type {
            h = h.add(&flat(&x.type_ids, tt)?)?;
        }
        e.norm.forward(&h, self.trainable)
    }

    /// Runs layers `range` on hidden states `h` (`[b, t, h]`), returning the states after them.
    /// When the range ends at the last layer, only the first token is computed there (all the
    /// head reads), so the result is `[b, 1, h]`.
    pub fn run_layers(
        &self,
        mut h: Tensor,
        x: &BatchInput,
        range: std::ops::Range<usize>,
    ) -> Result<Tensor> {
        let last = self.layers.len();
        for l in range {
            h = self.layer_forward(&self.layers[l], &h, &x.attention_bias, l + 1 == last)?;
        }
        Ok(h)
    }

    /// Runs one layer (possibly not one of `self.layers`, e.g. a substituted one).
    ///
    /// With `first_token_only`, queries and everything after attention are computed for the
    /// first token alone (keys and values still cover every token): exact for the last layer,
    /// whose other positions no head reads, and ~5/6 of that layer's work saved.
    pub fn layer_forward(
        &self,
        layer: &EncoderLayer,
        h: &Tensor,
        bias: &Tensor,
        first_token_only: bool,
    ) -> Result<Tensor> {
        let c = &self.config;
        let (b, t, hid) = h.dims3()?;
        let (heads, d) = (c.heads, hid / c.heads);
        let x = h.reshape((b * t, hid))?;
        let [q, k, v, o, f, p] = &layer.modules;
        let split = |y: Tensor, len: usize| -> Result<Tensor> {
            Ok(y.reshape((b, len, heads, d))?
                .transpose(1, 2)?
                .contiguous()?)
        };
        let (xq, tq) = if first_token_only {
            (h.narrow(1, 0, 1)?.reshape((b, hid))?, 1)
        } else {
            (x.clone(), t)
        };
        let scale = 1.0 / (d as f64).sqrt();
        let qh = split((q.forward(&xq)? * scale)?, tq)?;
        let kh = split(k.forward(&x)?, t)?;
        let vh = split(v.forward(&x)?, t)?;
        let scores = qh.matmul(&kh.t()?.contiguous()?)?.broadcast_add(bias)?;
        let probs = if self.trainable {
            candle_nn::ops::softmax(&scores, D::Minus1)?
        } else {
            candle_nn::ops::softmax_last_dim(&scores)?
        };
        let ctx = probs
            .matmul(&vh)?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((b * tq, hid))?;
        let attn = layer
            .attn_norm
            .forward(&(o.forward(&ctx)? + &xq)?, self.trainable)?;
        let inner = f.forward(&attn)?;
        let inner = match c.activation {
            Activation::GeluErf => crate::model::gelu::gelu_erf(&inner, self.trainable)?,
            Activation::GeluTanh => inner.gelu()?,
            Activation::Relu => inner.relu()?,
        };
        let out = layer
            .out_norm
            .forward(&(p.forward(&inner)? + &attn)?, self.trainable)?;
        Ok(out.reshape((b, tq, hid))?)
    }

    /// Logits `[b, labels]` from the last layer's states (the first token of each row).
    pub fn head(&self, h: &Tensor) -> Result<Tensor> {
        let first = h.narrow(1, 0, 1)?.squeeze(1)?;
        Ok(match &self.head {
            Head::Bert { pooler, classifier } => {
                classifier.forward(&pooler.forward(&first)?.tanh()?)?
            }
            Head::Roberta { dense, out_proj } => {
                out_proj.forward(&dense.forward(&first)?.tanh()?)?
            }
            Head::DistilBert {
                pre_classifier,
                classifier,
            } => classifier.forward(&pre_classifier.forward(&first)?.relu()?)?,
        })
    }

    /// Full forward pass: logits `[b, labels]`.
    pub fn logits(&self, x: &BatchInput) -> Result<Tensor> {
        let h = self.embed(x)?;
        let h = self.run_layers(h, x, 0..self.layers.len())?;
        self.head(&h)
    }

    /// Logits of every batch of `set` (`[rows, labels]` each, batch order), batches run side
    /// by side where the CPU set-up allows (see [`crate::model::threads`]).
    pub fn set_logits(&self, set: &crate::model::tokenize::EncodedSet) -> Result<Vec<Tensor>> {
        let workers = crate::model::threads::batch_workers(self.device());
        crate::model::threads::map_parallel(&set.batches, workers, |b| self.logits(&b.input))
    }

    /// Every parameter tensor under its checkpoint name (for writing and training).
    pub fn named_tensors(&self) -> Vec<(String, Tensor)> {
        let arch = self.config.architecture;
        let (names, e) = (arch.embedding_names(), &self.embeddings);
        let mut out = vec![
            (names.word, e.word.clone()),
            (names.position, e.position.clone()),
        ];
        out.extend(names.token_type.zip(e.token_type.clone()));
        let mut pair = |name: &str, weight: &Tensor, bias: &Tensor| {
            out.push((format!("{name}.weight"), weight.clone()));
            out.push((format!("{name}.bias"), bias.clone()));
        };
        pair(&names.norm, &e.norm.weight, &e.norm.bias);
        for (l, layer) in self.layers.iter().enumerate() {
            for (m, lin) in ENCODER_MODULES.into_iter().zip(&layer.modules) {
                pair(&arch.module_path(l, m), &lin.weight, &lin.bias);
            }
            let [attn, ffn] = arch.layer_norm_names(l);
            pair(&attn, &layer.attn_norm.weight, &layer.attn_norm.bias);
            pair(&ffn, &layer.out_norm.weight, &layer.out_norm.bias);
        }
        let [inner_name, outer_name] = arch.head_names();
        let (inner, outer) = match &self.head {
            Head::Bert { pooler, classifier } => (pooler, classifier),
            Head::Roberta { dense, out_proj } => (dense, out_proj),
            Head::DistilBert {
                pre_classifier,
                classifier,
            } => (pre_classifier, classifier),
        };
        pair(inner_name, &inner.weight, &inner.bias);
        pair(outer_name, &outer.weight, &outer.bias);
        out
    }
}

/// How many predictions equal their labels.
pub fn count_matches(predictions: &[u32], labels: &[u32]) -> usize {
    predictions
        .iter()
        .zip(labels)
        .filter(|(p, l)| p == l)
        .count()
}

/// Index of the largest value of `row` (a row of logits or probabilities); the lowest index
/// wins ties, (docs/algorithm.md §Evaluation conventions). Evaluation and the trainer's accuracy both count with it.
pub fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, v) in row.iter().enumerate() {
        if *v > row[best] {
            best = i;
        }
    }
    best
}

/// [`argmax`] of each row of `logits` (`[b, labels]`).
pub fn argmax_rows(logits: &Tensor) -> Result<Vec<u32>> {
    let rows = logits.to_dtype(DType::F32)?.to_vec2::<f32>()?;
    Ok(rows.iter().map(|r| argmax(r) as u32).collect())
}
