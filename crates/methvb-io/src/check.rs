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
//!   ([`crate::contigs`]): an error when the merge would stop;
//! * **groups**: the reference group exists, enough groups (`min_groups`) and enough samples per
//!   group (`min_samples_per_group`), warnings for a single group (no contrast) or a group of one;
//! * per sample: format and layout, coordinate convention of Bismark `.cov` files (1-based
//!   default or 0-based `--zero_based`, from the start/end pattern), number of sites, coverage
//!   summary (mean, median, fraction with `n >= 10`, over sites with `n > 0`).
//!
//! Problems that would stop a run or corrupt its results are [`Severity::Error`]; the caller
//! (`methvb check`) exits with code 1 when there is one.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::SiteSource;
use crate::contigs::{ContigOrder, contig_aliases, natural_cmp};
use crate::format::BedLayout;
use crate::regions::BedRegions;
use crate::sample::{ReaderOptions, SampleReader};
use crate::sheet::SampleSheet;

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
}

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
            if self.n_errors() > 0 {
                "FAILED"
            } else {
                "OK"
            },
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
    entry: &crate::sheet::SampleEntry,
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
    };
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
        if reader.lines_read() >= max_lines {
            break;
        }
        match reader.next_site() {
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
        for (k, g) in sheet.groups().iter().enumerate() {
            let n = sheet.samples.iter().filter(|s| &s.group == g).count();
            report.groups.push(GroupCheck {
                name: g.clone(),
                samples: n,
                reference: k == 0,
            });
        }
        let min_groups = opts.min_groups.max(1);
        if sheet.n_groups() < min_groups {
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
        } else if sheet.n_groups() == 1 {
            push(
                Severity::Warning,
                "single-group",
                format!(
                    "{}: a single group ({}): run will estimate its methylation but no \
                     difference between groups",
                    sheet_path.display(),
                    sheet.groups()[0]
                ),
            );
        }
        let min_spg = opts.min_samples_per_group.max(1);
        for g in &report.groups {
            if g.samples < min_spg {
                push(
                    Severity::Error,
                    "group-size",
                    format!(
                        "{}: group {} has {} sample{}, fewer than --min-samples-per-group {min_spg}: \
                         every site would be dropped",
                        sheet_path.display(),
                        g.name,
                        g.samples,
                        if g.samples == 1 { "" } else { "s" }
                    ),
                );
            } else if g.samples == 1 {
                push(
                    Severity::Warning,
                    "group-of-one",
                    format!(
                        "group {} has a single sample: its between-sample dispersion rests on \
                         the prior alone",
                        g.name
                    ),
                );
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
                if r.is_empty() {
                    push(
                        Severity::Error,
                        "regions",
                        format!("{}: regions: no region in the file", p.display()),
                    );
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
            if let Some(e) = &s.error {
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
    let n_samples = report.samples.len();
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
    let mut inputs: Vec<(String, HashSet<String>)> = report
        .samples
        .iter()
        .map(|s| {
            (
                s.path.clone(),
                s.contigs.iter().map(|c| c.name.clone()).collect(),
            )
        })
        .collect();
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
                if let Some(alias) = contig_aliases(name)
                    .into_iter()
                    .find(|al| inputs[b].1.contains(al) && !inputs[a].1.contains(al))
                {
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
            let list: Vec<&str> = partial.iter().map(|c| c.name.as_str()).collect();
            push(
                if complete {
                    Severity::Warning
                } else {
                    Severity::Note
                },
                "partial-contigs",
                format!(
                    "contigs present in only some samples{}: {}; the others count as missing \
                     there — if they are spike-ins or unplaced scaffolds, drop them with \
                     --exclude-contigs {}",
                    if complete {
                        ""
                    } else {
                        " (in the lines read)"
                    },
                    some(&names, 8),
                    list.join(",")
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
                "contig{} {} look{} like spike-in controls (conversion controls, not the \
                 genome studied): exclude them with --exclude-contigs {}",
                if spikes.len() == 1 { "" } else { "s" },
                spikes.join(", "),
                if spikes.len() == 1 { "s" } else { "" },
                spikes.join(",")
            ),
        );
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
        if !absent.is_empty() {
            push(
                if complete {
                    Severity::Warning
                } else {
                    Severity::Note
                },
                "regions-without-sites",
                format!(
                    "{}: regions on contigs no sample has{}: {} — they will be dropped",
                    r.path().display(),
                    if complete {
                        ""
                    } else {
                        " (in the lines read)"
                    },
                    some(&absent, 8)
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
            if let Some(w) = seq.windows(2).find(|w| {
                matches!((f.rank(w[0]), f.rank(w[1])), (Some(a), Some(b)) if b < a)
            }) {
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
        assert_eq!((c.0, c.1.as_str(), c.2.as_str(), c.3), (1, "chr1", "chr2", 0));
        // The documented false alarm of the learned order: chr10 before chr2 in a, chr2 only
        // in b.
        assert!(order_conflict(&[vec!["chr10", "chr2"], vec!["chr2"]], &l).is_some());
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
