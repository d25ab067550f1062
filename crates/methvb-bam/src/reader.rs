//! [`BamSampleReader`]: a BAM/SAM file as a [`SiteSource`] of CpG sites.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use methvb_io::{ErrorKind, ReadError, SampleSite, SiteSource, Strand};
use noodles::sam;

use crate::pileup::{Pileup, PileupOptions, PileupRow, PileupStats, RowStrand};
use crate::record::{self, ReadBuf, RecordSource};
use crate::{BamOptions, ModCode, pileup_err, resolve_filter};

/// A streaming per-sample reader over a BAM/SAM: pileup rows of the chosen modification code
/// become [`SampleSite`]s (`methylated = N_mod` (+ `N_other_mod` with `any_mod`), `coverage =
/// N_valid`). With [`crate::PileupOptions::combine_strands`] (the default of [`BamOptions`]) the
/// `+` call at `p` and the `-` call at `p + 1` are one site at `p` with [`Strand::Unknown`], as
/// the text readers do. Contig ids are handed out in order of first appearance. `line` is the
/// 1-based number of the record whose arrival completed the site (0 at end of input).
pub struct BamSampleReader {
    path: PathBuf,
    src: RecordSource,
    header: sam::Header,
    pileup: Pileup,
    buf: ReadBuf,
    rows: Vec<PileupRow>,
    ready: VecDeque<SampleSite>,
    local_ids: Vec<Option<usize>>,
    contigs: Vec<String>,
    mod_code: ModCode,
    any_mod: bool,
    eof: bool,
    opts: PileupOptions,
    /// Records to read before stopping ([`BamSampleReader::stop_after`]; `u64::MAX`: all).
    limit: u64,
    /// Whether the limit stopped the reader with records left.
    truncated: bool,
}

impl std::fmt::Debug for BamSampleReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BamSampleReader")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl BamSampleReader {
    /// Opens `path` (BAM or SAM, detected from the bytes). With the default
    /// [`crate::FilterChoice::Estimate`], the start of the file is read once more to estimate the
    /// threshold.
    pub fn open(path: &Path, opts: &BamOptions) -> Result<BamSampleReader, ReadError> {
        let filter = resolve_filter(path, opts)?;
        let (src, header) =
            RecordSource::open(path).map_err(|e| ReadError::new(path, 0, ErrorKind::Io(e)))?;
        let sorted = record::is_coordinate_sorted(&header);
        let popts = PileupOptions {
            filter,
            ..opts.pileup.clone()
        };
        let pileup = Pileup::new(popts.clone(), record::contig_names(&header), sorted)
            .map_err(|e| pileup_err(path, e))?;
        Ok(BamSampleReader {
            path: path.to_path_buf(),
            src,
            header,
            pileup,
            buf: ReadBuf::default(),
            rows: Vec::new(),
            ready: VecDeque::new(),
            local_ids: Vec::new(),
            contigs: Vec::new(),
            // With combined modifications the rows carry the canonical base as their code.
            mod_code: if opts.pileup.combine_mods {
                ModCode::Code(b'C')
            } else {
                opts.mod_code
            },
            any_mod: opts.any_mod,
            eof: false,
            opts: popts,
            limit: u64::MAX,
            truncated: false,
        })
    }

    /// Reads only the first `records` records (a quick look at the head of a large file, as
    /// `methvb check --max-lines` takes): the sites piled up from them are flushed, those that
    /// later records would also cover counted from the records read, and the end-of-file rule
    /// of [`crate::PileupOptions::require_calls`] is not applied to the head.
    /// [`BamSampleReader::truncated`] tells whether records were left.
    pub fn stop_after(mut self, records: u64) -> BamSampleReader {
        self.limit = records;
        self
    }

    /// Whether [`BamSampleReader::stop_after`] stopped the reader before the end of the file.
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    /// The contigs of the header (`@SQ` lines), in header order; once records are read, a
    /// record whose reference id lies beyond them adds a `#N` name.
    pub fn header_contigs(&self) -> &[String] {
        self.pileup.contigs()
    }

    /// Whether the file is BAM (BGZF), not SAM text (detected from its first bytes).
    pub fn is_bam(&self) -> bool {
        matches!(self.src, RecordSource::Bam(..))
    }

    /// Pileup counters (records read, skipped by reason, calls, rows).
    pub fn stats(&self) -> &PileupStats {
        self.pileup.stats()
    }

    fn take_rows(&mut self, line: u64) {
        for r in self.rows.drain(..) {
            if r.code != self.mod_code || r.n_valid == 0 {
                continue;
            }
            if self.local_ids.len() <= r.tid {
                self.local_ids.resize(r.tid + 1, None);
            }
            let id = match self.local_ids[r.tid] {
                Some(id) => id,
                None => {
                    let id = self.contigs.len();
                    self.contigs.push(self.pileup.contigs()[r.tid].clone());
                    self.local_ids[r.tid] = Some(id);
                    id
                }
            };
            let methylated = if self.any_mod {
                r.n_mod + r.n_other_mod
            } else {
                r.n_mod
            };
            self.ready.push_back(SampleSite {
                contig: id,
                pos: r.pos,
                strand: match r.strand {
                    RowStrand::Plus => Strand::Forward,
                    RowStrand::Minus => Strand::Reverse,
                    RowStrand::Both => Strand::Unknown,
                },
                methylated,
                coverage: r.n_valid,
                line,
            });
        }
    }
}

impl SiteSource for BamSampleReader {
    fn next_site(&mut self) -> Result<Option<SampleSite>, ReadError> {
        loop {
            if let Some(s) = self.ready.pop_front() {
                return Ok(Some(s));
            }
            if self.eof {
                return Ok(None);
            }
            let line = self.pileup.stats().records + 1;
            let more = self
                .src
                .next_into(&self.header, &mut self.buf)
                .map_err(|e| ReadError::new(&self.path, line, ErrorKind::Io(e)))?;
            if more && self.pileup.stats().records < self.limit {
                self.pileup
                    .push(&self.buf, &mut self.rows)
                    .map_err(|e| pileup_err(&self.path, e))?;
                self.take_rows(line);
            } else {
                self.eof = true;
                // A record was read past the limit: the file goes on.
                self.truncated = more;
                self.pileup
                    .finish(&mut self.rows)
                    .map_err(|e| pileup_err(&self.path, e))?;
                if !self.truncated {
                    crate::pileup::require_calls(&self.opts, self.pileup.stats())
                        .map_err(|e| pileup_err(&self.path, e))?;
                }
                self.take_rows(0);
            }
        }
    }

    fn contig_name(&self, id: usize) -> &str {
        &self.contigs[id]
    }

    fn path(&self) -> &Path {
        &self.path
    }
}
