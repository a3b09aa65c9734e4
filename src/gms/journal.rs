//! The search journal: a line-oriented JSON record of a search as it happens, so a killed
//! search resumes without scoring again what it had scored, and a finished one can be
//! reported without loading a model (docs/formats.md §Search journal).
//!
//! Line 1 is a [`Header`] (inputs with their sha256, α, patience, dtype, device); every other
//! line is one [`Entry`]: an evaluated strategy with its row-level state, a taken step, the
//! end of a search, or a user action. Each line is written with one `write` on a file opened
//! with `O_APPEND`, as it happens, so `kill -9` at any moment loses at most the evaluation in
//! flight and leaves at worst one truncated last line, which [`Journal::read`] drops.

use crate::error::{GmsError, Result};
use crate::gms::evaluator::{Evaluator, RecordedPair, RecordedResult};
use crate::gms::modes::SearchMode;
use crate::gms::report::ReportInputs;
use crate::gms::score::{Counts, Drops};
use crate::gms::search::{Move, StopReason};
use crate::gms::signal::Signal;
use crate::model::config::MAX_LAYERS;
use crate::model::{ModelArchitecture, Module, SubstitutionMatrix};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The journal format's version (the header's `format`).
pub const FORMAT: u32 = 1;

/// What a search ran on and with: the journal's first line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// Journal format version ([`FORMAT`]).
    pub format: u32,
    /// Version of gms that started the journal.
    pub gms_version: String,
    /// The models' architecture (Hugging Face class name).
    pub architecture: String,
    /// Layers of the models.
    pub num_layers: usize,
    /// The module types the search substitutes, in the search's order.
    pub modules: Vec<Module>,
    /// Input paths and fingerprints (as the strategy JSON records them).
    pub inputs: ReportInputs,
    /// The victim's counts on the proxy sets (the score's baseline).
    pub baseline: Counts,
    /// Accuracy weight α the search started with.
    pub alpha: f64,
    /// Patience the search started with.
    pub patience: usize,
    /// The search mode as reports name it (`cells (from paper)`, `beam 4`, `refine`;
    /// absent: the paper's greedy search). A resume runs the same mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// How the score measures drops (absent: relative, the paper's).
    #[serde(default, skip_serializing_if = "is_relative")]
    pub drops: Drops,
    /// Rows in each batch of the clean and the suspect proxy set, in batch order (absent in
    /// journals written before it was recorded): with it, an abandoned evaluation's bound can
    /// be computed without the models (`gms tui --open`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batches: Option<[Vec<usize>; 2]>,
    /// The proxy-set signal (`filtered`; absent: the proxy sets as given). A resume uses the
    /// same signal: the recorded counts are over its rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
    /// Evaluation dtype (`f32`, `bf16`, `f16`).
    pub dtype: String,
    /// Compute device, in words.
    pub device: String,
}

/// One journal line after the header.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Entry {
    /// A strategy's result as the evaluator cached it (complete, or abandoned with the batches
    /// it had done).
    Evaluation {
        /// Its substituted cells, `[layer, "Q"]`.
        cells: Vec<(usize, Module)>,
        /// Whether every row was evaluated.
        complete: bool,
        /// Counts over the rows evaluated.
        counts: Counts,
        /// Done batches of the clean and the suspect set.
        done: [Vec<bool>; 2],
    },
    /// A greedy step taken (step 0 starts a search, also after a restart or a resume).
    Step {
        /// Step number.
        step: usize,
        /// The move, `start`, `-module X` or `-layer N`.
        #[serde(rename = "move")]
        mv: String,
        /// The state moved to.
        cells: Vec<(usize, Module)>,
        /// Its counts on the proxy sets.
        counts: Counts,
        /// Its score under the search's α.
        score: f64,
        /// Whether it set a new best.
        improved: bool,
        /// Steps without improving so far.
        no_improve: usize,
    },
    /// The search ended.
    Finished {
        /// The answer's cells.
        cells: Vec<(usize, Module)>,
        /// Its score.
        score: f64,
        /// Why it stopped.
        reason: StopReason,
    },
    /// Something the user asked for (the TUI's keys, or the CLI's resume).
    Action {
        /// What, in a word: `resume`, `params`, `evaluate`, `sweep`, `export`.
        action: String,
        /// Its details (α and patience, cells, a path…).
        #[serde(default)]
        detail: serde_json::Value,
    },
}

fn is_relative(d: &Drops) -> bool {
    *d == Drops::Relative
}

/// A journal read back.
#[derive(Debug, Clone, PartialEq)]
pub struct Journal {
    /// Where it was read from.
    pub path: PathBuf,
    /// The first line.
    pub header: Header,
    /// The other lines, in order.
    pub entries: Vec<Entry>,
    /// Byte length of the complete lines (a truncated last line starts here).
    pub complete_len: u64,
    /// Whether a truncated last line was dropped.
    pub dropped_tail: bool,
}

/// An α sweep the journal records ([`Journal::sweeps`]).
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedSweep {
    /// Its αs, in order.
    pub alphas: Vec<f64>,
    /// Its searches' patience.
    pub patience: usize,
    /// Its searches' mode.
    pub mode: SearchMode,
}

impl Journal {
    /// Reads and checks a journal. A last line without its newline (the search was killed
    /// while writing it) is dropped and reported in [`Journal::dropped_tail`]; any other line
    /// that is not a journal entry is an error naming `file:line`.
    pub fn read(path: &Path) -> Result<Journal> {
        let bytes = std::fs::read(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => GmsError::Missing {
                path: path.to_path_buf(),
                what: "search journal",
                fix: "gms search writes one next to --out (or at --journal FILE)",
            },
            _ => GmsError::bad_file(path, e.to_string(), "check the file's permissions"),
        })?;
        Journal::parse(path, &bytes)
    }

    /// [`Journal::read`] on bytes already in memory (`path` names them in errors).
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Journal> {
        let complete_len = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let dropped_tail = complete_len < bytes.len();
        let bad = |line: usize, problem: String| {
            GmsError::BadRow {
            path: path.to_path_buf(),
            line,
            problem: format!("{problem} (not a gms search journal line; remove the line or start the search afresh)"),
        }
        };
        let mut header = None;
        let mut entries = Vec::new();
        // The complete lines, without the newline that ends the last one.
        let body = &bytes[..complete_len.saturating_sub(1)];
        let lines = body.split(|b| *b == b'\n').take_while(|_| complete_len > 0);
        for (i, raw) in lines.enumerate() {
            let line = i + 1;
            let text = std::str::from_utf8(raw).map_err(|_| bad(line, "not UTF-8".into()))?;
            if i == 0 {
                let h: Header = serde_json::from_str(text)
                    .map_err(|e| bad(line, format!("not a journal header ({e})")))?;
                if h.format != FORMAT {
                    return Err(bad(
                        line,
                        format!("journal format {} (this gms reads {FORMAT})", h.format),
                    ));
                }
                if h.num_layers == 0 || h.num_layers > MAX_LAYERS {
                    return Err(bad(
                        line,
                        format!("num_layers {} is out of range", h.num_layers),
                    ));
                }
                header = Some(h);
                continue;
            }
            let entry: Entry = serde_json::from_str(text).map_err(|e| bad(line, e.to_string()))?;
            let layers = header.as_ref().map_or(0, |h| h.num_layers);
            if let Some(cells) = entry.cells() {
                if cells.iter().any(|c| c.0 >= layers) {
                    return Err(bad(
                        line,
                        format!("a cell names a layer beyond the header's {layers}"),
                    ));
                }
            }
            entries.push(entry);
        }
        let header = header.ok_or_else(|| {
            GmsError::bad_file(
                path,
                "empty journal (no complete header line)",
                "start the search afresh",
            )
        })?;
        Ok(Journal {
            path: path.to_path_buf(),
            header,
            entries,
            complete_len: complete_len as u64,
            dropped_tail,
        })
    }

    /// Every recorded evaluation as a cell set and the result to seed the cache with, in
    /// journal order (a later record of the same cells supersedes an earlier one).
    pub fn recorded(&self) -> Vec<(SubstitutionMatrix, RecordedResult)> {
        self.entries
            .iter()
            .filter_map(|e| match e {
                Entry::Evaluation {
                    cells,
                    counts,
                    done,
                    ..
                } => Some((
                    SubstitutionMatrix::from_cells(self.header.num_layers, cells)?,
                    RecordedResult {
                        done: done.clone(),
                        counts: *counts,
                    },
                )),
                _ => None,
            })
            .collect()
    }

    /// The steps of the last search in the journal (from its last step 0), as recorded.
    pub fn last_trace(&self) -> Vec<&Entry> {
        let steps: Vec<&Entry> = self
            .entries
            .iter()
            .filter(|e| matches!(e, Entry::Step { .. }))
            .collect();
        let start = steps
            .iter()
            .rposition(|e| matches!(e, Entry::Step { step: 0, .. }))
            .unwrap_or(0);
        steps[start..].to_vec()
    }

    /// α and patience in force at the journal's end: the header's, as changed by later
    /// `params` and `resume` actions.
    pub fn last_params(&self) -> (f64, usize) {
        let mut params = (self.header.alpha, self.header.patience);
        for e in &self.entries {
            if let Entry::Action { action, detail } = e {
                if action == "params" || action == "resume" {
                    let alpha = detail["alpha"].as_f64();
                    let patience = detail["patience"].as_u64().map(|p| p as usize);
                    params = (alpha.unwrap_or(params.0), patience.unwrap_or(params.1));
                }
            }
        }
        params
    }

    /// The search mode and signal the journal was recorded with (the header's; absent means
    /// the paper's), and the mode in force at its end (changed by later `mode` actions).
    pub fn modes(&self) -> Result<(SearchMode, Signal, SearchMode)> {
        let bad = |problem: String| {
            GmsError::bad_file(
                &self.path,
                problem,
                "record the search with this version of gms",
            )
        };
        let mode = match &self.header.mode {
            Some(m) => m.parse::<SearchMode>().map_err(bad)?,
            None => SearchMode::Paper,
        };
        let signal = match &self.header.signal {
            Some(s) => s.parse::<Signal>().map_err(bad)?,
            None => Signal::Paper,
        };
        let mut last = mode;
        for e in &self.entries {
            if let Entry::Action { action, detail } = e {
                if let (true, Some(m)) = (action == "mode", detail["mode"].as_str()) {
                    last = m.parse::<SearchMode>().map_err(bad)?;
                }
            }
        }
        Ok((mode, signal, last))
    }

    /// The pre-trained base the last merge-baselines request named (`B` with `gms tui
    /// --base`), so a reopened search offers the same merges.
    pub fn merge_base(&self) -> Option<PathBuf> {
        self.entries.iter().rev().find_map(|e| match e {
            Entry::Action { action, detail } if action == "baselines" => {
                detail["base"].as_str().map(PathBuf::from)
            }
            _ => None,
        })
    }

    /// The α sweeps the journal records: each mode's last, in the order the modes were first
    /// swept, with the patience in force when it was asked for. A sweep recorded without its
    /// mode ran in the mode in force then (journals before sweeps of several modes).
    pub fn sweeps(&self) -> Vec<RecordedSweep> {
        let mut patience = self.header.patience;
        let mut mode = self
            .header
            .mode
            .as_deref()
            .and_then(|m| m.parse::<SearchMode>().ok())
            .unwrap_or_default();
        let mut sweeps: Vec<RecordedSweep> = Vec::new();
        for e in &self.entries {
            let Entry::Action { action, detail } = e else {
                continue;
            };
            match action.as_str() {
                "params" | "resume" => {
                    if let Some(p) = detail["patience"].as_u64() {
                        patience = p as usize;
                    }
                }
                "mode" => {
                    if let Some(m) = detail["mode"].as_str().and_then(|m| m.parse().ok()) {
                        mode = m;
                    }
                }
                "sweep" => {
                    let Some(alphas) = detail["alphas"].as_array() else {
                        continue;
                    };
                    let sweep = RecordedSweep {
                        alphas: alphas.iter().filter_map(|v| v.as_f64()).collect(),
                        patience,
                        mode: detail["mode"]
                            .as_str()
                            .and_then(|m| m.parse().ok())
                            .unwrap_or(mode),
                    };
                    match sweeps.iter_mut().find(|s| s.mode == sweep.mode) {
                        Some(s) => *s = sweep,
                        None => sweeps.push(sweep),
                    }
                }
                _ => {}
            }
        }
        sweeps
    }

    /// The cells the proxy can give: a search's step 0 substitutes exactly those (every
    /// cell when the journal has no step yet).
    pub fn substitutable(&self) -> SubstitutionMatrix {
        let n = self.header.num_layers;
        self.entries
            .iter()
            .find_map(|e| match e {
                Entry::Step { step: 0, cells, .. } => SubstitutionMatrix::from_cells(n, cells),
                _ => None,
            })
            .unwrap_or_else(|| SubstitutionMatrix::full(&self.header.modules, n))
    }

    /// An evaluator without models that answers from this journal's evaluations
    /// ([`Evaluator::recorded`]): a recorded search replays on it, under any α or patience,
    /// as far as the record reaches.
    pub fn evaluator(&self) -> Result<Evaluator> {
        let h = &self.header;
        let unusable = |problem: String| {
            GmsError::bad_file(
                &self.path,
                problem,
                "resume it with --resume (which loads the models), or record the search again",
            )
        };
        let architecture = ModelArchitecture::from_hf_class(&h.architecture)
            .ok_or_else(|| unusable(format!("unknown architecture {}", h.architecture)))?;
        let rows = h.batches.clone().ok_or_else(|| {
            unusable("recorded before journals kept the proxy sets' batch sizes".into())
        })?;
        let pair = RecordedPair {
            architecture,
            num_layers: h.num_layers,
            substitutable: self.substitutable(),
            drops: h.drops,
        };
        let mut ev = Evaluator::recorded(&self.path, pair, h.baseline, rows);
        self.seed(&mut ev)?;
        Ok(ev)
    }

    /// Puts every recorded evaluation into `ev`'s cache (the resume path and `--open`):
    /// returns how many, and the cell sets recorded complete. A record that cannot come from
    /// `ev`'s proxy sets is an error naming the journal.
    pub fn seed(
        &self,
        ev: &mut Evaluator,
    ) -> Result<(usize, std::collections::HashSet<SubstitutionMatrix>)> {
        let mut complete = std::collections::HashSet::new();
        let mut n = 0;
        for (matrix, result) in self.recorded() {
            ev.seed(&matrix, &result).map_err(|problem| {
                GmsError::bad_file(
                    &self.path,
                    format!("a recorded evaluation does not fit the proxy sets ({problem})"),
                    "start a new search",
                )
            })?;
            if result.is_complete() {
                complete.insert(matrix);
            }
            n += 1;
        }
        Ok((n, complete))
    }
}

impl Entry {
    /// The cells an entry names, if any.
    pub fn cells(&self) -> Option<&[(usize, Module)]> {
        match self {
            Entry::Evaluation { cells, .. }
            | Entry::Step { cells, .. }
            | Entry::Finished { cells, .. } => Some(cells),
            Entry::Action { .. } => None,
        }
    }

    /// A step line from a taken step.
    pub fn step(
        step: usize,
        mv: Move,
        matrix: &SubstitutionMatrix,
        counts: Counts,
        score: f64,
        improved: bool,
        no_improve: usize,
    ) -> Entry {
        Entry::Step {
            step,
            mv: mv.ascii(),
            cells: matrix.cells(),
            counts,
            score,
            improved,
            no_improve,
        }
    }

    /// An evaluation line from the evaluator's record.
    pub fn evaluation(matrix: &SubstitutionMatrix, r: &RecordedResult) -> Entry {
        Entry::Evaluation {
            cells: matrix.cells(),
            complete: r.is_complete(),
            counts: r.counts,
            done: r.done.clone(),
        }
    }
}

/// Appends entries to a journal file, one `write` per line.
pub struct JournalWriter {
    path: PathBuf,
    file: std::fs::File,
}

impl JournalWriter {
    /// Starts a new journal at `path` (replacing one there) with its header line.
    pub fn create(path: &Path, header: &Header) -> Result<JournalWriter> {
        std::fs::File::create(path).map_err(|e| GmsError::output(path, e))?;
        let mut w = JournalWriter::append_to(path, None)?;
        w.write_line(&serde_json::to_string(header).expect("headers serialize"))?;
        Ok(w)
    }

    /// Opens an existing journal for appending; `keep` = the length of its complete lines,
    /// to cut a truncated last line off first.
    pub fn append_to(path: &Path, keep: Option<u64>) -> Result<JournalWriter> {
        if let Some(len) = keep {
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(path)
                .map_err(|e| GmsError::output(path, e))?;
            f.set_len(len).map_err(|e| GmsError::output(path, e))?;
        }
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(|e| GmsError::output(path, e))?;
        Ok(JournalWriter {
            path: path.to_path_buf(),
            file,
        })
    }

    /// Where it writes.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one entry.
    pub fn append(&mut self, entry: &Entry) -> Result<()> {
        self.write_line(&serde_json::to_string(entry).expect("entries serialize"))
    }

    fn write_line(&mut self, json: &str) -> Result<()> {
        // One write of the whole line: with O_APPEND, a kill leaves either the line or a
        // prefix of it at the end, never a line broken in the middle of the file.
        let line = format!("{json}\n");
        self.file
            .write_all(line.as_bytes())
            .map_err(|e| GmsError::output(&self.path, e))
    }
}

/// The journal path `gms search` uses by default: beside the strategy JSON.
pub fn default_path(out: &Path) -> PathBuf {
    out.with_extension("journal.jsonl")
}

/// The first input whose fingerprint differs between a journal and the inputs now, as
/// `(role, path)`: resuming on other inputs would not be the same search.
pub fn changed_input(
    recorded: &ReportInputs,
    now: &ReportInputs,
) -> Option<(&'static str, PathBuf)> {
    let pairs = [
        ("victim model", Some(&recorded.victim), Some(&now.victim)),
        ("proxy model", Some(&recorded.proxy), Some(&now.proxy)),
        ("clean proxy set", Some(&recorded.clean), Some(&now.clean)),
        (
            "suspect proxy set",
            Some(&recorded.suspect),
            Some(&now.suspect),
        ),
        (
            "clean test set",
            recorded.test_clean.as_ref(),
            now.test_clean.as_ref(),
        ),
        (
            "poisoned test set",
            recorded.test_poison.as_ref(),
            now.test_poison.as_ref(),
        ),
    ];
    pairs.into_iter().find_map(|(role, a, b)| match (a, b) {
        (Some(a), Some(b)) if a.sha256 == b.sha256 => None,
        (None, None) => None,
        (_, Some(b)) => Some((role, b.path.clone())),
        (Some(a), None) => Some((role, a.path.clone())),
    })
}
