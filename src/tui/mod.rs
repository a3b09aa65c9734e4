//! The interactive workbench: a ratatui front end over the search worker.
//!
//! Input becomes an [`action::Action`] (through the one key table in [`keymap`]); actions and
//! worker events change the [`app::App`]; [`ui::draw`] reads it. The search runs on the
//! worker thread, which owns the models, so the screen stays live while a candidate is
//! scored. The terminal is restored on every way out: normal quit, error and panic.

pub mod action;
pub mod app;
pub mod keymap;
pub mod rows;
pub mod summary;
pub mod ui;
pub mod widgets;

use crate::device::open_device;
use crate::gms::modes::SearchMode;
use crate::gms::search::SearchParams;
use crate::gms::session::{SearchInputs, Session};
use crate::gms::signal::Signal;
use crate::gms::worker::{self, Command, WorkerEvent, WorkerHandle, WorkerOptions};
use action::Action;
use anyhow::Context;
use app::App;
use crossterm::event::{
    DisableMouseCapture, EnableMouseCapture, Event, EventStream, MouseButton, MouseEventKind,
};
use crossterm::execute;
use crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use futures::StreamExt;
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;
use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedSender;

/// How the workbench starts.
#[derive(Debug, Clone)]
pub struct TuiOptions {
    /// Models and datasets.
    pub inputs: SearchInputs,
    /// `--device` value.
    pub device: String,
    /// Evaluation dtype (`--dtype`).
    pub dtype: candle_core::DType,
    /// Initial α and patience.
    pub params: SearchParams,
    /// The search mode (`--mode`).
    pub mode: SearchMode,
    /// Which proxy-set rows the score uses (`--signal`).
    pub signal: Signal,
    /// How the score measures drops (`--drops`).
    pub drops: crate::gms::score::Drops,
    /// Where `w` and `W` write.
    pub export_dir: PathBuf,
    /// Where logs go while the TUI owns the terminal.
    pub log_file: PathBuf,
    /// The search journal to write (and the one to resume from).
    pub journal: Option<worker::JournalPlan>,
    /// A recorded search to show (`--open`): replayed from its journal, the models loaded
    /// (from `inputs`) only for an evaluation it lacks.
    pub open: Option<crate::gms::journal::Journal>,
    /// The pre-trained base the merge baselines' base methods need (`--base` for encoders).
    pub merge_base: Option<PathBuf>,
}

/// Runs the workbench until the user quits.
pub fn run(options: TuiOptions) -> anyhow::Result<()> {
    init_logging(&options.log_file)?;
    let device = open_device(&options.device)?;
    tracing::info!(inputs = ?options.inputs, params = ?options.params, "starting the TUI");
    let inputs = options.inputs;
    let dtype = options.dtype;
    let drops = options.drops;
    let load = move || Session::load_scoring(inputs, &device, dtype, drops);
    let mut handle = match options.open {
        Some(journal) => worker::spawn_opened(journal, load, crate::export::write_export),
        None => worker::spawn_journaled(
            load,
            WorkerOptions {
                params: options.params,
                mode: options.mode,
                signal: options.signal,
                running: true,
                test_at_end: true,
            },
            crate::export::write_export,
            options.journal,
        ),
    };
    let mut app = App::new(options.params, options.export_dir);
    app.merge_base = options.merge_base;
    app.log_file = Some(options.log_file.clone());
    let result = {
        let mut terminal = TerminalGuard::enter()?;
        let size = terminal.terminal.size()?;
        app.update(Action::Resize {
            width: size.width,
            height: size.height,
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .context("cannot start the async runtime")?;
        runtime.block_on(event_loop(&mut terminal.terminal, &mut app, &mut handle))
        // The guard drops here and restores the terminal, whatever the result.
    };
    let _ = handle.commands.send(Command::Stop);
    if let Err(e) = &result {
        tracing::error!("the TUI ended with an error: {e:#}");
    }
    tracing::info!("the TUI ended");
    result
}

/// Sends the commands an action produced, creating the export folder before an export.
pub fn dispatch(app: &mut App, commands: &UnboundedSender<Command>, to_send: Vec<Command>) {
    for command in to_send {
        let written = match &command {
            Command::Export { json, .. } => Some(json),
            Command::ExportBaseline { yaml, .. } => Some(yaml),
            _ => None,
        };
        if let Some(json) = written {
            if let Some(dir) = json.parent().filter(|d| !d.as_os_str().is_empty()) {
                if let Err(e) = std::fs::create_dir_all(dir) {
                    app.on_worker_event(WorkerEvent::Error {
                        message: format!(
                            "{}: cannot create the export folder ({e})",
                            dir.display()
                        ),
                        class: crate::error::ErrorClass::BadInput,
                    });
                    continue;
                }
            }
        }
        tracing::debug!(?command, "to the worker");
        if commands.send(command).is_err() {
            app.on_worker_event(WorkerEvent::Error {
                message: "the search worker has stopped".into(),
                class: crate::error::ErrorClass::Internal,
            });
        }
    }
}

/// The action a terminal event asks for, given what is on screen.
pub fn action_for_event(app: &App, event: &Event) -> Option<Action> {
    match event {
        Event::Key(key) if app.confirm_quit => keymap::confirm_action(*key),
        Event::Key(key) if app.help => keymap::help_action(*key),
        Event::Key(key) => keymap::action_for(*key, app.focus),
        Event::Mouse(m) => match m.kind {
            MouseEventKind::Down(MouseButton::Left) => Some(Action::Click {
                column: m.column,
                row: m.row,
            }),
            MouseEventKind::ScrollDown | MouseEventKind::ScrollUp => Some(Action::Scroll {
                column: m.column,
                row: m.row,
                down: m.kind == MouseEventKind::ScrollDown,
            }),
            _ => None,
        },
        Event::Resize(width, height) => Some(Action::Resize {
            width: *width,
            height: *height,
        }),
        _ => None,
    }
}

type CrosstermTerminal = Terminal<CrosstermBackend<std::io::Stdout>>;

async fn event_loop(
    terminal: &mut CrosstermTerminal,
    app: &mut App,
    handle: &mut WorkerHandle,
) -> anyhow::Result<()> {
    let mut input = EventStream::new();
    // Redraw a few times a second so the eval/s figure stays current when nothing else moves.
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let mut meter = RateMeter::default();
    let mut worker_alive = true;
    loop {
        terminal.draw(|f| ui::draw(f, app))?;
        tokio::select! {
            event = input.next() => match event {
                Some(Ok(event)) => {
                    if let Some(action) = action_for_event(app, &event) {
                        tracing::debug!(?action, "input");
                        let commands = app.update(action);
                        dispatch(app, &handle.commands, commands);
                    }
                }
                Some(Err(e)) => return Err(e).context("cannot read terminal input"),
                None => return Ok(()),
            },
            event = handle.events.recv(), if worker_alive => match event {
                Some(event) => {
                    apply(app, event, &mut meter);
                    // Drain what is queued (a replay sends many events at once), then draw once.
                    while let Ok(event) = handle.events.try_recv() {
                        apply(app, event, &mut meter);
                    }
                }
                None => worker_alive = false,
            },
            _ = tick.tick() => app.rate = meter.rate(Instant::now()),
        }
        if app.quit {
            return Ok(());
        }
        if app.stopped && !app.ready() {
            let why = app
                .message
                .as_ref()
                .map_or("the worker stopped while loading".to_string(), |m| {
                    m.text.clone()
                });
            anyhow::bail!(why);
        }
    }
}

fn apply(app: &mut App, event: WorkerEvent, meter: &mut RateMeter) {
    match &event {
        WorkerEvent::Stats { stats } => meter.sample(Instant::now(), stats.requests),
        WorkerEvent::Search(crate::gms::search::SearchEvent::Candidate(_)) => {
            tracing::trace!(?event, "worker")
        }
        WorkerEvent::Error { message, .. } => tracing::warn!("worker: {message}"),
        _ => tracing::info!(?event, "worker"),
    }
    app.on_worker_event(event);
}

/// Evaluations per second over the last few seconds.
#[derive(Default)]
struct RateMeter {
    samples: VecDeque<(Instant, usize)>,
}

impl RateMeter {
    /// Window of the average: long enough to smooth one slow candidate, short enough to
    /// show a pause within seconds.
    const WINDOW: Duration = Duration::from_secs(5);

    fn sample(&mut self, at: Instant, requests: usize) {
        self.samples.push_back((at, requests));
    }

    fn rate(&mut self, now: Instant) -> Option<f64> {
        // Keep one sample from before the window as the base, so slow candidates (one every
        // few seconds) still give a rate instead of a single point.
        while self.samples.len() > 2 && now.duration_since(self.samples[1].0) > Self::WINDOW {
            self.samples.pop_front();
        }
        let (first, last) = (self.samples.front()?, self.samples.back()?);
        let span = now.duration_since(first.0).as_secs_f64().max(0.5);
        Some((last.1 - first.1) as f64 / span)
    }
}

/// Owns the terminal in raw mode on the alternate screen with mouse capture; restores it
/// when dropped, and from a panic hook if the program panics meanwhile.
struct TerminalGuard {
    terminal: CrosstermTerminal,
}

fn restore_terminal() {
    let _ = disable_raw_mode();
    let _ = execute!(
        std::io::stdout(),
        DisableMouseCapture,
        LeaveAlternateScreen,
        crossterm::cursor::Show
    );
}

impl TerminalGuard {
    fn enter() -> anyhow::Result<TerminalGuard> {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore_terminal();
            tracing::error!("panic: {info}");
            previous(info);
        }));
        enable_raw_mode().context("cannot switch the terminal to raw mode")?;
        let setup = execute!(std::io::stdout(), EnterAlternateScreen, EnableMouseCapture);
        if let Err(e) = setup {
            restore_terminal();
            return Err(e).context("cannot set up the terminal");
        }
        match Terminal::new(CrosstermBackend::new(std::io::stdout())) {
            Ok(terminal) => Ok(TerminalGuard { terminal }),
            Err(e) => {
                restore_terminal();
                Err(e).context("cannot set up the terminal")
            }
        }
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore_terminal();
        // Back to the default hook so a later panic prints normally.
        drop(std::panic::take_hook());
    }
}

/// Sends logs to `path` (the terminal belongs to the TUI). `GMS_LOG` sets the filter.
fn init_logging(path: &std::path::Path) -> anyhow::Result<()> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| {
            format!(
                "{}: cannot open the log file; choose another with --log",
                path.display()
            )
        })?;
    let filter = tracing_subscriber::EnvFilter::try_from_env("GMS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // A subscriber may already be installed (tests, embedding): keep it.
    let _ = tracing_subscriber::fmt()
        .with_writer(std::sync::Mutex::new(file))
        .with_ansi(false)
        .with_env_filter(filter)
        .try_init();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_spans_slow_candidates() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut meter = RateMeter::default();
        assert_eq!(meter.rate(at(0)), None);
        meter.sample(at(0), 0);
        meter.sample(at(8), 1);
        meter.sample(at(16), 2);
        // One candidate every 8 s: the base sample before the 5 s window keeps a rate.
        let r = meter.rate(at(16)).unwrap();
        assert!((r - 0.125).abs() < 1e-9, "{r}");
        meter.sample(at(17), 12);
        let r = meter.rate(at(18)).unwrap();
        assert!((r - 11.0 / 10.0).abs() < 1e-9, "{r}");
    }
}
