//! [`SampleReader`]: one sample file as a stream of [`SampleSite`]s.
//!
//! The reader opens the file ([`crate::input`]), skips the preamble (blank, `track` / `browser` /
//! `#` lines and at most one column-header line), detects the format from the first data line
//! unless one is given ([`crate::format::Format::detect`]), and parses line by line with one
//! reused buffer.
//!
//! Order rules, per contig (contigs must be grouped; ids are handed out in order of first
//! appearance; a contig that comes back after another one started is
//! [`ErrorKind::ContigReappears`]):
//! - positions never decrease ([`ErrorKind::Unsorted`]);
//! - one position may hold calls of different strands (and, in bedMethyl, rows of other
//!   modification codes, which are filtered out first); the same position, strand and code twice
//!   is [`ErrorKind::Duplicate`] — except modkit's repeat rows of the same cytosine for a second
//!   motif (`m,CG,0` then `m,CGCG,2`), which are skipped and counted.
//!
//! Strand merging ([`ReaderOptions::merge_strands`], on by default) turns stranded CpG calls into
//! one site per CpG: a + call at `p` and a − call at `p + 1` become one site at `p` with `m` and
//! `n` summed; a lone − call at `p + 1` is reported at `p`, a lone + call stays at `p`. Every
//! merged site has [`Strand::Unknown`] and positions strictly increase. A − call that cannot be
//! placed this way (its `p` already taken, or at position 0) is [`ErrorKind::StrandConflict`]:
//! the input is not CpG-only. Formats without a strand (DSS, Bismark `.cov`) and rows with strand
//! `.` pass through unchanged. Without merging, sites keep their strand and position, ordered by
//! (position, strand) with + before − before unknown.

use std::collections::{HashSet, VecDeque};
use std::io::BufRead;
use std::path::{Path, PathBuf};

use crate::error::{ErrorKind, ReadError};
use crate::format::{BedLayout, Format, LineParser, Parsed, Preamble, classify_preamble, trim_eol};
use crate::{SampleSite, SiteSource, Strand};

/// How to read a sample file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaderOptions {
    /// The format, or `None` to detect it from the first data line.
    pub format: Option<Format>,
    /// bedMethyl (modkit) modification code to keep: `m` (5mC, default), `h`, `a`, `C`
    /// (combined, `--combine-mods`), or a ChEBI number such as `21839`.
    pub mod_code: String,
    /// modkit only: count every modification as methylated (N_mod + N_other_mod), which is what
    /// bisulfite sequencing measures. See [`crate::format`].
    pub any_mod: bool,
    /// Merge the two strands of each CpG into one site (default `true`).
    pub merge_strands: bool,
}

impl Default for ReaderOptions {
    fn default() -> Self {
        Self {
            format: None,
            mod_code: "m".to_string(),
            any_mod: false,
            merge_strands: true,
        }
    }
}

/// Lines the reader skipped, by reason.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SkipCounts {
    /// bedMethyl rows of a modification code other than the chosen one.
    pub other_mod_code: u64,
    /// Cytosine-report rows outside CpG context (CHG, CHH, ...).
    pub non_cg_context: u64,
    /// Header, `track`, `browser`, `#` and blank lines.
    pub header_lines: u64,
    /// modkit rows repeating a cytosine for a further motif (same code, strand and position).
    pub repeated_motif_rows: u64,
}

/// Strand rank for ordering and the per-position strand masks.
fn strand_rank(s: Strand) -> usize {
    match s {
        Strand::Forward => 0,
        Strand::Reverse => 1,
        Strand::Unknown => 2,
    }
}

/// A site in the strand-merge stage: counts kept as `u64` until emitted.
#[derive(Debug, Clone, Copy)]
struct Pending {
    contig: usize,
    pos: u64,
    /// Strand ranks that contributed (bit per rank).
    mask: u8,
    strand: Strand,
    methylated: u64,
    coverage: u64,
    line: u64,
}

/// A streaming reader of one sample file; see the [module docs](self).
pub struct SampleReader {
    path: PathBuf,
    reader: Box<dyn BufRead + Send>,
    buf: Vec<u8>,
    /// Physical lines read so far (the line in `buf` has this number).
    line_no: u64,
    /// `buf` holds a data line not yet parsed (the one used for detection).
    held: bool,
    eof: bool,
    parser: LineParser,
    merge_strands: bool,
    mod_code: String,
    any_mod: bool,
    skipped: SkipCounts,
    /// Modification codes seen on skipped rows (distinct, first appearance order).
    other_codes: Vec<Vec<u8>>,
    kept_rows: u64,
    contigs: Vec<String>,
    finished: HashSet<String>,
    /// Current contig id (the last of `contigs`) once a site was seen.
    current: Option<usize>,
    /// Raw order check: last position of the current contig and the strands seen there.
    last_pos: Option<u64>,
    strands_at_last: u8,
    /// bedMethyl names (`code,motif,offset`) at `last_pos`, per strand rank.
    names_at_last: [Vec<u8>; 3],
    /// Sites of the current position (merging off) or the pending merged site (merging on).
    group: [Option<Pending>; 3],
    pending: Option<Pending>,
    ready: VecDeque<SampleSite>,
}

impl std::fmt::Debug for SampleReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SampleReader")
            .field("path", &self.path)
            .field("format", &self.parser.format())
            .field("line", &self.line_no)
            .finish_non_exhaustive()
    }
}

impl SampleReader {
    /// Opens `path` (plain, gzip or BGZF) and prepares to read it with `opts`.
    ///
    /// Errors: I/O and compression errors, and [`ErrorKind::UnknownFormat`] when no format is
    /// given and the first data line fits none. An empty or header-only file (or a cytosine
    /// report without a CG row) opens, and its first [`SiteSource::next_site`] is an
    /// [`ErrorKind::NoSites`] error.
    pub fn open(path: &Path, opts: &ReaderOptions) -> Result<SampleReader, ReadError> {
        let reader = crate::input::open(path)?;
        Self::from_reader(path, reader, opts)
    }

    /// Like [`SampleReader::open`] over an already opened (decompressed) reader; `path` is only
    /// used in messages. Use it with [`crate::input::open_with_threads`] for multithreaded BGZF.
    ///
    /// ```
    /// use std::io::Cursor;
    /// use std::path::Path;
    /// use methvb_io::{SiteSource, Strand};
    /// use methvb_io::format::Format;
    /// use methvb_io::sample::{ReaderOptions, SampleReader};
    ///
    /// let report = b"chr1\t11\t+\t3\t1\tCG\tCGA\nchr1\t12\t-\t2\t0\tCG\tCGT\n";
    /// let mut r = SampleReader::from_reader(
    ///     Path::new("report.txt"),
    ///     Box::new(Cursor::new(report.to_vec())),
    ///     &ReaderOptions::default(),
    /// )?;
    /// assert_eq!(r.format(), Format::BismarkCpgReport);
    /// let site = r.next_site()?.unwrap();
    /// // Both strands of the CpG at 1-based 11 merged: 0-based 10, m = 5, n = 6.
    /// assert_eq!((site.pos, site.strand, site.methylated, site.coverage), (10, Strand::Unknown, 5, 6));
    /// assert_eq!(r.contig_name(site.contig), "chr1");
    /// assert!(r.next_site()?.is_none());
    /// # Ok::<(), methvb_io::ReadError>(())
    /// ```
    pub fn from_reader(
        path: &Path,
        reader: Box<dyn BufRead + Send>,
        opts: &ReaderOptions,
    ) -> Result<SampleReader, ReadError> {
        let mut me = SampleReader {
            path: path.to_path_buf(),
            reader,
            buf: Vec::with_capacity(256),
            line_no: 0,
            held: false,
            eof: false,
            parser: LineParser::new(
                opts.format.unwrap_or(Format::BedMethyl),
                &opts.mod_code,
                opts.any_mod,
            ),
            merge_strands: opts.merge_strands,
            mod_code: opts.mod_code.clone(),
            any_mod: opts.any_mod,
            skipped: SkipCounts::default(),
            other_codes: Vec::new(),
            kept_rows: 0,
            contigs: Vec::new(),
            finished: HashSet::new(),
            current: None,
            last_pos: None,
            strands_at_last: 0,
            names_at_last: [Vec::new(), Vec::new(), Vec::new()],
            group: [None; 3],
            pending: None,
            ready: VecDeque::with_capacity(4),
        };
        me.read_preamble(opts.format)?;
        Ok(me)
    }

    /// The format being read. For an input without any data line and no format given, this is
    /// a guess from its header line (DSS for `chr pos N X`, bedMethyl otherwise).
    pub fn format(&self) -> Format {
        self.parser.format()
    }

    /// The bedMethyl layout (modkit or ENCODE), once the first data line fixed it.
    pub fn bed_layout(&self) -> Option<BedLayout> {
        self.parser.bed_layout()
    }

    /// Bismark `.cov` only: whether the file uses the 0-based (`--zero_based`) convention,
    /// once its first data line was read (see [`LineParser::cov_zero_based`]).
    pub fn cov_zero_based(&self) -> Option<bool> {
        self.parser.cov_zero_based()
    }

    /// The 1-based number of the last physical line read so far.
    pub fn lines_read(&self) -> u64 {
        self.line_no
    }

    /// Lines skipped so far, by reason.
    pub fn skipped(&self) -> &SkipCounts {
        &self.skipped
    }

    /// Contig names in order of first appearance (index = [`SampleSite::contig`]).
    pub fn contigs(&self) -> &[String] {
        &self.contigs
    }

    /// Reads the next physical line into `buf` (line ending removed). `false` at the end.
    fn read_line(&mut self) -> Result<bool, ReadError> {
        self.buf.clear();
        let n = self
            .reader
            .read_until(b'\n', &mut self.buf)
            .map_err(|e| crate::input::map_read_error(&self.path, self.line_no + 1, e))?;
        if n == 0 {
            return Ok(false);
        }
        self.line_no += 1;
        let len = trim_eol(&self.buf).len();
        self.buf.truncate(len);
        Ok(true)
    }

    fn err(&self, line: u64, kind: ErrorKind) -> ReadError {
        ReadError::new(&self.path, line, kind)
    }

    /// Skips the preamble and holds the first data line; detects the format if needed.
    fn read_preamble(&mut self, given: Option<Format>) -> Result<(), ReadError> {
        let mut header: Option<Vec<u8>> = None;
        loop {
            if !self.read_line()? {
                self.eof = true;
                if given.is_none()
                    && header
                        .as_deref()
                        .is_some_and(|h| h.starts_with(b"chr\tpos"))
                {
                    self.parser = LineParser::new(Format::Dss, &self.mod_code, self.any_mod);
                }
                return Ok(());
            }
            match classify_preamble(&self.buf) {
                Preamble::Blank | Preamble::Comment => self.skipped.header_lines += 1,
                Preamble::ColumnHeader if header.is_none() => {
                    self.skipped.header_lines += 1;
                    header = Some(self.buf.clone());
                }
                Preamble::ColumnHeader | Preamble::Data => break,
            }
        }
        self.held = true;
        if given.is_none() {
            let mut lines: Vec<&[u8]> = Vec::with_capacity(2);
            if let Some(h) = header.as_deref() {
                lines.push(h);
            }
            lines.push(&self.buf);
            let Some(format) = Format::detect(&lines) else {
                let shown = String::from_utf8_lossy(&self.buf[..self.buf.len().min(80)]);
                let kind = ErrorKind::UnknownFormat(format!(
                    "first data line fits no format (bedMethyl, Bismark .cov, Bismark CpG report, DSS): {shown:?}"
                ));
                return Err(self.err(self.line_no, kind));
            };
            self.parser = LineParser::new(format, &self.mod_code, self.any_mod);
        }
        Ok(())
    }

    /// Reads and processes lines until at least one site is ready or the input ends.
    fn fill(&mut self) -> Result<(), ReadError> {
        while self.ready.is_empty() && !self.eof {
            if self.held {
                self.held = false;
            } else if !self.read_line()? {
                self.eof = true;
                self.finish()?;
                break;
            }
            if self.buf.is_empty() || self.buf.iter().all(u8::is_ascii_whitespace) {
                self.skipped.header_lines += 1;
                continue;
            }
            self.process_line()?;
        }
        if self.eof && self.ready.is_empty() && self.kept_rows == 0 && self.other_codes.is_empty() {
            // An empty sample is almost always a failed upstream step; reading it as an
            // all-missing sample would hide that.
            return Err(self.err(
                0,
                ErrorKind::NoSites(
                    "the file holds no data line (empty, header only, or no CpG-context row)"
                        .into(),
                ),
            ));
        }
        Ok(())
    }

    /// Parses the line in `buf` and pushes it through the order checks and the strand stage.
    fn process_line(&mut self) -> Result<(), ReadError> {
        // Take the buffer out so the parsed record can borrow it while `self` changes.
        let buf = std::mem::take(&mut self.buf);
        let result = self.process_bytes(&buf);
        self.buf = buf;
        result
    }

    fn process_bytes(&mut self, line: &[u8]) -> Result<(), ReadError> {
        let line_no = self.line_no;
        let parsed = match self.parser.parse(line) {
            Ok(p) => p,
            Err(kind) => return Err(ReadError::new(&self.path, line_no, kind)),
        };
        let rec = match parsed {
            Parsed::Site(rec) => rec,
            Parsed::OtherModCode(code) => {
                self.skipped.other_mod_code += 1;
                if !self.other_codes.iter().any(|c| c.as_slice() == code)
                    && self.other_codes.len() < 64
                {
                    self.other_codes.push(code.to_vec());
                }
                return Ok(());
            }
            Parsed::NonCgContext => {
                self.skipped.non_cg_context += 1;
                return Ok(());
            }
        };
        self.kept_rows += 1;

        // Contig: compare bytes with the current contig; hash only when it changes.
        let same_contig = self
            .current
            .is_some_and(|c| self.contigs[c].as_bytes() == rec.chrom);
        if !same_contig {
            let Ok(name) = std::str::from_utf8(rec.chrom) else {
                return Err(ReadError::new(
                    &self.path,
                    line_no,
                    ErrorKind::Field {
                        column: 1,
                        name: "chrom",
                        value: String::from_utf8_lossy(rec.chrom).into_owned(),
                        reason: "not valid UTF-8",
                    },
                ));
            };
            if self.finished.contains(name) {
                return Err(ReadError::new(
                    &self.path,
                    line_no,
                    ErrorKind::ContigReappears {
                        contig: name.to_string(),
                    },
                ));
            }
            let name = name.to_string();
            self.flush_stage()?;
            if let Some(c) = self.current {
                self.finished.insert(self.contigs[c].clone());
            }
            self.contigs.push(name);
            self.current = Some(self.contigs.len() - 1);
            self.last_pos = None;
            self.strands_at_last = 0;
        }
        // Invariant: `current` was set just above if it was None.
        let contig = self.current.unwrap_or(0);

        // Raw order: positions never decrease; (pos, strand) unique except repeated motifs.
        let written = |pos: u64| pos + self.parser.coordinate_base();
        let rank = strand_rank(rec.strand);
        let bit = 1u8 << rank;
        match self.last_pos {
            Some(last) if rec.pos < last => {
                return Err(ReadError::new(
                    &self.path,
                    line_no,
                    ErrorKind::Unsorted {
                        contig: self.contigs[contig].clone(),
                        previous: written(last),
                        pos: written(rec.pos),
                    },
                ));
            }
            Some(last) if rec.pos == last && self.strands_at_last & bit != 0 => {
                if self.names_at_last[rank].as_slice() != rec.name {
                    // modkit: the same cytosine again for another motif; same calls.
                    self.skipped.repeated_motif_rows += 1;
                    return Ok(());
                }
                return Err(ReadError::new(
                    &self.path,
                    line_no,
                    ErrorKind::Duplicate {
                        contig: self.contigs[contig].clone(),
                        pos: written(rec.pos),
                    },
                ));
            }
            Some(last) if rec.pos == last => self.strands_at_last |= bit,
            _ => {
                self.last_pos = Some(rec.pos);
                self.strands_at_last = bit;
            }
        }
        self.names_at_last[rank].clear();
        self.names_at_last[rank].extend_from_slice(rec.name);

        let site = Pending {
            contig,
            pos: rec.pos,
            mask: bit,
            strand: rec.strand,
            methylated: u64::from(rec.methylated),
            coverage: u64::from(rec.coverage),
            line: line_no,
        };
        if self.merge_strands {
            self.merge_stage(site)
        } else {
            self.group_stage(site);
            Ok(())
        }
    }

    /// Merging off: collect the sites of one position, emit them in strand order.
    fn group_stage(&mut self, site: Pending) {
        let current_pos = self.group.iter().flatten().next().map(|p| p.pos);
        if current_pos.is_some_and(|p| p != site.pos) {
            for i in 0..3 {
                if let Some(p) = self.group[i].take() {
                    self.push_ready(p);
                }
            }
        }
        self.group[strand_rank(site.strand)] = Some(site);
    }

    /// Merging on: move − calls to the + position and sum with a pending + call there.
    fn merge_stage(&mut self, mut site: Pending) -> Result<(), ReadError> {
        let (contig, line, written) = (site.contig, site.line, self.position_as_written(site.pos));
        let conflict = |me: &Self| {
            let kind = ErrorKind::StrandConflict {
                contig: me.contigs[contig].clone(),
                pos: written,
            };
            me.err(line, kind)
        };
        if site.strand == Strand::Reverse {
            match site.pos.checked_sub(1) {
                Some(p) => site.pos = p,
                None => return Err(conflict(self)),
            }
        }
        site.strand = Strand::Unknown;
        let Some(p) = self.pending.as_mut() else {
            self.pending = Some(site);
            return Ok(());
        };
        let pairs = p.mask == 1 && site.mask == 2; // + then − of the same CpG
        if site.pos == p.pos && pairs {
            p.mask |= site.mask;
            p.methylated += site.methylated;
            p.coverage += site.coverage;
            Ok(())
        } else if site.pos > p.pos {
            let done = *p;
            self.pending = Some(site);
            self.emit(done)
        } else {
            Err(conflict(self))
        }
    }

    /// Moves everything held in the strand stage to `ready` (contig change or end of input).
    fn flush_stage(&mut self) -> Result<(), ReadError> {
        for i in 0..3 {
            if let Some(p) = self.group[i].take() {
                // Counts came from single rows here and fit u32.
                self.push_ready(p);
            }
        }
        if let Some(p) = self.pending.take() {
            self.emit(p)?;
        }
        Ok(())
    }

    fn push_ready(&mut self, p: Pending) {
        self.ready.push_back(SampleSite {
            contig: p.contig,
            pos: p.pos,
            strand: p.strand,
            methylated: p.methylated as u32,
            coverage: p.coverage as u32,
            line: p.line,
        });
    }

    /// Emits a merged site, checking the summed counts still fit `u32`.
    fn emit(&mut self, p: Pending) -> Result<(), ReadError> {
        if p.coverage > u64::from(u32::MAX) {
            return Err(self.err(
                p.line,
                ErrorKind::Field {
                    column: 0,
                    name: "coverage",
                    value: p.coverage.to_string(),
                    reason: "coverage of the two strands together overflows u32",
                },
            ));
        }
        self.push_ready(p);
        Ok(())
    }

    /// End of input: flush the stages and check that the chosen mod code was present.
    fn finish(&mut self) -> Result<(), ReadError> {
        self.flush_stage()?;
        if self.kept_rows == 0 && !self.other_codes.is_empty() {
            let present = self
                .other_codes
                .iter()
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect::<Vec<_>>()
                .join(",");
            return Err(self.err(
                0,
                ErrorKind::NoModCode {
                    wanted: self.mod_code.clone(),
                    present,
                },
            ));
        }
        Ok(())
    }
}

impl SiteSource for SampleReader {
    fn next_site(&mut self) -> Result<Option<SampleSite>, ReadError> {
        if self.ready.is_empty() {
            self.fill()?;
        }
        Ok(self.ready.pop_front())
    }

    fn contig_name(&self, id: usize) -> &str {
        self.contigs.get(id).map_or("", String::as_str)
    }

    fn path(&self) -> &Path {
        &self.path
    }

    fn position_as_written(&self, pos: u64) -> u64 {
        pos + self.parser.coordinate_base()
    }
}

/// A [`SiteSource`] that drops the sites of some contigs (`--exclude-contigs`: spike-ins such as
/// lambda or pUC19, or contigs present in only some samples).
///
/// The decision is made once per contig id of the inner source (ids are handed out in order of
/// first appearance), so filtering costs one indexed load per site. Dropped contigs never reach
/// the merge, so they can neither clash with a `--contigs` file nor with the naming of other
/// samples. Line numbers of the kept sites are those of the inner source. A source whose every
/// site is dropped ends with an [`ErrorKind::NoSites`] error.
///
/// ```
/// use methvb_io::SiteSource;
/// use methvb_io::merge::VecSource;
/// use methvb_io::sample::ContigFilter;
///
/// let inner = VecSource::new("a.bed", &[("chr1", 5, 1, 2), ("lambda", 7, 3, 3), ("chr2", 1, 0, 1)]);
/// let mut f = ContigFilter::new(inner, &["lambda".to_string()]);
/// let mut kept = Vec::new();
/// while let Some(s) = f.next_site()? {
///     kept.push((f.contig_name(s.contig).to_string(), s.pos));
/// }
/// assert_eq!(kept, [("chr1".to_string(), 5), ("chr2".to_string(), 1)]);
/// assert_eq!(f.dropped(), 1);
/// # Ok::<(), methvb_io::ReadError>(())
/// ```
#[derive(Debug)]
pub struct ContigFilter<S> {
    inner: S,
    exclude: HashSet<String>,
    /// Per inner contig id: 0 not decided yet, 1 keep, 2 drop.
    decision: Vec<u8>,
    dropped: u64,
    kept: u64,
}

impl<S: SiteSource> ContigFilter<S> {
    /// Wraps `inner`, dropping every site on a contig named in `exclude` (exact names).
    pub fn new(inner: S, exclude: &[String]) -> Self {
        Self {
            inner,
            exclude: exclude.iter().cloned().collect(),
            decision: Vec::new(),
            dropped: 0,
            kept: 0,
        }
    }

    /// Sites dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The wrapped source.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    fn keep(&mut self, contig: usize) -> bool {
        if self.decision.len() <= contig {
            self.decision.resize(contig + 1, 0);
        }
        if self.decision[contig] == 0 {
            let drop = self.exclude.contains(self.inner.contig_name(contig));
            self.decision[contig] = if drop { 2 } else { 1 };
        }
        self.decision[contig] == 1
    }
}

impl<S: SiteSource> SiteSource for ContigFilter<S> {
    fn next_site(&mut self) -> Result<Option<SampleSite>, ReadError> {
        while let Some(site) = self.inner.next_site()? {
            if self.keep(site.contig) {
                self.kept += 1;
                return Ok(Some(site));
            }
            self.dropped += 1;
        }
        if self.kept == 0 && self.dropped > 0 {
            return Err(ReadError::new(
                self.inner.path(),
                0,
                ErrorKind::NoSites("every site is on a contig given to --exclude-contigs".into()),
            ));
        }
        Ok(None)
    }

    fn contig_name(&self, id: usize) -> &str {
        self.inner.contig_name(id)
    }

    fn path(&self) -> &Path {
        self.inner.path()
    }

    fn position_as_written(&self, pos: u64) -> u64 {
        self.inner.position_as_written(pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn reader(bytes: &[u8], opts: &ReaderOptions) -> Result<SampleReader, ReadError> {
        SampleReader::from_reader(
            Path::new("test.txt"),
            Box::new(Cursor::new(bytes.to_vec())),
            opts,
        )
    }

    fn read(bytes: &[u8], opts: &ReaderOptions) -> Result<Vec<SampleSite>, ReadError> {
        let mut r = reader(bytes, opts)?;
        let mut v = Vec::new();
        while let Some(s) = r.next_site()? {
            v.push(s);
        }
        Ok(v)
    }

    fn sites(bytes: &[u8], opts: &ReaderOptions) -> Vec<(usize, u64, Strand, u32, u32)> {
        read(bytes, opts)
            .unwrap_or_else(|e| panic!("{e}"))
            .iter()
            .map(|s| (s.contig, s.pos, s.strand, s.methylated, s.coverage))
            .collect()
    }

    fn unmerged() -> ReaderOptions {
        ReaderOptions {
            merge_strands: false,
            ..ReaderOptions::default()
        }
    }

    fn fails(bytes: &[u8], opts: &ReaderOptions) -> ReadError {
        match read(bytes, opts) {
            Ok(v) => panic!("expected an error, got {v:?}"),
            Err(e) => e,
        }
    }

    const U: Strand = Strand::Unknown;
    const F: Strand = Strand::Forward;
    const R: Strand = Strand::Reverse;

    #[test]
    fn dss_with_crlf_and_header() {
        let o = ReaderOptions::default();
        let v = sites(b"chr\tpos\tN\tX\r\nchr1\t5\t10\t3\r\nchr1\t7\t2\t2\r\n", &o);
        assert_eq!(v, vec![(0, 4, U, 3, 10), (0, 6, U, 2, 2)]);
        let r = reader(b"chr\tpos\tN\tX\r\n", &o).unwrap();
        assert_eq!(r.format(), Format::Dss);
    }

    /// Regression (bad-input corpus `empty.bed`, `header_only.dss.txt`, `comments_only.bed`,
    /// `cpg_report_no_cg.cpg_report.txt`): an input without any site used to read as an empty
    /// stream, so a failed upstream step became an all-missing sample without a word.
    #[test]
    fn empty_and_header_only_inputs_are_no_sites_errors() {
        let o = ReaderOptions::default();
        let chh = b"c\t5\t+\t1\t2\tCHH\tCAT\n".as_slice();
        for input in [
            &b""[..],
            b"\n\n",
            b"track name=x\n",
            b"chr\tpos\tN\tX\n",
            chh,
        ] {
            let e = fails(input, &o);
            assert!(matches!(e.kind, ErrorKind::NoSites(_)), "{e}");
            assert_eq!(e.line, 0);
        }
        let mut r = reader(b"chrom\tchromStart\tchromEnd\n", &o).unwrap();
        assert!(r.next_site().is_err());
        assert_eq!(r.skipped().header_lines, 1);
        // The header still tells the format.
        let r = reader(b"chr\tpos\tN\tX\n", &o).unwrap();
        assert_eq!(r.format(), Format::Dss);
    }

    #[test]
    fn unknown_format_names_the_line() {
        let o = ReaderOptions::default();
        let e = reader(b"track x\nhello\n", &o).unwrap_err();
        assert!(matches!(e.kind, ErrorKind::UnknownFormat(_)), "{e}");
        assert_eq!(e.line, 2);
        // A bedGraph has no counts.
        let e = reader(b"track type=bedGraph\nchr1\t9\t10\t33.3\n", &o).unwrap_err();
        assert!(matches!(e.kind, ErrorKind::UnknownFormat(_)), "{e}");
        // Two header-like lines.
        let e = reader(b"a b c\nd e f\n", &o).unwrap_err();
        assert!(matches!(e.kind, ErrorKind::UnknownFormat(_)));
        assert_eq!(e.line, 2);
    }

    fn field_err(e: &ReadError) -> (usize, &'static str) {
        match &e.kind {
            ErrorKind::Field { column, reason, .. } => (*column, reason),
            k => panic!("not a field error: {k}"),
        }
    }

    #[test]
    fn bad_lines_give_kind_and_line() {
        let o = ReaderOptions::default();
        let h = "chr\tpos\tN\tX\nchr1\t5\t10\t3\n";
        let e = fails(format!("{h}chr1\t6\t10\n").as_bytes(), &o);
        assert!(matches!(
            e.kind,
            ErrorKind::ColumnCount {
                expected: 4,
                found: 3,
                ..
            }
        ));
        assert_eq!(e.line, 3);
        let e = fails(format!("{h}chr1\tabc\t10\t3\n").as_bytes(), &o);
        assert_eq!(
            (e.line, field_err(&e)),
            (3, (2, "not a non-negative integer"))
        );
        let e = fails(format!("{h}chr1\t6\t-10\t3\n").as_bytes(), &o);
        assert_eq!(field_err(&e), (3, "negative"));
        let e = fails(format!("{h}chr1\t6\t4294967296\t3\n").as_bytes(), &o);
        assert_eq!(field_err(&e), (3, "overflows u32"));
        let e = fails(
            format!("{h}chr1\t18446744073709551616\t1\t0\n").as_bytes(),
            &o,
        );
        assert_eq!(field_err(&e), (2, "overflows u64"));
        let e = fails(format!("{h}chr1\t0\t1\t0\n").as_bytes(), &o);
        assert_eq!(field_err(&e), (2, "position 0 in a 1-based file"));
        let e = fails(format!("{h}chr1\t6\t3\t4\n").as_bytes(), &o);
        assert!(matches!(
            e.kind,
            ErrorKind::MethylatedExceedsCoverage {
                methylated: 4,
                coverage: 3
            }
        ));
        assert_eq!(e.line, 3);
        let e = fails(format!("{h}chr1\t4\t3\t1\n").as_bytes(), &o);
        assert!(matches!(
            e.kind,
            ErrorKind::Unsorted {
                previous: 5,
                pos: 4,
                ..
            }
        ));
        assert_eq!(e.line, 3);
        let e = fails(format!("{h}chr1\t5\t3\t1\n").as_bytes(), &o);
        assert!(matches!(e.kind, ErrorKind::Duplicate { pos: 5, .. }), "{e}");
        assert_eq!(e.line, 3);
        let e = fails(format!("{h}chr2\t1\t3\t1\nchr1\t9\t3\t1\n").as_bytes(), &o);
        assert!(
            matches!(&e.kind, ErrorKind::ContigReappears { contig } if contig == "chr1"),
            "{e}"
        );
        assert_eq!(e.line, 4);
        assert!(e.to_string().starts_with("test.txt:4: "), "{e}");
    }

    #[test]
    fn contigs_are_numbered_in_order_of_appearance() {
        let o = ReaderOptions::default();
        let mut r = reader(
            b"chr\tpos\tN\tX\nchrB\t5\t1\t1\nchrA\t1\t1\t0\nchrC\t1\t1\t0\n",
            &o,
        )
        .unwrap();
        let mut ids = Vec::new();
        while let Some(s) = r.next_site().unwrap() {
            ids.push((s.contig, s.line));
        }
        assert_eq!(ids, vec![(0, 2), (1, 3), (2, 4)]);
        assert_eq!(r.contig_name(0), "chrB");
        assert_eq!(r.contig_name(1), "chrA");
        assert_eq!(r.contig_name(2), "chrC");
        assert_eq!(r.path(), Path::new("test.txt"));
    }

    fn report(lines: &[(&str, u64, char, u32, u32, &str)]) -> Vec<u8> {
        let mut s = String::new();
        for (c, p, st, m, u, ctx) in lines {
            s.push_str(&format!("{c}\t{p}\t{st}\t{m}\t{u}\t{ctx}\tCGA\n"));
        }
        s.into_bytes()
    }

    #[test]
    fn strand_merging_pairs_and_lone_calls() {
        let input = report(&[
            ("c1", 10, '+', 1, 2, "CG"), // pairs with 11 −
            ("c1", 11, '-', 3, 1, "CG"),
            ("c1", 12, '+', 0, 1, "CHG"), // skipped
            ("c1", 21, '-', 2, 0, "CG"),  // lone − → 20
            ("c1", 30, '+', 0, 5, "CG"),  // lone +
            ("c2", 2, '-', 1, 1, "CG"),   // new contig, lone − → 1
        ]);
        let o = ReaderOptions::default();
        assert_eq!(
            sites(&input, &o),
            vec![
                (0, 9, U, 4, 7),
                (0, 19, U, 2, 2),
                (0, 29, U, 0, 5),
                (1, 0, U, 1, 2)
            ]
        );
        let v = read(&input, &o).unwrap();
        assert_eq!(v[0].line, 1, "a merged pair carries its first line");
        assert_eq!(
            sites(&input, &unmerged()),
            vec![
                (0, 9, F, 1, 3),
                (0, 10, R, 3, 4),
                (0, 20, R, 2, 2),
                (0, 29, F, 0, 5),
                (1, 1, R, 1, 2)
            ]
        );
        let r = reader(&input, &o).unwrap();
        assert_eq!(r.format(), Format::BismarkCpgReport);
    }

    #[test]
    fn strand_conflicts_are_errors_when_merging() {
        let o = ReaderOptions::default();
        // + and − at the same position: not a CpG pair.
        let input = report(&[("c1", 10, '+', 1, 2, "CG"), ("c1", 10, '-', 3, 1, "CG")]);
        let e = fails(&input, &o);
        assert!(
            matches!(e.kind, ErrorKind::StrandConflict { pos: 10, .. }),
            "{e}"
        );
        assert_eq!(e.line, 2);
        // − at position 1 (0-based 0).
        let e = fails(&report(&[("c1", 1, '-', 1, 2, "CG")]), &o);
        assert!(matches!(e.kind, ErrorKind::StrandConflict { .. }), "{e}");
        // Without merging both are fine, ordered + before −.
        assert_eq!(
            sites(&input, &unmerged()),
            vec![(0, 9, F, 1, 3), (0, 9, R, 3, 4)]
        );
    }

    #[test]
    fn unmerged_output_orders_strands_within_a_position() {
        let input = report(&[("c1", 10, '-', 1, 2, "CG"), ("c1", 10, '+', 3, 1, "CG")]);
        assert_eq!(
            sites(&input, &unmerged()),
            vec![(0, 9, F, 3, 4), (0, 9, R, 1, 3)]
        );
    }

    fn modkit_line(
        pos: u64,
        code: &str,
        strand: char,
        nmod: u32,
        ncanon: u32,
        nother: u32,
    ) -> String {
        let n = nmod + ncanon + nother;
        let pct = if n == 0 {
            0.0
        } else {
            100.0 * f64::from(nmod) / f64::from(n)
        };
        format!(
            "chr1\t{pos}\t{}\t{code}\t{n}\t{strand}\t{pos}\t{}\t255,0,0\t{n} {pct:.2} {nmod} {ncanon} {nother} 0 1 2 0\n",
            pos + 1,
            pos + 1
        )
    }

    #[test]
    fn modkit_codes_any_mod_and_motifs() {
        let mut s = String::new();
        s += &modkit_line(10, "h", '+', 2, 5, 3);
        s += &modkit_line(10, "m", '+', 3, 5, 2);
        s += &modkit_line(11, "m,CG,0", '-', 1, 1, 0);
        s += &modkit_line(11, "m,CGCG,2", '-', 1, 1, 0);
        s += &modkit_line(11, "21839", '-', 1, 1, 0);
        let o = unmerged();
        assert_eq!(
            sites(s.as_bytes(), &o),
            vec![(0, 10, F, 3, 10), (0, 11, R, 1, 2)]
        );
        let mut r = reader(s.as_bytes(), &o).unwrap();
        while r.next_site().unwrap().is_some() {}
        assert_eq!(r.skipped().other_mod_code, 2);
        assert_eq!(r.skipped().repeated_motif_rows, 1);
        assert_eq!(r.bed_layout(), Some(BedLayout::Modkit));
        let any = ReaderOptions {
            any_mod: true,
            ..unmerged()
        };
        assert_eq!(
            sites(s.as_bytes(), &any),
            vec![(0, 10, F, 5, 10), (0, 11, R, 1, 2)]
        );
        let chebi = ReaderOptions {
            mod_code: "21839".into(),
            ..unmerged()
        };
        assert_eq!(sites(s.as_bytes(), &chebi), vec![(0, 11, R, 1, 2)]);
        // Merged: + at 10 and − at 11 form one CpG.
        assert_eq!(
            sites(s.as_bytes(), &ReaderOptions::default()),
            vec![(0, 10, U, 4, 12)]
        );
        // All-tab tail parses the same.
        let tabs = s.replace(' ', "\t");
        assert_eq!(sites(tabs.as_bytes(), &o), sites(s.as_bytes(), &o));
        // The same motif row twice is a true duplicate.
        let dup = modkit_line(11, "m,CG,0", '-', 1, 1, 0).repeat(2);
        let e = fails(dup.as_bytes(), &o);
        assert!(matches!(e.kind, ErrorKind::Duplicate { pos: 11, .. }));
        assert_eq!(e.line, 2);
    }

    #[test]
    fn modkit_no_mod_code_and_bad_percent() {
        let s = modkit_line(10, "h", '+', 2, 5, 3) + &modkit_line(12, "a", '+', 2, 5, 3);
        let e = fails(s.as_bytes(), &ReaderOptions::default());
        match &e.kind {
            ErrorKind::NoModCode { wanted, present } => {
                assert_eq!((wanted.as_str(), present.as_str()), ("m", "h,a"));
            }
            k => panic!("{k}"),
        }
        assert_eq!(e.line, 0);
        let bad = modkit_line(10, "m", '+', 2, 5, 3).replace(" 20.00 ", " 20.02 ");
        let e = fails(bad.as_bytes(), &ReaderOptions::default());
        assert_eq!((e.line, field_err(&e).0), (1, 11));
        // Two printed decimals: 66.67 for 2/3 is within tolerance, 66.66 is not.
        let ok = modkit_line(10, "m", '+', 2, 1, 0);
        assert!(ok.contains(" 66.67 "));
        assert_eq!(sites(ok.as_bytes(), &unmerged()), vec![(0, 10, F, 2, 3)]);
        let e = fails(ok.replace(" 66.67 ", " 66.66 ").as_bytes(), &unmerged());
        assert_eq!(field_err(&e).0, 11);
        let short = "chr1\t1\t2\tm\t3\t+\t1\t2\t255,0,0\t3 33.33 1 2 0 0 0 0\n";
        // 17 fields, first line or not: a short modkit row, never an ENCODE one.
        for (text, line) in [
            (short.to_string(), 1),
            (modkit_line(0, "m", '+', 1, 2, 0) + short, 2),
        ] {
            let e = fails(text.as_bytes(), &unmerged());
            assert!(matches!(
                e.kind,
                ErrorKind::ColumnCount {
                    expected: 18,
                    found: 17,
                    ..
                }
            ));
            assert_eq!(e.line, line);
        }
    }

    /// Regression (#18, corpus `modkit_negative_n_mod.bed`): a modkit first row with
    /// N_mod = -5 failed the layout test, so the whole file was read through the ENCODE columns
    /// (m = round(10 × 50%) = 5) without a word. A row that fails its layout's checks now stops
    /// the read at its line.
    #[test]
    fn modkit_row_with_a_bad_count_never_reads_as_encode() {
        let good = |pos| modkit_line(pos, "m", '+', 5, 5, 0);
        type Spoil = fn(String) -> String;
        let spoiled: [(Spoil, usize, &str); 3] = [
            (|l| l.replace(" 5 5 0 ", " -5 5 0 "), 12, "negative"),
            (
                |l| l.replace(" 5 5 0 ", " 5 x 0 "),
                13,
                "not a non-negative integer",
            ),
            (|l| l.replace(" 0 1 2 0\n", " 0 1 -2 0\n"), 17, "negative"),
        ];
        for (spoil, column, reason) in spoiled {
            for (text, line) in [(spoil(good(10)), 1), (good(10) + &spoil(good(12)), 2)] {
                let mut r = reader(text.as_bytes(), &unmerged()).unwrap();
                let e = loop {
                    match r.next_site() {
                        Ok(Some(_)) => continue,
                        Ok(None) => panic!("{text:?} was accepted"),
                        Err(e) => break e,
                    }
                };
                assert_eq!(
                    (e.line, field_err(&e)),
                    (line, (column, reason)),
                    "{text:?}"
                );
                assert_eq!(r.bed_layout(), Some(BedLayout::Modkit));
            }
        }
        // ENCODE stays ENCODE: 11 columns, or text contexts in 12–13.
        for encode in [
            "chr1\t5\t6\t\"x\"\t4\t+\t5\t6\t0,255,0\t4\t50\n",
            "chr1\t5\t6\t\"x\"\t4\t+\t5\t6\t0,255,0\t4\t50\tCG\tCG\t2\n",
        ] {
            let mut r = reader(encode.as_bytes(), &unmerged()).unwrap();
            assert_eq!(r.next_site().unwrap().map(|s| s.methylated), Some(2));
            assert_eq!(r.bed_layout(), Some(BedLayout::Encode));
        }
    }

    /// Regression (#18): a 1-based DSS file said "unsorted input: chr18:36440952 comes after …"
    /// where the file says 36440953: messages quoted 0-based positions next to a line of the
    /// file. They now quote the file's own positions (1-based formats and 0-based ones).
    #[test]
    fn messages_quote_positions_as_written_in_the_file() {
        let o = ReaderOptions::default();
        for (text, want) in [
            (
                "chr\tpos\tN\tX\nchr18\t36440999\t5\t1\nchr18\t36440953\t5\t1\n".to_string(),
                "test.txt:3: unsorted input: chr18:36440953 comes after chr18:36440999",
            ),
            (
                "c\t121\t121\t50\t5\t5\nc\t121\t121\t50\t5\t5\n".to_string(),
                "test.txt:2: duplicate position c:121",
            ),
            (
                "c\t120\t121\t50\t5\t5\nc\t100\t101\t50\t5\t5\n".to_string(),
                "test.txt:2: unsorted input: c:100 comes after c:120",
            ),
            (
                String::from_utf8(report(&[
                    ("c", 101, '+', 4, 6, "CG"),
                    ("c", 101, '-', 1, 1, "CG"),
                ]))
                .unwrap(),
                "test.txt:2: cannot merge strands at c:101: the − strand call there",
            ),
            (
                modkit_line(30, "m", '+', 1, 1, 0) + &modkit_line(20, "m", '+', 1, 1, 0),
                "test.txt:2: unsorted input: chr1:20 comes after chr1:30",
            ),
        ] {
            let e = fails(text.as_bytes(), &o);
            assert!(e.to_string().starts_with(want), "got {e}\nwant {want}");
        }
    }

    #[test]
    fn encode_rounds_percent_times_coverage() {
        let line = |pos: u64, n: u32, pct: &str| {
            format!(
                "chr1\t{pos}\t{}\t\"x\"\t{n}\t+\t{pos}\t{}\t0,255,0\t{n}\t{pct}\tCG\tCG\t3\n",
                pos + 1,
                pos + 1
            )
        };
        let s = line(1, 3, "67") + &line(3, 3, "50") + &line(5, 7, "0") + &line(7, 1363, "100");
        assert_eq!(
            sites(s.as_bytes(), &unmerged()),
            vec![
                (0, 1, F, 2, 3),
                (0, 3, F, 2, 3),
                (0, 5, F, 0, 7),
                (0, 7, F, 1363, 1363)
            ]
        );
        let e = fails(line(1, 3, "101").as_bytes(), &unmerged());
        assert_eq!(field_err(&e), (11, "percent outside 0..100"));
        let bad_end = "chr1\t1\t3\t\"x\"\t3\t+\t1\t2\t0,255,0\t3\t50\n";
        let e = fails(
            bad_end.as_bytes(),
            &ReaderOptions {
                format: Some(Format::BedMethyl),
                ..unmerged()
            },
        );
        assert_eq!(field_err(&e), (3, "end is not start + 1"));
    }

    #[test]
    fn bismark_cov_conventions() {
        let one = b"1\t10\t10\t33.3333333333333\t1\t2\n1\t20\t20\t100\t1\t0\n";
        let zero = b"1\t9\t10\t33.3333333333333\t1\t2\n1\t19\t20\t100\t1\t0\n";
        let o = ReaderOptions::default();
        assert_eq!(sites(one, &o), vec![(0, 9, U, 1, 3), (0, 19, U, 1, 1)]);
        assert_eq!(sites(zero, &o), sites(one, &o));
        let mixed = b"1\t10\t10\t33.3333333333333\t1\t2\n1\t19\t20\t100\t1\t0\n";
        let e = fails(mixed, &o);
        assert_eq!((e.line, field_err(&e).0), (2, 3));
        let bad_pct = b"1\t10\t10\t50\t1\t2\n";
        let e = fails(bad_pct, &o);
        assert_eq!(field_err(&e).0, 4);
    }

    #[test]
    fn forced_format_mismatch_is_a_column_error() {
        let o = ReaderOptions {
            format: Some(Format::BismarkCpgReport),
            ..ReaderOptions::default()
        };
        let e = fails(b"chr1\t5\t10\t3\n", &o);
        assert!(matches!(
            e.kind,
            ErrorKind::ColumnCount {
                expected: 7,
                found: 4,
                ..
            }
        ));
        assert_eq!(e.line, 1);
    }

    // ---- property tests ----

    use proptest::prelude::*;

    /// Sorted, distinct positions with counts: `(pos0, strand_is_reverse, m, n)`.
    fn records() -> impl Strategy<Value = Vec<(u64, bool, u32, u32)>> {
        prop::collection::vec((1u64..1000, any::<bool>(), 0u32..500, 0u32..500), 1..40).prop_map(
            |v| {
                let mut pos = 0u64;
                v.into_iter()
                    .map(|(step, rev, a, b)| {
                        pos += step;
                        (pos, rev, a.min(b), a.max(b))
                    })
                    .collect()
            },
        )
    }

    fn roundtrip(text: &str, format: Format, code: &str) -> Vec<(u64, Strand, u32, u32)> {
        let o = ReaderOptions {
            format: Some(format),
            mod_code: code.into(),
            any_mod: false,
            merge_strands: false,
        };
        let from_detect = ReaderOptions {
            format: None,
            ..o.clone()
        };
        let a = sites(text.as_bytes(), &o);
        if !a.is_empty() {
            assert_eq!(sites(text.as_bytes(), &from_detect), a, "detection");
        }
        a.into_iter().map(|s| (s.1, s.2, s.3, s.4)).collect()
    }

    proptest! {
        #[test]
        fn rendered_records_parse_back(recs in records()) {
            let strand = |rev: bool| if rev { R } else { F };
            let stranded: Vec<_> = recs.iter().map(|&(p, r, m, n)| (p, strand(r), m, n)).collect();
            let unstranded: Vec<_> = recs.iter().map(|&(p, _, m, n)| (p, U, m, n)).collect();

            let mut dss = String::from("chr\tpos\tN\tX\n");
            let mut cov = String::new();
            let mut cov0 = String::new();
            let mut rep = String::new();
            let mut modkit = String::new();
            let mut encode = String::from("track name=x\n");
            for &(p, rev, m, n) in &recs {
                let s = if rev { '-' } else { '+' };
                dss += &format!("chrA\t{}\t{n}\t{m}\n", p + 1);
                let pct = if n == 0 { 0.0 } else { 100.0 * f64::from(m) / f64::from(n) };
                cov += &format!("chrA\t{}\t{}\t{pct}\t{m}\t{}\n", p + 1, p + 1, n - m);
                cov0 += &format!("chrA\t{p}\t{}\t{pct}\t{m}\t{}\n", p + 1, n - m);
                rep += &format!("chrA\t{}\t{s}\t{m}\t{}\tCG\tCGT\n", p + 1, n - m);
                // A CHH row (skipped before any order check) at the same position.
                rep += &format!("chrA\t{}\t+\t7\t7\tCHH\tCAT\n", p + 1);
                modkit += &modkit_line(p, "h", s, 0, n - m, m);
                modkit += &modkit_line(p, "m", s, m, n - m, 0);
            }
            prop_assert_eq!(roundtrip(&dss, Format::Dss, "m"), unstranded.clone());
            prop_assert_eq!(roundtrip(&cov, Format::BismarkCov, "m"), unstranded.clone());
            prop_assert_eq!(roundtrip(&cov0, Format::BismarkCov, "m"), unstranded);
            prop_assert_eq!(roundtrip(&rep, Format::BismarkCpgReport, "m"), stranded.clone());
            prop_assert_eq!(roundtrip(&modkit.replace("chr1", "chrA"), Format::BedMethyl, "m"), stranded.clone());
            // ENCODE: integer percent; the reconstruction is exact for n <= 100.
            for &(p, rev, m, n) in &recs {
                let n = n.min(100);
                let m = m.min(n);
                let pct = if n == 0 { 0 } else { (200 * m + n) / (2 * n) };
                let s = if rev { '-' } else { '+' };
                encode += &format!("chrA\t{p}\t{}\t\"E\"\t{n}\t{s}\t{p}\t{}\t0,0,0\t{n}\t{pct}\tCG\tCG\t9\n", p + 1, p + 1);
            }
            let want: Vec<_> = recs.iter().map(|&(p, r, m, n)| (p, strand(r), m.min(n.min(100)), n.min(100))).collect();
            prop_assert_eq!(roundtrip(&encode, Format::BedMethyl, "m"), want);
        }

        #[test]
        fn strand_merge_sums_each_cpg(cpgs in prop::collection::vec(
            (2u64..50, prop::option::of((0u32..30, 0u32..30)), prop::option::of((0u32..30, 0u32..30))), 0..40))
        {
            // CpG at 0-based p: + call at p, − call at p + 1; either may be absent.
            let mut text = String::new();
            let mut want = Vec::new();
            let mut p = 0u64;
            for (step, plus, minus) in cpgs {
                p += step;
                if plus.is_none() && minus.is_none() {
                    continue;
                }
                let (mut m, mut n) = (0, 0);
                if let Some((a, b)) = plus {
                    text += &format!("c\t{}\t+\t{a}\t{b}\tCG\tCGA\n", p + 1);
                    m += a;
                    n += a + b;
                }
                if let Some((a, b)) = minus {
                    text += &format!("c\t{}\t-\t{a}\t{b}\tCG\tCGA\n", p + 2);
                    m += a;
                    n += a + b;
                }
                want.push((0, p, U, m, n));
            }
            if want.is_empty() {
                // No line at all: an empty input is a NoSites error.
                let e = read(text.as_bytes(), &ReaderOptions::default()).unwrap_err();
                prop_assert!(matches!(e.kind, ErrorKind::NoSites(_)));
            } else {
                prop_assert_eq!(sites(text.as_bytes(), &ReaderOptions::default()), want);
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
            for format in [None, Some(Format::BedMethyl), Some(Format::BismarkCov), Some(Format::BismarkCpgReport), Some(Format::Dss)] {
                let o = ReaderOptions { format, ..ReaderOptions::default() };
                let _ = read(&bytes, &o);
                let o = ReaderOptions { format, merge_strands: false, ..ReaderOptions::default() };
                let _ = read(&bytes, &o);
            }
        }

        #[test]
        fn tab_soup_never_panics(fields in prop::collection::vec(
            prop::sample::select(vec!["chr1", "1", "2", "0", "+", "-", ".", "CG", "CHH", "m", "100.00", "-3", "99999999999999999999", "", " ", "1 2"]), 0..24),
            lines in 1usize..4)
        {
            let line = fields.join("\t") + "\n";
            let text = line.repeat(lines);
            let _ = read(text.as_bytes(), &ReaderOptions::default());
            let _ = Format::detect(&[text.as_bytes()]);
            for format in Format::ALL {
                let mut p = crate::format::LineParser::new(format, "m", true);
                let _ = p.parse(trim_eol(line.as_bytes()));
            }
        }
    }
}
