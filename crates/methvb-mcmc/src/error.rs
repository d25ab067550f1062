//! Typed errors of the MCMC cross-check.

use thiserror::Error;

/// Errors of [`crate::audit_region`].
#[derive(Debug, Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum McmcError {
    /// The region data or Theta is invalid.
    #[error(transparent)]
    Model(#[from] methvb_model::ModelError),
    /// The audit options are not usable.
    #[error("invalid MCMC audit options: {0}")]
    Options(String),
    /// The VB fit does not belong to a region of this shape.
    #[error("VB fit does not match the region: {0}")]
    Mismatch(String),
    /// nuts-rs failed (invalid settings or an unrecoverable log-density error).
    #[error("NUTS chain {chain} failed: {message}")]
    Sampler {
        /// Chain index.
        chain: u32,
        /// nuts-rs error message with its cause chain.
        message: String,
    },
}
