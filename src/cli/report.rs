//! `gms report`: what a search journal recorded (its trace and best strategy), without
//! loading a model.

use crate::gms::journal::{Entry, Journal};
use crate::model::Module;
use clap::Args;
use serde::Serialize;
use std::path::PathBuf;

/// Arguments of `gms report`.
#[derive(Debug, Args)]
pub struct ReportCmd {
    /// The search journal (`gms search` writes STRATEGY.journal.jsonl beside --out).
    #[arg(value_name = "JOURNAL")]
    journal: PathBuf,
    /// Print one JSON object on stdout (header, trace, evaluations, best).
    #[arg(long)]
    json: bool,
}

/// The best strategy a journal's last search reached.
#[derive(Debug, Serialize)]
struct Best {
    step: usize,
    #[serde(rename = "move")]
    mv: String,
    cells: Vec<(usize, Module)>,
    score: f64,
    /// Whether the search finished (else: the best so far when the journal ends).
    finished: bool,
}

/// How many evaluations a journal holds.
#[derive(Debug, Default, Serialize)]
struct Evaluations {
    complete: usize,
    abandoned: usize,
}

impl ReportCmd {
    /// Reads the journal and prints the report.
    pub fn run(self) -> anyhow::Result<()> {
        let journal = Journal::read(&self.journal)?;
        if journal.dropped_tail {
            eprintln!(
                "note: {}: ignored its truncated last line (the search was stopped while writing it)",
                self.journal.display()
            );
        }
        let trace = journal.last_trace();
        let mut evaluations = Evaluations::default();
        for e in &journal.entries {
            if let Entry::Evaluation { complete, .. } = e {
                if *complete {
                    evaluations.complete += 1;
                } else {
                    evaluations.abandoned += 1;
                }
            }
        }
        let best = best_of(&journal, &trace);
        let h = &journal.header;
        if self.json {
            let value = serde_json::json!({
                "header": h,
                "trace": trace,
                "evaluations": evaluations,
                "best": best,
            });
            println!("{value}");
            return Ok(());
        }
        println!(
            "{}: {} · {} layers · α {} · patience {} · mode {} · signal {} · {} drops · {} on {}",
            self.journal.display(),
            h.architecture,
            h.num_layers,
            h.alpha,
            h.patience,
            h.mode.as_deref().unwrap_or("paper"),
            h.signal.as_deref().unwrap_or("paper"),
            h.drops.name(),
            h.dtype,
            h.device
        );
        println!(
            "victim {} (proxy-set acc {:.4}, asr {:.4})  proxy {}",
            h.inputs.victim.path.display(),
            h.baseline.acc(),
            h.baseline.asr(),
            h.inputs.proxy.path.display()
        );
        println!(
            "{} evaluations recorded ({} complete, {} abandoned early)",
            evaluations.complete + evaluations.abandoned,
            evaluations.complete,
            evaluations.abandoned
        );
        println!("step  move          cells  acc     asr     score");
        for e in &trace {
            if let Entry::Step {
                step,
                mv,
                cells,
                counts,
                score,
                improved,
                ..
            } = e
            {
                println!(
                    "{step:>4}  {mv:<12}  {:>5}  {:.4}  {:.4}  {score:.4}{}",
                    cells.len(),
                    counts.acc(),
                    counts.asr(),
                    if *improved { "  new best" } else { "" }
                );
            }
        }
        match best {
            Some(b) => println!(
                "best{}: step {} ({}), {} cells, score {:.4}: {}",
                if b.finished {
                    ""
                } else {
                    " so far (the search did not finish)"
                },
                b.step,
                b.mv,
                b.cells.len(),
                b.score,
                crate::model::SubstitutionMatrix::from_cells(h.num_layers, &b.cells)
                    .map(|m| m.to_string())
                    .unwrap_or_default()
            ),
            None => println!("no step recorded yet"),
        }
        Ok(())
    }
}

/// The last search's best step: the last one that set a new best.
fn best_of(journal: &Journal, trace: &[&Entry]) -> Option<Best> {
    let finished = journal
        .entries
        .iter()
        .rev()
        .take_while(|e| !matches!(e, Entry::Step { step: 0, .. }))
        .any(|e| matches!(e, Entry::Finished { .. }));
    trace.iter().rev().find_map(|e| match e {
        Entry::Step {
            step,
            mv,
            cells,
            score,
            improved: true,
            ..
        } => Some(Best {
            step: *step,
            mv: mv.clone(),
            cells: cells.clone(),
            score: *score,
            finished,
        }),
        _ => None,
    })
}
