//! Typed errors of the model crate.

use thiserror::Error;

/// Errors raised on invalid region data or options.
#[derive(Debug, Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum ModelError {
    /// Array lengths or dimensions are inconsistent.
    #[error("invalid region shape: {what}")]
    Shape {
        /// What is wrong.
        what: &'static str,
    },
    /// A sample's group index is not below `n_groups`.
    #[error("sample {sample} has a group index >= n_groups ({n_groups})")]
    GroupOutOfRange {
        /// Sample index.
        sample: usize,
        /// Number of groups.
        n_groups: usize,
    },
    /// A methylated count exceeds the coverage.
    #[error("methylated count exceeds coverage at site {site}, sample {sample}")]
    CountExceedsCoverage {
        /// Site index.
        site: usize,
        /// Sample index.
        sample: usize,
    },
    /// Hyperparameters are not usable (non-finite, non-positive sd, pi0 outside (0, 1)).
    #[error("invalid hyperparameters: {0}")]
    Theta(String),
    /// Options are not usable.
    #[error("invalid options: {0}")]
    Options(String),
}
