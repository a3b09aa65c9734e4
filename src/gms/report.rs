//! The strategy report: a strategy with how it was found and how it scores on the proxy and
//! test sets. Building one runs the evaluator, so it lives here; `export::strategy` reads and
//! writes it as the strategy JSON.

use crate::error::Result;
use crate::gms::modes::SearchMode;
use crate::gms::score::Drops;
use crate::gms::search::{Move, TraceStep};
use crate::gms::session::{Session, TestMetrics};
use crate::gms::signal::SuspectSignal;
use crate::model::{Module, SubstitutionMatrix, ENCODER_MODULES};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Accuracy and ASR on the proxy sets.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ProxyMetrics {
    /// Clean proxy accuracy.
    pub acc: f64,
    /// Suspect proxy ASR.
    pub asr: f64,
}

/// How a strategy was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// A search (the report carries its trace; `mode` says which search).
    Greedy,
    /// Edited by hand in the TUI.
    Manual,
}

/// One row of the greedy path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceRow {
    /// Step number (0 = initial full substitution).
    pub step: usize,
    /// The move, written `start`, `-module X` or `-layer N`.
    #[serde(rename = "move", with = "move_text")]
    pub mv: Move,
    /// Substituted modules after the step.
    pub modules: Vec<Module>,
    /// Substituted layers after the step.
    pub layers: Vec<usize>,
    /// Clean proxy accuracy.
    pub acc: f64,
    /// Suspect proxy ASR.
    pub asr: f64,
    /// Relative accuracy drop.
    pub acc_drop: f64,
    /// Relative ASR drop.
    pub asr_drop: f64,
    /// Score under the report's α.
    pub score: f64,
    /// Whether the step set a new best.
    pub improved: bool,
}

/// The strategy JSON spells a move as ASCII text ([`Move::ascii`]), as every strategy file
/// written so far does; the search events keep serde's default form.
mod move_text {
    use crate::gms::search::Move;
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(mv: &Move, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&mv.ascii())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Move, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(D::Error::custom)
    }
}

/// A file input and its fingerprint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputRef {
    /// Path as given.
    pub path: PathBuf,
    /// sha256 of its contents (for a model: config.json and weight files).
    pub sha256: String,
}

/// The inputs a strategy was found with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportInputs {
    /// Victim model folder (or PEFT adapter folder; its fingerprint covers the base too).
    pub victim: InputRef,
    /// Proxy model folder (or PEFT adapter folder).
    pub proxy: InputRef,
    /// The adapters' base model folder (adapters only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<InputRef>,
    /// Clean proxy set.
    pub clean: InputRef,
    /// Suspect proxy set.
    pub suspect: InputRef,
    /// Clean test set.
    pub test_clean: Option<InputRef>,
    /// Poisoned test set.
    pub test_poison: Option<InputRef>,
}

impl ReportInputs {
    /// The paths alone, as a search takes them (resuming from a journal's header).
    pub fn search_inputs(&self) -> crate::gms::session::SearchInputs {
        crate::gms::session::SearchInputs {
            victim: self.victim.path.clone(),
            proxy: self.proxy.path.clone(),
            base: self.base.as_ref().map(|b| b.path.clone()),
            clean: self.clean.path.clone(),
            suspect: self.suspect.path.clone(),
            test_clean: self.test_clean.as_ref().map(|t| t.path.clone()),
            test_poison: self.test_poison.as_ref().map(|t| t.path.clone()),
        }
    }

    /// Every input's path rewritten by `rename` (e.g. the demo's temporary copies named by
    /// where the embedded files come from).
    pub fn map_paths(&mut self, rename: impl Fn(&std::path::Path) -> PathBuf) {
        let inputs = [
            &mut self.victim,
            &mut self.proxy,
            &mut self.clean,
            &mut self.suspect,
        ];
        let optional = [
            self.base.as_mut(),
            self.test_clean.as_mut(),
            self.test_poison.as_mut(),
        ];
        for input in inputs.into_iter().chain(optional.into_iter().flatten()) {
            input.path = rename(&input.path);
        }
    }
}

/// The strategy file format gms writes. Files without a `format` (written before decoders
/// were supported) are encoder strategies.
pub const STRATEGY_FORMAT: &str = "gms-strategy/2";

/// A substitution strategy with how it was found and how it scores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StrategyReport {
    /// [`STRATEGY_FORMAT`]; absent in files of the first format (encoders only), which
    /// round-trip as they were.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// Version of gms that wrote it.
    pub gms_version: String,
    /// How it was chosen.
    pub origin: Origin,
    /// The Hugging Face classifier class of the model it was found for, e.g.
    /// `LlamaForSequenceClassification` (absent in the first format: an encoder).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architecture: Option<String>,
    /// That architecture's substitutable modules, in candidate order (absent in the first
    /// format: Q, K, V, O, F, P).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module_order: Option<Vec<Module>>,
    /// Substituted module types, when the cells are the product `modules × layers` (every
    /// search answer is); both lists are empty for a hand-edited strategy that is not.
    pub modules: Vec<Module>,
    /// Substituted layers (see `modules`).
    pub layers: Vec<usize>,
    /// The authoritative cell list: `[layer, "Q"]` pairs.
    pub cells: Vec<(usize, Module)>,
    /// Number of layers of the model.
    pub num_layers: usize,
    /// Accuracy weight α.
    pub alpha: f64,
    /// Patience.
    pub patience: usize,
    /// The search mode (files written before modes existed read as `paper`).
    #[serde(default)]
    pub mode: SearchMode,
    /// How the score's drops were measured (absent in the first format: relative).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drops: Option<Drops>,
    /// Score of the strategy under α.
    pub score: f64,
    /// The strategy on the proxy sets.
    pub proxy: ProxyMetrics,
    /// The victim on the proxy sets.
    pub baseline: ProxyMetrics,
    /// The greedy path (empty for a manual strategy).
    pub trace: Vec<TraceRow>,
    /// Strategies scored by the search.
    pub evaluations: usize,
    /// The purified model on the test sets, when given.
    pub test: Option<TestMetrics>,
    /// The victim on the test sets, when given.
    pub victim_test: Option<TestMetrics>,
    /// The suspect-signal check (src/gms/signal.rs): whether the suspect set's ASR moved,
    /// the proxy model alone, and warnings; `null` for files written before it existed.
    #[serde(default)]
    pub suspect_signal: Option<SuspectSignal>,
    /// Input paths and fingerprints.
    pub inputs: ReportInputs,
    /// The α sweep run before writing (the TUI's trade-off view); absent when none was.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sweep: Vec<SweepRow>,
}

/// One α of an α sweep: the search's answer at that α and how it scores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepRow {
    /// Accuracy weight α of this search.
    pub alpha: f64,
    /// Patience of this search.
    pub patience: usize,
    /// Mode of this search (reports before sweeps of several modes have none: `paper`).
    #[serde(default)]
    pub mode: SearchMode,
    /// Substituted module types of its answer (empty when it is no product set).
    pub modules: Vec<Module>,
    /// Substituted layers of its answer (likewise).
    pub layers: Vec<usize>,
    /// Its answer's cells when it is no product set (the finer modes' answers); absent else.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cells: Vec<(usize, Module)>,
    /// Its answer on the proxy sets.
    pub proxy: ProxyMetrics,
    /// Its answer's score under this α.
    pub score: f64,
    /// Its answer on the test sets, when given.
    pub test: Option<TestMetrics>,
}

impl TraceRow {
    /// A report row from a search step.
    pub fn from_step(s: &TraceStep) -> TraceRow {
        let m = &s.point.metrics;
        TraceRow {
            step: s.step,
            mv: s.point.mv,
            modules: s.point.modules.clone(),
            layers: s.point.layers.clone(),
            acc: m.acc,
            asr: m.asr,
            acc_drop: m.acc_drop,
            asr_drop: m.asr_drop,
            score: m.score,
            improved: s.improved,
        }
    }
}

/// What a strategy report is built from.
pub struct ReportParts<'a> {
    /// The strategy.
    pub matrix: &'a SubstitutionMatrix,
    /// How it was chosen.
    pub origin: Origin,
    /// α.
    pub alpha: f64,
    /// Patience.
    pub patience: usize,
    /// The search mode.
    pub mode: SearchMode,
    /// The greedy path.
    pub trace: &'a [TraceStep],
    /// Strategies scored.
    pub evaluations: usize,
    /// The suspect-signal check, when a search ran.
    pub suspect_signal: Option<SuspectSignal>,
}

impl StrategyReport {
    /// Builds the report, scoring the strategy (from the cache when possible) and the test sets.
    pub fn build(session: &mut Session, parts: ReportParts<'_>) -> Result<StrategyReport> {
        let counts = session.evaluator.evaluate(parts.matrix, None)?.counts;
        let metrics = session.evaluator.metrics(parts.alpha, &counts);
        let baseline = session.evaluator.baseline();
        let empty = SubstitutionMatrix::empty(parts.matrix.num_layers());
        let test = session.test_metrics(parts.matrix)?;
        let victim_test = session.test_metrics(&empty)?;
        let cells = parts.matrix.cells();
        // modules × layers must describe the cells exactly or not at all: a reader that takes
        // the product of a non-product strategy's modules and layers gets other cells.
        let (modules, layers) = parts.matrix.as_product().unwrap_or_default();
        let arch = session.evaluator.architecture();
        Ok(StrategyReport {
            format: Some(STRATEGY_FORMAT.to_string()),
            gms_version: env!("CARGO_PKG_VERSION").to_string(),
            origin: parts.origin,
            architecture: Some(arch.hf_class().to_string()),
            module_order: Some(arch.modules().to_vec()),
            modules,
            layers,
            cells,
            num_layers: parts.matrix.num_layers(),
            alpha: parts.alpha,
            patience: parts.patience,
            mode: parts.mode,
            drops: Some(session.evaluator.drops),
            score: metrics.score,
            proxy: ProxyMetrics {
                acc: metrics.acc,
                asr: metrics.asr,
            },
            baseline: ProxyMetrics {
                acc: baseline.acc,
                asr: baseline.asr,
            },
            trace: parts.trace.iter().map(TraceRow::from_step).collect(),
            evaluations: parts.evaluations,
            test,
            victim_test,
            suspect_signal: parts.suspect_signal,
            inputs: report_inputs(session)?,
            sweep: Vec::new(),
        })
    }

    /// The substitutable modules of the architecture it was found for.
    pub fn module_order(&self) -> &[Module] {
        self.module_order.as_deref().unwrap_or(&ENCODER_MODULES)
    }

    /// The strategy's cell set.
    pub fn matrix(&self) -> SubstitutionMatrix {
        SubstitutionMatrix::from_cells(self.num_layers, &self.cells)
            .expect("cells are validated when a report is read or built")
    }
}

/// The inputs of a session with their fingerprints (sha256 of each file, of a model's config
/// and weights).
pub fn report_inputs(s: &Session) -> Result<ReportInputs> {
    let file = |p: &PathBuf| -> Result<InputRef> {
        Ok(InputRef {
            path: p.clone(),
            sha256: crate::model::folder::sha256_files(std::slice::from_ref(p))?,
        })
    };
    let i = &s.inputs;
    let base = match (s.victim.base_dir(), s.victim.base_fingerprint()?) {
        (Some(dir), Some(sha256)) => Some(InputRef {
            path: dir.to_path_buf(),
            sha256,
        }),
        _ => None,
    };
    Ok(ReportInputs {
        victim: InputRef {
            path: i.victim.clone(),
            sha256: s.victim.fingerprint()?,
        },
        proxy: InputRef {
            path: i.proxy.clone(),
            sha256: s.proxy.fingerprint()?,
        },
        base,
        clean: file(&i.clean)?,
        suspect: file(&i.suspect)?,
        test_clean: i.test_clean.as_ref().map(file).transpose()?,
        test_poison: i.test_poison.as_ref().map(file).transpose()?,
    })
}
