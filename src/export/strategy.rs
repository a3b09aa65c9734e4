//! The strategy JSON: what `gms search` and the TUI's `w` write and `gms apply` reads.

use crate::error::{GmsError, Result};
use crate::gms::score::Baseline;
use crate::gms::search::{Move, TraceStep};
use crate::gms::session::{Session, TestMetrics};
use crate::model::{Module, SubstitutionMatrix};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Accuracy and ASR on the proxy sets.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ProxyMetrics {
    /// Clean proxy accuracy.
    pub acc: f64,
    /// Suspect proxy ASR.
    pub asr: f64,
}

/// One row of the greedy path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceRow {
    /// Step number (0 = initial full substitution).
    pub step: usize,
    /// `start`, `-module X` or `-layer N`.
    #[serde(rename = "move")]
    pub mv: String,
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
    /// How it was chosen: `greedy` (the paper's search) or `manual`.
    pub origin: String,
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
    /// Substituted module types of its answer.
    pub modules: Vec<Module>,
    /// Substituted layers of its answer.
    pub layers: Vec<usize>,
    /// Its answer on the proxy sets.
    pub proxy: ProxyMetrics,
    /// Its answer's score under this α.
    pub score: f64,
    /// Its answer on the test sets, when given.
    pub test: Option<TestMetrics>,
}

/// The trace's move name, ASCII for scripts.
pub fn move_name(mv: Move) -> String {
    match mv {
        Move::Start => "start".into(),
        Move::DropModule(m) => format!("-module {m}"),
        Move::DropLayer(l) => format!("-layer {l}"),
    }
}

impl TraceRow {
    /// A report row from a search step.
    pub fn from_step(s: &TraceStep) -> TraceRow {
        let m = &s.point.metrics;
        TraceRow {
            step: s.step,
            mv: move_name(s.point.mv),
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
    /// `greedy` or `manual`.
    pub origin: &'a str,
    /// α.
    pub alpha: f64,
    /// Patience.
    pub patience: usize,
    /// The greedy path.
    pub trace: &'a [TraceStep],
    /// Strategies scored.
    pub evaluations: usize,
}

impl StrategyReport {
    /// Builds the report, scoring the strategy (from the cache when possible) and the test sets.
    pub fn build(session: &mut Session, parts: ReportParts<'_>) -> Result<StrategyReport> {
        let counts = session.evaluator.evaluate(parts.matrix, None)?.counts;
        let metrics = session.evaluator.metrics(parts.alpha, &counts);
        let baseline: Baseline = session.evaluator.baseline();
        let empty = SubstitutionMatrix::empty(parts.matrix.num_layers());
        let test = session.test_metrics(parts.matrix)?;
        let victim_test = session.test_metrics(&empty)?;
        let cells = parts.matrix.cells();
        // modules × layers must describe the cells exactly or not at all: a reader that takes
        // the product of a non-product strategy's modules and layers gets other cells.
        let (modules, layers) = parts.matrix.as_product().unwrap_or_default();
        Ok(StrategyReport {
            gms_version: env!("CARGO_PKG_VERSION").to_string(),
            origin: parts.origin.to_string(),
            modules,
            layers,
            cells,
            num_layers: parts.matrix.num_layers(),
            alpha: parts.alpha,
            patience: parts.patience,
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
            inputs: report_inputs(session)?,
            sweep: Vec::new(),
        })
    }

    /// Reads a report written by gms, validating its cells.
    pub fn read(path: &Path) -> Result<StrategyReport> {
        let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => GmsError::Missing {
                path: path.to_path_buf(),
                what: "strategy file",
                fix: "write one with gms search --out FILE or the TUI's w key",
            },
            _ => GmsError::bad_file(path, e.to_string(), "check the file's permissions"),
        })?;
        let report: StrategyReport = serde_json::from_str(&text).map_err(|e| {
            GmsError::bad_file(
                path,
                format!("not a gms strategy ({e})"),
                "write one with gms search --out FILE",
            )
        })?;
        if report.cells.iter().any(|c| c.0 >= report.num_layers) {
            return Err(GmsError::bad_file(
                path,
                "a cell names a layer beyond num_layers",
                "regenerate the strategy",
            ));
        }
        Ok(report)
    }

    /// The strategy's cell set.
    pub fn matrix(&self) -> SubstitutionMatrix {
        SubstitutionMatrix::from_cells(self.num_layers, &self.cells).expect("validated on read")
    }

    /// Writes the report as pretty JSON, atomically.
    pub fn write(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_string_pretty(self).expect("reports serialize");
        crate::export::atomic::write_file(path, format!("{json}\n").as_bytes())
    }
}

fn report_inputs(s: &Session) -> Result<ReportInputs> {
    let file = |p: &PathBuf| -> Result<InputRef> {
        Ok(InputRef {
            path: crate::demo::recorded_path(p),
            sha256: crate::model::folder::sha256_files(std::slice::from_ref(p))?,
        })
    };
    let i = &s.inputs;
    Ok(ReportInputs {
        victim: InputRef {
            path: crate::demo::recorded_path(&i.victim),
            sha256: s.victim_folder.fingerprint()?,
        },
        proxy: InputRef {
            path: crate::demo::recorded_path(&i.proxy),
            sha256: s.proxy_folder.fingerprint()?,
        },
        clean: file(&i.clean)?,
        suspect: file(&i.suspect)?,
        test_clean: i.test_clean.as_ref().map(file).transpose()?,
        test_poison: i.test_poison.as_ref().map(file).transpose()?,
    })
}
