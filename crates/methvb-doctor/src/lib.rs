//! The input doctor behind `methvb check`: a cheap pre-flight report on a sample sheet, its
//! sample files, an optional regions BED and an optional reference index. It returns a
//! [`CheckReport`] (data, with a text rendering); it prints nothing.
//!
//! Every sample file is streamed once (or only its first `max_lines` lines) through the reader
//! that `run` uses, so every reader error is found here too: a count table goes through
//! [`methvb_io::sample::SampleReader`] (malformed line, unsorted or duplicate positions, m > n, truncated gzip,
//! unknown format ...), a BAM/SAM through [`methvb_bam::BamSampleReader`] with the options `run` reads it
//! with (no `MM`/`ML` or `XM` calls, malformed tags, records out of coordinate order, a reference
//! FASTA without its `.fai` ...). On top of that the report compares the inputs with each other:
//!
//! * **contig naming**: a contig of one input whose alias ([`methvb_io::contigs::contig_aliases`]: `1` ↔ `chr1`,
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
//! A BAM/SAM sample's contigs are the `@SQ` lines of its header, in header order, each with the
//! sites read on it: all of them take part in the naming comparison (a header names the
//! contigs whatever the records cover); the other comparisons take the contigs with sites, and
//! while the file was not read to its end every header contig (later records may reach it).
//!
//! Problems that would stop a run or corrupt its results are [`Severity::Error`]; the caller
//! (`methvb check`) exits with code 1 when there is one.

mod contigs;
mod fasta;
mod render;
mod samples;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use methvb_bam::BamOptions;
use methvb_io::contigs::ContigOrder;
use methvb_io::regions::BedRegions;
use methvb_io::sample::ReaderOptions;
use methvb_io::sheet::SampleSheet;
use serde::Serialize;

/// What to check and how to read.
#[derive(Debug, Clone, Default)]
pub struct CheckOptions {
    /// Reader options of count tables, as `run` would use them (a format named in the sheet
    /// overrides `reader.format`).
    pub reader: ReaderOptions,
    /// How BAM/SAM samples are read, as `run` reads them (modification code, call filter,
    /// record filters, strands, CpG context). A BAM/SAM without calls is an error whether or not
    /// `bam.pileup.require_calls` is set: it would give no sites.
    pub bam: BamOptions,
    /// Contigs to leave out (`--exclude-contigs`): their sites are counted apart and they take
    /// no part in the cross-input comparisons.
    pub exclude_contigs: Vec<String>,
    /// Read at most this many lines of each sample file, records of a BAM/SAM (`None`: whole
    /// files).
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
    /// sample are looked up there to tell whether positions sit on CpGs, or one base off. (The
    /// CpG context of BAM/SAM samples is `bam.pileup.cpg`; `methvb check --fasta` sets both.)
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
    /// Format read (`bedmethyl`, `bismark-cov`, ..., `bam` or `sam`), `None` when the file could
    /// not be opened.
    pub format: Option<String>,
    /// bedMethyl layout (`modkit` or `encode`), Bismark `.cov` convention (`1-based` or
    /// `0-based`), else `None` (BAM/SAM too).
    pub layout: Option<String>,
    /// Whether the whole file was read (false when `max_lines` stopped early or on an error).
    pub complete: bool,
    /// Physical lines read (records of a BAM/SAM).
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
    /// Contigs in file order (excluded ones left out); of a BAM/SAM, every contig of its
    /// header (`@SQ`) in header order, with 0 sites where none was read.
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

impl SampleCheck {
    /// The contigs the sample has data on as far as is known: those with sites, and every
    /// contig of a BAM/SAM header while the file was not read to its end (later records may
    /// reach any of them). A count table lists only contigs with sites.
    fn covered_contigs(&self) -> impl Iterator<Item = &ContigCount> {
        self.contigs
            .iter()
            .filter(|c| c.sites > 0 || !self.complete)
    }
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
    /// Names of the samples that have it (have sites on it; a BAM/SAM sample not read to its
    /// end: has it in its header).
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

/// The findings gathered so far, in the order they were made.
#[derive(Debug, Default)]
struct Findings(Vec<Issue>);

impl Findings {
    fn push(&mut self, severity: Severity, code: &'static str, message: String) {
        self.0.push(Issue {
            severity,
            code,
            message,
        });
    }

    /// Errors first; the sort is stable, so within a severity the order of discovery stays.
    fn sorted(mut self) -> Vec<Issue> {
        self.0.sort_by_key(|i| i.severity);
        self.0
    }
}

/// Checks the sample sheet at `sheet_path` with `opts`; never fails (every problem is an [`Issue`]).
pub fn check(sheet_path: &Path, opts: &CheckOptions) -> CheckReport {
    let mut found = Findings::default();
    let exclude: HashSet<String> = opts.exclude_contigs.iter().cloned().collect();
    let sheet = read_sheet(sheet_path, opts, &mut found);
    let groups = match &sheet {
        Some(sheet) => check_groups(sheet, sheet_path, opts, &mut found),
        None => Vec::new(),
    };
    let (order, reference) = read_reference(opts, &mut found);
    let (regions, regions_summary) = read_regions(opts, &mut found);
    let mut samples = Vec::new();
    if let Some(sheet) = &sheet {
        samples = samples::check_samples(sheet, opts, &exclude, &mut found);
        if let Some(fa) = &opts.fasta {
            fasta::check_positions(fa, &mut samples, &mut found);
        }
        samples::note_cov_convention(&samples, &mut found);
    }
    let mut report = CheckReport {
        sheet: sheet_path.display().to_string(),
        complete: samples.iter().all(|s| s.complete),
        samples,
        groups,
        contigs: Vec::new(),
        regions: regions_summary,
        reference,
        excluded_contigs: opts.exclude_contigs.clone(),
        issues: Vec::new(),
    };
    let inputs = contigs::Inputs {
        order: &order,
        regions: regions.as_ref(),
        reference: opts.contigs.as_deref(),
        exclude: &exclude,
    };
    report.contigs = contigs::compare(&report, &inputs, &mut found);
    samples::warn_unused_excludes(&report, &exclude, &mut found);
    report.issues = found.sorted();
    report
}

/// Reads the sheet and puts the reference group first; a failure is the `sheet` error.
fn read_sheet(sheet_path: &Path, opts: &CheckOptions, found: &mut Findings) -> Option<SampleSheet> {
    match SampleSheet::from_path(sheet_path)
        .and_then(|s| s.with_reference(opts.reference.as_deref()))
    {
        Ok(s) => Some(s),
        Err(e) => {
            found.push(Severity::Error, "sheet", e.to_string());
            None
        }
    }
}

/// The groups of the sheet (the reference first), with the group-count, group-size and design
/// findings.
fn check_groups(
    sheet: &SampleSheet,
    sheet_path: &Path,
    opts: &CheckOptions,
    found: &mut Findings,
) -> Vec<GroupCheck> {
    let groups = sheet
        .group_sizes()
        .into_iter()
        .enumerate()
        .map(|(k, (g, n))| GroupCheck {
            name: g.to_string(),
            samples: n,
            reference: k == 0,
        })
        .collect();
    let min_groups = opts.min_groups.max(1);
    let too_few_groups = sheet.n_groups() < min_groups;
    if too_few_groups {
        found.push(
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
        found.push(Severity::Error, "group-size", e.to_string());
    }
    for w in sheet.design_warnings() {
        // "A single group" says again what the groups error said.
        if !(too_few_groups && w.code == "single-group") {
            found.push(Severity::Warning, w.code, w.message);
        }
    }
    groups
}

/// The contig order of `--contigs` (learned from the samples without one, or when it cannot be
/// read: a `reference` error) and the index's path and number of contigs.
fn read_reference(
    opts: &CheckOptions,
    found: &mut Findings,
) -> (ContigOrder, Option<(String, usize)>) {
    let Some(p) = &opts.contigs else {
        return (ContigOrder::Learned, None);
    };
    match ContigOrder::from_path(p) {
        Ok(o) => {
            let summary = o
                .fixed()
                .map(|f| (p.display().to_string(), f.names().len()));
            (o, summary)
        }
        Err(e) => {
            found.push(Severity::Error, "reference", e.to_string());
            (ContigOrder::Learned, None)
        }
    }
}

/// The regions BED (a `regions` error when it cannot be read; a warning for names shared by
/// several regions) and its path and number of regions.
fn read_regions(
    opts: &CheckOptions,
    found: &mut Findings,
) -> (Option<BedRegions>, Option<(String, usize)>) {
    let Some(p) = &opts.regions else {
        return (None, None);
    };
    match BedRegions::from_path(p) {
        Ok(r) => {
            if let Some(w) = r.repeated_names_warning() {
                found.push(Severity::Warning, "region-names", w);
            }
            let summary = (p.display().to_string(), r.len());
            (Some(r), Some(summary))
        }
        Err(e) => {
            found.push(Severity::Error, "regions", e.to_string());
            (None, None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contigs::order_conflict;

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

    /// A BAM/SAM sample is read (tests/bam.rs has the real ones): an empty `.BAM` is an error
    /// naming the file, no longer a note that it was skipped.
    #[test]
    fn an_empty_bam_sample_is_an_error() {
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
        // Its contigs (none) take part: no contig has data in both groups.
        assert_eq!(codes(&r, Severity::Error), ["no-sites", "no-shared-contig"]);
        let msgs = r.error_messages();
        assert!(
            msgs[0].ends_with("reads.BAM: no sites: the file holds no record"),
            "{}",
            msgs[0]
        );
        assert_eq!(r.samples[1].format.as_deref(), Some("sam"));
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
