//! Error type of the simulator.

use std::path::PathBuf;

/// Everything that can go wrong while simulating or writing a dataset.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// A [`crate::SimConfig`] field is out of range or inconsistent (the message names it).
    #[error("invalid simulation config: {0}")]
    InvalidConfig(String),
    /// The regions do not fit on the configured contigs.
    #[error(
        "contig {contig} (length {length}) is too short for its {n_regions} regions; \
         use longer contigs, more contigs or smaller region gaps"
    )]
    ContigTooShort {
        /// Contig name.
        contig: String,
        /// Configured contig length.
        length: u64,
        /// Number of regions assigned to it.
        n_regions: usize,
    },
    /// A distribution could not be built from the given parameters.
    #[error("cannot build {distribution} distribution: {message}")]
    Distribution {
        /// Which distribution (e.g. `Gamma`).
        distribution: &'static str,
        /// The underlying error message.
        message: String,
    },
    /// A sample name cannot be used as a file name.
    #[error("sample name {0:?} cannot be used as a file name")]
    BadSampleName(String),
    /// Writing an output file failed.
    #[error("cannot write {path}")]
    Io {
        /// The file (or directory) being written.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Serialising the configuration to JSON failed.
    #[error("cannot serialise the simulation config: {0}")]
    Json(#[from] serde_json::Error),
}
