//! Per-CpG methylation counts from BAM/SAM alignments: `MM`/`ML` base-modification tags
//! (nanopore, PacBio; legacy `Mm`/`Ml` too), counted like `modkit pileup`, and Bismark `XM`
//! bisulfite calls, counted like `bismark_methylation_extractor`.
//!
//! - [`mm`]: the `MM`/`ML` byte parser (groups, codes, modes, deltas, `ML` pairing).
//! - [`record`]: BAM/SAM records into one reusable [`record::ReadBuf`].
//! - [`pileup`]: the streaming pileup producing modkit's 18-column counts per position.
//! - [`bedmethyl`]: the bedMethyl writer.
//! - [`BamSampleReader`]: a [`methvb_io::SiteSource`] over a BAM, so a sample sheet can list BAMs.

pub mod bedmethyl;
pub mod mm;
pub mod pileup;
pub mod record;
pub mod reference;

mod reader;

pub use mm::ModCode;
pub use pileup::{
    CallSource, CpgFilter, Filter, Pileup, PileupError, PileupOptions, PileupRow, PileupStats,
    RowStrand, SkipCounts, SkipReason,
};
pub use reader::BamSampleReader;

use std::path::Path;

use methvb_io::{ErrorKind, ReadError};
use record::{ReadBuf, RecordSource};

/// How calls are filtered.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FilterChoice {
    /// Count every call (modkit `--no-filtering`).
    NoFiltering,
    /// Fixed pass threshold on the probability of the called state (modkit
    /// `--filter-threshold`).
    Threshold(f32),
    /// modkit's default: the threshold is the `percentile` quantile of the called-state
    /// probabilities of the listed calls in the first `reads` records with usable `MM`/`ML`
    /// (modkit samples ~10,042 reads across the file and uses the 10th percentile; here the first
    /// records are used, which is deterministic but not a spread-out sample).
    Estimate {
        /// Records to sample.
        reads: usize,
        /// Quantile in `[0, 1)`.
        percentile: f64,
    },
}

impl Default for FilterChoice {
    fn default() -> Self {
        FilterChoice::Estimate {
            reads: 10_042,
            percentile: 0.1,
        }
    }
}

/// Options for reading a BAM as a sample.
#[derive(Debug, Clone, PartialEq)]
pub struct BamOptions {
    /// Pileup options (its `filter` is replaced by the one resolved from [`BamOptions::filter`]).
    pub pileup: PileupOptions,
    /// Call filtering.
    pub filter: FilterChoice,
    /// Modification code whose counts become `methylated` (default `m`; Bismark calls are `m`).
    pub mod_code: ModCode,
    /// Count every modification as methylated (`N_mod + N_other_mod`), what bisulfite measures.
    pub any_mod: bool,
}

impl Default for BamOptions {
    /// CpG sites from the read sequence, strands combined, threshold estimated like modkit.
    fn default() -> Self {
        BamOptions {
            pileup: PileupOptions {
                cpg: CpgFilter::Read,
                combine_strands: true,
                ..PileupOptions::default()
            },
            filter: FilterChoice::default(),
            mod_code: ModCode::Code(b'm'),
            any_mod: false,
        }
    }
}

pub(crate) fn bam_err(path: &Path, e: impl std::fmt::Display) -> ReadError {
    ReadError::new(path, 0, ErrorKind::Bam(e.to_string()))
}

pub(crate) fn pileup_err(path: &Path, e: PileupError) -> ReadError {
    match e {
        PileupError::Io(io) => ReadError::new(path, 0, ErrorKind::Io(io)),
        other => bam_err(path, other),
    }
}

/// Resolves [`FilterChoice`] into the pileup's [`Filter`] (reading the start of `path` to
/// estimate the threshold when asked).
pub fn resolve_filter(path: &Path, opts: &BamOptions) -> Result<Filter, ReadError> {
    match opts.filter {
        FilterChoice::NoFiltering => Ok(Filter::None),
        FilterChoice::Threshold(t) => Ok(Filter::Threshold(t)),
        FilterChoice::Estimate { reads, percentile } => {
            let (mut src, header) =
                RecordSource::open(path).map_err(|e| ReadError::new(path, 0, ErrorKind::Io(e)))?;
            let mut next = |buf: &mut ReadBuf| src.next_into(&header, buf);
            let t = pileup::estimate_threshold(&mut next, &opts.pileup, reads, percentile)
                .map_err(|e| pileup_err(path, e))?;
            Ok(t.map_or(Filter::None, Filter::Threshold))
        }
    }
}

/// Runs the pileup over a whole BAM/SAM file, calling `on_row(row, contig_name)` for each row in
/// order. Returns the counters.
pub fn pileup_file(
    path: &Path,
    opts: &BamOptions,
    mut on_row: impl FnMut(&PileupRow, &str) -> std::io::Result<()>,
) -> Result<PileupStats, ReadError> {
    let filter = resolve_filter(path, opts)?;
    let (mut src, header) =
        RecordSource::open(path).map_err(|e| ReadError::new(path, 0, ErrorKind::Io(e)))?;
    let sorted = record::is_coordinate_sorted(&header);
    let popts = PileupOptions {
        filter,
        ..opts.pileup.clone()
    };
    let mut p = Pileup::new(popts, record::contig_names(&header), sorted)
        .map_err(|e| pileup_err(path, e))?;
    let mut buf = ReadBuf::default();
    let mut rows = Vec::new();
    let io_err = |e| ReadError::new(path, 0, ErrorKind::Io(e));
    loop {
        let more = src
            .next_into(&header, &mut buf)
            .map_err(|e| ReadError::new(path, p.stats().records + 1, ErrorKind::Io(e)))?;
        if more {
            p.push(&buf, &mut rows).map_err(|e| pileup_err(path, e))?;
        } else {
            p.finish(&mut rows).map_err(|e| pileup_err(path, e))?;
        }
        for r in &rows {
            on_row(r, &p.contigs()[r.tid]).map_err(io_err)?;
        }
        rows.clear();
        if !more {
            break;
        }
    }
    Ok(p.stats().clone())
}
