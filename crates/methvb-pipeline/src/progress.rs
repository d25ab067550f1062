//! How a long step tells its caller what it is doing. The library never prints: the binary
//! implements [`Progress`] (a progress bar on a terminal, messages on stderr, nothing with
//! `--quiet`); tests and other callers use [`Silent`] or their own.

/// Receives the progress and the messages of a pipeline step. Every method has a do-nothing
/// default; implementations must be cheap, since `advance` is called once per minibatch.
pub trait Progress: Sync {
    /// A phase starts (`"pass 1: sampling regions"`), over `total` regions if known.
    fn start(&self, _phase: &str, _total: Option<u64>) {}
    /// `regions` more regions are done.
    fn advance(&self, _regions: u64) {}
    /// The current phase is over.
    fn finish(&self) {}
    /// Something the user should know that does not stop the step (a dropped contig, a small
    /// sample for empirical Bayes).
    fn warn(&self, _message: &str) {}
    /// What the step is doing or did (what `--resume` reused, a removed earlier output).
    fn note(&self, _message: &str) {}
}

/// Reports nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Progress for Silent {}
