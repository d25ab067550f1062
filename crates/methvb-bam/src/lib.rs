//! Per-CpG methylation counts from BAM/SAM alignments: `MM`/`ML` base-modification tags
//! (nanopore, PacBio; legacy `Mm`/`Ml` too), counted like `modkit pileup`, and Bismark `XM`
//! bisulfite calls, counted like `bismark_methylation_extractor`.
//!
//! - [`mm`]: the `MM`/`ML` byte parser (groups, codes, modes, deltas, `ML` pairing).
//! - [`record`]: BAM/SAM records into one reusable [`record::ReadBuf`].
//! - [`pileup`]: the streaming pileup producing modkit's 18-column counts per position.
//! - [`bedmethyl`]: the bedMethyl writer.
//! - [`parallel`]: indexed BAMs cut into regions piled up in parallel (rayon), merged in order.
//! - [`BamSampleReader`]: a [`methvb_io::SiteSource`] over a BAM, so a sample sheet can list BAMs.
//!
//! Checked against the peers' own expected outputs (tests/): modkit pileup (no filtering, CpG
//! motif, strand-combined, duplex, legacy PacBio tags, estimated 25th-percentile filter), htslib
//! `test_mod`/`pileup_mod` and samtools `mpileup --output-mods`, Bismark's extractor `.cov`
//! (paired `--no_overlap`/`--include_overlap`, single-end CTOT/CTOB) and methylKit.
//!
//! Deliberate differences from modkit: supplementary records are skipped by default (modkit's
//! htslib pileup keeps them; duplicates, secondary, QC-fail and unmapped records are skipped by
//! both; see [`PileupOptions`]); a hard-clipped record without `MN` is not
//! used for calls (its `MM` may describe the unclipped read); legacy tags without a mode are
//! implicit per the SAM specification unless [`PileupOptions::legacy_as_explicit`] is set (modkit
//! needs `update-tags` first); the estimated threshold is described at [`FilterChoice::Estimate`].

pub mod bedmethyl;
pub mod mm;
pub mod parallel;
pub mod pileup;
pub mod record;
pub mod reference;

mod reader;

pub use mm::ModCode;
pub use parallel::{has_index, index_candidates, pileup_file_indexed, pileup_region};
pub use pileup::{
    BadModTags, CallSource, CpgFilter, Filter, Pileup, PileupError, PileupOptions, PileupRow,
    PileupStats, RowStrand, SkipCounts, SkipReason, require_calls,
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
    /// modkit's default filter, estimated from the data. Exactly: read records from the start of
    /// the file until `reads` records with usable `MM`/`ML` have been seen (same flag and MAPQ
    /// filters as the pileup); for every listed position of those records (codes of the same
    /// base and strand combined, probabilities `(ML + 0.5) / 256`), take the probability of the
    /// called state, `max(1 - sum p_mod, max p_mod)`; sort these values and take the one at index
    /// `floor(n * percentile)`. In the pileup a call whose called-state probability is below
    /// it is counted in `N_fail`; implicit canonical calls (probability 1) always pass.
    /// Differences from modkit: modkit samples about 10,042 reads spread over the genome (or a
    /// fraction with `-f`) and keeps one threshold per canonical base; here the first records are
    /// used (deterministic, but not spread out) and one threshold serves all bases. With all reads
    /// of `bc_anchored_10_reads` and percentile 0.25 the result equals modkit's
    /// `modbam.modpileup_filt025.methyl.bed` exactly (tested).
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
    /// Modification code whose counts become `methylated` (default `m`; Bismark calls are `m`;
    /// ignored with [`PileupOptions::combine_mods`], whose rows have code `C`).
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
    let popts_check = popts.clone();
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
    pileup::require_calls(&popts_check, p.stats()).map_err(|e| pileup_err(path, e))?;
    Ok(p.stats().clone())
}
