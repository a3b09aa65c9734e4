//! The workbench on tiny real models, driven by synthetic key events: snapshots of the
//! screens a user sees (at 80×24 and 120×36, plus the original 100×30 walk-through), an α
//! change replayed from the cache, and the files `w`/`W` write.

mod common;

use candle_core::Device;
use crossterm::event::{
    Event, KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};
use gms::gms::search::{GreedySearch, SearchEvent, SearchParams};
use gms::gms::session::Session;
use gms::gms::worker::{self, WorkerEvent, WorkerHandle, WorkerOptions};
use gms::model::Module;
use gms::tui::app::{App, CellState, Focus, Level, Source};
use gms::tui::{action_for_event, dispatch, ui};
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use std::time::{Duration, Instant};

/// A workbench over a real worker, without a terminal.
struct Bench {
    app: App,
    handle: WorkerHandle,
    /// Every `Candidate` matrix and what the app had predicted as in flight before it.
    predictions: Vec<(
        Option<gms::model::SubstitutionMatrix>,
        gms::model::SubstitutionMatrix,
    )>,
    /// Every worker event applied, in order.
    seen: Vec<WorkerEvent>,
}

impl Bench {
    /// Starts paused, so every screen is reached by keys alone.
    fn start(
        kit: &common::TinyKit,
        with_tests: bool,
        params: SearchParams,
        export_dir: std::path::PathBuf,
    ) -> Bench {
        Bench::start_journaled(kit, with_tests, params, export_dir, None)
    }

    /// [`Bench::start`], journaling the search as `journal` says.
    fn start_journaled(
        kit: &common::TinyKit,
        with_tests: bool,
        params: SearchParams,
        export_dir: std::path::PathBuf,
        journal: Option<worker::JournalPlan>,
    ) -> Bench {
        let inputs = kit.inputs(with_tests);
        let handle = worker::spawn_journaled(
            move || Session::load(inputs, &Device::Cpu),
            WorkerOptions {
                params,
                mode: Default::default(),
                signal: Default::default(),
                running: false,
                test_at_end: true,
            },
            gms::export::write_export,
            journal,
        );
        Bench::attach(handle, params, export_dir)
    }

    /// A workbench over a started worker, once the worker reports its running state.
    fn attach(handle: WorkerHandle, params: SearchParams, export_dir: std::path::PathBuf) -> Bench {
        let mut bench = Bench {
            app: App::new(params, export_dir),
            handle,
            predictions: Vec::new(),
            seen: Vec::new(),
        };
        bench.pump_until(|_, e| matches!(e, WorkerEvent::Running { .. }));
        // The device string names the core count; fix it so snapshots hold on any machine.
        if bench.app.device.starts_with("cpu") {
            bench.app.device = "cpu".into();
        }
        bench
    }

    fn event(&mut self, event: Event) {
        if let Some(action) = action_for_event(&self.app, &event) {
            let commands = self.app.update(action);
            dispatch(&mut self.app, &self.handle.commands, commands);
        }
    }

    fn key(&mut self, code: KeyCode) {
        let mods = match code {
            KeyCode::Char(c) if c.is_ascii_uppercase() || "+?".contains(c) => KeyModifiers::SHIFT,
            _ => KeyModifiers::NONE,
        };
        self.event(Event::Key(KeyEvent::new(code, mods)));
    }

    fn resize(&mut self, width: u16, height: u16) {
        self.event(Event::Resize(width, height));
    }

    /// Applies worker events until `done` holds after one of them.
    fn pump_until(&mut self, mut done: impl FnMut(&App, &WorkerEvent) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let event = match self.handle.events.try_recv() {
                Ok(e) => e,
                Err(tokio::sync::mpsc::error::TryRecvError::Empty) => {
                    assert!(
                        Instant::now() < deadline,
                        "timed out waiting for the worker; app message {:?}",
                        self.app.message
                    );
                    std::thread::sleep(Duration::from_millis(2));
                    continue;
                }
                Err(e) => panic!("the worker ended: {e}; app message {:?}", self.app.message),
            };
            if let WorkerEvent::Search(SearchEvent::Candidate(c)) = &event {
                self.predictions
                    .push((self.app.in_flight(), c.matrix.clone()));
            }
            if let WorkerEvent::Error { message, .. } = &event {
                panic!("worker error: {message}");
            }
            let probe = event.clone();
            self.seen.push(event.clone());
            self.app.on_worker_event(event);
            if done(&self.app, &probe) {
                return;
            }
        }
    }

    /// Resumes (when paused) and waits until the search has finished and the worker idles.
    fn run_to_end(&mut self) {
        if !self.app.running {
            self.key(KeyCode::Char(' '));
        }
        self.wait_finished();
    }

    fn wait_finished(&mut self) {
        self.pump_until(|app, e| {
            app.finished.is_some() && matches!(e, WorkerEvent::Running { running: false })
        });
    }

    fn sweep(&mut self) {
        self.key(KeyCode::Char('a'));
        self.pump_until(|_, e| matches!(e, WorkerEvent::SweepDone));
    }

    fn screen(&self, width: u16, height: u16) -> String {
        let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
        terminal.draw(|f| ui::draw(f, &self.app)).unwrap();
        terminal.backend().to_string()
    }

    fn message(&self) -> String {
        self.app
            .message
            .as_ref()
            .map(|m| m.text.clone())
            .unwrap_or_default()
    }
}

fn is_stats(e: &WorkerEvent) -> bool {
    matches!(e, WorkerEvent::Stats { .. })
}

fn params(alpha: f64, patience: usize) -> SearchParams {
    SearchParams { alpha, patience }
}

/// The lines of a TestBackend screen, without the quotes it draws around each.
fn lines(screen: &str) -> Vec<String> {
    screen
        .lines()
        .map(|l| l.trim_matches('"').to_string())
        .collect()
}

#[test]
fn workbench_screens_from_start_to_trade_off() {
    let kit = common::tiny_kit(6);
    let out = tempfile::tempdir().unwrap();
    let mut b = Bench::start(&kit, true, params(0.4, 2), out.path().join("export"));
    b.resize(100, 30);
    insta::assert_snapshot!("start", b.screen(100, 30));

    // `n` while paused: step 0 (the full substitution) and step 1, then a second step whose
    // candidates stream in; stop after the third candidate.
    b.key(KeyCode::Char('n'));
    b.pump_until(|app, e| app.steps.len() == 2 && is_stats(e));
    assert!(!b.app.stepping, "the step is done");
    b.key(KeyCode::Char('n'));
    b.pump_until(|app, e| app.candidates.len() == 3 && is_stats(e));
    let mid = b.screen(100, 30);
    insta::assert_snapshot!("mid_search", mid);
    // The heatmap shows what the last step dropped and what is being scored now.
    let shown = b.app.shown();
    assert!(matches!(shown.source, Source::Live { .. }));
    let states: Vec<CellState> = (0..6)
        .flat_map(|l| b.app.modules.iter().map(move |&m| (l, m)))
        .map(|(l, m)| b.app.cell_state(&shown, l, m))
        .collect();
    assert!(
        states.contains(&CellState::JustRemoved),
        "the last step's drop is marked"
    );
    assert!(
        states.contains(&CellState::Evaluating),
        "the candidate in flight is marked"
    );

    // Resume to the end.
    b.run_to_end();
    assert!(
        b.app.final_test.is_some(),
        "the best is scored on the test sets"
    );
    insta::assert_snapshot!("finished", b.screen(100, 30));
    for (predicted, actual) in &b.predictions {
        assert_eq!(
            predicted.as_ref(),
            Some(actual),
            "the highlighted candidate is the one scored"
        );
    }

    b.key(KeyCode::Char('?'));
    insta::assert_snapshot!("help", b.screen(100, 30));
    b.key(KeyCode::Esc);
    assert!(!b.app.help);

    b.sweep();
    assert_eq!(b.app.sweep.len(), 11);
    let at_04 = b
        .app
        .sweep
        .iter()
        .find(|s| (s.alpha - 0.4).abs() < 1e-9)
        .unwrap();
    assert_eq!(
        Some(&at_04.best.matrix),
        b.app.best().map(|p| &p.matrix),
        "the sweep at α 0.4 agrees with the search"
    );
    insta::assert_snapshot!("tradeoff", b.screen(100, 30));
}

/// Issue 9 §2: after the search ends the heatmap shows the best (what `w` writes), titled
/// with its step and cell count, not the last state the walk explored.
#[test]
fn finished_search_shows_its_best() {
    let kit = common::tiny_kit(6);
    let out = tempfile::tempdir().unwrap();
    let mut b = Bench::start(&kit, true, params(0.4, 2), out.path().join("export"));
    b.resize(120, 36);
    b.run_to_end();
    let best = b.app.best_step().unwrap().clone();
    let last = b.app.steps.last().unwrap().clone();
    assert_ne!(
        best.point.matrix, last.point.matrix,
        "the fixture ends away from its best"
    );
    let shown = b.app.shown();
    assert_eq!(shown.source, Source::Best { step: best.step });
    assert_eq!(shown.matrix, best.point.matrix);
    let screen = b.screen(120, 36);
    assert!(screen.contains(&format!("★best · step {}", best.step)));
    assert!(screen.contains(&format!("{} cells", best.point.matrix.count())));
    insta::assert_snapshot!("finished_best_120x36", screen);
    b.resize(80, 24);
    let small = b.screen(80, 24);
    // 80×24 keeps the best's test CACC/ASR (ΔACC/ΔASR give way) and whole header items.
    assert!(small.contains("CACC%") && small.contains("ASR%"), "{small}");
    assert!(!small.contains("ΔACC%"));
    let l = lines(&small);
    assert!(l[0].contains("■ finished") && l[0].contains("patience"));
    assert!(
        l[23].contains("? help") && l[23].contains("w write"),
        "{}",
        l[23]
    );
    insta::assert_snapshot!("finished_best_80x24", small);
}

/// Issue 9 §1: `+` (or `]`) after the end replays from the cache and goes on to "finished"
/// with no further key.
#[test]
fn alpha_or_patience_after_the_end_runs_to_the_end_again() {
    let kit = common::tiny_kit(4);
    let out = tempfile::tempdir().unwrap();
    let mut b = Bench::start(&kit, true, params(0.4, 2), out.path().to_path_buf());
    b.resize(120, 36);
    b.run_to_end();
    b.key(KeyCode::Char('+'));
    assert_eq!(b.app.params.alpha, 0.45);
    b.wait_finished();
    assert!(b.app.finished.is_some());
    assert!(
        b.seen
            .iter()
            .any(|e| matches!(e, WorkerEvent::Running { running: true })),
        "the worker resumed by itself"
    );
    assert!(
        b.message().starts_with("finished"),
        "no stale replay message: {}",
        b.message()
    );
    insta::assert_snapshot!("replayed_after_finish_120x36", b.screen(120, 36));
    insta::assert_snapshot!("replayed_after_finish_80x24", b.screen(80, 24));

    b.key(KeyCode::Char(']'));
    assert_eq!(b.app.params.patience, 3);
    b.pump_until(|_, e| matches!(e, WorkerEvent::Restarted { .. }));
    assert!(
        b.message().contains("replaying") && !b.message().contains("paused"),
        "a finished search goes on, it is not paused: {}",
        b.message()
    );
    b.wait_finished();
    assert!(b.app.finished.is_some());
}

/// Issue 11: `m` switches the search mode like an α change: the search restarts in the new
/// mode (replaying what the cache answers), the status line names it, and a strategy written
/// afterwards records it.
#[test]
fn m_switches_the_search_mode_and_the_strategy_records_it() {
    let kit = common::tiny_kit(4);
    let out = tempfile::tempdir().unwrap();
    let mut b = Bench::start(&kit, true, params(0.4, 2), out.path().to_path_buf());
    b.run_to_end();
    assert!(lines(&b.screen(120, 36))[0].contains("mode paper"));
    b.key(KeyCode::Char('m'));
    b.pump_until(|_, e| matches!(e, WorkerEvent::Restarted { .. }));
    assert!(
        b.message().contains("cells (from paper)") && b.message().contains("replaying"),
        "{}",
        b.message()
    );
    b.wait_finished();
    let header = lines(&b.screen(120, 36))[0].clone();
    assert!(header.contains("mode cells (from paper)"), "{header}");
    // The paper's steps replay from the cache first; the cell walk goes on from its answer.
    assert!(
        b.app.steps.iter().any(|s| matches!(
            s.point.mv,
            gms::gms::search::Move::DropCell(..)
                | gms::gms::search::Move::AddCell(..)
                | gms::gms::search::Move::ReturnToBest
        )),
        "{:?}",
        b.app.steps.iter().map(|s| s.point.mv).collect::<Vec<_>>()
    );
    b.key(KeyCode::Char('w'));
    b.pump_until(|_, e| matches!(e, WorkerEvent::Exported { .. }));
    let json = std::fs::read_dir(out.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "json"))
        .expect("a strategy JSON was written");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    assert_eq!(
        report["mode"],
        serde_json::json!({"name": "cells", "from": "paper"})
    );
    assert!(
        report["suspect_signal"].is_object(),
        "{}",
        report["suspect_signal"]
    );
}

/// Issue 9 §1: `a` while the search runs no longer freezes it: sweep and search take turns.
#[test]
fn a_sweep_runs_beside_a_running_search() {
    let kit = common::tiny_kit(6);
    let out = tempfile::tempdir().unwrap();
    let mut b = Bench::start(&kit, false, params(0.4, 3), out.path().to_path_buf());
    b.key(KeyCode::Char(' '));
    b.pump_until(|app, e| app.steps.len() == 2 && is_stats(e));
    b.key(KeyCode::Char('a'));
    let from = b.seen.len();
    b.pump_until(|_, e| matches!(e, WorkerEvent::SweepPoint { .. }));
    let header = lines(&b.screen(120, 36))[0].clone();
    let between = &b.seen[from..];
    let search_units = between
        .iter()
        .filter(|e| matches!(e, WorkerEvent::Search(_)))
        .count();
    if b.app.finished.is_none() {
        assert!(
            search_units > 0,
            "the search moved while the sweep's first α ran"
        );
        assert!(
            header.contains("▶ running") && header.contains("sweep "),
            "{header}"
        );
    }
    b.pump_until(|_, e| matches!(e, WorkerEvent::SweepDone));
    assert_eq!(b.app.sweep.len(), 11);
}

/// Issue 9 §2: the step table scrolls, its rows can be selected, and the heatmap shows the
/// selected step's strategy; enter adopts it.
#[test]
fn step_rows_select_scroll_and_adopt() {
    let kit = common::tiny_kit(6);
    let out = tempfile::tempdir().unwrap();
    let mut b = Bench::start(&kit, true, params(0.4, 6), out.path().join("export"));
    b.resize(80, 24);
    b.run_to_end();
    let n = b.app.steps.len();
    assert!(n > 8, "a long walk: {n} steps");
    b.key(KeyCode::Tab);
    assert_eq!(b.app.focus, Focus::Steps);
    let best = b.app.best_step().unwrap().step;
    assert_eq!(b.app.shown().source, Source::Best { step: best });
    // Home / g: the first row (the victim), End / G: the last step.
    b.key(KeyCode::Char('g'));
    assert_eq!(b.app.shown().source, Source::Victim);
    b.key(KeyCode::End);
    assert_eq!(b.app.shown().source, Source::Step { step: n - 1 });
    b.key(KeyCode::PageUp);
    b.key(KeyCode::Char('j'));
    let step = match b.app.shown().source {
        Source::Step { step } => step,
        other => panic!("{other:?}"),
    };
    let screen = b.screen(80, 24);
    assert!(screen.contains(&format!(" step {step} ")), "{screen}");
    assert!(screen.contains("more"), "rows out of view are announced");
    insta::assert_snapshot!("step_selected_80x24", screen);
    b.resize(120, 36);
    insta::assert_snapshot!("step_selected_120x36", b.screen(120, 36));
    b.resize(80, 24);
    // The wheel scrolls without moving the selection.
    let top = b.app.steps_top;
    let area = ui::layout(b.app.size, &b.app).steps;
    b.event(Event::Mouse(MouseEvent {
        kind: MouseEventKind::ScrollDown,
        column: area.x + 2,
        row: area.y + 3,
        modifiers: KeyModifiers::NONE,
    }));
    assert_ne!(b.app.steps_top, top);
    // Adopt: the heatmap keeps the step after the focus leaves; w writes it.
    b.key(KeyCode::Enter);
    b.key(KeyCode::Esc);
    assert_eq!(b.app.focus, Focus::Heatmap);
    assert_eq!(b.app.shown().source, Source::Step { step });
    b.key(KeyCode::Char('w'));
    b.pump_until(|_, e| matches!(e, WorkerEvent::Exported { .. }));
    assert!(
        b.message().contains(&format!("step {step}")),
        "{}",
        b.message()
    );
    // `f` drops it, says so, and `u` brings it back.
    b.key(KeyCode::Char('f'));
    assert!(b.message().contains("u brings it back"), "{}", b.message());
    assert_eq!(b.app.shown().source, Source::Best { step: best });
    b.key(KeyCode::Char('u'));
    assert_eq!(b.app.shown().source, Source::Step { step });
}

/// Issue 9 §3: the trade-off view is a list with every α's cells and scores and a plot with
/// α along the bottom; choosing α 0.8 and `w` writes that α's answer, with the sweep stored.
#[test]
fn trade_off_list_chooses_and_writes_an_alpha() {
    let kit = common::tiny_kit(6);
    let out = tempfile::tempdir().unwrap();
    let export = out.path().join("export");
    let mut b = Bench::start(&kit, true, params(0.4, 2), export.clone());
    b.resize(120, 36);
    b.run_to_end();
    b.sweep();
    b.key(KeyCode::Tab);
    b.key(KeyCode::Tab);
    assert_eq!(b.app.focus, Focus::Tradeoff);
    b.key(KeyCode::Home);
    for _ in 0..8 {
        b.key(KeyCode::Right);
    }
    let at_08 = b.app.sweep[b.app.sweep_selected].clone();
    assert!((at_08.alpha - 0.8).abs() < 1e-9);
    assert_eq!(b.app.shown().matrix, at_08.best.matrix);
    let screen = b.screen(120, 36);
    for a in ["0.00", "0.50", "1.00"] {
        assert!(screen.contains(a), "every α has its row: {a}");
    }
    assert!(screen.contains("α 0.80"));
    insta::assert_snapshot!("tradeoff_list_120x36", screen);
    b.resize(80, 24);
    insta::assert_snapshot!("tradeoff_list_80x24", b.screen(80, 24));

    b.key(KeyCode::Char('w'));
    b.pump_until(|_, e| matches!(e, WorkerEvent::Exported { .. }));
    let report = gms::gms::report::StrategyReport::read(&export.join("strategy-1.json")).unwrap();
    assert_eq!(report.matrix(), at_08.best.matrix, "α 0.8's cells");
    assert_eq!(report.alpha, 0.8);
    assert_eq!(report.origin, gms::gms::report::Origin::Greedy);
    assert!(!report.trace.is_empty(), "α 0.8's own walk");
    assert_eq!(report.sweep.len(), 11, "the sweep is stored");
    assert_eq!(report.sweep[8].alpha, 0.8);
    assert_eq!(report.sweep[8].test, at_08.test);
    assert!(b.message().contains("α 0.80"), "{}", b.message());
    // enter adopts: the heatmap keeps α 0.8 with the focus back on it.
    b.key(KeyCode::Enter);
    b.key(KeyCode::Tab);
    assert_eq!(b.app.focus, Focus::Heatmap);
    assert_eq!(b.app.shown().matrix, at_08.best.matrix);
}

/// Issue 11: a sweep per mode, side by side — `a`, `m`, `a` keeps the paper's sweep beside
/// the cell walk's; the list names each row's mode and the plot turns into a scatter of
/// CACC against ASR with each mode's letter; writing a cell walk's row records that walk
/// and both sweeps; `--open` brings both sweeps back from the journal.
#[test]
fn sweeps_of_two_modes_stand_side_by_side() {
    let kit = common::tiny_kit(6);
    let journal = kit.dir.path().join("modes.journal.jsonl");
    let plan = worker::JournalPlan {
        path: journal.clone(),
        resume: None,
        rename: None,
    };
    let export = kit.dir.path().join("export");
    let mut b = Bench::start_journaled(&kit, true, params(0.4, 2), export.clone(), Some(plan));
    b.resize(120, 36);
    b.run_to_end();
    b.sweep();
    let paper: Vec<_> = b.app.sweep.clone();
    assert_eq!(paper.len(), 11);
    b.key(KeyCode::Char('m'));
    b.pump_until(|_, e| matches!(e, WorkerEvent::Restarted { .. }));
    b.wait_finished();
    let cells = gms::gms::modes::SearchMode::Cells {
        from: gms::gms::modes::CellsStart::Paper,
    };
    assert_eq!(b.app.mode, cells);
    b.sweep();
    assert_eq!(
        b.app.sweep.len(),
        22,
        "the paper's sweep stays beside the cell walk's"
    );
    assert_eq!(b.app.swept_modes(), vec![Default::default(), cells]);
    for (kept, now) in paper.iter().zip(&b.app.sweep) {
        assert_eq!(
            (kept.alpha, &kept.best.matrix),
            (now.alpha, &now.best.matrix)
        );
    }
    // A cell walk starts from the paper's answer and keeps it unless it finds better.
    for (p, c) in b.app.sweep[..11].iter().zip(&b.app.sweep[11..]) {
        assert_eq!(p.alpha, c.alpha);
        assert!(
            c.best.metrics.score >= p.best.metrics.score,
            "α {}: cells {} < paper {}",
            c.alpha,
            c.best.metrics.score,
            p.best.metrics.score
        );
    }
    b.key(KeyCode::Tab);
    b.key(KeyCode::Tab);
    assert_eq!(b.app.focus, Focus::Tradeoff);
    b.key(KeyCode::End);
    let last = b.app.sweep[b.app.sweep_selected].clone();
    assert_eq!((last.mode, last.alpha), (cells, 1.0));
    let screen = b.screen(120, 36);
    assert!(screen.contains("↑CACC →ASR"), "{screen}");
    assert!(screen.contains("p paper c cells"), "{screen}");
    insta::assert_snapshot!("tradeoff_modes_120x36", screen);
    b.resize(80, 24);
    insta::assert_snapshot!("tradeoff_modes_80x24", b.screen(80, 24));

    b.key(KeyCode::Char('w'));
    b.pump_until(|_, e| matches!(e, WorkerEvent::Exported { .. }));
    assert!(
        b.message().contains("(cells (from paper))"),
        "{}",
        b.message()
    );
    let report = gms::gms::report::StrategyReport::read(&export.join("strategy-1.json")).unwrap();
    assert_eq!(
        report.mode, cells,
        "the cell walk's answer, with its own trace"
    );
    assert_eq!(report.alpha, 1.0);
    assert_eq!(report.matrix(), last.best.matrix);
    assert_eq!(report.sweep.len(), 22);
    assert_eq!(report.sweep[0].mode, Default::default());
    assert_eq!(report.sweep[21].mode, cells);
    let swept = b.app.sweep.clone();
    b.handle.commands.send(worker::Command::Stop).unwrap();
    b.handle.thread.join().unwrap();

    let loads = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let opened = open_journal(&kit, &journal, &loads);
    let rows = |sweep: &[gms::tui::app::SweepResult]| -> Vec<(String, f64, usize)> {
        sweep
            .iter()
            .map(|s| (s.mode.to_string(), s.alpha, s.best.matrix.count()))
            .collect()
    };
    assert_eq!(rows(&opened.app.sweep), rows(&swept), "both sweeps reopen");
    assert_eq!(loads.load(std::sync::atomic::Ordering::SeqCst), 0);
}

/// Issue 9 §4: an edit started by a stray enter is written only with a warning naming it and
/// its score against the best; `w` on an unscored edit scores it in a pinned row; quitting
/// names the strategy at stake.
#[test]
fn writing_names_what_and_warns_below_the_best() {
    let kit = common::tiny_kit(6);
    // A relative folder (tests run in the package root), so the message's path is the same
    // on every machine.
    let export = std::path::PathBuf::from("target/tui-tests/written-edit");
    let _ = std::fs::remove_dir_all(&export);
    let mut b = Bench::start(&kit, true, params(0.4, 2), export.clone());
    b.resize(80, 24);
    b.run_to_end();
    b.key(KeyCode::Enter);
    assert!(b.message().contains("edit of ★best"), "{}", b.message());
    assert!(matches!(b.app.shown().source, Source::Edited { .. }));
    b.key(KeyCode::Char('q'));
    assert!(b.app.confirm_quit);
    let dialog = b.screen(80, 24);
    assert!(dialog.contains("Not written yet: edited ★best"), "{dialog}");
    insta::assert_snapshot!("quit_names_strategy_80x24", dialog);
    b.key(KeyCode::Char('w'));
    b.pump_until(|_, e| matches!(e, WorkerEvent::Exported { .. }));
    assert_eq!(b.app.pinned.len(), 1, "the edit was scored in a pinned row");
    assert!(b.app.pinned[0].metrics.is_some());
    let m = b.app.message.clone().unwrap();
    assert!(m.text.contains("strategy-1.json") && m.text.contains("score"));
    let edited_score = b.app.metrics_of(b.app.edited().unwrap()).unwrap().score;
    let best_score = b.app.best().unwrap().metrics.score;
    if edited_score < best_score {
        assert_eq!(m.level, Level::Warn);
        assert!(m.text.contains("below the search's best"), "{}", m.text);
    }
    insta::assert_snapshot!("written_edit_80x24", b.screen(80, 24));
    // The manual strategy's JSON: modules × layers describe the cells or are empty.
    let report = gms::gms::report::StrategyReport::read(&export.join("strategy-1.json")).unwrap();
    assert_eq!(report.origin, gms::gms::report::Origin::Manual);
    let product = gms::model::SubstitutionMatrix::product(6, &report.modules, &report.layers);
    assert!(
        product == report.matrix() || (report.modules.is_empty() && report.layers.is_empty()),
        "modules × layers do not contradict the cells"
    );
}

/// Issue 9 §6: every key says something; limits, edits and drops are visible.
#[test]
fn keys_give_feedback() {
    let kit = common::tiny_kit(3);
    let out = tempfile::tempdir().unwrap();
    let mut b = Bench::start(&kit, false, params(0.95, 1), out.path().to_path_buf());
    b.resize(80, 24);
    b.run_to_end();
    b.key(KeyCode::Char('+'));
    b.wait_finished();
    b.key(KeyCode::Char('+'));
    assert!(b.message().contains("already 1.00"), "{}", b.message());
    b.key(KeyCode::Char('['));
    assert!(b.message().contains("already 1"), "{}", b.message());
    b.key(KeyCode::Char('x'));
    assert!(b.message().contains("x does nothing"), "{}", b.message());
    b.key(KeyCode::Char(' '));
    assert!(b.message().contains("has finished"), "{}", b.message());
    b.key(KeyCode::Char('r'));
    assert!(b.message().contains("layer 0"), "{}", b.message());
    b.key(KeyCode::Char('f'));
    assert!(
        b.message().contains("dropped edited") && b.message().contains("u brings it back"),
        "{}",
        b.message()
    );
    insta::assert_snapshot!("follow_drops_with_undo_80x24", b.screen(80, 24));
    b.key(KeyCode::Char('u'));
    assert!(b.message().starts_with("undone"), "{}", b.message());
    insta::assert_snapshot!("undone_120x36", b.screen(120, 36));
    // An idle engine shows no rate rather than "0.00 eval/s".
    b.app.rate = Some(0.0);
    let header = lines(&b.screen(80, 24))[0].clone();
    assert!(!header.contains("eval/s"), "{header}");
    // The idle guide line does not claim the search runs.
    b.app.message = None;
    let guide = lines(&b.screen(80, 24))[1].clone();
    assert!(guide.contains("finished"), "{guide}");
}

/// Issue 9 §7: the help overlay explains the screen's terms, and scrolls at 80×24.
#[test]
fn help_explains_the_terms() {
    let kit = common::tiny_kit(2);
    let out = tempfile::tempdir().unwrap();
    let mut b = Bench::start(&kit, false, params(0.4, 1), out.path().to_path_buf());
    b.resize(120, 36);
    b.key(KeyCode::Char('?'));
    insta::assert_snapshot!("help_120x36", b.screen(120, 36));
    b.resize(80, 24);
    b.key(KeyCode::End);
    let end = b.screen(80, 24);
    for term in ["cut", "◂lead", "≤0.45", "e1 pin", "↺"] {
        assert!(end.contains(term), "{term} is explained");
    }
    insta::assert_snapshot!("help_80x24_end", end);
}

#[test]
fn edit_evaluate_and_write_files_that_apply_accepts() {
    let kit = common::tiny_kit(3);
    let out = tempfile::tempdir().unwrap();
    let export = out.path().join("export");
    let mut b = Bench::start(&kit, true, params(0.4, 1), export.clone());
    b.run_to_end();

    // Quitting with a finished, unwritten search asks first; esc stays.
    b.key(KeyCode::Char('q'));
    assert!(b.app.confirm_quit && !b.app.quit);
    b.key(KeyCode::Esc);
    assert!(!b.app.confirm_quit && !b.app.quit);

    // Edit: take the best, click layer 1 / module K, toggle it and the F column, evaluate.
    b.key(KeyCode::Char('b'));
    let best = b.app.best().unwrap().matrix.clone();
    let areas = ui::layout(b.app.size, &b.app);
    let geo = gms::tui::widgets::heatmap::Geometry::new(areas.heatmap, 3, 0);
    let (x, y) = (geo.inner.x + 4 + 3 + 1, geo.inner.y + 2);
    b.event(Event::Mouse(MouseEvent {
        kind: MouseEventKind::Down(MouseButton::Left),
        column: x,
        row: y,
        modifiers: KeyModifiers::NONE,
    }));
    assert_eq!(b.app.cursor, (1, 1), "a click selects the cell under it");
    b.key(KeyCode::Enter);
    b.key(KeyCode::Right);
    b.key(KeyCode::Right);
    b.key(KeyCode::Right);
    b.key(KeyCode::Char('c'));
    let mut expected = best.clone();
    expected.toggle(1, Module::K);
    expected.toggle_module(Module::F);
    assert_eq!(b.app.edited(), Some(&expected));
    b.key(KeyCode::Char('e'));
    b.pump_until(|_, e| matches!(e, WorkerEvent::Evaluated { .. }));
    let pinned = &b.app.pinned[0];
    assert!(
        pinned.metrics.is_some() && pinned.test.is_some(),
        "scored on proxy and test sets"
    );
    assert!(
        b.screen(100, 30).contains("e1 "),
        "the evaluation is pinned as a row"
    );

    // `w` writes the edited strategy; `W` the JSON and the purified model.
    b.key(KeyCode::Char('w'));
    b.pump_until(|_, e| matches!(e, WorkerEvent::Exported { .. }));
    let json = export.join("strategy-1.json");
    let report = gms::gms::report::StrategyReport::read(&json).unwrap();
    assert_eq!(report.matrix(), expected);
    assert_eq!(report.origin, gms::gms::report::Origin::Manual);
    assert!(b.app.unsaved().is_none(), "written");
    b.key(KeyCode::Char('f'));
    b.key(KeyCode::Char('W'));
    b.pump_until(|_, e| matches!(e, WorkerEvent::Exported { .. }));
    let greedy = gms::gms::report::StrategyReport::read(&export.join("strategy-2.json")).unwrap();
    assert_eq!(greedy.origin, gms::gms::report::Origin::Greedy);
    assert_eq!(greedy.matrix(), best);
    assert!(export.join("model-2/config.json").is_file());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(
            mode(&export.join("model-2/model.safetensors")),
            0o644,
            "the weights are an ordinary file like the rest"
        );
        assert_eq!(mode(&export.join("model-2/config.json")), 0o644);
    }

    // `gms apply` accepts both strategies.
    for (i, strategy) in [json, export.join("strategy-2.json")].iter().enumerate() {
        let applied = out.path().join(format!("applied-{i}"));
        let (ok, _, stderr) = common::gms(&[
            "apply",
            "--victim",
            kit.victim.to_str().unwrap(),
            "--proxy",
            kit.proxy.to_str().unwrap(),
            "--strategy",
            strategy.to_str().unwrap(),
            "--out",
            applied.to_str().unwrap(),
        ]);
        assert!(ok, "{stderr}");
    }

    // Everything written: q quits at once.
    b.key(KeyCode::Char('q'));
    assert!(b.app.quit);
}

#[test]
fn alpha_change_mid_search_replays_from_the_cache() {
    let kit = common::tiny_kit(4);
    let out = tempfile::tempdir().unwrap();
    let mut b = Bench::start(&kit, false, params(0.4, 3), out.path().to_path_buf());
    b.key(KeyCode::Char('n'));
    b.pump_until(|app, e| app.steps.len() == 2 && is_stats(e));
    b.key(KeyCode::Char('n'));
    b.pump_until(|app, e| app.steps.len() == 3 && is_stats(e));
    let before = b.app.stats;

    // α 0.40 → 0.45, then resume: the worker replays everything the cache answers before it
    // reads the resume, so the replay ends at `Running { true }`.
    b.key(KeyCode::Char('+'));
    assert_eq!(b.app.params.alpha, 0.45);
    b.key(KeyCode::Char(' '));
    let mut restarted = false;
    b.pump_until(|_, e| {
        restarted |= matches!(e, WorkerEvent::Restarted { .. });
        matches!(e, WorkerEvent::Running { running: true })
    });
    assert!(restarted);
    let replayed = b.app.stats;
    assert!(
        replayed.requests > before.requests,
        "the replay asked the evaluator again"
    );
    assert_eq!(
        replayed.computed, before.computed,
        "every replayed unit came from the cache"
    );
    assert_eq!(
        replayed.cache_hits - before.cache_hits,
        replayed.requests - before.requests,
        "all replayed requests were cache hits"
    );
    b.wait_finished();
    let after = b.app.stats;

    // A fresh search at α 0.45 on a fresh session takes the same path with the same calls.
    let mut session = Session::load(kit.inputs(false), &Device::Cpu).unwrap();
    let mut fresh = GreedySearch::new(params(0.45, 3), session.evaluator.num_layers());
    fresh.run(&mut session.evaluator, |_| {}).unwrap();
    let path = |steps: &[gms::gms::search::TraceStep]| -> Vec<(String, f64, bool)> {
        steps
            .iter()
            .map(|s| (s.point.mv.to_string(), s.point.metrics.score, s.improved))
            .collect()
    };
    assert_eq!(path(&b.app.steps), path(fresh.trace()));
    let fresh_stats = session.evaluator.stats;
    assert_eq!(
        after.requests - before.requests,
        fresh_stats.requests,
        "the same evaluator calls"
    );
    assert!(
        after.computed - before.computed < fresh_stats.computed,
        "fewer forward passes than a fresh search: {} vs {}",
        after.computed - before.computed,
        fresh_stats.computed
    );
}

#[test]
fn deep_model_fits_80_by_24() {
    let kit = common::tiny_kit(28);
    let out = tempfile::tempdir().unwrap();
    let mut b = Bench::start(&kit, false, params(0.4, 1), out.path().to_path_buf());
    b.resize(80, 24);
    // Move to the last layer: the folded heatmap keeps every layer on screen.
    for _ in 0..40 {
        b.key(KeyCode::Char('j'));
    }
    assert_eq!(b.app.cursor, (27, 0));
    b.key(KeyCode::Enter);
    insta::assert_snapshot!("deep_80x24", b.screen(80, 24));
    let small = b.screen(60, 20);
    assert!(small.contains("needs at least 80×24"));
}

/// Issue 9 §5 and §7: a 24-layer answer reads as ranges, and the folded heatmap shows the
/// legend's glyphs, two layers a row.
#[test]
fn deep_model_answer_reads_as_ranges() {
    let kit = common::tiny_kit(24);
    let out = tempfile::tempdir().unwrap();
    let mut b = Bench::start(&kit, true, params(0.4, 1), out.path().to_path_buf());
    b.resize(80, 24);
    b.run_to_end();
    let screen = b.screen(80, 24);
    let best = b.app.best().unwrap();
    if let Some((_, layers)) = best.matrix.as_product() {
        let ranges = gms::model::substitution::layer_ranges(&layers);
        assert!(screen.contains(&ranges), "{ranges} in\n{screen}");
    }
    assert!(screen.contains("each row: layers N,N+1"), "{screen}");
    insta::assert_snapshot!("deep_finished_80x24", screen);
}

/// Issue 9 §8: `gms tui --help` says no inputs open the demo; `--demo` exists, as the
/// missing-input error suggests; headless search progress goes to stderr.
#[test]
fn cli_front_ends_say_what_they_do() {
    let (ok, stdout, _) = common::gms(&["tui", "--help"]);
    assert!(
        ok && stdout.contains("embedded demo") && stdout.contains("--demo"),
        "{stdout}"
    );
    let (ok, _, stderr) = common::gms(&["tui", "--victim", "x"]);
    assert!(
        !ok && stderr.contains("--proxy is required (or use --demo)"),
        "{stderr}"
    );
    let (ok, _, stderr) = common::gms(&["tui", "--demo", "--victim", "x"]);
    assert!(!ok && stderr.contains("--demo brings its own"), "{stderr}");

    let kit = common::tiny_kit(2);
    let out = kit.dir.path().join("s.json");
    let s = |p: &std::path::Path| p.to_str().unwrap().to_string();
    let (ok, stdout, stderr) = common::gms(&[
        "search",
        "--victim",
        &s(&kit.victim),
        "--proxy",
        &s(&kit.proxy),
        "--clean",
        &s(&kit.clean),
        "--suspect",
        &s(&kit.suspect),
        "--device",
        "cpu",
        "--patience",
        "1",
        "--out",
        &s(&out),
    ]);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("step  0"), "progress on stderr: {stderr}");
    assert!(!stdout.contains("step  0"), "not on stdout: {stdout}");
    assert!(
        stdout.contains("best:") && stdout.contains("stopped: 1 step in a row"),
        "{stdout}"
    );
}

/// A journaled search on the tiny kit, run to the end with an α sweep; the worker stopped.
fn recorded_search(kit: &common::TinyKit, journal: &std::path::Path) -> App {
    let plan = worker::JournalPlan {
        path: journal.to_path_buf(),
        resume: None,
        rename: None,
    };
    let out = journal.parent().unwrap().join("export");
    let mut b = Bench::start_journaled(kit, true, params(0.4, 2), out, Some(plan));
    b.run_to_end();
    b.sweep();
    b.handle.commands.send(worker::Command::Stop).unwrap();
    b.handle.thread.join().unwrap();
    b.app
}

/// Opens `journal` (`gms tui --open`), counting how often the models are loaded.
fn open_journal(
    kit: &common::TinyKit,
    journal: &std::path::Path,
    loads: &std::sync::Arc<std::sync::atomic::AtomicUsize>,
) -> Bench {
    let record = gms::gms::journal::Journal::read(journal).unwrap();
    let (alpha, patience) = record.last_params();
    let inputs = kit.inputs(true);
    let counter = loads.clone();
    let handle = worker::spawn_opened(
        record,
        move || {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Session::load(inputs, &Device::Cpu)
        },
        gms::export::write_export,
    );
    let export = journal.parent().unwrap().join("export");
    let mut b = Bench::attach(handle, params(alpha, patience), export);
    b.pump_until(|_, e| matches!(e, WorkerEvent::Models(_)));
    b
}

fn trace(steps: &[gms::gms::search::TraceStep]) -> Vec<(String, f64, bool, usize)> {
    steps
        .iter()
        .map(|s| {
            (
                s.point.mv.to_string(),
                s.point.metrics.score,
                s.improved,
                s.point.matrix.count(),
            )
        })
        .collect()
}

/// Issue 12: `--open` shows a recorded search (heatmap, steps, chart, the recorded α sweep)
/// with no model loaded; an α change replays from the record with no evaluation; a strategy
/// the record lacks loads the models once, and the journal goes on.
#[test]
fn open_shows_a_recorded_search_without_loading_a_model() {
    let kit = common::tiny_kit(6);
    let journal = kit.dir.path().join("s.journal.jsonl");
    let recorded = recorded_search(&kit, &journal);
    let loads = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut b = open_journal(&kit, &journal, &loads);
    let load_count = || loads.load(std::sync::atomic::Ordering::SeqCst);

    assert_eq!(trace(&b.app.steps), trace(&recorded.steps));
    assert!(b.app.finished.is_some(), "the record finishes the search");
    assert_eq!(
        b.app.best().map(|p| &p.matrix),
        recorded.best().map(|p| &p.matrix)
    );
    let sweep = |a: &App| -> Vec<(f64, usize, f64)> {
        a.sweep
            .iter()
            .map(|s| (s.alpha, s.best.matrix.count(), s.best.metrics.score))
            .collect()
    };
    assert_eq!(sweep(&b.app), sweep(&recorded), "the recorded sweep");
    assert_eq!(load_count(), 0, "no model loaded");
    assert_eq!(b.app.stats.computed, 0, "nothing computed");
    assert!(b.app.record_only());
    b.resize(80, 24);
    insta::assert_snapshot!("open_80x24", b.screen(80, 24));
    b.resize(120, 36);
    insta::assert_snapshot!("open_120x36", b.screen(120, 36));

    // α 0.40 → 0.30 (a swept α): replayed from the record, no evaluation, no model.
    b.key(KeyCode::Char('-'));
    b.key(KeyCode::Char('-'));
    b.pump_until(|app, e| {
        app.params.alpha == 0.3
            && app.finished.is_some()
            && matches!(e, WorkerEvent::Running { running: false })
    });
    let at_03 = recorded
        .sweep
        .iter()
        .find(|s| (s.alpha - 0.3).abs() < 1e-9)
        .unwrap();
    assert_eq!(b.app.best().map(|p| &p.matrix), Some(&at_03.best.matrix));
    assert_eq!(load_count(), 0, "the α change needed no model");
    assert_eq!(b.app.stats.computed, 0, "the α change evaluated nothing");
    assert!(b.app.record_only());

    // A hand edit the record never scored: `e` loads the models once, then scores it.
    let before = lines_of_kind(&journal, "evaluation");
    b.key(KeyCode::Enter);
    b.key(KeyCode::Char('e'));
    let mut loading = false;
    b.pump_until(|_, e| {
        loading |= matches!(e, WorkerEvent::Models(worker::ModelsStatus::Loading));
        matches!(e, WorkerEvent::Evaluated { .. })
    });
    assert!(loading, "the screen said the models were loading");
    assert_eq!(load_count(), 1);
    assert!(matches!(
        b.app.models,
        Some(worker::ModelsStatus::Loaded { .. })
    ));
    assert!(
        b.app.has_test_sets(),
        "the loaded session brings the test sets"
    );
    b.pump_until(|_, e| is_stats(e));
    assert!(b.app.stats.computed >= 1);
    assert_eq!(lines_of_kind(&journal, "evaluation"), before + 1);
    let text = std::fs::read_to_string(&journal).unwrap();
    assert!(text.contains(r#""action":"resume""#) && text.contains(r#""action":"evaluate""#));
}

/// Issue 12: an input changed since the journal was recorded: the record still opens, and a
/// new evaluation says what changed and stays read-only.
#[test]
fn open_with_a_changed_input_stays_read_only() {
    let kit = common::tiny_kit(4);
    let journal = kit.dir.path().join("s.journal.jsonl");
    recorded_search(&kit, &journal);
    let mut clean = std::fs::read_to_string(&kit.clean).unwrap();
    clean.push_str("{\"sentence\": \"one more row\", \"label\": 0}\n");
    std::fs::write(&kit.clean, clean).unwrap();
    let loads = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut b = open_journal(&kit, &journal, &loads);
    assert!(b.app.finished.is_some());
    b.key(KeyCode::Enter);
    b.key(KeyCode::Char('e'));
    b.pump_until(|_, e| {
        matches!(
            e,
            WorkerEvent::Models(worker::ModelsStatus::Unavailable { .. })
        )
    });
    assert!(b.app.record_only());
    let message = b.message();
    assert!(
        message.starts_with("read-only:")
            && message.contains("clean.jsonl")
            && message.contains("changed"),
        "{message}"
    );
    // Then the evaluation's refusal, which names the reason again.
    let refusal = loop {
        match b.handle.events.try_recv() {
            Ok(WorkerEvent::Error { message, .. }) => break message,
            Ok(e) => b.app.on_worker_event(e),
            Err(_) => std::thread::sleep(Duration::from_millis(2)),
        }
    };
    assert!(
        refusal.starts_with("read-only:") && refusal.contains("changed"),
        "{refusal}"
    );
    // The worker goes on answering from the record: α 0.30 was swept.
    b.key(KeyCode::Char('-'));
    b.key(KeyCode::Char('-'));
    b.pump_until(|app, e| {
        app.params.alpha == 0.3
            && app.finished.is_some()
            && matches!(e, WorkerEvent::Running { running: false })
    });
    assert_eq!(loads.load(std::sync::atomic::Ordering::SeqCst), 1);
}

/// `gms tui --resume`: a search stopped after two steps resumes from its journal to the
/// uninterrupted search's answer, scoring nothing the journal holds again.
#[test]
fn tui_resume_continues_a_recorded_search() {
    let kit = common::tiny_kit(6);
    let dir = tempfile::tempdir().unwrap();
    let full = recorded_search(&kit, &dir.path().join("full.journal.jsonl"));

    let journal = dir.path().join("part.journal.jsonl");
    let plan = worker::JournalPlan {
        path: journal.clone(),
        resume: None,
        rename: None,
    };
    let mut b =
        Bench::start_journaled(&kit, true, params(0.4, 2), dir.path().join("x"), Some(plan));
    b.key(KeyCode::Char('n'));
    b.pump_until(|app, e| app.steps.len() == 2 && is_stats(e));
    b.handle.commands.send(worker::Command::Stop).unwrap();
    b.handle.thread.join().unwrap();
    let recorded = lines_of_kind(&journal, "evaluation");

    let plan = worker::JournalPlan {
        path: journal.clone(),
        resume: Some(gms::gms::journal::Journal::read(&journal).unwrap()),
        rename: None,
    };
    let mut r =
        Bench::start_journaled(&kit, true, params(0.4, 2), dir.path().join("x"), Some(plan));
    r.run_to_end();
    assert_eq!(trace(&r.app.steps), trace(&full.steps));
    let status = r
        .seen
        .iter()
        .rev()
        .find_map(|e| match e {
            WorkerEvent::Journal(s) => Some(s.clone()),
            _ => None,
        })
        .expect("a journal status");
    assert_eq!(status.recorded, recorded);
    assert_eq!(status.reevaluated, 0, "nothing recorded was scored again");
    assert!(status.new > 0);
}

fn lines_of_kind(path: &std::path::Path, kind: &str) -> usize {
    let needle = format!("\"kind\":\"{kind}\"");
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| l.contains(&needle))
        .count()
}

/// Issue 10: adapters with different target modules. The heatmap greys the cells the proxy
/// cannot give, refuses toggling them, keeps them out of row and column edits, and shows the
/// worker's warning.
#[test]
fn cells_the_adapters_do_not_both_adapt_are_greyed() {
    use gms::model::arch::DecoderArchitecture;
    use gms::model::random_decoder::{RandomAdapterSpec, RandomDecoderSpec};
    let spec = RandomDecoderSpec::tiny(DecoderArchitecture::Llama, &common::WORDS, 3, 5);
    let mut victim = RandomAdapterSpec::tiny(1, "base");
    victim.targets = vec![Module::Q, Module::K, Module::V, Module::O, Module::D];
    let mut proxy = RandomAdapterSpec::tiny(2, "base");
    proxy.targets = vec![Module::Q, Module::V, Module::G, Module::D];
    let kit = common::tiny_decoder_kit_with(&spec, &victim, &proxy);
    let out = tempfile::tempdir().unwrap();
    let mut b = Bench::start(&kit, false, params(0.4, 2), out.path().to_path_buf());
    assert_eq!(b.app.warnings.len(), 1);
    assert!(b.message().contains("only QVD"), "{}", b.message());
    b.key(KeyCode::Char('n'));
    b.pump_until(|app, e| app.steps.len() == 2 && is_stats(e));
    let shown = b.app.shown();
    let k = b.app.modules.iter().position(|&m| m == Module::K).unwrap();
    assert_eq!(
        b.app.cell_state(&shown, 0, Module::K),
        CellState::Unavailable
    );
    assert_ne!(
        b.app.cell_state(&shown, 0, Module::Q),
        CellState::Unavailable
    );
    b.resize(80, 24);
    insta::assert_snapshot!("greyed_80x24", b.screen(80, 24));
    b.resize(120, 36);
    insta::assert_snapshot!("greyed_120x36", b.screen(120, 36));

    // Toggling a greyed cell is refused and says why.
    for _ in 0..k {
        b.key(KeyCode::Right);
    }
    assert_eq!(b.app.cursor, (0, k));
    b.key(KeyCode::Enter);
    assert!(b.app.adopted.is_none(), "nothing edited");
    assert!(
        b.message().contains("L0·K cannot be substituted"),
        "{}",
        b.message()
    );
    // A row toggle edits only the cells the proxy can give.
    b.key(KeyCode::Char('r'));
    b.key(KeyCode::Char('r'));
    let edited = b.app.edited().expect("an edit").clone();
    let substitutable = b.app.substitutable.clone().unwrap();
    assert_eq!(edited.intersection(&substitutable), edited);
}

/// Issue 13 (worker part): the merge baselines run on the search's worker, one method a
/// unit; without a base only linear (WAG) runs, the others say they need the base.
#[test]
fn the_worker_scores_the_merge_baselines() {
    let kit = common::tiny_kit(2);
    let out = tempfile::tempdir().unwrap();
    let mut b = Bench::start(&kit, true, params(0.4, 2), out.path().to_path_buf());
    b.handle
        .commands
        .send(worker::Command::Baselines { base: None })
        .unwrap();
    b.pump_until(|_, e| matches!(e, WorkerEvent::BaselinesDone { .. }));
    assert_eq!(b.app.baselines.len(), 1);
    let linear = &b.app.baselines[0];
    assert_eq!(linear.method, gms::gms::merge::MergeMethod::Linear);
    assert!(linear.score.proxy.is_some() && linear.score.test.is_some());
    assert_eq!(b.app.baselines_skipped.len(), 4);
    assert!(b.app.baselines_skipped[0].1.contains("base"));

    // The worker's units: the merge, then the proxy sets, the clean test set, the poisoned
    // one — commands wait for one of those, not for a whole method.
    let victim = gms::model::LoadedModel::load(&kit.victim, &Device::Cpu).unwrap();
    let sets = scoring_sets(kit.inputs(true), &victim);
    let pair = gms::gms::merge::BaselinePair::Encoder(Box::new(
        gms::gms::merge::MergeInputs::open(&kit.victim, &kit.proxy, None).unwrap(),
    ));
    let mut run = gms::gms::merge::BaselineRun::merge(
        &pair,
        gms::gms::merge::MergeMethod::Linear,
        &Device::Cpu,
    )
    .unwrap();
    assert!(run.advance(&sets).unwrap().is_none(), "the proxy sets");
    assert!(run.advance(&sets).unwrap().is_none(), "the clean test set");
    let done = run
        .advance(&sets)
        .unwrap()
        .expect("the poisoned test set ends it");
    assert_eq!(done.score, linear.score);
}

/// Decoder adapters get the five merges too (their base is the base the base methods need),
/// scored as the whole merged model scores on the sets; writing one is refused with why.
#[test]
fn the_worker_scores_merge_baselines_of_decoder_adapters() {
    use gms::gms::merge::{decoder::merge_adapters, score_model, MergeMethod, MergeParams};
    let kit = common::tiny_decoder_kit(2);
    let out = tempfile::tempdir().unwrap();
    let mut b = Bench::start(&kit, true, params(0.4, 2), out.path().to_path_buf());
    b.key(KeyCode::Char('B'));
    b.pump_until(|_, e| matches!(e, WorkerEvent::BaselinesDone { .. }));
    assert_eq!(b.app.baselines.len(), 5, "{:?}", b.app.baselines_skipped);
    assert!(b.app.baselines_skipped.is_empty());
    assert!(b
        .app
        .baselines
        .iter()
        .all(|m| m.score.proxy.is_some() && m.score.test.is_some()));

    // The panel's TIES row is the merged model's own score.
    let (pair, _) =
        gms::model::LoadedPair::load(&kit.victim, &kit.proxy, None, &Device::Cpu).unwrap();
    let gms::model::LoadedPair::Decoder { victim, proxy } = pair else {
        panic!("adapters load as decoders");
    };
    let merged = merge_adapters(
        &victim.classifier,
        &proxy.classifier,
        &MergeParams::defaults(MergeMethod::Ties),
    )
    .unwrap();
    let encoder = victim.text_encoder().unwrap();
    let inputs = kit.inputs(true);
    let encode = |p: &std::path::Path| {
        let rows = gms::gms::session::read_dataset(p, 2).unwrap();
        encoder.encode_set(&rows.examples, &Device::Cpu).unwrap()
    };
    let sets = gms::gms::merge::ScoringSets::from_sets(
        Some((encode(&inputs.clean), encode(&inputs.suspect))),
        Some((
            encode(inputs.test_clean.as_deref().unwrap()),
            encode(inputs.test_poison.as_deref().unwrap()),
        )),
    );
    assert_eq!(
        Some(&score_model(&merged, &sets).unwrap()),
        b.app.baseline_score(MergeMethod::Ties).map(|s| &s.score)
    );

    // `w` on a decoder merge: refused, saying why, with nothing sent to the worker.
    b.key(KeyCode::Char('w'));
    assert!(
        b.message().contains("built for encoders only"),
        "{}",
        b.message()
    );
    let written = std::fs::read_dir(out.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("merge-")
        })
        .count();
    assert_eq!(written, 0);
}

/// The kit's proxy and test sets, encoded with `model`'s tokenizer for scoring a whole model.
fn scoring_sets(
    inputs: gms::gms::session::SearchInputs,
    model: &gms::model::LoadedModel,
) -> gms::gms::merge::ScoringSets {
    gms::gms::merge::ScoringSets::load(
        &model.text_encoder().unwrap(),
        model.folder.config.num_labels,
        &gms::gms::merge::score::ScoringPaths {
            clean: Some(&inputs.clean),
            suspect: Some(&inputs.suspect),
            test_clean: inputs.test_clean.as_deref(),
            test_poison: inputs.test_poison.as_deref(),
        },
        &Device::Cpu,
    )
    .unwrap()
}

/// The tiny kit's victim and proxy fine-tuned, as it were, from a third random model (seed 3):
/// a base every base method can merge against.
fn tiny_base(kit: &common::TinyKit) -> std::path::PathBuf {
    use gms::model::random::{write_random_model, RandomModelSpec};
    let base = kit.dir.path().join("base");
    write_random_model(&base, &RandomModelSpec::tiny(&common::WORDS, 2, 3)).unwrap();
    base
}

/// Issue 13 (workbench): `B` opens the baselines panel and asks the worker for them once;
/// each method's acc/asr/score under the current α and its test CACC/ASR, the victim and the
/// search's ★best beside them; the trade-off view shows them as labelled points; `+` re-scores
/// them under the new α with the session's score function.
#[test]
fn the_baselines_panel_lists_the_merges_and_the_tradeoff_shows_them() {
    let kit = common::tiny_kit(2);
    let base = tiny_base(&kit);
    let out = tempfile::tempdir().unwrap();
    let mut b = Bench::start(&kit, true, params(0.4, 2), out.path().to_path_buf());
    b.app.merge_base = Some(base);
    b.run_to_end();
    b.sweep();
    b.key(KeyCode::Char('B'));
    assert_eq!(b.app.focus, Focus::Baselines);
    assert!(b.app.baselines_requested);
    b.pump_until(|_, e| matches!(e, WorkerEvent::BaselinesPlanned { .. }));
    assert_eq!(b.app.baselines_planned.len(), 5);
    assert!(b.app.baselines_skipped.is_empty());
    // While computing, the panel names the method in flight.
    b.resize(80, 24);
    let computing = b.screen(80, 24);
    assert!(computing.contains("merging linear (1/5)"), "{computing}");
    assert!(
        computing.contains("… merging linear (1/5) · queued: TA T D DL"),
        "{computing}"
    );
    b.pump_until(|_, e| matches!(e, WorkerEvent::BaselinesDone { .. }));
    assert_eq!(b.app.baselines.len(), 5);
    b.key(KeyCode::Char('j'));
    b.key(KeyCode::Char('j'));
    assert_eq!(
        b.app.selected_baseline(),
        Some(gms::gms::merge::MergeMethod::Ties)
    );
    insta::assert_snapshot!("baselines_80x24", b.screen(80, 24));
    b.resize(120, 36);
    insta::assert_snapshot!("baselines_120x36", b.screen(120, 36));

    // The score follows α: the one score function over the α-free counts.
    let ties = b.app.baselines[2].clone();
    let counts = ties.score.proxy.unwrap();
    let victim = b.app.baseline.unwrap();
    b.key(KeyCode::Char('+'));
    let want = gms::gms::score::Drops::Relative.metrics(0.45, victim, counts.acc(), counts.asr());
    assert_eq!(b.app.baseline_metrics(&ties), Some(want));
    b.key(KeyCode::Char('-'));
    b.pump_until(
        |_, e| matches!(e, WorkerEvent::Restarted { params, .. } if (params.alpha - 0.4).abs() < 1e-9),
    );
    b.wait_finished();

    // B again closes it; the trade-off view keeps the merges' points beside the sweep.
    b.key(KeyCode::Char('B'));
    assert_eq!(b.app.focus, Focus::Heatmap);
    b.key(KeyCode::Tab);
    b.key(KeyCode::Tab);
    assert_eq!(b.app.focus, Focus::Tradeoff);
    let screen = b.screen(120, 36);
    for label in ["◆", "◇", " L ", " TA ", " DL "] {
        assert!(screen.contains(label), "{label} in\n{screen}");
    }
    insta::assert_snapshot!("tradeoff_baselines_120x36", screen);
    b.resize(80, 24);
    insta::assert_snapshot!("tradeoff_baselines_80x24", b.screen(80, 24));
    // Opening the panel again does not merge again.
    b.key(KeyCode::Char('B'));
    assert_eq!(
        b.seen
            .iter()
            .filter(|e| matches!(e, WorkerEvent::BaselinesPlanned { .. }))
            .count(),
        1
    );
}

/// `W` on a baseline writes, through the export writer, the merged model folder and the
/// mergekit YAML; the folder loads with gms's loader and scores what the panel reported, and
/// its tensors are `gms merge`'s for the method. The journal records the action.
#[test]
fn writing_a_baseline_gives_a_loadable_model_and_its_yaml() {
    use gms::gms::merge::{merge_models, score_model, MergeInputs, MergeMethod, MergeParams};
    let kit = common::tiny_kit(2);
    let base = tiny_base(&kit);
    let out = tempfile::tempdir().unwrap();
    let export = out.path().join("export");
    let journal = out.path().join("search.journal.jsonl");
    let plan = worker::JournalPlan {
        path: journal.clone(),
        resume: None,
        rename: None,
    };
    let mut b = Bench::start_journaled(&kit, true, params(0.4, 2), export.clone(), Some(plan));
    b.app.merge_base = Some(base.clone());
    b.key(KeyCode::Char('B'));
    b.pump_until(|_, e| matches!(e, WorkerEvent::BaselinesDone { .. }));
    // TIES (the third row): a base method, whose YAML needs the base in the victim's layout.
    b.key(KeyCode::Down);
    b.key(KeyCode::Down);
    b.key(KeyCode::Char('W'));
    b.pump_until(|_, e| matches!(e, WorkerEvent::BaselineExported { .. }));
    let model_dir = export.join("merge-1-ties");
    let yaml = export.join("merge-1-ties.yaml");
    assert!(
        b.message().contains("wrote the ties merge"),
        "{}",
        b.message()
    );
    assert!(b.message().contains("merge-1-ties.yaml"), "{}", b.message());
    let text = std::fs::read_to_string(&yaml).unwrap();
    assert!(text.contains("merge_method: ties"), "{text}");
    // Nothing half-written is left beside the outputs.
    for e in std::fs::read_dir(&export).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!name.starts_with(".gms-"), "{name}");
    }

    // The folder loads and scores what the panel showed.
    let panel = b.app.baseline_score(MergeMethod::Ties).unwrap().score;
    let loaded = gms::model::LoadedModel::load(&model_dir, &Device::Cpu).unwrap();
    let sets = scoring_sets(kit.inputs(true), &loaded);
    assert_eq!(score_model(&loaded.classifier, &sets).unwrap(), panel);
    // Tensor for tensor what `gms merge --method ties` computes.
    let merged = merge_models(
        &MergeInputs::open(&kit.victim, &kit.proxy, Some(&base)).unwrap(),
        &MergeParams::defaults(MergeMethod::Ties),
    )
    .unwrap();
    let mut n = 0;
    gms::model::folder::for_each_tensor(&model_dir.join("model.safetensors"), |name, t| {
        let want = &merged.tensors[name];
        let diff = (t.to_dtype(candle_core::DType::F32)?
            - want.to_dtype(candle_core::DType::F32)?)?
        .abs()?
        .flatten_all()?
        .max(0)?
        .to_scalar::<f32>()?;
        assert!(diff == 0.0, "{name} differs by {diff}");
        n += 1;
        Ok(())
    })
    .unwrap();
    assert_eq!(n, merged.tensors.len());

    // `w` on the same row writes the next YAML alone, and the journal has both actions.
    b.key(KeyCode::Char('w'));
    b.pump_until(|_, e| matches!(e, WorkerEvent::BaselineExported { .. }));
    assert!(export.join("merge-2-ties.yaml").is_file());
    assert!(!export.join("merge-2-ties").exists());
    b.handle.commands.send(worker::Command::Stop).unwrap();
    b.handle.thread.join().unwrap();
    let text = std::fs::read_to_string(&journal).unwrap();
    let actions: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["action"] == "export_baseline")
        .collect();
    assert_eq!(actions.len(), 2, "{text}");
    assert_eq!(actions[0]["detail"]["method"], "ties");
    // `--open` and `--resume` offer the same merges: the journal names the base.
    let record = gms::gms::journal::Journal::read(&journal).unwrap();
    assert_eq!(record.merge_base(), Some(base));
}

/// A demo search's journal names the demo's inputs by `assets/demo/…`, not the temporary
/// copy they ran from; reopening it maps them back to the embedded demo, which loads (the
/// fingerprints match), so `--open` of a demo journal is not read-only once the copy is gone.
#[test]
fn a_demo_journal_names_the_embedded_demo_and_opens_it_again() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("demo.journal.jsonl");
    let plan = worker::JournalPlan {
        path: journal.clone(),
        resume: None,
        rename: Some(gms::demo::recorded_path),
    };
    let inputs = gms::demo::inputs().unwrap();
    let handle = worker::spawn_journaled(
        move || Session::load(inputs, &Device::Cpu),
        WorkerOptions {
            params: params(0.4, 1),
            mode: Default::default(),
            signal: Default::default(),
            running: false,
            test_at_end: false,
        },
        gms::export::write_export,
        Some(plan),
    );
    let mut b = Bench::attach(handle, params(0.4, 1), dir.path().join("x"));
    b.key(KeyCode::Char('n'));
    b.pump_until(|app, e| !app.steps.is_empty() && is_stats(e));
    b.handle.commands.send(worker::Command::Stop).unwrap();
    b.handle.thread.join().unwrap();

    let recorded = gms::gms::journal::Journal::read(&journal).unwrap();
    let header = recorded.header.inputs.search_inputs();
    assert_eq!(header.victim, std::path::Path::new("assets/demo/victim"));
    assert_eq!(
        header.test_poison.as_deref(),
        Some(std::path::Path::new("assets/demo/test_poison.jsonl"))
    );
    let resolved = gms::demo::resolve_recorded(header);
    assert!(resolved.victim.join("config.json").is_file());
    assert!(resolved.test_clean.as_ref().unwrap().is_file());

    // Opened: an evaluation the journal lacks loads the demo's models, not "read-only".
    let handle = worker::spawn_opened(
        recorded,
        move || Session::load(resolved, &Device::Cpu),
        gms::export::write_export,
    );
    let mut o = Bench::attach(handle, params(0.4, 1), dir.path().join("y"));
    let layers = o.app.num_layers;
    let mut m = gms::model::SubstitutionMatrix::empty(layers);
    m.set(layers - 1, Module::F, true);
    o.handle
        .commands
        .send(worker::Command::Evaluate { tag: 7, matrix: m })
        .unwrap();
    o.pump_until(|_, e| matches!(e, WorkerEvent::Evaluated { .. }));
    assert!(
        o.seen.iter().any(|e| matches!(
            e,
            WorkerEvent::Models(gms::gms::worker::ModelsStatus::Loaded { .. })
        )),
        "the demo's models loaded"
    );
}
