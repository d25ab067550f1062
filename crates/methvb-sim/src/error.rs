//! Error type of the simulator.

use std::path::PathBuf;

/// Everything that can go wrong while simulating or writing a dataset.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// A [`crate::SimConfig`] field is out of range or inconsistent (the message names it).
    #[error("invalid simulation config: {0}")]
    InvalidConfig(String),
    /// A batch or paired design was asked for outside realistic mode.
    #[error(
        "batch effects and paired donors are simulated in realistic mode only; \
         set mode to realistic (--mode realistic) or leave out the design"
    )]
    DesignNeedsRealisticMode,
    /// The batch labels are not one per sample.
    #[error(
        "{labels} batch labels for {samples} samples; give one label per sample in sample \
         order (each group's samples in turn, reference group first), e.g. --batch A,A,B,B,A,A,B,B \
         for 4 vs 4"
    )]
    BatchLabelCount {
        /// Number of labels given.
        labels: usize,
        /// Number of samples simulated.
        samples: usize,
    },
    /// Every sample has the same batch label, so there is no batch to differ.
    #[error(
        "every batch label is {label:?}: a batch effect needs at least two batches; give the \
         samples of the other batch a second label"
    )]
    SingleBatch {
        /// The one label.
        label: String,
    },
    /// Paired donors asked for with groups of different sizes.
    #[error(
        "paired donors need the same number of samples in every group (sample k of each group \
         is donor_k), got samples per group {sizes:?}; make the group sizes equal or leave out \
         --paired"
    )]
    UnequalGroupsForPairing {
        /// The configured `samples_per_group`.
        sizes: Vec<usize>,
    },
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
