//! The streaming pileup: records in, modkit-style per-position rows out.
//!
//! # Counting rules (modkit `pileup` semantics, checked against modkit's own expected outputs)
//! For each record that passes the flag and MAPQ filters, every reference position covered by an
//! `M`/`=`/`X` operation gets one *feature* per strand the read can report on, and every position
//! under a `D` gets a deletion (`N` skips nothing; insertions and soft clips carry no position):
//! - the read base (read orientation) is looked up in the read's modification calls, on the read's
//!   own strand (`C+m`: canonical base = read base) and on the opposite strand (`G-m`: canonical
//!   base = read base, reported for its complement). A listed position gives a call; an unlisted
//!   base of a group's kind is canonical with probability 1 in implicit mode (`.`, and legacy tags
//!   without a mode unless [`PileupOptions::legacy_as_explicit`]) and no call in explicit mode
//!   (`?`). Without any call the feature is a *no-call* of the read base.
//! - A call's probabilities are `(ML + 0.5) / 256` per code; codes of several groups of the same
//!   base and strand are combined per position; canonical = `1 - sum`. The call is the largest
//!   modification probability if it is strictly above the canonical probability, else canonical
//!   (on ties between codes the later one in `MM` wins, as in modkit). With a threshold, a call
//!   whose probability is below it is *filtered* (`N_fail`).
//! - Features are tallied per reference strand: a read-strand feature of a forward read goes to
//!   `+`, of a reverse read to `-`, and the opposite-strand feature the other way.
//! - Rows: for each strand and each canonical base with at least one (canonical or modified) call,
//!   one row per modification code observed in the reads covering the position: `N_mod` (calls of
//!   this code), `N_other_mod` (other codes), `N_canonical`, `N_valid = N_mod + N_canonical +
//!   N_other_mod`, `N_delete` (deletions on that strand's reads), `N_fail` (filtered calls),
//!   `N_diff` (no-calls and calls of another base), `N_nocall` (no-calls of this base).
//!   Rows are sorted by strand (`+` then `-`) and code.
//!
//! Records without usable tags (none, malformed, `ML` length mismatch, `MN` disagreeing with
//! `SEQ`) give no calls but, as in modkit, still count in `N_delete` / `N_diff` / `N_nocall`; they
//! are counted in [`SkipCounts`] by reason.
//! With [`PileupOptions::bad_mod_tags`] set to [`BadModTags::Error`], malformed tags
//! ([`SkipReason::is_malformed_tags`]) stop the pileup with an error naming the record instead;
//! with [`PileupOptions::require_calls`], a file in which no record has usable tags is an error
//! rather than an empty result (the `methvb` command line sets both unless told otherwise).
//!
//! Bismark records (`XM`, no `MM`) give one call per `z`/`Z` at the aligned position, code `m`,
//! on the strand given by `XG` (`CT`: `+`, `GA`: `-`), with Bismark's paired-end `--no_overlap`
//! rule and an optional base-quality filter; only `N_mod`, `N_canonical` and `N_valid` are filled.
//!
//! # Streaming
//! With a coordinate-sorted input (`@HD SO:coordinate`) positions before the start of the current
//! record (minus one, for strand combining) are complete and flushed: memory is bounded by the
//! span of the reads overlapping the current position. Other inputs are held until the end (all
//! positions in memory; fine for small unsorted Bismark outputs, not for whole genomes).

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;

use noodles::sam::alignment::record::cigar::op::Kind;

use crate::mm::{MmError, ModCode, ParsedMods, SkipMode, ml_to_prob};
use crate::record::{CigarOp, MnTag, ReadBuf, flags};
use crate::reference::Reference;

/// Where the calls come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CallSource {
    /// Per record: `MM`/`ML` if present, else Bismark `XM` if present.
    #[default]
    Auto,
    /// Only `MM`/`ML` (and legacy `Mm`/`Ml`).
    ModTags,
    /// Only Bismark `XM`.
    Bismark,
}

/// Which positions count as CpG.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum CpgFilter {
    /// Every position with calls (modkit without `--cpg`).
    #[default]
    Any,
    /// CpGs of this indexed reference FASTA (modkit `--cpg --ref`): `+` rows at the C of each
    /// `CG`, `-` rows at its G.
    Reference(PathBuf),
    /// CpGs of the read itself: a call on the `+` strand needs `CG` at `SEQ[q..q+2]`, a call on
    /// the `-` strand `CG` at `SEQ[q-1..q+1]` (SEQ as stored). Deletions are not counted.
    Read,
}

/// What the pileup does with a record whose modification tags are malformed (see
/// [`SkipReason::is_malformed_tags`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BadModTags {
    /// Skip the record's calls and count it by reason, as modkit does (the record still counts
    /// as no-calls).
    #[default]
    Skip,
    /// Stop with [`PileupError::BadModTags`], naming the record.
    Error,
}

/// Call filtering.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Filter {
    /// Every call counts (modkit `--no-filtering`).
    #[default]
    None,
    /// Calls whose probability is below this value are counted in `N_fail`.
    Threshold(f32),
}

/// Options of the pileup.
#[derive(Debug, Clone, PartialEq)]
pub struct PileupOptions {
    /// Where calls come from.
    pub source: CallSource,
    /// Call filtering.
    pub filter: Filter,
    /// CpG selection.
    pub cpg: CpgFilter,
    /// Sum the `+` row at `p` and the `-` row at `p + 1` into one row at `p` (strand `.`).
    pub combine_strands: bool,
    /// One row per canonical base with all modifications counted together (modkit
    /// `--combine-mods`): code `C` (or `A`, ...), `N_mod` = every modified call,
    /// `N_other_mod` = 0.
    pub combine_mods: bool,
    /// Read legacy `MM` groups without a mode character as explicit (`?`) instead of implicit;
    /// this is what `modkit update-tags --mode ambiguous` does to PacBio files.
    pub legacy_as_explicit: bool,
    /// Minimum mapping quality (records below are skipped).
    pub min_mapq: u8,
    /// Keep supplementary alignments (skipped by default).
    pub include_supplementary: bool,
    /// Keep duplicate-flagged records (skipped by default).
    pub include_duplicates: bool,
    /// Bismark paired-end rule: drop read 2's calls where it overlaps read 1 (default, like
    /// `bismark_methylation_extractor --no_overlap`).
    pub no_overlap: bool,
    /// Bismark: minimum base quality (Phred) of a call; 0 keeps all.
    pub min_base_qual: u8,
    /// Records with malformed `MM`/`ML` (or `XM`/`XG`) tags: skipped and counted (default, like
    /// modkit) or an error.
    pub bad_mod_tags: BadModTags,
    /// A file in which no record that passes the filters has usable calls is an error
    /// ([`PileupError::NoModTags`], raised by the file-level functions through
    /// [`require_calls`]) rather than an empty result.
    pub require_calls: bool,
}

impl Default for PileupOptions {
    fn default() -> Self {
        Self {
            source: CallSource::Auto,
            filter: Filter::None,
            cpg: CpgFilter::Any,
            combine_strands: false,
            combine_mods: false,
            legacy_as_explicit: false,
            min_mapq: 0,
            include_supplementary: false,
            include_duplicates: false,
            no_overlap: true,
            min_base_qual: 0,
            bad_mod_tags: BadModTags::Skip,
            require_calls: false,
        }
    }
}

/// Why a record was skipped (entirely, or for its calls).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SkipReason {
    /// Unmapped.
    Unmapped,
    /// Secondary alignment.
    Secondary,
    /// Supplementary alignment.
    Supplementary,
    /// Duplicate flag.
    Duplicate,
    /// QC-fail flag.
    QcFail,
    /// MAPQ below the minimum.
    LowMapq,
    /// No SEQ.
    NoSequence,
    /// No `MM`/`ML` (nor `XM` in auto mode), or an empty `MM`.
    NoModTags,
    /// `MM` present, `ML` absent.
    MissingMl,
    /// `ML` not a `B:C` array.
    MlBadType,
    /// `MM` syntax error.
    MalformedMm,
    /// `MM` delta list past the end of SEQ.
    MmOutOfBounds,
    /// `ML` length differs from what `MM` needs.
    MlLengthMismatch,
    /// `MN` differs from the SEQ length, or is not an integer.
    MnMismatch,
    /// Hard-clipped record without `MN` (its `MM` may describe the unclipped read).
    HardClippedWithoutMn,
    /// Groups of the same base and strand with different modes (`.` and `?`).
    MixedModes,
    /// `XM` length differs from SEQ.
    XmLength,
    /// `XM` without a usable `XG`.
    MissingXg,
    /// More than 4 modification codes at one read position (or in one `MM` group).
    TooManyCodes,
}

impl SkipReason {
    /// All reasons, in report order.
    pub const ALL: [SkipReason; 19] = [
        SkipReason::Unmapped,
        SkipReason::Secondary,
        SkipReason::Supplementary,
        SkipReason::Duplicate,
        SkipReason::QcFail,
        SkipReason::LowMapq,
        SkipReason::NoSequence,
        SkipReason::NoModTags,
        SkipReason::MissingMl,
        SkipReason::MlBadType,
        SkipReason::MalformedMm,
        SkipReason::MmOutOfBounds,
        SkipReason::MlLengthMismatch,
        SkipReason::MnMismatch,
        SkipReason::HardClippedWithoutMn,
        SkipReason::MixedModes,
        SkipReason::XmLength,
        SkipReason::MissingXg,
        SkipReason::TooManyCodes,
    ];

    /// A short name for reports.
    pub fn name(self) -> &'static str {
        match self {
            SkipReason::Unmapped => "unmapped",
            SkipReason::Secondary => "secondary",
            SkipReason::Supplementary => "supplementary",
            SkipReason::Duplicate => "duplicate",
            SkipReason::QcFail => "qc_fail",
            SkipReason::LowMapq => "low_mapq",
            SkipReason::NoSequence => "no_sequence",
            SkipReason::NoModTags => "no_mod_tags",
            SkipReason::MissingMl => "mm_without_ml",
            SkipReason::MlBadType => "ml_not_uint8_array",
            SkipReason::MalformedMm => "malformed_mm",
            SkipReason::MmOutOfBounds => "mm_out_of_bounds",
            SkipReason::MlLengthMismatch => "ml_length_mismatch",
            SkipReason::MnMismatch => "mn_mismatch",
            SkipReason::HardClippedWithoutMn => "hard_clipped_without_mn",
            SkipReason::MixedModes => "mixed_skip_modes",
            SkipReason::XmLength => "xm_length_mismatch",
            SkipReason::MissingXg => "xm_without_xg",
            SkipReason::TooManyCodes => "too_many_mod_codes",
        }
    }

    fn index(self) -> usize {
        Self::ALL.iter().position(|&r| r == self).unwrap_or(0)
    }

    /// Whether the reason is a malformed tag (an error with [`BadModTags::Error`]): `MM`
    /// syntax, an `MM` delta list past the end of SEQ, `ML` missing, of the wrong type or of the
    /// wrong length, or a Bismark `XM` of the wrong length or without `XG`. Records that the SAM
    /// specification says to ignore (`MN` mismatch, hard clips without `MN`) and ambiguous tags
    /// (mixed modes, too many codes) are always skipped.
    pub fn is_malformed_tags(self) -> bool {
        matches!(
            self,
            SkipReason::MissingMl
                | SkipReason::MlBadType
                | SkipReason::MalformedMm
                | SkipReason::MmOutOfBounds
                | SkipReason::MlLengthMismatch
                | SkipReason::XmLength
                | SkipReason::MissingXg
        )
    }
}

/// Records skipped, by reason.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SkipCounts {
    counts: [u64; 19],
}

impl SkipCounts {
    /// Records skipped for `reason`.
    pub fn get(&self, reason: SkipReason) -> u64 {
        self.counts[reason.index()]
    }

    /// Adds one.
    fn add(&mut self, reason: SkipReason) {
        self.counts[reason.index()] += 1;
    }

    /// Adds another set of counts.
    pub fn add_all(&mut self, other: &SkipCounts) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a += b;
        }
    }

    /// Total over all reasons.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Non-zero counts as `name=count`, comma-separated.
    pub fn summary(&self) -> String {
        SkipReason::ALL
            .iter()
            .filter(|r| self.get(**r) > 0)
            .map(|r| format!("{}={}", r.name(), self.get(*r)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Counters of a pileup run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PileupStats {
    /// Records read.
    pub records: u64,
    /// Records that contributed calls.
    pub records_with_calls: u64,
    /// Calls added (mod or canonical or filtered).
    pub calls: u64,
    /// Rows emitted.
    pub rows: u64,
    /// Skips by reason.
    pub skipped: SkipCounts,
}

/// Reference strand of a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RowStrand {
    /// `+`.
    Plus,
    /// `-`.
    Minus,
    /// `.` (strands combined).
    Both,
}

impl RowStrand {
    /// `+`, `-` or `.`.
    pub fn as_char(self) -> char {
        match self {
            RowStrand::Plus => '+',
            RowStrand::Minus => '-',
            RowStrand::Both => '.',
        }
    }
}

/// One bedMethyl row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PileupRow {
    /// Reference sequence index (header order).
    pub tid: usize,
    /// 0-based position.
    pub pos: u64,
    /// Strand.
    pub strand: RowStrand,
    /// Modification code.
    pub code: ModCode,
    /// `N_valid_cov`.
    pub n_valid: u32,
    /// `N_mod`.
    pub n_mod: u32,
    /// `N_canonical`.
    pub n_canonical: u32,
    /// `N_other_mod`.
    pub n_other_mod: u32,
    /// `N_delete`.
    pub n_delete: u32,
    /// `N_fail`.
    pub n_fail: u32,
    /// `N_diff`.
    pub n_diff: u32,
    /// `N_nocall`.
    pub n_nocall: u32,
}

/// An error of the pileup (the caller adds the file name).
#[derive(Debug, thiserror::Error)]
pub enum PileupError {
    /// Input error.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The input claims coordinate order but is not in it.
    #[error(
        "record {name} at {contig}:{pos} comes after position {previous}: the BAM is not coordinate-sorted"
    )]
    Unsorted {
        /// Read name.
        name: String,
        /// Contig.
        contig: String,
        /// 0-based start.
        pos: u64,
        /// Previous start.
        previous: u64,
    },
    /// A contig is missing from the reference, or the reference failed.
    #[error("reference: {0}")]
    Reference(String),
    /// More distinct modification codes than the pileup supports.
    #[error(
        "too many modification codes at one position (at most {MAX_MODS} base/code pairs per strand); codes seen: {0}"
    )]
    TooManyCodes(String),
    /// A record's modification tags are malformed ([`BadModTags::Error`]).
    #[error("{location}: {detail} (to skip and count such records instead: --skip-bad-mod-tags)")]
    BadModTags {
        /// `record N (read NAME at CONTIG:POS)`, N the 1-based record number in the file (only
        /// `read NAME at CONTIG:POS` in the indexed region mode, where N is not known).
        location: String,
        /// What is wrong.
        detail: String,
    },
    /// No record that passes the filters has usable calls ([`PileupOptions::require_calls`]).
    #[error(
        "no base-modification calls: none of the {records} records read carries usable MM/ML tags (nanopore, PacBio) or Bismark XM tags{skipped}; was the BAM made without modified-base calling?"
    )]
    NoModTags {
        /// Records read.
        records: u64,
        /// `; skipped: reason=count, ...` (empty without skips).
        skipped: String,
    },
}

/// With [`PileupOptions::require_calls`], the error for a whole file (or region) whose
/// `stats` show records but no record with usable calls.
pub fn require_calls(opts: &PileupOptions, stats: &PileupStats) -> Result<(), PileupError> {
    if !opts.require_calls || stats.records == 0 || stats.records_with_calls > 0 {
        return Ok(());
    }
    let tagless = stats.skipped.get(SkipReason::NoModTags)
        + SkipReason::ALL
            .iter()
            .filter(|r| r.is_malformed_tags())
            .map(|r| stats.skipped.get(*r))
            .sum::<u64>();
    if tagless == 0 {
        // Every record was dropped by the flag or MAPQ filters: not a tag problem.
        return Ok(());
    }
    let summary = stats.skipped.summary();
    Err(PileupError::NoModTags {
        records: stats.records,
        skipped: if summary.is_empty() {
            String::new()
        } else {
            format!("; skipped: {summary}")
        },
    })
}

const MAX_MODS: usize = 6;
const NO_SLOT: u32 = u32::MAX;

#[inline]
fn base_index(b: u8) -> Option<usize> {
    match b {
        b'A' => Some(0),
        b'C' => Some(1),
        b'G' => Some(2),
        b'T' => Some(3),
        _ => None,
    }
}

#[inline]
fn comp_index(i: usize) -> usize {
    3 - i
}

#[derive(Debug, Clone, Copy, Default)]
struct ModCount {
    base: u8,
    code: u8,
    count: u32,
}

#[derive(Debug, Clone, Copy, Default)]
struct StrandTally {
    n_delete: u32,
    n_filtered: u32,
    basecalls: [u32; 4],
    canonical: [u32; 4],
    has_modcall: u8,
    n_mods: u8,
    mods: [ModCount; MAX_MODS],
    /// Observed codes per primary base (bit = interned code index).
    observed: [u32; 4],
}

#[derive(Debug, Clone, Copy, Default)]
struct PosTally {
    s: [StrandTally; 2],
}

#[derive(Debug, Clone, Copy)]
enum Call {
    Canonical,
    Modified(u8),
    Filtered,
}

#[derive(Debug, Clone, Copy, Default)]
struct Combined {
    n: u8,
    codes: [u8; 4],
    probs: [f32; 4],
}

impl Combined {
    fn add(&mut self, code: u8, p: f32) -> bool {
        for k in 0..self.n as usize {
            if self.codes[k] == code {
                self.probs[k] += p;
                return true;
            }
        }
        if (self.n as usize) < 4 {
            self.codes[self.n as usize] = code;
            self.probs[self.n as usize] = p;
            self.n += 1;
            true
        } else {
            false
        }
    }

    /// modkit's argmax: the largest mod probability (last on ties) if strictly above canonical.
    fn call(&self, threshold: Option<f32>) -> Call {
        let probs = &self.probs[..self.n as usize];
        let canonical = 1f32 - probs.iter().sum::<f32>();
        let mut best: Option<(f32, u8)> = None;
        for (k, &p) in probs.iter().enumerate() {
            match best {
                Some((b, _)) if p < b => {}
                _ => best = Some((p, self.codes[k])),
            }
        }
        let (p, call) = match best {
            Some((p, code)) if p > canonical => (p, Call::Modified(code)),
            _ => (canonical, Call::Canonical),
        };
        match threshold {
            Some(t) if p < t => Call::Filtered,
            _ => call,
        }
    }

    /// Probability of the called state (for threshold estimation).
    fn confidence(&self) -> f32 {
        let probs = &self.probs[..self.n as usize];
        let canonical = 1f32 - probs.iter().sum::<f32>();
        probs.iter().copied().fold(canonical, f32::max)
    }
}

/// Position tallies of one contig: a dense deque for sorted input (flushed from the front), a
/// sparse map for unsorted input (positions anywhere on the contig).
#[derive(Debug, Default)]
struct Window {
    base: u64,
    slots: VecDeque<PosTally>,
    sparse: std::collections::BTreeMap<u64, PosTally>,
    is_sparse: bool,
}

impl Window {
    fn new(is_sparse: bool) -> Self {
        Window {
            is_sparse,
            ..Window::default()
        }
    }

    fn get_mut(&mut self, pos: u64) -> &mut PosTally {
        if self.is_sparse {
            return self.sparse.entry(pos).or_default();
        }
        if self.slots.is_empty() {
            self.base = pos;
        }
        while pos < self.base {
            self.slots.push_front(PosTally::default());
            self.base -= 1;
        }
        let idx = (pos - self.base) as usize;
        while idx >= self.slots.len() {
            self.slots.push_back(PosTally::default());
        }
        &mut self.slots[idx]
    }

    fn is_empty(&self) -> bool {
        self.slots.is_empty() && self.sparse.is_empty()
    }

    /// Removes and returns the first position `< upto`.
    fn pop_before(&mut self, upto: u64) -> Option<(u64, PosTally)> {
        if self.is_sparse {
            let (&p, _) = self.sparse.first_key_value()?;
            if p >= upto {
                return None;
            }
            return self.sparse.pop_first();
        }
        if self.base >= upto {
            return None;
        }
        let t = self.slots.pop_front()?;
        let p = self.base;
        self.base += 1;
        if self.slots.is_empty() {
            self.base = 0;
        }
        Some((p, t))
    }
}

/// Per-read state of the MM path, reused between reads.
#[derive(Debug, Default)]
struct ReadState {
    parsed: ParsedMods,
    slots: [Vec<u32>; 2],
    combined: Vec<Combined>,
    mode: [[Option<bool>; 4]; 2],
    observed: [[u32; 4]; 2],
}

/// Strand rule of a position: may the `+` / `-` tallies receive features.
#[derive(Debug, Clone, Copy)]
struct Rule {
    plus: bool,
    minus: bool,
}

/// The streaming pileup engine; see the [module docs](self).
#[derive(Debug)]
pub struct Pileup {
    opts: PileupOptions,
    contigs: std::sync::Arc<Vec<String>>,
    reference: Option<Reference>,
    ref_seq: Vec<u8>,
    ref_tid: Option<usize>,
    /// Reference position of `ref_seq[0]`.
    ref_offset: u64,
    /// Region mode: only records starting at or after this position are counted in the stats.
    stats_from: u64,
    /// Region mode was set (record numbers are then not those of the file).
    region_mode: bool,
    sorted: bool,
    windows: Vec<Window>,
    current_tid: Option<usize>,
    last_start: u64,
    codes: Vec<ModCode>,
    st: ReadState,
    /// Read-1 spans by read-name hash, for Bismark's `--no_overlap` rule.
    mates: HashMap<u64, (u64, u64)>,
    held: Vec<PileupRow>,
    scratch: Vec<PileupRow>,
    stats: PileupStats,
}

impl Pileup {
    /// A pileup over contigs `contigs` (header order; a `Vec<String>` or a shared
    /// `Arc<Vec<String>>`); `sorted` enables flushing.
    pub fn new(
        opts: PileupOptions,
        contigs: impl Into<std::sync::Arc<Vec<String>>>,
        sorted: bool,
    ) -> Result<Pileup, PileupError> {
        let contigs = contigs.into();
        let reference = match &opts.cpg {
            CpgFilter::Reference(p) => {
                Some(Reference::open(p).map_err(|e| PileupError::Reference(e.to_string()))?)
            }
            _ => None,
        };
        Ok(Pileup {
            opts,
            windows: (0..contigs.len()).map(|_| Window::new(!sorted)).collect(),
            contigs,
            reference,
            ref_seq: Vec::new(),
            ref_tid: None,
            ref_offset: 0,
            stats_from: 0,
            region_mode: false,
            sorted,
            current_tid: None,
            last_start: 0,
            codes: Vec::new(),
            st: ReadState::default(),
            mates: HashMap::new(),
            held: Vec::new(),
            scratch: Vec::new(),
            stats: PileupStats::default(),
        })
    }

    /// Counters so far.
    pub fn stats(&self) -> &PileupStats {
        &self.stats
    }

    /// Contig names (header order).
    pub fn contigs(&self) -> &[String] {
        &self.contigs
    }

    fn intern(&mut self, code: ModCode) -> Result<u8, PileupError> {
        if let Some(i) = self.codes.iter().position(|&c| c == code) {
            return Ok(i as u8);
        }
        if self.codes.len() >= 32 {
            return Err(PileupError::TooManyCodes(
                self.codes
                    .iter()
                    .map(|c| c.to_string())
                    .collect::<Vec<_>>()
                    .join(","),
            ));
        }
        self.codes.push(code);
        Ok((self.codes.len() - 1) as u8)
    }

    fn skip(&mut self, reason: SkipReason) {
        self.stats.skipped.add(reason);
    }

    /// Skips `rec` for `reason`, or, for malformed tags with [`BadModTags::Error`], the error
    /// that names it.
    fn skip_or_fail(&mut self, rec: &ReadBuf, reason: SkipReason) -> Result<(), PileupError> {
        if self.opts.bad_mod_tags == BadModTags::Error && reason.is_malformed_tags() {
            return Err(self.bad_tags_error(rec, reason));
        }
        self.skip(reason);
        Ok(())
    }

    fn bad_tags_error(&self, rec: &ReadBuf, reason: SkipReason) -> PileupError {
        let detail = match reason {
            SkipReason::MissingMl => "MM tag without ML tag".to_string(),
            SkipReason::MlBadType => "ML tag is not a B:C (uint8) array".to_string(),
            SkipReason::XmLength => format!(
                "XM has {} characters but SEQ has {} bases",
                rec.xm.len(),
                rec.seq.len()
            ),
            SkipReason::MissingXg => "XM tag without an XG tag of CT or GA".to_string(),
            _ => {
                // Parse again for the parser's own words (only on this error path).
                let ml = rec.has_ml.then_some(rec.ml.as_slice());
                let mut parsed = ParsedMods::default();
                match parsed.parse(&rec.mm, ml, &rec.seq, rec.is_reverse()) {
                    Err(e) => e.to_string(),
                    Ok(()) => reason.name().to_string(),
                }
            }
        };
        let mm = String::from_utf8_lossy(&rec.mm);
        let detail = if matches!(
            reason,
            SkipReason::MalformedMm | SkipReason::MmOutOfBounds | SkipReason::MlLengthMismatch
        ) {
            let shown: String = mm.chars().take(60).collect();
            let more = if mm.chars().count() > 60 { "..." } else { "" };
            format!("{detail} (MM:Z:{shown}{more})")
        } else {
            detail
        };
        let read = format!(
            "read {} at {}:{}",
            String::from_utf8_lossy(&rec.name),
            rec.tid
                .and_then(|t| self.contigs.get(t))
                .map_or("*", |c| c.as_str()),
            rec.pos.map_or(0, |p| p + 1)
        );
        PileupError::BadModTags {
            location: if self.region_mode {
                read
            } else {
                format!("record {} ({read})", self.stats.records)
            },
            detail,
        }
    }

    /// Flag / MAPQ filter; `false` if the record is dropped entirely.
    fn passes_filters(&mut self, rec: &ReadBuf) -> bool {
        let reason = if rec.has_flag(flags::UNMAPPED) || rec.tid.is_none() || rec.pos.is_none() {
            Some(SkipReason::Unmapped)
        } else if rec.has_flag(flags::SECONDARY) {
            Some(SkipReason::Secondary)
        } else if rec.has_flag(flags::SUPPLEMENTARY) && !self.opts.include_supplementary {
            Some(SkipReason::Supplementary)
        } else if rec.has_flag(flags::QC_FAIL) {
            Some(SkipReason::QcFail)
        } else if rec.has_flag(flags::DUPLICATE) && !self.opts.include_duplicates {
            Some(SkipReason::Duplicate)
        } else if rec.mapq != 255 && rec.mapq < self.opts.min_mapq {
            Some(SkipReason::LowMapq)
        } else if rec.seq.is_empty() {
            Some(SkipReason::NoSequence)
        } else {
            None
        };
        match reason {
            Some(r) => {
                self.skip(r);
                false
            }
            None => true,
        }
    }

    fn load_reference(&mut self, tid: usize) -> Result<(), PileupError> {
        if self.ref_tid == Some(tid) {
            return Ok(());
        }
        if let Some(r) = self.reference.as_mut() {
            let name = &self.contigs[tid];
            r.load(name, &mut self.ref_seq)
                .map_err(|e| PileupError::Reference(format!("contig {name}: {e}")))?;
        }
        self.ref_offset = 0;
        self.ref_tid = Some(tid);
        Ok(())
    }

    /// Region mode (indexed, parallel processing): the caller feeds the records overlapping
    /// `[start, end]` of contig `tid` and keeps the rows with `start <= pos < end`. Only the
    /// reference around the region is loaded, and only records starting at or after `start` are
    /// counted in the stats (each record is counted by exactly one region).
    pub fn set_region(&mut self, tid: usize, start: u64, end: u64) -> Result<(), PileupError> {
        self.stats_from = start;
        self.region_mode = true;
        if let Some(r) = self.reference.as_mut() {
            let name = self.contigs.get(tid).cloned().unwrap_or_default();
            let from = start.saturating_sub(1);
            r.load_range(&name, from, end + 2, &mut self.ref_seq)
                .map_err(|e| PileupError::Reference(format!("contig {name}: {e}")))?;
            self.ref_offset = from;
            self.ref_tid = Some(tid);
        }
        Ok(())
    }

    #[inline]
    fn rule_at(&self, pos: u64) -> Rule {
        if self.reference.is_none() {
            return Rule {
                plus: true,
                minus: true,
            };
        }
        let Some(p) = pos.checked_sub(self.ref_offset) else {
            return Rule {
                plus: false,
                minus: false,
            };
        };
        let p = p as usize;
        let at = |i: usize| self.ref_seq.get(i).copied().unwrap_or(b'N');
        Rule {
            plus: at(p) == b'C' && at(p + 1) == b'G',
            minus: p > 0 && at(p) == b'G' && at(p - 1) == b'C',
        }
    }

    /// Adds one record; completed rows are appended to `out`.
    pub fn push(&mut self, rec: &ReadBuf, out: &mut Vec<PileupRow>) -> Result<(), PileupError> {
        if self.stats_from > 0 && rec.pos.is_some_and(|p| p < self.stats_from) {
            // Region mode: counted by the region the record starts in.
            let saved = self.stats.clone();
            let r = self.push_counted(rec, out);
            let rows = self.stats.rows;
            self.stats = saved;
            self.stats.rows = rows;
            return r;
        }
        self.push_counted(rec, out)
    }

    fn push_counted(&mut self, rec: &ReadBuf, out: &mut Vec<PileupRow>) -> Result<(), PileupError> {
        self.stats.records += 1;
        if !self.passes_filters(rec) {
            return Ok(());
        }
        // Invariant: passes_filters checked both are Some.
        let (Some(tid), Some(start)) = (rec.tid, rec.pos) else {
            return Ok(());
        };
        if tid >= self.windows.len() {
            let sparse = !self.sorted;
            self.windows.resize_with(tid + 1, || Window::new(sparse));
            let contigs = std::sync::Arc::make_mut(&mut self.contigs);
            while contigs.len() <= tid {
                contigs.push(format!("#{}", contigs.len()));
            }
        }
        if self.sorted {
            match self.current_tid {
                Some(t) if t == tid => {
                    if start < self.last_start {
                        return Err(PileupError::Unsorted {
                            name: String::from_utf8_lossy(&rec.name).into_owned(),
                            contig: self.contigs[tid].clone(),
                            pos: start,
                            previous: self.last_start,
                        });
                    }
                    self.flush_before(tid, start.saturating_sub(1), out)?;
                }
                Some(t) if t > tid => {
                    return Err(PileupError::Unsorted {
                        name: String::from_utf8_lossy(&rec.name).into_owned(),
                        contig: self.contigs[tid].clone(),
                        pos: start,
                        previous: self.last_start,
                    });
                }
                Some(t) => {
                    self.flush_before(t, u64::MAX, out)?;
                    self.emit_held(out);
                }
                None => {}
            }
            self.current_tid = Some(tid);
            self.last_start = start;
        }
        self.load_reference(tid)?;

        let use_mm = match self.opts.source {
            CallSource::Auto => rec.has_mm || !rec.has_xm,
            CallSource::ModTags => true,
            CallSource::Bismark => false,
        };
        if use_mm {
            self.push_mm(rec, tid, start)
        } else {
            self.push_xm(rec, tid, start)
        }
    }

    /// Validates and parses the MM/ML of `rec` into `self.st`.
    fn prepare_mm(&mut self, rec: &ReadBuf) -> Result<(), SkipReason> {
        parse_record_mods(rec, &mut self.st.parsed, true)
    }

    /// Builds the per-position combined probabilities of the parsed read.
    fn combine_read(&mut self, rec: &ReadBuf) -> Result<Result<(), SkipReason>, PileupError> {
        let n = rec.seq.len();
        for s in 0..2 {
            self.st.slots[s].clear();
            self.st.slots[s].resize(n, NO_SLOT);
        }
        self.st.combined.clear();
        self.st.mode = [[None; 4]; 2];
        self.st.observed = [[0; 4]; 2];
        let legacy_explicit = self.opts.legacy_as_explicit;
        let n_groups = self.st.parsed.groups().len();
        for gi in 0..n_groups {
            let g = self.st.parsed.groups()[gi];
            let Some(bi) = base_index(g.base) else {
                continue; // N groups are not piled up
            };
            let s = usize::from(g.minus);
            let implicit = match g.mode {
                SkipMode::Legacy => !legacy_explicit,
                m => m.is_implicit(),
            };
            match self.st.mode[s][bi] {
                Some(m) if m != implicit => return Ok(Err(SkipReason::MixedModes)),
                _ => self.st.mode[s][bi] = Some(implicit),
            }
            let primary = if s == 0 { bi } else { comp_index(bi) };
            let n_codes = self.st.parsed.codes(&g).len();
            if n_codes > 4 {
                return Ok(Err(SkipReason::TooManyCodes));
            }
            let mut code_idx = [0u8; 4];
            for (k, slot) in code_idx.iter_mut().enumerate().take(n_codes) {
                let c = self.st.parsed.codes(&g)[k];
                *slot = self.intern(c)?;
            }
            let n_calls = self.st.parsed.calls(&g).len();
            for ci in 0..n_calls {
                let call = self.st.parsed.calls(&g)[ci];
                let sp = call.seq_pos as usize;
                let mut slot = self.st.slots[s][sp];
                if slot == NO_SLOT {
                    slot = self.st.combined.len() as u32;
                    self.st.combined.push(Combined::default());
                    self.st.slots[s][sp] = slot;
                }
                for (k, &ci_code) in code_idx.iter().enumerate().take(n_codes) {
                    let v = self.st.parsed.ml_value(&call, k).unwrap_or(0);
                    if !self.st.combined[slot as usize].add(ci_code, ml_to_prob(v)) {
                        return Ok(Err(SkipReason::TooManyCodes));
                    }
                    self.st.observed[s][primary] |= 1 << ci_code;
                }
            }
        }
        Ok(Ok(()))
    }

    #[inline]
    fn lookup(&self, s: usize, read_base: usize, q: usize, threshold: Option<f32>) -> Option<Call> {
        let implicit = self.st.mode[s][read_base]?;
        let slot = self.st.slots[s][q];
        if slot != NO_SLOT {
            Some(self.st.combined[slot as usize].call(threshold))
        } else if implicit {
            Some(Call::Canonical)
        } else {
            None
        }
    }

    fn push_mm(&mut self, rec: &ReadBuf, tid: usize, start: u64) -> Result<(), PileupError> {
        let usable = match self.prepare_mm(rec) {
            Ok(_) => match self.combine_read(rec)? {
                Ok(()) => true,
                Err(r) => {
                    self.skip_or_fail(rec, r)?;
                    false
                }
            },
            Err(r) => {
                self.skip_or_fail(rec, r)?;
                false
            }
        };
        if !usable {
            self.st.mode = [[None; 4]; 2];
            self.st.observed = [[0; 4]; 2];
        } else {
            self.stats.records_with_calls += 1;
        }
        let rev = rec.is_reverse();
        let aln = usize::from(rev);
        let threshold = match self.opts.filter {
            Filter::None => None,
            Filter::Threshold(t) => Some(t),
        };
        let read_ctx = self.opts.cpg == CpgFilter::Read;
        // Observed codes by tally (tally = read strand XOR alignment strand), as the few
        // non-empty (tally, primary base, code mask) entries.
        let mut obs = [(0usize, 0usize, 0u32); 8];
        let mut n_obs = 0;
        for (s, per_base) in self.st.observed.iter().enumerate() {
            for (bi, &m) in per_base.iter().enumerate() {
                if m != 0 {
                    obs[n_obs] = (s ^ aln, bi, m);
                    n_obs += 1;
                }
            }
        }
        let obs = &obs[..n_obs];
        let seq = &rec.seq;
        let mut window = std::mem::take(&mut self.windows[tid]);
        let mut calls = 0u64;
        for run in covered_runs(&rec.cigar, start) {
            match run {
                CoveredRun::Aligned {
                    ref_start,
                    read_start,
                    len,
                } => {
                    for k in 0..len {
                        let (rp, qp) = (ref_start + k as u64, read_start + k);
                        let rule = self.rule_at(rp);
                        if !rule.plus && !rule.minus {
                            continue;
                        }
                        let Some(&b) = seq.get(qp) else { continue };
                        let tally = window.get_mut(rp);
                        for &(t, bi, m) in obs {
                            tally.s[t].observed[bi] |= m;
                        }
                        let Some(bi) = base_index(b) else { continue };
                        let read_base = if rev { comp_index(bi) } else { bi };
                        let pc = self.lookup(0, read_base, qp, threshold);
                        let nc = self.lookup(1, read_base, qp, threshold);
                        let ok = |t: usize| -> bool {
                            let motif = if t == 0 { rule.plus } else { rule.minus };
                            motif
                                && (!read_ctx
                                    || if t == 0 {
                                        b == b'C' && seq.get(qp + 1) == Some(&b'G')
                                    } else {
                                        b == b'G' && qp > 0 && seq[qp - 1] == b'C'
                                    })
                        };
                        // tally of a read-strand (s) feature: s XOR aln
                        match (pc, nc) {
                            (None, None) => {
                                if ok(aln) {
                                    tally.s[aln].basecalls[read_base] += 1;
                                }
                            }
                            (pc, nc) => {
                                if let Some(c) = pc
                                    && ok(aln)
                                {
                                    add_call(&mut tally.s[aln], read_base, c)?;
                                    calls += 1;
                                }
                                if let Some(c) = nc
                                    && ok(1 - aln)
                                {
                                    add_call(&mut tally.s[1 - aln], comp_index(read_base), c)?;
                                    calls += 1;
                                }
                            }
                        }
                    }
                }
                CoveredRun::Deleted { ref_start, len } => {
                    for k in 0..len {
                        let rp = ref_start + k as u64;
                        let rule = self.rule_at(rp);
                        if !rule.plus && !rule.minus {
                            continue;
                        }
                        let tally = window.get_mut(rp);
                        for &(t, bi, m) in obs {
                            tally.s[t].observed[bi] |= m;
                        }
                        let motif = if aln == 0 { rule.plus } else { rule.minus };
                        if motif && !read_ctx {
                            tally.s[aln].n_delete += 1;
                        }
                    }
                }
            }
        }
        self.windows[tid] = window;
        self.stats.calls += calls;
        Ok(())
    }

    fn push_xm(&mut self, rec: &ReadBuf, tid: usize, start: u64) -> Result<(), PileupError> {
        if !rec.has_xm {
            self.skip(SkipReason::NoModTags);
            return Ok(());
        }
        if rec.xm.len() != rec.seq.len() {
            return self.skip_or_fail(rec, SkipReason::XmLength);
        }
        let t = match rec.xg {
            Some(x) if &x == b"CT" => 0usize,
            Some(x) if &x == b"GA" => 1usize,
            _ => return self.skip_or_fail(rec, SkipReason::MissingXg),
        };
        // Bismark's --no_overlap: drop read 2's calls inside read 1's span.
        // OT/CTOB pairs (read 2 has XR != XG): drop r <= end of read 1;
        // OB/CTOT pairs (read 2 has XR == XG): drop r >= start of read 1.
        let mut drop_le: Option<u64> = None;
        let mut drop_ge: Option<u64> = None;
        if self.opts.no_overlap && rec.has_flag(flags::PAIRED) {
            let span_end = start + rec.ref_span().max(1) - 1;
            let key = name_key(&rec.name);
            if rec.has_flag(flags::READ1) {
                // In a sorted file a mate starting before this read was already seen.
                if !(self.sorted && rec.mate_pos.is_some_and(|m| m < start)) {
                    self.mates.insert(key, (start, span_end));
                }
            } else if rec.has_flag(flags::READ2) {
                let r1 = self.mates.remove(&key).or_else(|| {
                    rec.mate_pos.map(|mp| {
                        let span = cigar_ref_span(&rec.mc).unwrap_or(rec.ref_span()).max(1);
                        (mp, mp + span - 1)
                    })
                });
                if let Some((s1, e1)) = r1 {
                    if rec.xr.is_some() && rec.xr == rec.xg {
                        drop_ge = Some(s1);
                    } else {
                        drop_le = Some(e1);
                    }
                }
            }
        }
        let min_q = self.opts.min_base_qual;
        let m_code = match self.intern(ModCode::Code(b'm')) {
            Ok(c) => c,
            Err(_) => return Ok(()),
        };
        let mut window = std::mem::take(&mut self.windows[tid]);
        let mut calls = 0u64;
        for run in covered_runs(&rec.cigar, start) {
            // Deleted bases carry no XM call.
            let CoveredRun::Aligned {
                ref_start,
                read_start,
                len,
            } = run
            else {
                continue;
            };
            for k in 0..len {
                let (rp, qp) = (ref_start + k as u64, read_start + k);
                let Some(&c) = rec.xm.get(qp) else { break };
                if c != b'z' && c != b'Z' {
                    continue;
                }
                if min_q > 0 && rec.qual.get(qp).is_some_and(|&bq| bq < min_q) {
                    continue;
                }
                if drop_le.is_some_and(|e| rp <= e) || drop_ge.is_some_and(|s| rp >= s) {
                    continue;
                }
                let rule = self.rule_at(rp);
                if !(if t == 0 { rule.plus } else { rule.minus }) {
                    continue;
                }
                let tally = &mut window.get_mut(rp).s[t];
                tally.observed[1] |= 1 << m_code;
                let call = if c == b'Z' {
                    Call::Modified(m_code)
                } else {
                    Call::Canonical
                };
                // Invariant: one base/code pair per Bismark position cannot overflow.
                let _ = add_call(tally, 1, call);
                calls += 1;
            }
        }
        self.windows[tid] = window;
        if calls > 0 {
            self.stats.records_with_calls += 1;
        }
        self.stats.calls += calls;
        Ok(())
    }

    /// Flushes positions `< upto` of contig `tid` into `out`.
    fn flush_before(
        &mut self,
        tid: usize,
        upto: u64,
        out: &mut Vec<PileupRow>,
    ) -> Result<(), PileupError> {
        let mut window = std::mem::take(&mut self.windows[tid]);
        while let Some((pos, t)) = window.pop_before(upto) {
            self.scratch.clear();
            decode(
                &t,
                tid,
                pos,
                &self.codes,
                self.opts.combine_mods,
                &mut self.scratch,
            );
            if self.scratch.is_empty() {
                continue;
            }
            let rows = std::mem::take(&mut self.scratch);
            self.emit_position(&rows, out);
            self.scratch = rows;
        }
        self.windows[tid] = window;
        Ok(())
    }

    /// Strand combining stage (or pass-through).
    fn emit_position(&mut self, rows: &[PileupRow], out: &mut Vec<PileupRow>) {
        if !self.opts.combine_strands {
            self.stats.rows += rows.len() as u64;
            out.extend_from_slice(rows);
            return;
        }
        let tid = rows[0].tid;
        let pos = rows[0].pos;
        if rows.iter().any(|r| r.strand == RowStrand::Minus) {
            let target = pos.saturating_sub(1);
            let held_matches = self
                .held
                .first()
                .is_some_and(|h| h.tid == tid && h.pos == target && pos > 0);
            if !held_matches {
                self.emit_held(out);
            }
            // `held` (the + rows at pos - 1, or nothing) plus the - rows moved to pos - 1.
            self.held.extend(
                rows.iter()
                    .filter(|r| r.strand == RowStrand::Minus)
                    .map(|r| PileupRow { pos: target, ..*r }),
            );
            self.emit_held(out);
        }
        if rows.iter().any(|r| r.strand == RowStrand::Plus) {
            self.emit_held(out);
            self.held
                .extend(rows.iter().filter(|r| r.strand == RowStrand::Plus).copied());
        }
    }

    /// Emits the held rows summed per code with strand `.` (buffers reused).
    fn emit_held(&mut self, out: &mut Vec<PileupRow>) {
        if self.held.is_empty() {
            return;
        }
        let start = out.len();
        for r in self.held.drain(..) {
            if let Some(m) = out[start..].iter_mut().find(|m| m.code == r.code) {
                m.n_valid += r.n_valid;
                m.n_mod += r.n_mod;
                m.n_canonical += r.n_canonical;
                m.n_other_mod += r.n_other_mod;
                m.n_delete += r.n_delete;
                m.n_fail += r.n_fail;
                m.n_diff += r.n_diff;
                m.n_nocall += r.n_nocall;
            } else {
                out.push(PileupRow {
                    strand: RowStrand::Both,
                    ..r
                });
            }
        }
        out[start..].sort_by_key(|r| r.code);
        self.stats.rows += (out.len() - start) as u64;
    }

    /// Flushes everything (end of input).
    pub fn finish(&mut self, out: &mut Vec<PileupRow>) -> Result<(), PileupError> {
        for tid in 0..self.windows.len() {
            if !self.windows[tid].is_empty() {
                self.flush_before(tid, u64::MAX, out)?;
                self.emit_held(out);
            }
        }
        self.emit_held(out);
        Ok(())
    }
}

/// Validates the modification tags of `rec` and parses them into `parsed`, with htslib's checks:
/// an `MN` tag must be an integer equal to the SEQ length (a hard-clipped record without `MN` is
/// rejected too, since its `MM` may describe the unclipped read), `ML` must be a `B:C` array whose
/// length matches `MM`, and every delta list must stay within SEQ. Without `ML`, `require_ml`
/// decides between rejection and calls without probabilities. A record without `MM` (or with an
/// empty one) is [`SkipReason::NoModTags`].
pub fn parse_record_mods(
    rec: &ReadBuf,
    parsed: &mut ParsedMods,
    require_ml: bool,
) -> Result<(), SkipReason> {
    if !rec.has_mm || rec.mm.iter().all(|&c| c == b';') {
        return Err(SkipReason::NoModTags);
    }
    match rec.mn {
        MnTag::Int(n) if n != rec.seq.len() as i64 => return Err(SkipReason::MnMismatch),
        MnTag::NotInteger => return Err(SkipReason::MnMismatch),
        MnTag::Absent if rec.is_hard_clipped() => return Err(SkipReason::HardClippedWithoutMn),
        _ => {}
    }
    if !rec.has_ml && require_ml {
        return Err(SkipReason::MissingMl);
    }
    if rec.has_ml && rec.ml_bad_type {
        return Err(SkipReason::MlBadType);
    }
    let ml = rec.has_ml.then_some(rec.ml.as_slice());
    parsed
        .parse(&rec.mm, ml, &rec.seq, rec.is_reverse())
        .map_err(|e| match e {
            MmError::Syntax(_) => SkipReason::MalformedMm,
            MmError::OutOfBounds => SkipReason::MmOutOfBounds,
            MmError::MlLength { .. } => SkipReason::MlLengthMismatch,
        })
}

/// Adds a call to a strand tally for primary base `pb`.
#[inline]
fn add_call(t: &mut StrandTally, pb: usize, call: Call) -> Result<(), PileupError> {
    match call {
        Call::Filtered => t.n_filtered += 1,
        Call::Canonical => {
            t.canonical[pb] += 1;
            t.has_modcall |= 1 << pb;
        }
        Call::Modified(code) => {
            t.has_modcall |= 1 << pb;
            for m in &mut t.mods[..t.n_mods as usize] {
                if m.base == pb as u8 && m.code == code {
                    m.count += 1;
                    return Ok(());
                }
            }
            if t.n_mods as usize >= MAX_MODS {
                return Err(PileupError::TooManyCodes(format!(
                    "{} base/code pairs",
                    t.n_mods + 1
                )));
            }
            t.mods[t.n_mods as usize] = ModCount {
                base: pb as u8,
                code,
                count: 1,
            };
            t.n_mods += 1;
        }
    }
    Ok(())
}

/// modkit's `FeatureVector::decode`: rows of one position.
fn decode(
    t: &PosTally,
    tid: usize,
    pos: u64,
    codes: &[ModCode],
    combine_mods: bool,
    out: &mut Vec<PileupRow>,
) {
    let start = out.len();
    for (si, strand) in [(0usize, RowStrand::Plus), (1, RowStrand::Minus)] {
        let st = &t.s[si];
        if st.has_modcall == 0 {
            continue;
        }
        for pb in 0..4 {
            if st.has_modcall & (1 << pb) == 0 {
                continue;
            }
            let n_canonical = st.canonical[pb];
            let mods = &st.mods[..st.n_mods as usize];
            let total_mod: u32 = mods
                .iter()
                .filter(|m| m.base as usize == pb)
                .map(|m| m.count)
                .sum();
            let n_valid = total_mod + n_canonical;
            let mut n_diff: u32 = 0;
            for ob in 0..4 {
                if ob != pb {
                    n_diff += st.basecalls[ob];
                    n_diff += st.canonical[ob];
                    n_diff += mods
                        .iter()
                        .filter(|m| m.base as usize == ob)
                        .map(|m| m.count)
                        .sum::<u32>();
                }
            }
            if combine_mods {
                out.push(PileupRow {
                    tid,
                    pos,
                    strand,
                    code: ModCode::Code(b"ACGT"[pb]),
                    n_valid,
                    n_mod: total_mod,
                    n_canonical,
                    n_other_mod: 0,
                    n_delete: st.n_delete,
                    n_fail: st.n_filtered,
                    n_diff,
                    n_nocall: st.basecalls[pb],
                });
                continue;
            }
            let mut obs = st.observed[pb];
            while obs != 0 {
                let ci = obs.trailing_zeros() as u8;
                obs &= obs - 1;
                let n_mod = mods
                    .iter()
                    .find(|m| m.base as usize == pb && m.code == ci)
                    .map_or(0, |m| m.count);
                out.push(PileupRow {
                    tid,
                    pos,
                    strand,
                    code: codes[ci as usize],
                    n_valid,
                    n_mod,
                    n_canonical,
                    n_other_mod: total_mod - n_mod,
                    n_delete: st.n_delete,
                    n_fail: st.n_filtered,
                    n_diff,
                    n_nocall: st.basecalls[pb],
                });
            }
        }
    }
    out[start..].sort_by(|a, b| a.strand.cmp(&b.strand).then(a.code.cmp(&b.code)));
}

/// A 64-bit hash of a read name (no allocation per record).
fn name_key(name: &[u8]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    name.hash(&mut h);
    h.finish()
}

/// The reference positions one CIGAR operation covers, as yielded by [`covered_runs`].
#[derive(Debug, PartialEq, Eq)]
enum CoveredRun {
    /// `len` read bases from read index `read_start` aligned to the reference from `ref_start`
    /// (`M`, `=`, `X`).
    Aligned {
        ref_start: u64,
        read_start: usize,
        len: usize,
    },
    /// `len` reference bases from `ref_start` deleted from the read (`D`).
    Deleted { ref_start: u64, len: usize },
}

/// The aligned and deleted runs of a CIGAR whose first reference position is `start`, in order.
/// Exists so that the `MM`/`ML` and the Bismark `XM` paths share one reading of the CIGAR (`N`
/// skips reference, `I`/`S` skip read, `H`/`P` consume neither) and keep only their own per-base
/// work. Runs rather than single bases keep each path's per-base loop a plain `for` over the run;
/// nothing is allocated.
fn covered_runs(cigar: &[CigarOp], start: u64) -> impl Iterator<Item = CoveredRun> + '_ {
    let (mut ref_pos, mut read_pos) = (start, 0usize);
    cigar.iter().filter_map(move |&(kind, len)| {
        let len = len as usize;
        let (ref_start, read_start) = (ref_pos, read_pos);
        match kind {
            Kind::Match | Kind::SequenceMatch | Kind::SequenceMismatch => {
                ref_pos += len as u64;
                read_pos += len;
                Some(CoveredRun::Aligned {
                    ref_start,
                    read_start,
                    len,
                })
            }
            Kind::Deletion => {
                ref_pos += len as u64;
                Some(CoveredRun::Deleted { ref_start, len })
            }
            Kind::Skip => {
                ref_pos += len as u64;
                None
            }
            Kind::Insertion | Kind::SoftClip => {
                read_pos += len;
                None
            }
            Kind::HardClip | Kind::Pad => None,
        }
    })
}

/// Reference span of a CIGAR string (`MC` tag); `None` if empty or malformed.
fn cigar_ref_span(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s == b"*" {
        return None;
    }
    let mut n: u64 = 0;
    let mut total = 0u64;
    for &c in s {
        if c.is_ascii_digit() {
            n = n * 10 + u64::from(c - b'0');
        } else {
            if matches!(c, b'M' | b'D' | b'N' | b'=' | b'X') {
                total += n;
            }
            n = 0;
        }
    }
    Some(total)
}

/// Estimates modkit's default pass threshold from the calls of up to `max_reads` records: the
/// `percentile` quantile (modkit: 0.1) of the probability of the called state over all listed
/// calls (implicit canonical calls are not listed and do not count). Returns `None` when no
/// calls were seen.
pub fn estimate_threshold(
    reads: &mut dyn FnMut(&mut ReadBuf) -> std::io::Result<bool>,
    opts: &PileupOptions,
    max_reads: usize,
    percentile: f64,
) -> Result<Option<f32>, PileupError> {
    let mut p = Pileup::new(
        PileupOptions {
            cpg: CpgFilter::Any,
            ..opts.clone()
        },
        Vec::new(),
        false,
    )?;
    let mut rec = ReadBuf::default();
    let mut confidences: Vec<f32> = Vec::new();
    let mut n = 0usize;
    while n < max_reads && reads(&mut rec)? {
        if !p.passes_filters(&rec) || !rec.has_mm {
            continue;
        }
        if p.prepare_mm(&rec).is_err() {
            continue;
        }
        if !matches!(p.combine_read(&rec)?, Ok(())) {
            continue;
        }
        n += 1;
        confidences.extend(p.st.combined.iter().map(Combined::confidence));
    }
    if confidences.is_empty() {
        return Ok(None);
    }
    confidences.sort_by(f32::total_cmp);
    let idx = ((confidences.len() as f64) * percentile).floor() as usize;
    Ok(Some(confidences[idx.min(confidences.len() - 1)]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn covered_runs_follow_each_operation() {
        // 1H 2S 2M 1I 1D 3N 1= 1X 1P 1H, starting at reference position 10.
        let cigar = [
            (Kind::HardClip, 1),
            (Kind::SoftClip, 2),
            (Kind::Match, 2),
            (Kind::Insertion, 1),
            (Kind::Deletion, 1),
            (Kind::Skip, 3),
            (Kind::SequenceMatch, 1),
            (Kind::SequenceMismatch, 1),
            (Kind::Pad, 1),
            (Kind::HardClip, 1),
        ];
        let aligned = |ref_start, read_start, len| CoveredRun::Aligned {
            ref_start,
            read_start,
            len,
        };
        let runs: Vec<CoveredRun> = covered_runs(&cigar, 10).collect();
        assert_eq!(
            runs,
            [
                aligned(10, 2, 2),
                CoveredRun::Deleted {
                    ref_start: 12,
                    len: 1
                },
                aligned(16, 5, 1),
                aligned(17, 6, 1),
            ]
        );
    }
}
