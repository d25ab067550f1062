//! Per-sample methylation count formats: names, detection from content, and the per-line parsers.
//!
//! Every parser works on the raw bytes of one line (no `String`, no allocation per line) and
//! returns a [`Record`] with a **0-based** position. Lines are split on TABs; bedMethyl fields
//! from the 10th on may also be separated by single spaces (modkit's default "mixed" delimiters).
//! A trailing `\r` (CRLF files) is stripped by the caller ([`crate::sample::SampleReader`]).
//!
//! | format ([`Format`]) | columns used (1-based) | coordinates | strand | `m` (methylated) | `n` (coverage) |
//! |---|---|---|---|---|---|
//! | bedMethyl, modkit layout (18 columns, `modkit pileup`) | 1 chrom, 2 start, 3 end (= start+1), 4 name (mod code, or `code,motif,offset`), 6 strand, 10 N_valid_cov, 11 percent, 12 N_mod, 13 N_canonical, 14 N_other_mod (15–18 only validated) | 0-based (start) | `+`/`-`/`.` from column 6 | N_mod of the row with the chosen code (`--mod-code`, default `m`); with `any_mod`: N_mod + N_other_mod | N_valid_cov |
//! | bedMethyl, ENCODE layout (≥ 11 columns; extras ignored) | 1 chrom, 2 start, 3 end (= start+1), 6 strand, 10 coverage, 11 percent | 0-based | column 6 | round(n × percent / 100) (**approximation**: the file stores only an integer percent) | coverage |
//! | Bismark coverage `.cov` (6 columns) | 1 chrom, 2 start, 3 end, 4 percent, 5 count_methylated, 6 count_unmethylated | 1-based (start == end); the `bismark2bedGraph --zero_based` variant (end = start+1) is 0-based | none → `Unknown`, never strand-merged | count_methylated | methylated + unmethylated |
//! | Bismark CpG / cytosine report (7 columns) | 1 chrom, 2 pos, 3 strand, 4 count_methylated, 5 count_unmethylated, 6 context | 1-based | `+`/`-` from column 3 | count_methylated; only context `CG` rows are kept (CHG/CHH counted and skipped); rows with m = u = 0 are kept as coverage-0 sites (like bsseq `rmZeroCov = FALSE`; the merge treats coverage 0 as missing) | methylated + unmethylated |
//! | DSS text (`chr pos N X`, header, 4 columns) | 1 chr, 2 pos, 3 N, 4 X | 1-based | none → `Unknown` | X | N |
//!
//! Notes:
//! - **modkit, `any_mod`.** modkit counts every valid call at a cytosine exactly once:
//!   N_valid_cov = N_mod + N_canonical + N_other_mod, where N_other_mod counts calls of the *other*
//!   modifications (e.g. 5hmC on an `m` row). Bisulfite sequencing cannot tell 5mC from 5hmC (both
//!   resist conversion), so "any modification" = N_valid_cov − N_canonical = N_mod + N_other_mod of
//!   the chosen row. A file made with `--combine-mods` (code `C`) already has N_mod = all
//!   modifications and N_other_mod = 0, so `any_mod` changes nothing there.
//! - **modkit checks.** The percent column must equal 100 × N_mod / N_valid_cov to modkit's
//!   two printed decimals (tolerance 0.0051). Rows of other codes are skipped (and counted); a file
//!   with no row of the chosen code fails at its end with [`ErrorKind::NoModCode`]. When several
//!   motifs are given to modkit, one cytosine appears once per motif (`m,CG,0`, `m,CGCG,2`) with the
//!   same calls; the reader keeps the first and skips the repeats.
//! - **ENCODE vs modkit** is decided per file from the shape of the first data line's column 12:
//!   a number (well-formed or not: `4`, `-5`) → modkit, which then needs 18 columns; nothing
//!   (11 columns) or text (the ENCODE WGBS files have 14, with text contexts in 12–13) → ENCODE.
//!   The values play no part, so a modkit row that fails a check stops the read at its line; it
//!   never makes the file be read as ENCODE. The mod-code option does not apply to ENCODE files.
//! - **Bismark `.cov` has no strand**: its two strands of a CpG are separate lines at different
//!   positions, reported as [`Strand::Unknown`] and never merged (merging needs the strand).
//! - Checks on every kept line: column count, non-negative integers (positions `u64`, counts
//!   `u32`), `m <= n`, percent consistency where the format has one (modkit; Bismark `.cov`
//!   within 0.01), strand symbol, end = start + 1 for bedMethyl.

use crate::Strand;
use crate::error::ErrorKind;

/// The per-sample count formats the readers understand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// bedMethyl: modkit's 18-column layout or ENCODE's 11-column (+ extras) layout.
    BedMethyl,
    /// Bismark coverage file (`.cov`, `bismark2bedGraph` output): `chrom start end percent m u`.
    BismarkCov,
    /// Bismark genome-wide CpG / cytosine report: `chrom pos strand m u context trinucleotide`.
    BismarkCpgReport,
    /// DSS text table `chr pos N X` with a header.
    Dss,
}

impl Format {
    /// All formats, in a fixed order.
    pub const ALL: [Format; 4] = [
        Format::BedMethyl,
        Format::BismarkCov,
        Format::BismarkCpgReport,
        Format::Dss,
    ];

    /// Parses a user-facing format name (case-insensitive; `-` and `_` are equivalent).
    ///
    /// ```
    /// use methvb_io::format::Format;
    /// assert_eq!(Format::from_name("modkit"), Some(Format::BedMethyl));
    /// assert_eq!(Format::from_name("Bismark_Cov"), Some(Format::BismarkCov));
    /// assert_eq!(Format::from_name("cytosine-report"), Some(Format::BismarkCpgReport));
    /// assert_eq!(Format::from_name("vcf"), None);
    /// ```
    pub fn from_name(s: &str) -> Option<Format> {
        let s = s.trim().to_ascii_lowercase().replace('_', "-");
        Some(match s.as_str() {
            "bedmethyl" | "bed-methyl" | "modkit" | "encode" | "bed" => Format::BedMethyl,
            "bismark-cov" | "cov" | "bismark-coverage" | "coverage" | "bismark" => {
                Format::BismarkCov
            }
            "cpg-report"
            | "cytosine-report"
            | "bismark-cpg-report"
            | "bismark-cytosine-report"
            | "cx-report"
            | "report" => Format::BismarkCpgReport,
            "dss" => Format::Dss,
            _ => return None,
        })
    }

    /// Canonical name (accepted by [`Format::from_name`]).
    pub fn name(&self) -> &'static str {
        match self {
            Format::BedMethyl => "bedmethyl",
            Format::BismarkCov => "bismark-cov",
            Format::BismarkCpgReport => "cpg-report",
            Format::Dss => "dss",
        }
    }

    /// Detects the format from the first lines of a file (after decompression).
    ///
    /// Blank lines, `track` / `browser` / `#` lines and one column-header line (a line whose second
    /// field is not a number) may precede the data; the first data line decides, and every further
    /// data line given must agree. Returns `None` when no data line is given or it fits no format
    /// (for instance a 4-column bedGraph, which has no counts).
    ///
    /// ```
    /// use methvb_io::format::Format;
    /// let lines: [&[u8]; 2] = [b"chr\tpos\tN\tX", b"chr18\t3014904\t26\t2"];
    /// assert_eq!(Format::detect(&lines), Some(Format::Dss));
    /// let cov: [&[u8]; 1] = [b"chr1\t910856\t910856\t100\t1\t0"];
    /// assert_eq!(Format::detect(&cov), Some(Format::BismarkCov));
    /// ```
    pub fn detect(first_data_lines: &[&[u8]]) -> Option<Format> {
        let mut header: Option<&[u8]> = None;
        let mut bedgraph_track = false;
        let mut found: Option<Format> = None;
        for &raw in first_data_lines {
            let line = trim_eol(raw);
            match classify_preamble(line) {
                Preamble::Blank => continue,
                Preamble::Comment => {
                    if line.starts_with(b"track") && contains(line, b"type=bedGraph") {
                        bedgraph_track = true;
                    }
                    continue;
                }
                Preamble::ColumnHeader if found.is_none() && header.is_none() => {
                    header = Some(line);
                    continue;
                }
                Preamble::ColumnHeader => return None,
                Preamble::Data => {}
            }
            let this = detect_data_line(line, header, bedgraph_track)?;
            match found {
                None => found = Some(this),
                Some(f) if f == this => {}
                Some(_) => return None,
            }
        }
        found
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What a line before the first data line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preamble {
    /// Empty (or only whitespace).
    Blank,
    /// `track`, `browser` or `#` line.
    Comment,
    /// A column header: at least two fields, the second not a number (`chr pos N X`,
    /// `chrom chromStart ...`).
    ColumnHeader,
    /// Anything else: a data line.
    Data,
}

/// Classifies a line (without its line ending) as blank, comment, column header or data.
pub fn classify_preamble(line: &[u8]) -> Preamble {
    if line.iter().all(|b| b.is_ascii_whitespace()) {
        return Preamble::Blank;
    }
    if line.starts_with(b"#") || line.starts_with(b"track") || line.starts_with(b"browser") {
        return Preamble::Comment;
    }
    let mut it = line
        .split(|&b| b == b'\t' || b == b' ')
        .filter(|f| !f.is_empty());
    let _first = it.next();
    match it.next() {
        Some(second) if !second.first().is_some_and(u8::is_ascii_digit) => Preamble::ColumnHeader,
        _ => Preamble::Data,
    }
}

/// Removes a trailing `\n` and `\r`.
pub fn trim_eol(mut line: &[u8]) -> &[u8] {
    if let [rest @ .., b'\n'] = line {
        line = rest;
    }
    if let [rest @ .., b'\r'] = line {
        line = rest;
    }
    line
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn is_uint(f: &[u8]) -> bool {
    !f.is_empty() && f.iter().all(u8::is_ascii_digit)
}

fn is_decimal(f: &[u8]) -> bool {
    parse_decimal(f).is_some()
}

fn detect_data_line(line: &[u8], header: Option<&[u8]>, bedgraph: bool) -> Option<Format> {
    let mut fields = Fields::new();
    fields.split(line, BED_SPACE_FROM);
    let f = |i: usize| fields.get(line, i);
    if fields.count >= 11 {
        let (s, e) = (f(1), f(2));
        if is_uint(s)
            && is_uint(e)
            && parse_uint(e)
                .zip(parse_uint(s))
                .is_some_and(|(e, s)| s.checked_add(1) == Some(e))
            && matches!(f(5), b"+" | b"-" | b".")
            && is_uint(f(9))
        {
            return Some(Format::BedMethyl);
        }
    }
    fields.split(line, usize::MAX);
    let f = |i: usize| fields.get(line, i);
    match fields.count {
        4 => {
            let dss_header = header.is_some_and(|h| {
                let mut words = h
                    .split(|&b| b == b'\t' || b == b' ')
                    .filter(|w| !w.is_empty());
                let w: [&[u8]; 4] = [
                    words.next().unwrap_or(b""),
                    words.next().unwrap_or(b""),
                    words.next().unwrap_or(b""),
                    words.next().unwrap_or(b""),
                ];
                w[0].eq_ignore_ascii_case(b"chr")
                    && w[1].eq_ignore_ascii_case(b"pos")
                    && w[2].eq_ignore_ascii_case(b"N")
                    && w[3].eq_ignore_ascii_case(b"X")
            });
            let ints = is_uint(f(1)) && is_uint(f(2)) && is_uint(f(3));
            let looks_bedgraph = parse_uint(f(1))
                .zip(parse_uint(f(2)))
                .is_some_and(|(s, e)| s.checked_add(1) == Some(e));
            let x_le_n = parse_uint(f(3))
                .zip(parse_uint(f(2)))
                .is_some_and(|(x, n)| x <= n);
            (ints && !bedgraph && (dss_header || (header.is_none() && !looks_bedgraph && x_le_n)))
                .then_some(Format::Dss)
        }
        6 => {
            let (s, e) = (parse_uint(f(1)), parse_uint(f(2)));
            let coords = s
                .zip(e)
                .is_some_and(|(s, e)| s == e || s.checked_add(1) == Some(e));
            (coords && is_decimal(f(3)) && is_uint(f(4)) && is_uint(f(5)))
                .then_some(Format::BismarkCov)
        }
        7 => (is_uint(f(1))
            && matches!(f(2), b"+" | b"-")
            && is_uint(f(3))
            && is_uint(f(4))
            && matches!(f(5), b"CG" | b"CHG" | b"CHH"))
        .then_some(Format::BismarkCpgReport),
        _ => None,
    }
}

/// The bedMethyl layout a file's first data line shows, from the shape of column 12 alone:
/// modkit's N_mod is a number there, ENCODE's 14-column files hold a text context (`CG`) and
/// its 11-column files nothing. The values are not looked at, so a modkit row with a bad count
/// (`-5`, `x`) is read as modkit and fails its checks, rather than being read as ENCODE.
fn bed_layout_of(column_12: &[u8]) -> BedLayout {
    match column_12.first() {
        Some(b) if b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.') => BedLayout::Modkit,
        _ => BedLayout::Encode,
    }
}

/// Maximum number of fields whose bounds are kept; more are counted but not stored.
const MAX_FIELDS: usize = 24;
/// bedMethyl: from this 0-based field on, single spaces also separate fields.
const BED_SPACE_FROM: usize = 9;

/// Bounds of the fields of one line, reused from line to line.
#[derive(Debug, Clone)]
struct Fields {
    bounds: [(usize, usize); MAX_FIELDS],
    /// Number of fields in the line (may exceed `MAX_FIELDS`).
    count: usize,
}

impl Fields {
    fn new() -> Self {
        Self {
            bounds: [(0, 0); MAX_FIELDS],
            count: 0,
        }
    }

    /// Splits on TABs; from field index `space_from` on, a space also separates fields.
    fn split(&mut self, line: &[u8], space_from: usize) {
        let mut start = 0;
        let mut count = 0;
        for (i, &b) in line.iter().enumerate() {
            if b == b'\t' || (b == b' ' && count >= space_from) {
                if count < MAX_FIELDS {
                    self.bounds[count] = (start, i);
                }
                count += 1;
                start = i + 1;
            }
        }
        if count < MAX_FIELDS {
            self.bounds[count] = (start, line.len());
        }
        self.count = count + 1;
    }

    /// Field `i` (0-based); empty when absent.
    fn get<'a>(&self, line: &'a [u8], i: usize) -> &'a [u8] {
        if i < self.count.min(MAX_FIELDS) {
            let (s, e) = self.bounds[i];
            &line[s..e]
        } else {
            b""
        }
    }
}

/// Parses a non-negative decimal integer (digits only, up to `u64::MAX`).
fn parse_uint(f: &[u8]) -> Option<u64> {
    if f.is_empty() {
        return None;
    }
    let mut v: u64 = 0;
    for &b in f {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(v)
}

/// Parses a finite decimal number (`12`, `33.3333333333333`, `1e2`); no allocation.
fn parse_decimal(f: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(f).ok()?;
    if s.is_empty()
        || s.bytes()
            .any(|b| b.is_ascii_alphabetic() && b != b'e' && b != b'E')
    {
        return None;
    }
    s.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// Builds a [`ErrorKind::Field`] error; the value is kept to 40 bytes.
fn field_error(column: usize, name: &'static str, value: &[u8], reason: &'static str) -> ErrorKind {
    let shown = &value[..value.len().min(40)];
    ErrorKind::Field {
        column,
        name,
        value: String::from_utf8_lossy(shown).into_owned(),
        reason,
    }
}

/// Reason for an integer field that does not parse.
fn uint_reason(f: &[u8], what: &'static str) -> &'static str {
    if f.is_empty() {
        "empty"
    } else if f[0] == b'-' && f.len() > 1 && f[1..].iter().all(u8::is_ascii_digit) {
        "negative"
    } else if f.iter().all(u8::is_ascii_digit) {
        what
    } else {
        "not a non-negative integer"
    }
}

/// Parses column `col` (1-based) as a `u64` position.
fn pos_field(f: &[u8], col: usize, name: &'static str) -> Result<u64, ErrorKind> {
    parse_uint(f).ok_or_else(|| field_error(col, name, f, uint_reason(f, "overflows u64")))
}

/// Column 1: a contig name, which must not be empty.
fn chrom_field<'a>(f: &'a [u8], name: &'static str) -> Result<&'a [u8], ErrorKind> {
    if f.is_empty() {
        return Err(field_error(1, name, f, "empty"));
    }
    Ok(f)
}

/// A 1-based position `pos` (parsed from `f`, column `col`) as 0-based.
fn one_based(pos: u64, f: &[u8], col: usize, name: &'static str) -> Result<u64, ErrorKind> {
    pos.checked_sub(1)
        .ok_or_else(|| field_error(col, name, f, "position 0 in a 1-based file"))
}

/// Parses column `col` (1-based) as a `u32` count.
fn count_field(f: &[u8], col: usize, name: &'static str) -> Result<u32, ErrorKind> {
    parse_uint(f)
        .and_then(|v| u32::try_from(v).ok())
        .ok_or_else(|| field_error(col, name, f, uint_reason(f, "overflows u32")))
}

/// Parses a percent column (finite, 0..=100).
fn percent_field(f: &[u8], col: usize, name: &'static str) -> Result<f64, ErrorKind> {
    match parse_decimal(f) {
        Some(p) if (0.0..=100.0).contains(&p) => Ok(p),
        Some(_) => Err(field_error(col, name, f, "percent outside 0..100")),
        None => Err(field_error(col, name, f, "not a number")),
    }
}

fn strand_field(f: &[u8], col: usize, allow_dot: bool) -> Result<Strand, ErrorKind> {
    match f {
        b"+" => Ok(Strand::Forward),
        b"-" => Ok(Strand::Reverse),
        b"." if allow_dot => Ok(Strand::Unknown),
        _ => Err(field_error(col, "strand", f, "not a strand (+, - or .)")),
    }
}

/// `m + u` as coverage, checking the sum fits a `u32`.
fn sum_coverage(m: u32, u: u32, col: usize, f: &[u8]) -> Result<u32, ErrorKind> {
    m.checked_add(u)
        .ok_or_else(|| field_error(col, "count_unmethylated", f, "coverage m + u overflows u32"))
}

fn check_m_le_n(m: u64, n: u64) -> Result<(), ErrorKind> {
    if m > n {
        Err(ErrorKind::MethylatedExceedsCoverage {
            methylated: m,
            coverage: n,
        })
    } else {
        Ok(())
    }
}

/// One parsed data line, borrowing the line's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// Contig name as written.
    pub chrom: &'a [u8],
    /// bedMethyl name column (mod code, possibly `code,motif,offset`); empty for other formats.
    pub name: &'a [u8],
    /// 0-based position of the cytosine.
    pub pos: u64,
    /// Strand as the line states it.
    pub strand: Strand,
    /// Methylated count `m`.
    pub methylated: u32,
    /// Coverage `n >= m`.
    pub coverage: u32,
}

/// What a data line turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed<'a> {
    /// A site to keep.
    Site(Record<'a>),
    /// A bedMethyl (modkit) row of another modification code; holds that code.
    OtherModCode(&'a [u8]),
    /// A cytosine report row outside CpG context (CHG, CHH, ...).
    NonCgContext,
}

/// The two bedMethyl layouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BedLayout {
    /// `modkit pileup`: 18 columns, counts per modification code.
    Modkit,
    /// ENCODE WGBS: 11 columns (+ extras), coverage and integer percent only.
    Encode,
}

/// Coordinate convention of a Bismark `.cov` file, fixed by its first line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CovConvention {
    /// `start == end`, 1-based (Bismark default).
    OneBased,
    /// `end == start + 1`, 0-based half-open (`bismark2bedGraph --zero_based`).
    ZeroBased,
}

/// A line parser for one file: remembers what the first line fixed (bedMethyl layout, `.cov`
/// coordinates) and reuses its field buffer. Lines are given without their line ending.
#[derive(Debug, Clone)]
pub struct LineParser {
    format: Format,
    mod_code: Vec<u8>,
    any_mod: bool,
    bed_layout: Option<BedLayout>,
    cov: Option<CovConvention>,
    fields: Fields,
}

impl LineParser {
    /// A parser for `format`; `mod_code` and `any_mod` only matter for modkit bedMethyl.
    pub fn new(format: Format, mod_code: &str, any_mod: bool) -> Self {
        Self {
            format,
            mod_code: mod_code.as_bytes().to_vec(),
            any_mod,
            bed_layout: None,
            cov: None,
            fields: Fields::new(),
        }
    }

    /// The format this parser reads.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The bedMethyl layout, once the first bedMethyl line fixed it.
    pub fn bed_layout(&self) -> Option<BedLayout> {
        self.bed_layout
    }

    /// Bismark `.cov` only: `Some(true)` when the first line showed the 0-based
    /// (`--zero_based`, end = start + 1) convention, `Some(false)` for the default 1-based one
    /// (start = end), `None` before the first line or for other formats.
    pub fn cov_zero_based(&self) -> Option<bool> {
        self.cov.map(|c| c == CovConvention::ZeroBased)
    }

    /// What the file writes for 0-based position 0: 1 for the 1-based formats (DSS, CpG
    /// report, default Bismark `.cov`), 0 for bedMethyl and `--zero_based` `.cov`. Messages add
    /// it so that they quote positions as the file has them.
    pub fn coordinate_base(&self) -> u64 {
        match (self.format, self.cov) {
            (Format::BedMethyl, _) | (Format::BismarkCov, Some(CovConvention::ZeroBased)) => 0,
            _ => 1,
        }
    }

    /// Parses one data line (no line ending). Errors are [`ErrorKind::ColumnCount`],
    /// [`ErrorKind::Field`] and [`ErrorKind::MethylatedExceedsCoverage`].
    pub fn parse<'a>(&mut self, line: &'a [u8]) -> Result<Parsed<'a>, ErrorKind> {
        match self.format {
            Format::BedMethyl => self.parse_bedmethyl(line),
            Format::BismarkCov => self.parse_cov(line),
            Format::BismarkCpgReport => self.parse_report(line),
            Format::Dss => self.parse_dss(line),
        }
    }

    fn parse_bedmethyl<'a>(&mut self, line: &'a [u8]) -> Result<Parsed<'a>, ErrorKind> {
        const FMT: &str = "bedMethyl";
        let fl = &mut self.fields;
        fl.split(line, BED_SPACE_FROM);
        let layout = match self.bed_layout {
            Some(l) => l,
            None => {
                let l = bed_layout_of(fl.get(line, 11));
                self.bed_layout = Some(l);
                l
            }
        };
        let fl = &self.fields;
        let need = match layout {
            BedLayout::Modkit => 18,
            BedLayout::Encode => 11,
        };
        if fl.count < need {
            return Err(ErrorKind::ColumnCount {
                format: FMT,
                expected: need,
                found: fl.count,
            });
        }
        let f = |i: usize| fl.get(line, i - 1);
        let chrom = chrom_field(f(1), "chrom")?;
        let name = f(4);
        if layout == BedLayout::Modkit {
            let code = name.split(|&b| b == b',').next().unwrap_or(b"");
            if code != self.mod_code.as_slice() {
                return Ok(Parsed::OtherModCode(code));
            }
        }
        let start = pos_field(f(2), 2, "start")?;
        let end = pos_field(f(3), 3, "end")?;
        if start.checked_add(1) != Some(end) {
            return Err(field_error(3, "end", f(3), "end is not start + 1"));
        }
        let strand = strand_field(f(6), 6, true)?;
        let coverage = count_field(f(10), 10, "coverage")?;
        let methylated = match layout {
            BedLayout::Modkit => {
                let n_mod = count_field(f(12), 12, "N_mod")?;
                let n_canonical = count_field(f(13), 13, "N_canonical")?;
                let n_other = count_field(f(14), 14, "N_other_mod")?;
                for (col, nm) in [
                    (15, "N_delete"),
                    (16, "N_fail"),
                    (17, "N_diff"),
                    (18, "N_nocall"),
                ] {
                    count_field(f(col), col, nm)?;
                }
                check_m_le_n(u64::from(n_mod), u64::from(coverage))?;
                let sum = u64::from(n_mod) + u64::from(n_canonical) + u64::from(n_other);
                if sum != u64::from(coverage) {
                    return Err(field_error(
                        10,
                        "N_valid_cov",
                        f(10),
                        "not N_mod + N_canonical + N_other_mod",
                    ));
                }
                if coverage > 0 {
                    let pct = percent_field(f(11), 11, "percent_modified")?;
                    let exact = 100.0 * f64::from(n_mod) / f64::from(coverage);
                    if (pct - exact).abs() > 0.0051 {
                        return Err(field_error(
                            11,
                            "percent_modified",
                            f(11),
                            "disagrees with 100 * N_mod / N_valid_cov",
                        ));
                    }
                }
                if self.any_mod {
                    // Cannot overflow: n_mod + n_other <= coverage, checked above.
                    n_mod + n_other
                } else {
                    n_mod
                }
            }
            BedLayout::Encode => {
                let pct = percent_field(f(11), 11, "percent")?;
                // The file stores only coverage and a (rounded) percent: m is reconstructed.
                let m = (f64::from(coverage) * pct / 100.0).round();
                // pct <= 100, so m <= coverage and fits u32.
                m as u32
            }
        };
        check_m_le_n(u64::from(methylated), u64::from(coverage))?;
        Ok(Parsed::Site(Record {
            chrom,
            name,
            pos: start,
            strand,
            methylated,
            coverage,
        }))
    }

    /// Splits `line` into fields, which must number exactly `count` for `format`.
    fn split_exact(
        &mut self,
        line: &[u8],
        count: usize,
        format: &'static str,
    ) -> Result<(), ErrorKind> {
        self.fields.split(line, usize::MAX);
        if self.fields.count != count {
            return Err(ErrorKind::ColumnCount {
                format,
                expected: count,
                found: self.fields.count,
            });
        }
        Ok(())
    }

    fn parse_cov<'a>(&mut self, line: &'a [u8]) -> Result<Parsed<'a>, ErrorKind> {
        self.split_exact(line, 6, "Bismark .cov")?;
        let fl = &self.fields;
        let f = |i: usize| fl.get(line, i - 1);
        let chrom = chrom_field(f(1), "chrom")?;
        let start = pos_field(f(2), 2, "start")?;
        let end = pos_field(f(3), 3, "end")?;
        let this = if start == end {
            CovConvention::OneBased
        } else if start.checked_add(1) == Some(end) {
            CovConvention::ZeroBased
        } else {
            return Err(field_error(
                3,
                "end",
                f(3),
                "end is neither start (1-based) nor start + 1 (0-based)",
            ));
        };
        let conv = *self.cov.get_or_insert(this);
        if conv != this {
            return Err(field_error(
                3,
                "end",
                f(3),
                "coordinate convention differs from the first line",
            ));
        }
        let pos = match conv {
            CovConvention::OneBased => one_based(start, f(2), 2, "start")?,
            CovConvention::ZeroBased => start,
        };
        let m = count_field(f(5), 5, "count_methylated")?;
        let u = count_field(f(6), 6, "count_unmethylated")?;
        let n = sum_coverage(m, u, 6, f(6))?;
        let pct = percent_field(f(4), 4, "percent")?;
        if n > 0 && (pct - 100.0 * f64::from(m) / f64::from(n)).abs() > 0.01 {
            return Err(field_error(
                4,
                "percent",
                f(4),
                "disagrees with 100 * m / (m + u)",
            ));
        }
        Ok(Parsed::Site(Record {
            chrom,
            name: b"",
            pos,
            strand: Strand::Unknown,
            methylated: m,
            coverage: n,
        }))
    }

    fn parse_report<'a>(&mut self, line: &'a [u8]) -> Result<Parsed<'a>, ErrorKind> {
        self.split_exact(line, 7, "Bismark cytosine report")?;
        let fl = &self.fields;
        let f = |i: usize| fl.get(line, i - 1);
        let chrom = chrom_field(f(1), "chrom")?;
        match f(6) {
            b"CG" => {}
            b"CHG" | b"CHH" => return Ok(Parsed::NonCgContext),
            other => {
                if other.is_empty() || !other.iter().all(u8::is_ascii_uppercase) {
                    return Err(field_error(
                        6,
                        "context",
                        other,
                        "not a context (CG, CHG, CHH)",
                    ));
                }
                return Ok(Parsed::NonCgContext);
            }
        }
        let pos = one_based(pos_field(f(2), 2, "pos")?, f(2), 2, "pos")?;
        let strand = strand_field(f(3), 3, false)?;
        let m = count_field(f(4), 4, "count_methylated")?;
        let u = count_field(f(5), 5, "count_unmethylated")?;
        let n = sum_coverage(m, u, 5, f(5))?;
        Ok(Parsed::Site(Record {
            chrom,
            name: b"",
            pos,
            strand,
            methylated: m,
            coverage: n,
        }))
    }

    fn parse_dss<'a>(&mut self, line: &'a [u8]) -> Result<Parsed<'a>, ErrorKind> {
        self.split_exact(line, 4, "DSS")?;
        let fl = &self.fields;
        let f = |i: usize| fl.get(line, i - 1);
        let chrom = chrom_field(f(1), "chr")?;
        let pos = one_based(pos_field(f(2), 2, "pos")?, f(2), 2, "pos")?;
        let n = count_field(f(3), 3, "N")?;
        let x = count_field(f(4), 4, "X")?;
        check_m_le_n(u64::from(x), u64::from(n))?;
        Ok(Parsed::Site(Record {
            chrom,
            name: b"",
            pos,
            strand: Strand::Unknown,
            methylated: x,
            coverage: n,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for f in Format::ALL {
            assert_eq!(Format::from_name(f.name()), Some(f));
        }
        for (n, f) in [
            ("bedMethyl", Format::BedMethyl),
            ("encode", Format::BedMethyl),
            ("modkit", Format::BedMethyl),
            ("cov", Format::BismarkCov),
            ("bismark-cov", Format::BismarkCov),
            ("cpg-report", Format::BismarkCpgReport),
            ("CYTOSINE_REPORT", Format::BismarkCpgReport),
            ("DSS", Format::Dss),
        ] {
            assert_eq!(Format::from_name(n), Some(f), "{n}");
        }
        assert_eq!(Format::from_name("bam"), None);
    }

    #[test]
    fn detects_each_format() {
        let cases: [(&[&[u8]], Option<Format>); 12] = [
            (
                &[b"chr\tpos\tN\tX", b"chr18\t3014904\t26\t2"],
                Some(Format::Dss),
            ),
            (&[b"chr18\t3014904\t26\t2"], Some(Format::Dss)),
            (&[b"chr1\t10\t10\t50\t1\t1"], Some(Format::BismarkCov)),
            (&[b"chr1\t9\t10\t50\t1\t1"], Some(Format::BismarkCov)),
            (
                &[b"chr1\t10\t+\t1\t0\tCG\tCGG"],
                Some(Format::BismarkCpgReport),
            ),
            (
                &[b"chr1\t10\t-\t1\t0\tCHH\tCAT"],
                Some(Format::BismarkCpgReport),
            ),
            (
                &[
                    b"track name=x",
                    b"chr1\t10\t11\t\"E\"\t1\t+\t10\t11\t255,0,0\t1\t100\tCG\tCG\t2",
                ],
                Some(Format::BedMethyl),
            ),
            (
                &[b"o\t9\t10\tm\t4\t+\t9\t10\t255,0,0\t4 25.00 1 1 2 0 0 2 0\r\n"],
                Some(Format::BedMethyl),
            ),
            // bedGraph: no counts.
            (&[b"track type=bedGraph", b"chr1\t9\t10\t100"], None),
            (&[b"chr1\t9\t10\t100"], None),
            (&[b"chr\tpos\tN\tX"], None),
            // Formats disagree between lines.
            (&[b"chr18\t3014904\t26\t2", b"chr1\t10\t10\t50\t1\t1"], None),
        ];
        for (lines, want) in cases {
            assert_eq!(Format::detect(lines), want, "{lines:?}");
        }
    }

    #[test]
    fn splits_bedmethyl_spaces_only_from_column_ten() {
        let line = b"c\t1\t2\tCpG: 4\t0\t+\t1\t2\t0\t4 25.00 1";
        let mut f = Fields::new();
        f.split(line, BED_SPACE_FROM);
        assert_eq!(f.count, 12);
        assert_eq!(f.get(line, 3), b"CpG: 4");
        assert_eq!(f.get(line, 9), b"4");
        assert_eq!(f.get(line, 11), b"1");
        assert_eq!(f.get(line, 12), b"");
        let many = b"a\tb\tc\td\te\tf\tg\th\ti\tj\tk\tl\tm\tn\to\tp\tq\tr\ts\tt\tu\tv\tw\tx\ty\tz";
        f.split(many, usize::MAX);
        assert_eq!(f.count, 26);
        assert_eq!(f.get(many, 23), b"x");
        assert_eq!(f.get(many, 24), b"", "beyond the stored bounds");
    }

    #[test]
    fn number_parsing() {
        assert_eq!(parse_uint(b"0"), Some(0));
        assert_eq!(parse_uint(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_uint(b"18446744073709551616"), None);
        assert_eq!(parse_uint(b"+1"), None);
        assert_eq!(parse_uint(b""), None);
        assert_eq!(parse_decimal(b"33.3333333333333"), Some(33.3333333333333));
        assert_eq!(parse_decimal(b"1e2"), Some(100.0));
        assert_eq!(parse_decimal(b"inf"), None);
        assert_eq!(parse_decimal(b"NaN"), None);
        assert_eq!(uint_reason(b"-5", "x"), "negative");
        assert_eq!(uint_reason(b"5a", "x"), "not a non-negative integer");
        assert_eq!(
            uint_reason(b"99999999999999999999", "overflows u64"),
            "overflows u64"
        );
        assert_eq!(trim_eol(b"a\r\n"), b"a");
        assert_eq!(trim_eol(b"a\n"), b"a");
        assert_eq!(trim_eol(b"a"), b"a");
    }

    #[test]
    fn parses_each_layout() {
        let mut p = LineParser::new(Format::BedMethyl, "m", false);
        let line =
            b"chr20\t9681998\t9681999\tm\t5\t-\t9681998\t9681999\t255,0,0\t5 60.00 3 1 1 0 0 0 0";
        let Parsed::Site(r) = p.parse(line).unwrap() else {
            panic!()
        };
        assert_eq!(
            (r.chrom, r.pos, r.strand, r.methylated, r.coverage),
            (&b"chr20"[..], 9681998, Strand::Reverse, 3, 5)
        );
        assert_eq!(p.bed_layout(), Some(BedLayout::Modkit));
        let mut any = LineParser::new(Format::BedMethyl, "m", true);
        let Parsed::Site(r) = any.parse(line).unwrap() else {
            panic!()
        };
        assert_eq!(r.methylated, 4);
        assert_eq!(
            p.parse(b"c\t1\t2\th,CG,0\t5\t-\t1\t2\t0\t5 0.00 0 5 0 0 0 0 0")
                .unwrap(),
            Parsed::OtherModCode(b"h")
        );
        // Inconsistent N_valid_cov.
        let e = p
            .parse(b"c\t1\t2\tm\t5\t-\t1\t2\t0\t6 50.00 3 2 0 0 0 0 0")
            .unwrap_err();
        assert!(matches!(e, ErrorKind::Field { column: 10, .. }), "{e}");

        let mut r = LineParser::new(Format::BismarkCpgReport, "m", false);
        assert_eq!(
            r.parse(b"c\t5\t+\t1\t2\tCHG\tCAG").unwrap(),
            Parsed::NonCgContext
        );
        let e = r.parse(b"c\t5\t*\t1\t2\tCG\tCGG").unwrap_err();
        assert!(matches!(e, ErrorKind::Field { column: 3, .. }), "{e}");
        let e = r.parse(b"c\t5\t+\t4294967295\t1\tCG\tCGG").unwrap_err();
        assert!(matches!(e, ErrorKind::Field { column: 5, .. }), "{e}");
    }
}
