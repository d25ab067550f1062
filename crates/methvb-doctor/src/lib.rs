//! The input doctor behind `methvb check`: a cheap pre-flight report on a sample sheet, its
//! sample files, an optional regions BED and an optional reference index.
//!
//! Every sample file is streamed once (or only its first `max_lines` lines) through the same
//! [`SampleReader`] that `run` uses, so every reader error (malformed line, unsorted or duplicate
//! positions, m > n, truncated gzip, unknown format ...) is found here too. On top of that the
//! report compares the inputs with each other:
//!
//! * **contig naming**: a contig of one input whose alias ([`contig_aliases`]: `1` ↔ `chr1`,
//!   `MT` ↔ `chrM`) is in another input while its own name is not — an error (the merge stops on
//!   it, and regions or a `.fai` with the other naming would match nothing);
//! * **contigs in only some samples**, and contigs that look like spike-in controls (lambda,
//!   pUC19, phiX): a warning that suggests `--exclude-contigs`;
//! * **contigs missing from the reference** (`--contigs FAI|DICT`): an error, as in the merge;
//! * **contig order** across samples, by replaying the merge's contig rule
//!   ([`methvb_io::contigs`]): an error when the merge would stop;
//! * **groups**: the reference group exists, enough groups (`min_groups`) and enough samples per
//!   group (`min_samples_per_group`), and the sheet's design warnings
//!   ([`SampleSheet::design_warnings`]: a single group, groups of one sample, group names that
//!   differ only in case or punctuation);
//! * **regions**: a BED contig named as an alias of a sample contig (an error, even when the BED
//!   also has the sample's name), regions on contigs no sample has (an error when that is every
//!   region: the run would stop), names shared by several regions (a warning: their ids get the
//!   coordinates);
//! * per sample: format and layout, coordinate convention of Bismark `.cov` files (1-based
//!   default or 0-based `--zero_based`, from the start/end pattern), number of sites, coverage
//!   summary (mean, median, fraction with `n >= 10`, over sites with `n > 0`).
//!
//! Problems that would stop a run or corrupt its results are [`Severity::Error`]; the caller
//! (`methvb check`) exits with code 1 when there is one.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde::Serialize;

use methvb_io::SiteSource;
use methvb_io::contigs::{ContigOrder, contig_aliases, natural_cmp};
use methvb_io::format::BedLayout;
use methvb_io::regions::BedRegions;
use methvb_io::sample::{ReaderOptions, SampleReader};
use methvb_io::sheet::{SampleSheet, is_alignment_file};

/// What to check and how to read.
#[derive(Debug, Clone, Default)]
pub struct CheckOptions {
    /// Reader options, as `run` would use them (a format named in the sheet overrides
    /// `reader.format`).
    pub reader: ReaderOptions,
    /// Contigs to leave out (`--exclude-contigs`): their sites are counted apart and they take
    /// no part in the cross-input comparisons.
    pub exclude_contigs: Vec<String>,
    /// Read at most this many lines of each sample file (`None`: whole files).
    pub max_lines: Option<u64>,
    /// Regions BED to compare with the samples.
    pub regions: Option<PathBuf>,
    /// Reference `.fai` / `.dict` giving the contig set and order.
    pub contigs: Option<PathBuf>,
    /// Reference group (`--reference`); `None`: the first sample's group.
    pub reference: Option<String>,
    /// Samples with coverage needed in every group per site (`--min-samples-per-group`); a group
    /// with fewer samples is an error. 0 is treated as 1.
    pub min_samples_per_group: usize,
    /// Groups the analysis needs (e.g. 2 for a contrast); fewer is an error. 0 is treated as 1.
    pub min_groups: usize,
    /// Reference FASTA (plain, gzip or BGZF): the first [`FASTA_SITES`] covered sites of each
    /// sample are looked up there to tell whether positions sit on CpGs, or one base off.
    pub fasta: Option<PathBuf>,
}

/// Sites per sample looked up in the reference FASTA.
pub const FASTA_SITES: usize = 10_000;

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Would stop `run` or corrupt its results: `methvb check` exits with code 1.
    Error,
    /// Worth a look; the run would go through.
    Warning,
    /// For information.
    Note,
}

impl Severity {
    /// Lower-case name (`error`, `warning`, `note`).
    pub fn name(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Note => "note",
        }
    }
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Issue {
    /// How serious it is.
    pub severity: Severity,
    /// Stable short code, e.g. `contig-naming`, `read-error`, `spike-in`.
    pub code: &'static str,
    /// Human-readable message (names the files, and the line where there is one).
    pub message: String,
}

/// Sites and coverage of one contig in one sample.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContigCount {
    /// Contig name.
    pub name: String,
    /// Sites read on it.
    pub sites: u64,
}

/// What was learned about one sample.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SampleCheck {
    /// Sample name from the sheet.
    pub name: String,
    /// Group from the sheet.
    pub group: String,
    /// File path (resolved against the sheet).
    pub path: String,
    /// Format read (`bedmethyl`, `bismark-cov`, ...), `None` when the file could not be opened.
    pub format: Option<String>,
    /// bedMethyl layout (`modkit` or `encode`), Bismark `.cov` convention (`1-based` or
    /// `0-based`), else `None`.
    pub layout: Option<String>,
    /// Whether the whole file was read (false when `max_lines` stopped early or on an error).
    pub complete: bool,
    /// Physical lines read.
    pub lines_read: u64,
    /// Sites read (after strand merging), excluded contigs left out.
    pub sites: u64,
    /// Sites with coverage `n > 0`.
    pub covered_sites: u64,
    /// Sites on excluded contigs.
    pub excluded_sites: u64,
    /// Mean coverage over covered sites.
    pub mean_coverage: f64,
    /// Median (lower) coverage over covered sites; exact below 65,536, `u32::MAX` when the
    /// median is above that.
    pub median_coverage: u32,
    /// Fraction of covered sites with `n >= 10`.
    pub frac_coverage_ge_10: f64,
    /// Mean methylation level `sum m / sum n` over covered sites.
    pub mean_methylation: f64,
    /// Contigs in file order (excluded ones left out).
    pub contigs: Vec<ContigCount>,
    /// Rows skipped as another bedMethyl modification code.
    pub skipped_other_mod_code: u64,
    /// Cytosine-report rows skipped outside CpG context.
    pub skipped_non_cg: u64,
    /// The reader error that stopped the sample, if any.
    pub error: Option<String>,
    /// With a reference FASTA: fraction of the looked-up sites that fall on a C or G of a CpG
    /// when shifted by −1, 0 and +1 bases (`[−1, 0, +1]`), and how many were looked up.
    pub cpg_fraction: Option<([f64; 3], usize)>,
    /// The first covered sites (contig index into `contigs`, 0-based position), for the FASTA
    /// check.
    #[serde(skip)]
    probe: Vec<(usize, u64)>,
}

/// One group of the sheet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupCheck {
    /// Group name.
    pub name: String,
    /// Samples in it.
    pub samples: usize,
    /// Whether it is the reference group.
    pub reference: bool,
}

/// One contig across all inputs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContigCheck {
    /// Contig name.
    pub name: String,
    /// Names of the samples that have it.
    pub samples: Vec<String>,
    /// Sites over all samples.
    pub sites: u64,
    /// Regions on it (`None` without a regions file).
    pub regions: Option<usize>,
    /// Whether the reference lists it (`None` without a reference).
    pub in_reference: Option<bool>,
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckReport {
    /// The sample sheet.
    pub sheet: String,
    /// Samples, in sheet order.
    pub samples: Vec<SampleCheck>,
    /// Groups, the reference first.
    pub groups: Vec<GroupCheck>,
    /// Contigs of the samples (in merge order as far as it can be told), then contigs only in
    /// the regions file.
    pub contigs: Vec<ContigCheck>,
    /// The regions file and its number of regions.
    pub regions: Option<(String, usize)>,
    /// The reference index and its number of contigs.
    pub reference: Option<(String, usize)>,
    /// Contigs excluded with `--exclude-contigs`.
    pub excluded_contigs: Vec<String>,
    /// Whether every file was read to its end.
    pub complete: bool,
    /// Findings, errors first.
    pub issues: Vec<Issue>,
}

impl CheckReport {
    /// Number of [`Severity::Error`] findings.
    pub fn n_errors(&self) -> usize {
        self.count(Severity::Error)
    }

    /// Number of [`Severity::Warning`] findings.
    pub fn n_warnings(&self) -> usize {
        self.count(Severity::Warning)
    }

    fn count(&self, s: Severity) -> usize {
        self.issues.iter().filter(|i| i.severity == s).count()
    }

    /// The messages of the error findings, one a line.
    pub fn error_messages(&self) -> Vec<&str> {
        self.issues
            .iter()
            .filter(|i| i.severity == Severity::Error)
            .map(|i| i.message.as_str())
            .collect()
    }

    /// The report as text for a terminal.
    pub fn render(&self) -> String {
        use std::fmt::Write;
        let mut o = String::new();
        let _ = writeln!(
            o,
            "methvb check: {} ({} samples, {} groups){}",
            self.sheet,
            self.samples.len(),
            self.groups.len(),
            if self.complete {
                ""
            } else {
                "; only the head of some files was read"
            }
        );
        if !self.samples.is_empty() {
            let _ = writeln!(o, "\nSamples");
            let _ = writeln!(
                o,
                "  {:<16} {:<12} {:<12} {:<8} {:>12} {:>9} {:>7} {:>7} {:>6} {:>7}  file",
                "sample",
                "group",
                "format",
                "layout",
                "sites",
                "mean n",
                "median",
                "n>=10",
                "meth",
                "contigs"
            );
            for s in &self.samples {
                let _ = writeln!(
                    o,
                    "  {:<16} {:<12} {:<12} {:<8} {:>12} {:>9.2} {:>7} {:>6.1}% {:>6.3} {:>7}  {}{}",
                    s.name,
                    s.group,
                    s.format.as_deref().unwrap_or("?"),
                    s.layout.as_deref().unwrap_or("-"),
                    s.sites,
                    s.mean_coverage,
                    s.median_coverage,
                    100.0 * s.frac_coverage_ge_10,
                    s.mean_methylation,
                    s.contigs.len(),
                    s.path,
                    if s.complete { "" } else { " (head only)" }
                );
            }
        }
        if self.samples.iter().any(|s| s.cpg_fraction.is_some()) {
            let _ = writeln!(
                o,
                "\nPositions on a CpG of the reference (as read; shifted by -1 / +1)"
            );
            for s in &self.samples {
                if let Some(([lo, mid, hi], n)) = s.cpg_fraction {
                    let _ = writeln!(
                        o,
                        "  {:<16} {:>6.1}%  ({:.1}% / {:.1}%) of {n} sites",
                        s.name,
                        100.0 * mid,
                        100.0 * lo,
                        100.0 * hi
                    );
                }
            }
        }
        if !self.groups.is_empty() {
            let _ = writeln!(o, "\nGroups");
            for g in &self.groups {
                let _ = writeln!(
                    o,
                    "  {:<16} {} sample{}{}",
                    g.name,
                    g.samples,
                    if g.samples == 1 { "" } else { "s" },
                    if g.reference { " (reference)" } else { "" }
                );
            }
        }
        if !self.contigs.is_empty() {
            let n = self.samples.len();
            let _ = writeln!(o, "\nContigs (samples having it of {n})");
            const SHOWN: usize = 40;
            for c in self.contigs.iter().take(SHOWN) {
                let mut line = format!(
                    "  {:<24} {:>3}/{n} samples {:>12} sites",
                    c.name,
                    c.samples.len(),
                    c.sites
                );
                if let Some(r) = c.regions {
                    let _ = write!(line, " {r:>8} regions");
                }
                match c.in_reference {
                    Some(true) => line.push_str("  in reference"),
                    Some(false) => line.push_str("  NOT in reference"),
                    None => {}
                }
                let _ = writeln!(o, "{line}");
            }
            if self.contigs.len() > SHOWN {
                let _ = writeln!(o, "  ... {} more", self.contigs.len() - SHOWN);
            }
        }
        if let Some((p, n)) = &self.regions {
            let _ = writeln!(o, "\nRegions: {n} in {p}");
        }
        if let Some((p, n)) = &self.reference {
            let _ = writeln!(o, "Reference: {n} contigs in {p}");
        }
        if !self.excluded_contigs.is_empty() {
            let _ = writeln!(o, "Excluded contigs: {}", self.excluded_contigs.join(","));
        }
        let _ = writeln!(o);
        for i in &self.issues {
            let _ = writeln!(o, "{}: {}", i.severity.name(), i.message);
        }
        let _ = writeln!(
            o,
            "{}: {} error{}, {} warning{}",
            if self.n_errors() > 0 { "FAILED" } else { "OK" },
            self.n_errors(),
            if self.n_errors() == 1 { "" } else { "s" },
            self.n_warnings(),
            if self.n_warnings() == 1 { "" } else { "s" },
        );
        o
    }
}

/// Names that suggest a spike-in control rather than a contig of the genome studied.
pub fn looks_like_spike_in(name: &str) -> bool {
    let l = name.to_ascii_lowercase();
    [
        "lambda",
        "puc19",
        "puc18",
        "phix",
        "j02459",
        "l09137",
        "nc_001416",
        "spike",
        "ercc",
        "unmethylated",
        "methylated_control",
    ]
    .iter()
    .any(|k| l.contains(k))
}

/// Coverage histogram size: coverages below it are counted exactly.
const HIST: usize = 1 << 16;

/// Streams one sample and summarises it. Reader errors end the sample and are kept in `error`.
fn check_sample(
    entry: &methvb_io::sheet::SampleEntry,
    opts: &CheckOptions,
    exclude: &HashSet<String>,
    hist: &mut [u64],
) -> SampleCheck {
    let mut out = SampleCheck {
        name: entry.name.clone(),
        group: entry.group.clone(),
        path: entry.path.display().to_string(),
        format: None,
        layout: None,
        complete: false,
        lines_read: 0,
        sites: 0,
        covered_sites: 0,
        excluded_sites: 0,
        mean_coverage: 0.0,
        median_coverage: 0,
        frac_coverage_ge_10: 0.0,
        mean_methylation: 0.0,
        contigs: Vec::new(),
        skipped_other_mod_code: 0,
        skipped_non_cg: 0,
        error: None,
        cpg_fraction: None,
        probe: Vec::new(),
    };
    if is_alignment_file(&entry.path) {
        // BAM/SAM samples are piled up by `run` (methvb-bam); the text doctor skips them (a
        // CRAM sample stopped the sheet already).
        out.format = Some("bam".into());
        return out;
    }
    let mut ro = opts.reader.clone();
    if entry.format.is_some() {
        ro.format = entry.format;
    }
    let mut reader = match SampleReader::open(&entry.path, &ro) {
        Ok(r) => r,
        Err(e) => {
            out.error = Some(e.to_string());
            return out;
        }
    };
    out.format = Some(reader.format().name().to_string());
    hist.fill(0);
    let (mut sum_n, mut sum_m) = (0u64, 0u64);
    let mut ge10 = 0u64;
    // Per local contig id: index into out.contigs, or usize::MAX when excluded.
    let mut local: Vec<usize> = Vec::new();
    let max_lines = opts.max_lines.unwrap_or(u64::MAX);
    loop {
        match reader.next_site() {
            // The reader may look one line ahead (strand merging): sites are cut by their line.
            Ok(Some(site)) if site.line > max_lines => break,
            Ok(Some(site)) => {
                if local.len() <= site.contig {
                    local.resize(site.contig + 1, usize::MAX - 1);
                }
                if local[site.contig] == usize::MAX - 1 {
                    let name = reader.contig_name(site.contig);
                    local[site.contig] = if exclude.contains(name) {
                        usize::MAX
                    } else {
                        out.contigs.push(ContigCount {
                            name: name.to_string(),
                            sites: 0,
                        });
                        out.contigs.len() - 1
                    };
                }
                let k = local[site.contig];
                if k == usize::MAX {
                    out.excluded_sites += 1;
                    continue;
                }
                out.contigs[k].sites += 1;
                out.sites += 1;
                let n = site.coverage;
                if n > 0 {
                    if opts.fasta.is_some() && out.probe.len() < FASTA_SITES {
                        out.probe.push((k, site.pos));
                    }
                    out.covered_sites += 1;
                    sum_n += u64::from(n);
                    sum_m += u64::from(site.methylated);
                    if n >= 10 {
                        ge10 += 1;
                    }
                    if let Some(h) = hist.get_mut(n as usize) {
                        *h += 1;
                    }
                }
            }
            Ok(None) => {
                out.complete = true;
                break;
            }
            Err(e) => {
                out.error = Some(e.to_string());
                break;
            }
        }
    }
    out.lines_read = reader.lines_read();
    out.layout = match (reader.bed_layout(), reader.cov_zero_based()) {
        (Some(BedLayout::Modkit), _) => Some("modkit".into()),
        (Some(BedLayout::Encode), _) => Some("encode".into()),
        (None, Some(true)) => Some("0-based".into()),
        (None, Some(false)) => Some("1-based".into()),
        (None, None) => None,
    };
    out.skipped_other_mod_code = reader.skipped().other_mod_code;
    out.skipped_non_cg = reader.skipped().non_cg_context;
    if out.covered_sites > 0 {
        let c = out.covered_sites as f64;
        out.mean_coverage = sum_n as f64 / c;
        out.mean_methylation = sum_m as f64 / sum_n as f64;
        out.frac_coverage_ge_10 = ge10 as f64 / c;
        // Lower median: the ceil(c/2)-th smallest coverage.
        let half = out.covered_sites.div_ceil(2);
        let mut acc = 0u64;
        out.median_coverage = u32::MAX;
        for (v, &h) in hist.iter().enumerate() {
            acc += h;
            if acc >= half {
                out.median_coverage = v as u32;
                break;
            }
        }
    }
    out
}

/// Looks the probe sites of every sample up in the FASTA `path` (streamed once, only the bases
/// needed are kept) and fills each sample's `cpg_fraction`.
fn fasta_cpg_check(path: &Path, samples: &mut [SampleCheck]) -> Result<(), methvb_io::ReadError> {
    use std::io::BufRead;
    // Wanted positions per contig name: p - 2 ..= p + 3 around each probe site.
    let mut wanted: HashMap<String, Vec<u64>> = HashMap::new();
    for s in samples.iter() {
        for &(k, p) in &s.probe {
            let v = wanted.entry(s.contigs[k].name.clone()).or_default();
            v.extend((p.saturating_sub(2))..=p.saturating_add(3));
        }
    }
    for v in wanted.values_mut() {
        v.sort_unstable();
        v.dedup();
    }
    let mut bases: HashMap<String, Vec<u8>> = HashMap::new();
    let mut reader = methvb_io::input::open(path)?;
    let mut line = Vec::with_capacity(256);
    let mut line_no = 0u64;
    // Current contig: its wanted positions, the next one to fill, the bases, the offset.
    let mut cur: Option<(String, usize, Vec<u8>)> = None;
    let mut offset = 0u64;
    let finish = |cur: &mut Option<(String, usize, Vec<u8>)>,
                  bases: &mut HashMap<String, Vec<u8>>| {
        if let Some((name, _, b)) = cur.take() {
            bases.insert(name, b);
        }
    };
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| methvb_io::input::map_read_error(path, line_no + 1, e))?;
        if n == 0 {
            break;
        }
        line_no += 1;
        let l = methvb_io::format::trim_eol(&line);
        if let Some(h) = l.strip_prefix(b">") {
            finish(&mut cur, &mut bases);
            let name =
                String::from_utf8_lossy(h.split(|b| b.is_ascii_whitespace()).next().unwrap_or(b""))
                    .into_owned();
            offset = 0;
            if let Some(w) = wanted.get(&name) {
                cur = Some((name, 0, vec![b'N'; w.len()]));
            }
            continue;
        }
        let end = offset + l.len() as u64;
        if let Some((name, next, b)) = cur.as_mut() {
            // `cur` is only set for contigs with wanted positions.
            let w = &wanted[name.as_str()];
            while *next < w.len() && w[*next] < end {
                if w[*next] >= offset {
                    b[*next] = l[(w[*next] - offset) as usize].to_ascii_uppercase();
                }
                *next += 1;
            }
        }
        offset = end;
    }
    finish(&mut cur, &mut bases);
    let base_at = |name: &str, q: u64| -> u8 {
        match (wanted.get(name), bases.get(name)) {
            (Some(w), Some(b)) => w.binary_search(&q).map_or(b'N', |i| b[i]),
            _ => b'N',
        }
    };
    for s in samples.iter_mut() {
        let mut hits = [0usize; 3];
        let mut looked = 0usize;
        for &(k, p) in &s.probe {
            let name = s.contigs[k].name.as_str();
            if !bases.contains_key(name) {
                continue;
            }
            looked += 1;
            for (i, d) in [-1i64, 0, 1].into_iter().enumerate() {
                let Some(q) = p.checked_add_signed(d) else {
                    continue;
                };
                let here = base_at(name, q);
                let on_cpg = (here == b'C' && base_at(name, q + 1) == b'G')
                    || (here == b'G' && q > 0 && base_at(name, q - 1) == b'C');
                if on_cpg {
                    hits[i] += 1;
                }
            }
        }
        if looked > 0 {
            let f = |h: usize| h as f64 / looked as f64;
            s.cpg_fraction = Some(([f(hits[0]), f(hits[1]), f(hits[2])], looked));
        }
    }
    Ok(())
}

/// Replays the merge's learned contig rule on the samples' contig sequences: returns the first
/// conflict as (sample that would fail, contig, contig it comes after, sample that had it first).
fn order_conflict(
    seqs: &[Vec<&str>],
    order: &ContigOrder,
) -> Option<(usize, String, String, usize)> {
    let mut next = vec![0usize; seqs.len()];
    let mut finished: HashMap<&str, usize> = HashMap::new();
    loop {
        // Heads; a head at a finished contig means the merge stops there.
        for (i, s) in seqs.iter().enumerate() {
            if let Some(&c) = s.get(next[i])
                && let Some(&first) = finished.get(c)
            {
                let before = s[next[i] - 1].to_string();
                return Some((i, c.to_string(), before, first));
            }
        }
        let mut best: Option<(&str, usize)> = None;
        for (i, s) in seqs.iter().enumerate() {
            if let Some(&c) = s.get(next[i]) {
                best = match best {
                    Some((b, j)) if order.cmp_names(b, c).is_le() => Some((b, j)),
                    _ => Some((c, i)),
                };
            }
        }
        let (c, first) = best?;
        for (i, s) in seqs.iter().enumerate() {
            if s.get(next[i]) == Some(&c) {
                next[i] += 1;
            }
        }
        finished.insert(c, first);
    }
}

/// Up to `k` names, comma-separated, with "and N more".
fn some(names: &[String], k: usize) -> String {
    let mut s = names.iter().take(k).cloned().collect::<Vec<_>>().join(", ");
    if names.len() > k {
        s.push_str(&format!(" and {} more", names.len() - k));
    }
    s
}

/// Checks the sample sheet at `sheet` with `opts`; never fails (every problem is an [`Issue`]).
pub fn check(sheet_path: &Path, opts: &CheckOptions) -> CheckReport {
    let mut issues: Vec<Issue> = Vec::new();
    let mut push = |severity, code, message: String| {
        issues.push(Issue {
            severity,
            code,
            message,
        })
    };
    let mut report = CheckReport {
        sheet: sheet_path.display().to_string(),
        samples: Vec::new(),
        groups: Vec::new(),
        contigs: Vec::new(),
        regions: None,
        reference: None,
        excluded_contigs: opts.exclude_contigs.clone(),
        complete: true,
        issues: Vec::new(),
    };
    let exclude: HashSet<String> = opts.exclude_contigs.iter().cloned().collect();

    // Sheet and groups.
    let sheet = match SampleSheet::from_path(sheet_path)
        .and_then(|s| s.with_reference(opts.reference.as_deref()))
    {
        Ok(s) => Some(s),
        Err(e) => {
            push(Severity::Error, "sheet", e.to_string());
            None
        }
    };
    if let Some(sheet) = &sheet {
        for (k, (g, n)) in sheet.group_sizes().into_iter().enumerate() {
            report.groups.push(GroupCheck {
                name: g.to_string(),
                samples: n,
                reference: k == 0,
            });
        }
        let min_groups = opts.min_groups.max(1);
        let too_few_groups = sheet.n_groups() < min_groups;
        if too_few_groups {
            push(
                Severity::Error,
                "groups",
                format!(
                    "{}: {} group{} ({}), but {min_groups} are needed for a contrast; add samples \
                     of another group to the sheet",
                    sheet_path.display(),
                    sheet.n_groups(),
                    if sheet.n_groups() == 1 { "" } else { "s" },
                    sheet.groups().join(", ")
                ),
            );
        }
        if let Err(e) = sheet.check_samples_per_group(opts.min_samples_per_group.max(1)) {
            push(Severity::Error, "group-size", e.to_string());
        }
        for w in sheet.design_warnings() {
            if !(too_few_groups && w.code == "single-group") {
                push(Severity::Warning, w.code, w.message);
            }
        }
    }

    // Reference and regions.
    let order = match &opts.contigs {
        Some(p) => match ContigOrder::from_path(p) {
            Ok(o) => {
                report.reference = o
                    .fixed()
                    .map(|f| (p.display().to_string(), f.names().len()));
                o
            }
            Err(e) => {
                push(Severity::Error, "reference", e.to_string());
                ContigOrder::Learned
            }
        },
        None => ContigOrder::Learned,
    };
    let regions = match &opts.regions {
        Some(p) => match BedRegions::from_path(p) {
            Ok(r) => {
                report.regions = Some((p.display().to_string(), r.len()));
                if let Some(w) = r.repeated_names_warning() {
                    push(Severity::Warning, "region-names", w);
                }
                Some(r)
            }
            Err(e) => {
                push(Severity::Error, "regions", e.to_string());
                None
            }
        },
        None => None,
    };

    // Samples.
    if let Some(sheet) = &sheet {
        let mut hist = vec![0u64; HIST];
        for entry in &sheet.samples {
            let s = check_sample(entry, opts, &exclude, &mut hist);
            if s.format.as_deref() == Some("bam") {
                push(
                    Severity::Note,
                    "bam-not-checked",
                    format!(
                        "{}: BAM/SAM sample not read by check (run piles it up); its contigs are \
                         left out of the comparisons",
                        s.path
                    ),
                );
            } else if let Some(e) = &s.error {
                push(Severity::Error, "read-error", e.clone());
            } else if s.sites == 0 && s.complete {
                let why = if s.excluded_sites > 0 {
                    "every site is on an excluded contig"
                } else {
                    "the file holds no data line (empty, header only, or no CpG-context row)"
                };
                push(
                    Severity::Error,
                    "no-sites",
                    format!("{}: no sites: {why}", s.path),
                );
            } else if s.covered_sites == 0 && s.sites > 0 {
                push(
                    Severity::Warning,
                    "no-coverage",
                    format!("{}: every site read has coverage 0", s.path),
                );
            }
            report.complete &= s.complete;
            report.samples.push(s);
        }
        if let Some(fa) = &opts.fasta {
            match fasta_cpg_check(fa, &mut report.samples) {
                Ok(()) => {
                    for s in &report.samples {
                        let Some(([lo, mid, hi], n)) = s.cpg_fraction else {
                            continue;
                        };
                        let (d, best) = if lo >= hi { (-1, lo) } else { (1, hi) };
                        if n >= 20 && best >= 0.8 && mid < 0.5 {
                            let (seen, truth) = if d == 1 {
                                ("one base before", "0-based read as 1-based")
                            } else {
                                ("one base after", "1-based read as 0-based")
                            };
                            push(
                                Severity::Error,
                                "off-by-one",
                                format!(
                                    "{}: positions sit {seen} the CpGs of {} ({:.0}% on a CpG \
                                     shifted by {d:+}, {:.0}% as read, of {n} sites): the \
                                     coordinates look {truth}; fix the file or name its format",
                                    s.path,
                                    fa.display(),
                                    100.0 * best,
                                    100.0 * mid
                                ),
                            );
                        } else if n >= 20 && mid < 0.5 {
                            push(
                                Severity::Warning,
                                "not-cpg",
                                format!(
                                    "{}: only {:.0}% of {n} sites fall on a CpG of {}: not \
                                     CpG data, or another reference assembly",
                                    s.path,
                                    100.0 * mid,
                                    fa.display()
                                ),
                            );
                        }
                    }
                    if report.samples.iter().all(|s| s.cpg_fraction.is_none())
                        && report.samples.iter().any(|s| !s.probe.is_empty())
                    {
                        push(
                            Severity::Warning,
                            "fasta-contigs",
                            format!(
                                "{}: none of the samples' contigs is in this FASTA",
                                fa.display()
                            ),
                        );
                    }
                }
                Err(e) => push(Severity::Error, "fasta", e.to_string()),
            }
        }
        // Bismark .cov conventions that differ between samples (both are read correctly).
        let conv: Vec<&SampleCheck> = report
            .samples
            .iter()
            .filter(|s| s.format.as_deref() == Some("bismark-cov") && s.layout.is_some())
            .collect();
        if let Some(z) = conv.iter().find(|s| s.layout.as_deref() == Some("0-based")) {
            push(
                Severity::Note,
                "cov-0-based",
                format!(
                    "{}: Bismark .cov with end = start + 1: read as 0-based \
                     (bismark2bedGraph --zero_based)",
                    z.path
                ),
            );
        }
    }

    // Contigs across inputs.
    // BAM samples were not read: they take no part in the contig comparisons.
    let n_samples = report
        .samples
        .iter()
        .filter(|s| s.format.as_deref() != Some("bam"))
        .count();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut contigs: Vec<ContigCheck> = Vec::new();
    for s in &report.samples {
        for c in &s.contigs {
            let k = *index.entry(c.name.clone()).or_insert_with(|| {
                contigs.push(ContigCheck {
                    name: c.name.clone(),
                    samples: Vec::new(),
                    sites: 0,
                    regions: None,
                    in_reference: None,
                });
                contigs.len() - 1
            });
            contigs[k].samples.push(s.name.clone());
            contigs[k].sites += c.sites;
        }
    }
    let region_counts: HashMap<String, usize> = regions
        .as_ref()
        .map(|r| r.contigs().map(|(c, n)| (c.to_string(), n)).collect())
        .unwrap_or_default();
    if regions.is_some() {
        for c in &mut contigs {
            c.regions = Some(region_counts.get(&c.name).copied().unwrap_or(0));
        }
    }
    if let Some(f) = order.fixed() {
        for c in &mut contigs {
            c.in_reference = Some(f.rank(&c.name).is_some());
        }
    }
    // Naming: each input's contig set against every other input's.
    let mut inputs: Vec<(String, HashSet<String>)> = Vec::new();
    for s in &report.samples {
        // A file listed for several samples is compared once.
        if !inputs.iter().any(|(p, _)| *p == s.path) {
            inputs.push((
                s.path.clone(),
                s.contigs.iter().map(|c| c.name.clone()).collect(),
            ));
        }
    }
    // The regions are compared one way only: a BED contig whose alias a sample has is an error
    // even when the BED also has the sample's name (those regions would be dropped).
    let regions_input = regions.as_ref().map(|_| inputs.len());
    if let Some(r) = &regions {
        inputs.push((
            r.path().display().to_string(),
            r.contigs()
                .map(|(c, _)| c.to_string())
                .filter(|c| !exclude.contains(c))
                .collect(),
        ));
    }
    if let (Some(f), Some(p)) = (order.fixed(), &opts.contigs) {
        inputs.push((
            p.display().to_string(),
            f.names()
                .iter()
                .filter(|c| !exclude.contains(*c))
                .cloned()
                .collect(),
        ));
    }
    let mut seen_pairs: HashSet<(usize, usize)> = HashSet::new();
    for a in 0..inputs.len() {
        for b in 0..inputs.len() {
            if a == b || seen_pairs.contains(&(b, a)) {
                continue;
            }
            let mut pairs: Vec<String> = Vec::new();
            let mut names_a: Vec<&String> = inputs[a].1.iter().collect();
            names_a.sort_by(|x, y| natural_cmp(x, y));
            for name in names_a {
                if inputs[b].1.contains(name) {
                    continue;
                }
                if let Some(alias) = contig_aliases(name).into_iter().find(|al| {
                    inputs[b].1.contains(al)
                        && (Some(a) == regions_input || !inputs[a].1.contains(al))
                }) {
                    pairs.push(format!("{name} ↔ {alias}"));
                }
            }
            if !pairs.is_empty() {
                seen_pairs.insert((a, b));
                push(
                    Severity::Error,
                    "contig-naming",
                    format!(
                        "contig naming differs: {} vs {}: {} — rename one side (add or strip \
                         the `chr` prefix; chrM ↔ MT) so both use the same names",
                        inputs[a].0,
                        inputs[b].0,
                        some(&pairs, 6)
                    ),
                );
            }
        }
    }
    // Contigs in only some samples; spike-ins.
    let complete = report.complete;
    if n_samples > 1 {
        let partial: Vec<&ContigCheck> = contigs
            .iter()
            .filter(|c| c.samples.len() < n_samples)
            .collect();
        if !partial.is_empty() {
            let names: Vec<String> = partial
                .iter()
                .map(|c| format!("{} ({}/{n_samples} samples)", c.name, c.samples.len()))
                .collect();
            // Small contigs (under 1% of all sites) and spike-ins are worth excluding; large
            // ones missing from some samples point at different references or subsets.
            let total: u64 = contigs.iter().map(|c| c.sites).sum();
            let (minor, major): (Vec<&ContigCheck>, Vec<&ContigCheck>) =
                partial.iter().partition(|c| {
                    looks_like_spike_in(&c.name) || (c.sites as f64) < 0.01 * total as f64
                });
            let mut advice = Vec::new();
            if !minor.is_empty() {
                let list: Vec<&str> = minor.iter().map(|c| c.name.as_str()).collect();
                advice.push(format!(
                    "if the small ones are spike-ins or unplaced scaffolds, drop them with \
                     --exclude-contigs {}",
                    if list.len() <= 30 {
                        list.join(",")
                    } else {
                        format!("{},... ({} in all)", list[..30].join(","), list.len())
                    }
                ));
            }
            if !major.is_empty() {
                let list: Vec<String> = major.iter().map(|c| c.name.clone()).collect();
                advice.push(format!(
                    "{} hold{} many sites: the samples may come from different references or \
                     be cut to different regions",
                    some(&list, 5),
                    if major.len() == 1 { "s" } else { "" }
                ));
            }
            let advice = advice.join("; ");
            push(
                if complete {
                    Severity::Warning
                } else {
                    Severity::Note
                },
                "partial-contigs",
                format!(
                    "contigs present in only some samples{}: {}; the others count as missing \
                     there — {advice}",
                    if complete { "" } else { " (in the lines read)" },
                    some(&names, 8),
                ),
            );
        }
    }
    let spikes: Vec<&str> = contigs
        .iter()
        .filter(|c| looks_like_spike_in(&c.name))
        .map(|c| c.name.as_str())
        .collect();
    if !spikes.is_empty() {
        push(
            Severity::Warning,
            "spike-in",
            format!(
                "{} {} like {} (a conversion control, not the genome studied): exclude {} \
                 with --exclude-contigs {}",
                spikes.join(", "),
                if spikes.len() == 1 { "looks" } else { "look" },
                if spikes.len() == 1 {
                    "a spike-in control"
                } else {
                    "spike-in controls"
                },
                if spikes.len() == 1 { "it" } else { "them" },
                spikes.join(",")
            ),
        );
    }
    // Some contig must be covered in every group, or every site fails the group filter.
    if report.groups.len() > 1
        && report
            .samples
            .iter()
            .all(|s| s.error.is_none() && s.format.as_deref() != Some("bam"))
    {
        let shared = contigs.iter().any(|c| {
            report.groups.iter().all(|g| {
                report
                    .samples
                    .iter()
                    .any(|s| s.group == g.name && c.samples.contains(&s.name))
            })
        });
        if !shared && !contigs.is_empty() {
            push(
                if complete {
                    Severity::Error
                } else {
                    Severity::Warning
                },
                "no-shared-contig",
                format!(
                    "no contig has data in every group{}: every site would be dropped by the \
                     group filter — check that the samples come from the same reference and \
                     regions",
                    if complete { "" } else { " (in the lines read)" }
                ),
            );
        }
    }
    // Reference: every sample contig must be listed.
    if let (Some(f), Some(p)) = (order.fixed(), &opts.contigs) {
        let missing: Vec<String> = contigs
            .iter()
            .filter(|c| f.rank(&c.name).is_none())
            .map(|c| c.name.clone())
            .collect();
        if !missing.is_empty() {
            push(
                Severity::Error,
                "not-in-reference",
                format!(
                    "contigs of the samples not in {}: {} — the merge stops on them; use the \
                     reference the data were aligned to, or drop them with --exclude-contigs {}",
                    p.display(),
                    some(&missing, 8),
                    missing.join(",")
                ),
            );
        }
    }
    // Regions on contigs no sample has; samples' contigs without regions.
    if let Some(r) = &regions {
        let absent: Vec<String> = r
            .contigs()
            .filter(|(c, _)| !index.contains_key(*c) && !exclude.contains(*c))
            .map(|(c, n)| format!("{c} ({n} regions)"))
            .collect();
        // Every region on such contigs: the run would stop with "no region" (an error once
        // the whole files were read; BAM samples are not read, so their contigs are unknown).
        let every = absent.len() == r.contigs().count()
            && report
                .samples
                .iter()
                .all(|s| s.format.as_deref() != Some("bam"));
        if !absent.is_empty() {
            push(
                match (complete, every) {
                    (true, true) => Severity::Error,
                    (true, false) => Severity::Warning,
                    (false, _) => Severity::Note,
                },
                "regions-without-sites",
                format!(
                    "{}: {}regions on contigs no sample has{}: {} — {}",
                    r.path().display(),
                    if every { "all " } else { "" },
                    if complete { "" } else { " (in the lines read)" },
                    some(&absent, 8),
                    if every {
                        "every region would be dropped and the run stop; use a BED made for the \
                         samples' reference"
                    } else {
                        "they will be dropped"
                    }
                ),
            );
        }
    }
    // Contig order across samples, replaying the merge's rule.
    let seqs: Vec<Vec<&str>> = report
        .samples
        .iter()
        .map(|s| s.contigs.iter().map(|c| c.name.as_str()).collect())
        .collect();
    if let Some(f) = order.fixed() {
        for (s, seq) in report.samples.iter().zip(&seqs) {
            if let Some(w) = seq
                .windows(2)
                .find(|w| matches!((f.rank(w[0]), f.rank(w[1])), (Some(a), Some(b)) if b < a))
            {
                push(
                    Severity::Error,
                    "contig-order",
                    format!(
                        "{}: contig {} comes after {} here, but {} lists {} first: sort the \
                         file in the reference's order",
                        s.path,
                        w[1],
                        w[0],
                        f.path.display(),
                        w[1]
                    ),
                );
            }
        }
    } else if let Some((i, c, before, first)) = order_conflict(&seqs, &order) {
        push(
            Severity::Error,
            "contig-order",
            format!(
                "{}: contig {c} comes after {before} here, but the merge would already have \
                 finished {c} (taken from {}): contig order differs between samples; pass \
                 --contigs genome.fai",
                report.samples[i].path, report.samples[first].path
            ),
        );
    }
    // Contigs only in the regions file, listed after the samples' contigs.
    if let Some(r) = &regions {
        for (c, n) in r.contigs() {
            if !index.contains_key(c) && !exclude.contains(c) {
                contigs.push(ContigCheck {
                    name: c.to_string(),
                    samples: Vec::new(),
                    sites: 0,
                    regions: Some(n),
                    in_reference: order.fixed().map(|f| f.rank(c).is_some()),
                });
            }
        }
    }
    // Excluded contigs never seen.
    if !exclude.is_empty() && report.complete && !report.samples.is_empty() {
        let total_excluded: u64 = report.samples.iter().map(|s| s.excluded_sites).sum();
        if total_excluded == 0 {
            push(
                Severity::Warning,
                "exclude-unused",
                format!(
                    "--exclude-contigs {}: no sample has any of these contigs",
                    opts.exclude_contigs.join(",")
                ),
            );
        }
    }
    report.contigs = contigs;
    issues.sort_by_key(|i| i.severity);
    report.issues = issues;
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_conflict_replays_the_merge() {
        let l = ContigOrder::Learned;
        assert_eq!(
            order_conflict(&[vec!["chr1", "chr2"], vec!["chr1", "chr2"]], &l),
            None
        );
        // b has chr2 before chr1: natural order takes chr1 first (from a), finishes it only
        // once every head moved past it — b's head is chr2, so chr1 finishes, then chr2, and
        // b's chr1 arrives after chr1 was finished.
        let c = order_conflict(&[vec!["chr1", "chr2"], vec!["chr2", "chr1"]], &l).unwrap();
        assert_eq!(
            (c.0, c.1.as_str(), c.2.as_str(), c.3),
            (1, "chr1", "chr2", 0)
        );
        // The documented false alarm of the learned order: chr10 before chr2 in a, chr2 only
        // in b.
        assert!(order_conflict(&[vec!["chr10", "chr2"], vec!["chr2"]], &l).is_some());
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn codes(r: &CheckReport, sev: Severity) -> Vec<&'static str> {
        r.issues
            .iter()
            .filter(|i| i.severity == sev)
            .map(|i| i.code)
            .collect()
    }

    const DSS: &str = "chr\tpos\tN\tX\n";

    #[test]
    fn coverage_summary_is_exact() {
        let dir = tempfile::tempdir().unwrap();
        // Coverages 0, 3, 10, 12, 40: covered 4, mean 65/4, lower median 10, n >= 10: 3/4.
        let a = write(
            dir.path(),
            "a.txt",
            &format!(
                "{DSS}chr1\t1\t0\t0\nchr1\t5\t3\t1\nchr1\t9\t10\t5\nchr2\t1\t12\t6\nchr2\t8\t40\t0\n"
            ),
        );
        let b = write(
            dir.path(),
            "b.txt",
            &format!("{DSS}chr1\t5\t8\t8\nchr2\t1\t2\t1\n"),
        );
        let sheet = write(
            dir.path(),
            "s.tsv",
            &format!(
                "sample\tgroup\tpath\nA\tc\t{}\nB\tt\t{}\n",
                a.display(),
                b.display()
            ),
        );
        let r = check(&sheet, &CheckOptions::default());
        assert_eq!(r.n_errors(), 0, "{:?}", r.issues);
        let s = &r.samples[0];
        assert_eq!((s.sites, s.covered_sites, s.lines_read), (5, 4, 6));
        assert!((s.mean_coverage - 65.0 / 4.0).abs() < 1e-12);
        assert_eq!(s.median_coverage, 10);
        assert!((s.frac_coverage_ge_10 - 0.75).abs() < 1e-12);
        assert!((s.mean_methylation - 12.0 / 65.0).abs() < 1e-12);
        assert_eq!(
            s.contigs,
            [
                ContigCount {
                    name: "chr1".into(),
                    sites: 3
                },
                ContigCount {
                    name: "chr2".into(),
                    sites: 2
                }
            ]
        );
        assert_eq!(r.samples[1].median_coverage, 2);
        assert_eq!(
            r.groups
                .iter()
                .map(|g| (g.name.as_str(), g.samples, g.reference))
                .collect::<Vec<_>>(),
            [("c", 1, true), ("t", 1, false)]
        );
        assert_eq!(r.contigs.len(), 2);
        assert_eq!(r.contigs[0].samples, ["A", "B"]);
        // --max-lines: the head only.
        let opts = CheckOptions {
            max_lines: Some(3),
            ..CheckOptions::default()
        };
        let r = check(&sheet, &opts);
        assert_eq!(r.samples[0].sites, 2);
        assert!(!r.samples[0].complete && !r.complete);
        assert!(r.render().contains("(head only)"));
    }

    #[test]
    fn naming_spike_ins_order_and_groups() {
        let dir = tempfile::tempdir().unwrap();
        let a = write(
            dir.path(),
            "a.txt",
            &format!("{DSS}chr1\t5\t3\t1\nchr2\t5\t3\t1\nlambda\t9\t50\t1\n"),
        );
        let b = write(
            dir.path(),
            "b.txt",
            &format!("{DSS}1\t5\t3\t1\n2\t5\t3\t1\n"),
        );
        let c = write(
            dir.path(),
            "c.txt",
            &format!("{DSS}chr2\t5\t3\t1\nchr1\t5\t3\t1\n"),
        );
        let sheet = |rows: &[(&str, &str, &Path)]| {
            let mut t = String::from("sample\tgroup\tpath\n");
            for (s, g, p) in rows {
                t += &format!("{s}\t{g}\t{}\n", p.display());
            }
            write(dir.path(), "s.tsv", &t)
        };
        // a vs b: naming; lambda only in a: partial + spike-in.
        let r = check(
            &sheet(&[("A", "x", &a), ("B", "y", &b)]),
            &CheckOptions::default(),
        );
        // Naming apart, no contig is shared by both groups.
        assert_eq!(
            codes(&r, Severity::Error),
            ["contig-naming", "no-shared-contig"]
        );
        assert!(
            r.issues[0].message.contains("chr1 ↔ 1, chr2 ↔ 2"),
            "{}",
            r.issues[0].message
        );
        let w = codes(&r, Severity::Warning);
        assert!(
            w.contains(&"spike-in") && w.contains(&"partial-contigs"),
            "{w:?}"
        );
        // Excluding lambda silences the spike-in warning and counts its site apart.
        let opts = CheckOptions {
            exclude_contigs: vec!["lambda".into()],
            ..CheckOptions::default()
        };
        let r = check(&sheet(&[("A", "x", &a), ("C", "y", &c)]), &opts);
        assert_eq!(r.samples[0].excluded_sites, 1);
        assert!(!codes(&r, Severity::Warning).contains(&"spike-in"));
        // a then c: chr1, chr2 against chr2, chr1.
        assert_eq!(codes(&r, Severity::Error), ["contig-order"]);
        // The same with a .fai in a's order: c is out of order against it.
        let fai = write(dir.path(), "g.fai", "chr1\t10\nchr2\t10\nlambda\t100\n");
        let opts = CheckOptions {
            contigs: Some(fai.clone()),
            ..opts
        };
        let r = check(&sheet(&[("A", "x", &a), ("C", "y", &c)]), &opts);
        assert_eq!(codes(&r, Severity::Error), ["contig-order"]);
        assert!(
            r.issues[0]
                .message
                .contains("c.txt: contig chr1 comes after chr2")
        );
        // A .fai with the other naming.
        let fai1 = write(dir.path(), "n.fai", "1\t10\n2\t10\n");
        let opts = CheckOptions {
            contigs: Some(fai1),
            ..CheckOptions::default()
        };
        let r = check(&sheet(&[("A", "x", &a)]), &opts);
        let e = codes(&r, Severity::Error);
        assert!(
            e.contains(&"contig-naming") && e.contains(&"not-in-reference"),
            "{e:?}"
        );
        // Groups: a missing reference group, too few groups, a group too small.
        let s1 = sheet(&[("A", "x", &a), ("A2", "x", &a)]);
        let r = check(
            &s1,
            &CheckOptions {
                reference: Some("nope".into()),
                ..CheckOptions::default()
            },
        );
        assert_eq!(codes(&r, Severity::Error), ["sheet"]);
        let r = check(
            &s1,
            &CheckOptions {
                min_groups: 2,
                ..CheckOptions::default()
            },
        );
        assert!(codes(&r, Severity::Error).contains(&"groups"));
        let r = check(&s1, &CheckOptions::default());
        assert!(codes(&r, Severity::Warning).contains(&"single-group"));
        let r = check(
            &s1,
            &CheckOptions {
                min_samples_per_group: 3,
                ..CheckOptions::default()
            },
        );
        assert!(codes(&r, Severity::Error).contains(&"group-size"));
    }

    #[test]
    fn reader_errors_regions_and_empty_samples_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let bad = write(
            dir.path(),
            "bad.txt",
            &format!("{DSS}chr1\t9\t3\t1\nchr1\t5\t3\t1\n"),
        );
        let empty = write(dir.path(), "empty.txt", DSS);
        let good = write(dir.path(), "good.txt", &format!("{DSS}chr1\t5\t3\t1\n"));
        let sheet = write(
            dir.path(),
            "s.tsv",
            &format!(
                "sample\tgroup\tpath\nA\tx\t{}\nB\ty\t{}\nC\ty\t{}\n",
                bad.display(),
                empty.display(),
                good.display()
            ),
        );
        let regions = write(dir.path(), "r.bed", "chr1\t0\t100\nchrZ\t0\t10\n");
        let opts = CheckOptions {
            regions: Some(regions),
            ..CheckOptions::default()
        };
        let r = check(&sheet, &opts);
        let msgs = r.error_messages();
        assert_eq!(msgs.len(), 2, "{msgs:?}");
        assert!(msgs[0].contains("bad.txt:3: unsorted input"), "{}", msgs[0]);
        assert!(msgs[1].contains("empty.txt: no sites"), "{}", msgs[1]);
        // A sample stopped by an error was not read to its end: contig findings are notes.
        assert!(codes(&r, Severity::Note).contains(&"regions-without-sites"));
        assert_eq!(r.regions.as_ref().map(|x| x.1), Some(2));
        assert_eq!(
            r.contigs.last().map(|c| (c.name.as_str(), c.regions)),
            Some(("chrZ", Some(1)))
        );
        assert!(r.render().contains("FAILED: 2 errors"));
    }

    /// Regression (#18): `check --regions` with a BED whose every region the run would drop
    /// said "OK: 0 errors"; a BED line on `18` next to one on `chr18` (data `chr18`) was not
    /// flagged at all; shared names were not mentioned.
    #[test]
    fn regions_the_run_would_drop_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let a = write(dir.path(), "a.txt", &format!("{DSS}chr18\t5\t3\t1\n"));
        let sheet = write(
            dir.path(),
            "s.tsv",
            &format!("sample\tgroup\tpath\nA\tx\t{0}\nB\ty\t{0}\n", a.display()),
        );
        let check_bed = |name: &str, text: &str| {
            let opts = CheckOptions {
                regions: Some(write(dir.path(), name, text)),
                ..CheckOptions::default()
            };
            check(&sheet, &opts)
        };
        let r = check_bed("other.bed", "chr1\t0\t100\nchr2\t0\t10\n");
        let msgs = r.error_messages();
        assert_eq!(msgs.len(), 1, "{msgs:?}");
        assert!(
            msgs[0].ends_with(
                "other.bed: all regions on contigs no sample has: chr1 (1 regions), chr2 (1 \
                 regions) — every region would be dropped and the run stop; use a BED made for \
                 the samples' reference"
            ),
            "{}",
            msgs[0]
        );
        let r = check_bed("mixed.bed", "chr18\t0\t100\n18\t0\t10\n");
        let msgs = r.error_messages();
        assert_eq!(msgs.len(), 1, "{msgs:?}");
        assert!(msgs[0].contains("mixed.bed vs "), "{}", msgs[0]);
        assert!(msgs[0].contains("a.txt: 18 ↔ chr18"), "{}", msgs[0]);
        assert!(codes(&r, Severity::Warning).contains(&"regions-without-sites"));
        let r = check_bed("names.bed", "chr18\t0\t10\tCpG: 3\nchr18\t20\t30\tCpG: 3\n");
        assert_eq!(r.n_errors(), 0, "{:?}", r.issues);
        assert!(codes(&r, Severity::Warning).contains(&"region-names"));
        let r = check_bed("empty.bed", "# nothing\n");
        assert!(
            r.error_messages()[0].ends_with(
                "empty.bed: regions: the BED has no regions (every \
             line is blank, a comment, or a track or browser line)"
            ),
            "{:?}",
            r.issues
        );
    }

    #[test]
    fn fasta_tells_cpg_positions_from_shifted_ones() {
        let dir = tempfile::tempdir().unwrap();
        // A deterministic sequence; its CpG C positions (0-based) are the true sites.
        let mut x: u64 = 12345;
        let seq: Vec<u8> = (0..6000)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                b"ACGT"[(x >> 33) as usize % 4]
            })
            .collect();
        let cpgs: Vec<usize> = (0..seq.len() - 1)
            .filter(|&i| seq[i] == b'C' && seq[i + 1] == b'G')
            .collect();
        assert!(cpgs.len() > 100);
        let mut fa = String::from(">chrQ some description\n");
        for chunk in seq.chunks(60) {
            fa += std::str::from_utf8(chunk).unwrap();
            fa.push('\n');
        }
        let fa = write(dir.path(), "g.fa", &fa);
        // DSS is 1-based: the right file writes p + 1, the shifted one writes p (0-based).
        let dss = |shift: usize| {
            let mut t = String::from(DSS);
            for &p in &cpgs {
                t += &format!("chrQ\t{}\t10\t5\n", p + shift);
            }
            t
        };
        let good = write(dir.path(), "good.txt", &dss(1));
        let off = write(dir.path(), "off.txt", &dss(0));
        let sheet = write(
            dir.path(),
            "s.tsv",
            &format!(
                "sample\tgroup\tpath\nG\tx\t{}\nO\ty\t{}\n",
                good.display(),
                off.display()
            ),
        );
        let opts = CheckOptions {
            fasta: Some(fa),
            ..CheckOptions::default()
        };
        let r = check(&sheet, &opts);
        let (g, n) = r.samples[0].cpg_fraction.unwrap();
        assert_eq!(n, cpgs.len());
        assert_eq!(g[1], 1.0);
        let (o, _) = r.samples[1].cpg_fraction.unwrap();
        assert_eq!(o[2], 1.0, "shifted by +1 every site is on its CpG");
        assert!(o[1] < 0.5, "{o:?}");
        assert_eq!(codes(&r, Severity::Error), ["off-by-one"]);
        assert!(
            r.issues[0]
                .message
                .contains("off.txt: positions sit one base before")
        );
        assert!(r.issues[0].message.contains("0-based read as 1-based"));
        assert!(r.render().contains("100.0%"));
    }

    #[test]
    fn bam_samples_are_left_to_run() {
        let dir = tempfile::tempdir().unwrap();
        let a = write(dir.path(), "a.txt", &format!("{DSS}chr1\t5\t3\t1\n"));
        let sheet = write(
            dir.path(),
            "s.tsv",
            &format!(
                "sample\tgroup\tpath\nA\tx\t{}\nB\ty\treads.BAM\n",
                a.display()
            ),
        );
        write(dir.path(), "reads.BAM", "");
        let r = check(&sheet, &CheckOptions::default());
        assert_eq!(r.n_errors(), 0, "{:?}", r.issues);
        assert!(codes(&r, Severity::Note).contains(&"bam-not-checked"));
        assert!(!codes(&r, Severity::Warning).contains(&"partial-contigs"));
    }

    #[test]
    fn spike_in_names() {
        for n in ["lambda", "Lambda_NEB", "pUC19", "phiX174", "J02459.1"] {
            assert!(looks_like_spike_in(n), "{n}");
        }
        for n in ["chr1", "chrM", "MT", "KI270728.1"] {
            assert!(!looks_like_spike_in(n), "{n}");
        }
    }
}
