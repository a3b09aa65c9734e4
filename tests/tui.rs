//! The workbench on tiny real models, driven by synthetic key events: snapshots of the
//! screens a user sees, an α change replayed from the cache, and the files `w`/`W` write.

mod common;

use candle_core::Device;
use crossterm::event::{
    Event, KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};
use gms::gms::search::{GreedySearch, SearchParams};
use gms::gms::session::Session;
use gms::gms::worker::{self, WorkerEvent, WorkerHandle, WorkerOptions};
use gms::model::Module;
use gms::tui::app::{App, CellState};
use gms::tui::{action_for_event, dispatch, ui};
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use std::time::{Duration, Instant};

/// A workbench over a real worker, without a terminal.
struct Bench {
    app: App,
    handle: WorkerHandle,
}

impl Bench {
    /// Starts paused, so every screen is reached by keys alone.
    fn start(
        kit: &common::TinyKit,
        with_tests: bool,
        params: SearchParams,
        export_dir: std::path::PathBuf,
    ) -> Bench {
        let inputs = kit.inputs(with_tests);
        let handle = worker::spawn(
            move || Session::load(inputs, &Device::Cpu),
            WorkerOptions {
                params,
                mode: Default::default(),
                signal: Default::default(),
                running: false,
                test_at_end: true,
            },
            gms::export::write_export,
        );
        let mut bench = Bench {
            app: App::new(params, export_dir),
            handle,
        };
        bench.pump_until(|_, e| matches!(e, WorkerEvent::Running { .. }));
        // The device string names the core count; fix it so snapshots hold on any machine.
        bench.app.device = "cpu".into();
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

    /// Applies worker events until `done` holds after one of them.
    fn pump_until(&mut self, mut done: impl FnMut(&App, &WorkerEvent) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let event = match self.handle.events.try_recv() {
                Ok(e) => e,
                Err(tokio::sync::mpsc::error::TryRecvError::Empty) => {
                    assert!(
                        Instant::now() < deadline,
                        "timed out waiting for the worker"
                    );
                    std::thread::sleep(Duration::from_millis(2));
                    continue;
                }
                Err(e) => panic!("the worker ended: {e}; app message {:?}", self.app.message),
            };
            if let WorkerEvent::Error { message } = &event {
                panic!("worker error: {message}");
            }
            let probe = event.clone();
            self.app.on_worker_event(event);
            if done(&self.app, &probe) {
                return;
            }
        }
    }

    fn screen(&self, width: u16, height: u16) -> String {
        let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
        terminal.draw(|f| ui::draw(f, &self.app)).unwrap();
        terminal.backend().to_string()
    }
}

fn is_stats(e: &WorkerEvent) -> bool {
    matches!(e, WorkerEvent::Stats { .. })
}

#[test]
fn workbench_screens_from_start_to_trade_off() {
    let kit = common::tiny_kit(6);
    let out = tempfile::tempdir().unwrap();
    let params = SearchParams {
        alpha: 0.4,
        patience: 2,
    };
    let mut b = Bench::start(&kit, true, params, out.path().join("export"));
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
    let states: Vec<CellState> = (0..6)
        .flat_map(|l| Module::ALL.map(|m| b.app.cell_state(l, m)))
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
    b.key(KeyCode::Char(' '));
    b.pump_until(|app, e| {
        app.finished.is_some() && matches!(e, WorkerEvent::Running { running: false })
    });
    assert!(
        b.app.final_test.is_some(),
        "the best is scored on the test sets"
    );
    insta::assert_snapshot!("finished", b.screen(100, 30));

    b.key(KeyCode::Char('?'));
    insta::assert_snapshot!("help", b.screen(100, 30));
    b.key(KeyCode::Esc);
    assert!(!b.app.help);

    b.key(KeyCode::Char('a'));
    b.pump_until(|_, e| matches!(e, WorkerEvent::SweepDone));
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

#[test]
fn edit_evaluate_and_write_files_that_apply_accepts() {
    let kit = common::tiny_kit(3);
    let out = tempfile::tempdir().unwrap();
    let export = out.path().join("export");
    let mut b = Bench::start(
        &kit,
        true,
        SearchParams {
            alpha: 0.4,
            patience: 1,
        },
        export.clone(),
    );
    b.key(KeyCode::Char(' '));
    b.pump_until(|app, e| {
        app.finished.is_some() && matches!(e, WorkerEvent::Running { running: false })
    });

    // Quitting with a finished, unwritten search asks first; esc stays.
    b.key(KeyCode::Char('q'));
    assert!(b.app.confirm_quit && !b.app.quit);
    b.key(KeyCode::Esc);
    assert!(!b.app.confirm_quit && !b.app.quit);

    // Edit: take the best, click layer 1 / module K, toggle it and the F column, evaluate.
    b.key(KeyCode::Char('b'));
    let best = b.app.best().unwrap().matrix.clone();
    let areas = ui::layout(b.app.size, b.app.num_layers);
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
    assert_eq!(b.app.edited.as_ref(), Some(&expected));
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
    assert!(!b.app.unsaved(), "written");
    b.key(KeyCode::Char('f'));
    b.key(KeyCode::Char('W'));
    b.pump_until(|_, e| matches!(e, WorkerEvent::Exported { .. }));
    let greedy = gms::gms::report::StrategyReport::read(&export.join("strategy-2.json")).unwrap();
    assert_eq!(greedy.origin, gms::gms::report::Origin::Greedy);
    assert_eq!(greedy.matrix(), best);
    assert!(export.join("model-2/config.json").is_file());

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
    let mut b = Bench::start(
        &kit,
        false,
        SearchParams {
            alpha: 0.4,
            patience: 3,
        },
        out.path().to_path_buf(),
    );
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
    b.pump_until(|app, e| {
        app.finished.is_some() && matches!(e, WorkerEvent::Running { running: false })
    });
    let after = b.app.stats;

    // A fresh search at α 0.45 on a fresh session takes the same path with the same calls.
    let mut session = Session::load(kit.inputs(false), &Device::Cpu).unwrap();
    let mut fresh = GreedySearch::new(
        SearchParams {
            alpha: 0.45,
            patience: 3,
        },
        session.evaluator.num_layers(),
    );
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
    let mut b = Bench::start(
        &kit,
        false,
        SearchParams {
            alpha: 0.4,
            patience: 1,
        },
        out.path().to_path_buf(),
    );
    b.event(Event::Resize(80, 24));
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
