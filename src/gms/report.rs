//! The strategy report: a strategy with how it was found and how it scores on the proxy and
//! test sets. Building one runs the evaluator, so it lives here; `export::strategy` reads and
//! writes it as the strategy JSON.

use crate::error::Result;
use crate::gms::modes::SearchMode;
use crate::gms::search::{product_cover, Move, TraceStep};
use crate::gms::session::{Session, TestMetrics};
use crate::gms::signal::SuspectSignal;
use crate::model::{Module, SubstitutionMatrix};
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
    /// Victim model folder.
    pub victim: InputRef,
    /// Proxy model folder.
    pub proxy: InputRef,
    /// Clean proxy set.
    pub clean: InputRef,
    /// Suspect proxy set.
    pub suspect: InputRef,
    /// Clean test set.
    pub test_clean: Option<InputRef>,
    /// Poisoned test set.
    pub test_poison: Option<InputRef>,
}

/// A substitution strategy with how it was found and how it scores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StrategyReport {
    /// Version of gms that wrote it.
    pub gms_version: String,
    /// How it was chosen.
    pub origin: Origin,
    /// Substituted module types (for a non-product strategy: every module used somewhere).
    pub modules: Vec<Module>,
    /// Substituted layers (for a non-product strategy: every layer touched).
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
        let (modules, layers) = product_cover(parts.matrix);
        Ok(StrategyReport {
            gms_version: env!("CARGO_PKG_VERSION").to_string(),
            origin: parts.origin,
            modules,
            layers,
            cells,
            num_layers: parts.matrix.num_layers(),
            alpha: parts.alpha,
            patience: parts.patience,
            mode: parts.mode,
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
        })
    }

    /// The strategy's cell set.
    pub fn matrix(&self) -> SubstitutionMatrix {
        SubstitutionMatrix::from_cells(self.num_layers, &self.cells)
            .expect("cells are validated when a report is read or built")
    }
}

fn report_inputs(s: &Session) -> Result<ReportInputs> {
    let file = |p: &PathBuf| -> Result<InputRef> {
        Ok(InputRef {
            path: p.clone(),
            sha256: crate::model::folder::sha256_files(std::slice::from_ref(p))?,
        })
    };
    let i = &s.inputs;
    Ok(ReportInputs {
        victim: InputRef {
            path: i.victim.clone(),
            sha256: s.victim_folder.fingerprint()?,
        },
        proxy: InputRef {
            path: i.proxy.clone(),
            sha256: s.proxy_folder.fingerprint()?,
        },
        clean: file(&i.clean)?,
        suspect: file(&i.suspect)?,
        test_clean: i.test_clean.as_ref().map(file).transpose()?,
        test_poison: i.test_poison.as_ref().map(file).transpose()?,
    })
}
