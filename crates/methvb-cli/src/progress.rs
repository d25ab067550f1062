//! The binary's side of [`methvb_pipeline::Progress`]: a progress bar on stderr when it is a
//! terminal (or with `--progress`), messages as `methvb: ...` lines, nothing with `--quiet`.

use std::io::IsTerminal;
use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Progress bars and messages on stderr.
#[derive(Debug)]
pub struct Terminal {
    quiet: bool,
    /// Draw the bar even when stderr is not a terminal (`--progress`).
    force: bool,
    bar: Mutex<Option<ProgressBar>>,
}

impl Terminal {
    /// Messages unless `quiet`; a bar on a terminal, or always with `force`.
    pub fn new(quiet: bool, force: bool) -> Self {
        Self {
            quiet,
            force,
            bar: Mutex::new(None),
        }
    }

    /// Prints `line` to stderr unless quiet, above the bar if one is drawn.
    fn say(&self, line: &str) {
        if self.quiet {
            return;
        }
        match self.bar.lock().ok().as_deref().and_then(Option::as_ref) {
            Some(bar) => bar.suspend(|| eprintln!("{line}")),
            None => eprintln!("{line}"),
        }
    }

    fn bar(&self, phase: &str, total: Option<u64>) -> ProgressBar {
        let terminal = std::io::stderr().is_terminal();
        let bar = match total {
            Some(n) => ProgressBar::new(n),
            None => ProgressBar::new_spinner(),
        };
        if self.quiet || !(self.force || terminal) {
            bar.set_draw_target(ProgressDrawTarget::hidden());
            return bar;
        }
        if !terminal {
            bar.set_draw_target(ProgressDrawTarget::stderr_with_hz(1));
        }
        let template = if total.is_some() {
            "{msg} [{elapsed_precise}] {bar:40} {pos}/{len} regions ({per_sec}, ETA {eta})"
        } else {
            "{msg} [{elapsed_precise}] {spinner} {pos} regions ({per_sec})"
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style);
        }
        bar.set_message(phase.to_string());
        bar
    }
}

impl methvb_pipeline::Progress for Terminal {
    fn start(&self, phase: &str, total: Option<u64>) {
        let bar = self.bar(phase, total);
        if let Ok(mut slot) = self.bar.lock() {
            *slot = Some(bar);
        }
    }

    fn advance(&self, regions: u64) {
        if let Some(bar) = self.bar.lock().ok().as_deref().and_then(Option::as_ref) {
            bar.inc(regions);
        }
    }

    fn finish(&self) {
        if let Some(bar) = self.bar.lock().ok().and_then(|mut b| b.take()) {
            bar.finish_and_clear();
        }
    }

    fn warn(&self, message: &str) {
        self.say(&format!("methvb: warning: {message}"));
    }

    fn note(&self, message: &str) {
        self.say(&format!("methvb: {message}"));
    }
}
