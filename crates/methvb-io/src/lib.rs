//! Streaming readers for methylation count tables, the k-way multi-sample merge, Arrow site
//! batches and regions.
//!
//! Data flow: each sample file is opened by [`input`] (plain, gzip or BGZF, detected from the
//! bytes), parsed line by line by a [`sample::SampleReader`] into [`SampleSite`]s (0-based, strands
//! optionally merged), merged across samples by position in [`merge`], emitted as Arrow
//! `RecordBatch`es ([`batch`]) and grouped into regions ([`regions`]). Nothing here knows about
//! the statistical model.

pub mod atomic;
pub mod batch;
mod bed;
pub mod browser;
pub mod contigs;
pub mod error;
pub mod format;
pub mod input;
pub mod merge;
pub mod parquet_out;
pub mod regions;
pub mod sample;
pub mod sheet;

pub use error::{ErrorKind, ReadError};

use std::path::Path;

/// Strand of a cytosine call, as the input file states it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Strand {
    /// The C is on the forward (+) strand.
    Forward,
    /// The C is on the reverse (−) strand: in CpG context it sits one base after the + strand C.
    Reverse,
    /// The input does not say (DSS tables, Bismark `.cov`, or strands already merged).
    Unknown,
}

/// One site of one sample as a [`sample::SampleReader`] yields it.
///
/// `contig` indexes the reader's own contig list (in order of first appearance, see
/// [`sample::SampleReader::contig_name`]); `pos` is 0-based. After strand merging, a reverse-strand
/// CpG call at `p + 1` is reported at `p` with [`Strand::Unknown`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SampleSite {
    /// Index into the reader's contig list.
    pub contig: usize,
    /// 0-based position of the cytosine (of the + strand C after strand merging).
    pub pos: u64,
    /// Strand of the call; [`Strand::Unknown`] once merged.
    pub strand: Strand,
    /// Reads showing methylation (`m`).
    pub methylated: u32,
    /// Reads covering the site (`n`), always `>= methylated`.
    pub coverage: u32,
    /// 1-based line of the input this site came from (the first line, for a merged pair).
    pub line: u64,
}

/// A per-sample stream of sites in file order: what the merge consumes.
///
/// [`sample::SampleReader`] implements it for files; tests implement it over vectors.
pub trait SiteSource {
    /// The next site, `None` at the end of the input.
    fn next_site(&mut self) -> Result<Option<SampleSite>, ReadError>;
    /// Name of the contig with the given index (indices are handed out in order of first
    /// appearance, starting at 0).
    fn contig_name(&self, id: usize) -> &str;
    /// The file this source reads, for error messages.
    fn path(&self) -> &Path;
    /// 0-based position `pos` as the file writes it (1-based formats add 1), for error
    /// messages that quote positions next to a line of the file.
    fn position_as_written(&self, pos: u64) -> u64 {
        pos
    }
}

/// A boxed source is a source, so wrappers such as [`sample::ContigFilter`] take any reader.
impl<S: SiteSource + ?Sized> SiteSource for Box<S> {
    fn next_site(&mut self) -> Result<Option<SampleSite>, ReadError> {
        (**self).next_site()
    }
    fn contig_name(&self, id: usize) -> &str {
        (**self).contig_name(id)
    }
    fn path(&self) -> &Path {
        (**self).path()
    }
    fn position_as_written(&self, pos: u64) -> u64 {
        (**self).position_as_written(pos)
    }
}
