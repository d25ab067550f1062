//! Typed errors of the pipeline. Every error says what failed and where (file, line or record,
//! region, option); [`Error::Context`] adds the step that was running, so that the binary can
//! print the whole chain (`step: cause: ...`) with `anyhow`'s `{:#}`.

use std::fmt::Display;

/// An error of a pipeline step.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An input could not be read or parsed (names the file and line).
    #[error(transparent)]
    Read(#[from] methvb_io::ReadError),
    /// The model rejected a region or its options.
    #[error(transparent)]
    Model(#[from] methvb_model::ModelError),
    /// The MCMC audit failed.
    #[error(transparent)]
    Mcmc(#[from] methvb_mcmc::McmcError),
    /// A Parquet file could not be read or written.
    #[error(transparent)]
    Parquet(#[from] parquet::errors::ParquetError),
    /// An Arrow batch could not be built.
    #[error(transparent)]
    Arrow(#[from] arrow_schema::ArrowError),
    /// A JSON file could not be read or written.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// A file-system operation failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The inputs, settings or earlier outputs do not allow the step; the message says why and
    /// what to do.
    #[error("{0}")]
    Invalid(String),
    /// `source`, met while doing `context`.
    #[error("{context}")]
    Context {
        /// The step that was running ("reading x.parquet", "fitting region r1").
        context: String,
        /// What went wrong in it.
        #[source]
        source: Box<Error>,
    },
}

impl Error {
    /// The message and every cause, joined by `": "` (what the binary prints).
    pub fn chain(&self) -> String {
        let mut text = self.to_string();
        let mut cause = std::error::Error::source(self);
        while let Some(c) = cause {
            text.push_str(": ");
            text.push_str(&c.to_string());
            cause = c.source();
        }
        text
    }
}

/// Result of a pipeline step.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Adds the step that was running to an error (as `anyhow::Context` does, with a typed error).
pub trait Context<T> {
    /// Wraps the error in [`Error::Context`] with `context`.
    fn context<C: Display>(self, context: C) -> Result<T>;
    /// Wraps the error in [`Error::Context`] with `context()`, evaluated only on error.
    fn with_context<C: Display, F: FnOnce() -> C>(self, context: F) -> Result<T>;
}

impl<T, E: Into<Error>> Context<T> for std::result::Result<T, E> {
    fn context<C: Display>(self, context: C) -> Result<T> {
        self.map_err(|e| Error::Context {
            context: context.to_string(),
            source: Box::new(e.into()),
        })
    }

    fn with_context<C: Display, F: FnOnce() -> C>(self, context: F) -> Result<T> {
        self.map_err(|e| Error::Context {
            context: context().to_string(),
            source: Box::new(e.into()),
        })
    }
}

impl<T> Context<T> for Option<T> {
    fn context<C: Display>(self, context: C) -> Result<T> {
        self.ok_or_else(|| Error::Invalid(context.to_string()))
    }

    fn with_context<C: Display, F: FnOnce() -> C>(self, context: F) -> Result<T> {
        self.ok_or_else(|| Error::Invalid(context().to_string()))
    }
}

/// Returns early with [`Error::Invalid`] and a formatted message.
macro_rules! bail {
    ($($arg:tt)*) => {
        return Err($crate::error::Error::Invalid(format!($($arg)*)))
    };
}
pub(crate) use bail;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chain_names_the_step_then_the_cause() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let err = Err::<(), _>(io)
            .context("opening x.parquet")
            .context("gathering")
            .unwrap_err();
        assert_eq!(err.to_string(), "gathering");
        assert_eq!(err.chain(), "gathering: opening x.parquet: no such file");
        let none: Option<u8> = None;
        assert_eq!(
            none.context("no column pep").unwrap_err().chain(),
            "no column pep"
        );
    }
}
