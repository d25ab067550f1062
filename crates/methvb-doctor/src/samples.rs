//! Reading each sample of the sheet, count table or BAM/SAM, into its [`SampleCheck`], and the
//! findings about one sample at a time.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use methvb_bam::{BamOptions, BamSampleReader, CallSource, PileupOptions, PileupStats};
use methvb_io::format::BedLayout;
use methvb_io::sample::SampleReader;
use methvb_io::sheet::{SampleEntry, SampleSheet, is_alignment_file};
use methvb_io::{ErrorKind, ReadError, SiteSource};

use crate::{CheckOptions, CheckReport, ContigCount, FASTA_SITES, Findings, SampleCheck, Severity};

/// Coverage histogram size: coverages below it are counted exactly.
const HIST: usize = 1 << 16;

/// What to do about a BAM/SAM in which no record carries usable calls.
const NO_CALLS_FIX: &str = "make the BAM with modified-base calling (e.g. dorado basecaller with \
                            a modified-bases model) and keep the MM/ML tags through alignment \
                            (samtools fastq -T MM,ML into minimap2 -y), or list the bedMethyl \
                            made from it (modkit pileup); a Bismark BAM needs the XM tags \
                            bismark writes";

/// Reads every sample of `sheet` in sheet order, with the findings about each.
pub(crate) fn check_samples(
    sheet: &SampleSheet,
    opts: &CheckOptions,
    exclude: &HashSet<String>,
    found: &mut Findings,
) -> Vec<SampleCheck> {
    let mut cov = Coverage::default();
    let mut out = Vec::with_capacity(sheet.samples.len());
    for entry in &sheet.samples {
        let s = if is_alignment_file(&entry.path) {
            bam_sample(entry, opts, exclude, &mut cov, found)
        } else {
            text_sample(entry, opts, exclude, &mut cov)
        };
        sample_findings(&s, found);
        out.push(s);
    }
    out
}

impl SampleCheck {
    /// The sample as the sheet names it, nothing read yet.
    fn new(entry: &SampleEntry) -> SampleCheck {
        SampleCheck {
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
        }
    }
}

/// Streams one count table through [`SampleReader`]. Reader errors end the sample and are kept
/// in `error`.
fn text_sample(
    entry: &SampleEntry,
    opts: &CheckOptions,
    exclude: &HashSet<String>,
    cov: &mut Coverage,
) -> SampleCheck {
    let mut out = SampleCheck::new(entry);
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
    let max_lines = opts.max_lines.unwrap_or(u64::MAX);
    match stream_sites(&mut reader, max_lines, opts, exclude, &mut out, cov) {
        Ok(end) => out.complete = end,
        Err(e) => out.error = Some(e.to_string()),
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
    cov.summarise(&mut out);
    out
}

/// Streams one BAM/SAM through [`BamSampleReader`] with `opts.bam`, the first `max_lines`
/// records only when asked. Its contigs are those of the header, filled with the sites read.
/// Reader errors end the sample and are kept in `error`; so is a whole file without calls, the
/// error `run` stops with, here with the fix.
fn bam_sample(
    entry: &SampleEntry,
    opts: &CheckOptions,
    exclude: &HashSet<String>,
    cov: &mut Coverage,
    found: &mut Findings,
) -> SampleCheck {
    let mut out = SampleCheck::new(entry);
    // The doctor applies the end-of-file rule itself (`no_calls`), to a head too and with the
    // fix in the message.
    let read_opts = BamOptions {
        pileup: PileupOptions {
            require_calls: false,
            ..opts.bam.pileup.clone()
        },
        ..opts.bam.clone()
    };
    let mut reader = match BamSampleReader::open(&entry.path, &read_opts) {
        Ok(r) => r,
        Err(e) => {
            out.error = Some(e.to_string());
            return out;
        }
    };
    if let Some(n) = opts.max_lines {
        reader = reader.stop_after(n);
    }
    out.format = Some(if reader.is_bam() { "bam" } else { "sam" }.to_string());
    out.contigs = reader
        .header_contigs()
        .iter()
        .filter(|c| !exclude.contains(*c))
        .map(|c| ContigCount {
            name: c.clone(),
            sites: 0,
        })
        .collect();
    // The reader stops at the record limit itself: sites need no cut by their record number.
    match stream_sites(&mut reader, u64::MAX, opts, exclude, &mut out, cov) {
        Ok(end) => out.complete = end && !reader.truncated(),
        Err(e) => out.error = Some(e.to_string()),
    }
    out.lines_read = reader.stats().records;
    cov.summarise(&mut out);
    if out.error.is_none() {
        no_calls(
            &entry.path,
            &mut out,
            reader.stats(),
            &opts.bam.pileup,
            found,
        );
    }
    out
}

/// The no-calls rule of [`methvb_bam::require_calls`] on the records read: a whole file without
/// calls gets `run`'s error (and the sample is not complete: `run` stops at its end); a head
/// without calls is a warning, since later records may carry them.
fn no_calls(
    path: &Path,
    out: &mut SampleCheck,
    stats: &PileupStats,
    pileup: &PileupOptions,
    found: &mut Findings,
) {
    let rule = PileupOptions {
        require_calls: true,
        ..pileup.clone()
    };
    let Err(e) = methvb_bam::require_calls(&rule, stats) else {
        return;
    };
    let source = match pileup.source {
        CallSource::Auto => "",
        CallSource::ModTags => "; --source mm looks at MM/ML only (--source auto reads XM too)",
        CallSource::Bismark => {
            "; --source bismark looks at XM only (--source auto reads MM/ML too)"
        }
    };
    let message = ReadError::new(path, 0, ErrorKind::Bam(e.to_string()));
    if out.complete {
        out.complete = false;
        out.error = Some(format!("{message} — {NO_CALLS_FIX}{source}"));
    } else {
        found.push(
            Severity::Warning,
            "no-mod-tags",
            format!(
                "{message} (in the first {} records; the rest was not read) — {NO_CALLS_FIX}{source}",
                stats.records
            ),
        );
    }
}

/// Where a reader's contig goes in [`SampleCheck::contigs`].
#[derive(Debug, Clone, Copy)]
enum Slot {
    /// Not met yet.
    Unseen,
    /// On `--exclude-contigs`: its sites are counted apart.
    Excluded,
    /// Index into the sample's contigs.
    At(usize),
}

/// Reads sites until the end (`Ok(true)`) or until a site from beyond line `max_lines`
/// (`Ok(false)`), counting them into `out` (contigs already in `out.contigs` are filled, others
/// appended in order of appearance) and their coverage into `cov`. Sites read before an error
/// stay counted.
fn stream_sites(
    reader: &mut dyn SiteSource,
    max_lines: u64,
    opts: &CheckOptions,
    exclude: &HashSet<String>,
    out: &mut SampleCheck,
    cov: &mut Coverage,
) -> Result<bool, ReadError> {
    let mut index: HashMap<String, usize> = out
        .contigs
        .iter()
        .enumerate()
        .map(|(k, c)| (c.name.clone(), k))
        .collect();
    // Per reader contig id.
    let mut local: Vec<Slot> = Vec::new();
    cov.start();
    while let Some(site) = reader.next_site()? {
        // The reader may look one line ahead (strand merging): sites are cut by their line.
        if site.line > max_lines {
            return Ok(false);
        }
        if local.len() <= site.contig {
            local.resize(site.contig + 1, Slot::Unseen);
        }
        if let Slot::Unseen = local[site.contig] {
            let name = reader.contig_name(site.contig);
            local[site.contig] = if exclude.contains(name) {
                Slot::Excluded
            } else if let Some(&k) = index.get(name) {
                Slot::At(k)
            } else {
                out.contigs.push(ContigCount {
                    name: name.to_string(),
                    sites: 0,
                });
                index.insert(name.to_string(), out.contigs.len() - 1);
                Slot::At(out.contigs.len() - 1)
            };
        }
        let Slot::At(k) = local[site.contig] else {
            out.excluded_sites += 1;
            continue;
        };
        out.contigs[k].sites += 1;
        out.sites += 1;
        if site.coverage > 0 {
            if opts.fasta.is_some() && out.probe.len() < FASTA_SITES {
                out.probe.push((k, site.pos));
            }
            cov.add(site.coverage, site.methylated);
        }
    }
    Ok(true)
}

/// Coverage of the covered sites of one sample (reused from sample to sample: the histogram is
/// large).
#[derive(Debug)]
struct Coverage {
    /// Sites per coverage below [`HIST`].
    hist: Vec<u64>,
    covered: u64,
    sum_n: u64,
    sum_m: u64,
    ge10: u64,
}

impl Default for Coverage {
    fn default() -> Self {
        Coverage {
            hist: vec![0; HIST],
            covered: 0,
            sum_n: 0,
            sum_m: 0,
            ge10: 0,
        }
    }
}

impl Coverage {
    /// Forgets the previous sample.
    fn start(&mut self) {
        self.hist.fill(0);
        (self.covered, self.sum_n, self.sum_m, self.ge10) = (0, 0, 0, 0);
    }

    /// One site with coverage `n > 0`, `m` of it methylated.
    fn add(&mut self, n: u32, m: u32) {
        self.covered += 1;
        self.sum_n += u64::from(n);
        self.sum_m += u64::from(m);
        if n >= 10 {
            self.ge10 += 1;
        }
        if let Some(h) = self.hist.get_mut(n as usize) {
            *h += 1;
        }
    }

    /// Writes the summary into `out`: covered sites, mean, lower median, share with `n >= 10`,
    /// mean methylation.
    fn summarise(&self, out: &mut SampleCheck) {
        out.covered_sites = self.covered;
        if self.covered == 0 {
            return;
        }
        let c = self.covered as f64;
        out.mean_coverage = self.sum_n as f64 / c;
        out.mean_methylation = self.sum_m as f64 / self.sum_n as f64;
        out.frac_coverage_ge_10 = self.ge10 as f64 / c;
        // Lower median: the ceil(c/2)-th smallest coverage.
        let half = self.covered.div_ceil(2);
        let mut acc = 0u64;
        out.median_coverage = u32::MAX;
        for (v, &h) in self.hist.iter().enumerate() {
            acc += h;
            if acc >= half {
                out.median_coverage = v as u32;
                break;
            }
        }
    }
}

/// The findings about one sample on its own: a reader error, no sites, no coverage.
fn sample_findings(s: &SampleCheck, found: &mut Findings) {
    if let Some(e) = &s.error {
        found.push(Severity::Error, "read-error", e.clone());
    } else if s.sites == 0 && s.complete {
        let why = if s.excluded_sites > 0 {
            "every site is on an excluded contig".to_string()
        } else if matches!(s.format.as_deref(), Some("bam" | "sam")) && s.lines_read == 0 {
            "the file holds no record".to_string()
        } else if matches!(s.format.as_deref(), Some("bam" | "sam")) {
            format!(
                "none of its {} records gives a call at a CpG site (are the records dropped by \
                 the MAPQ or flag filters?)",
                s.lines_read
            )
        } else {
            "the file holds no data line (empty, header only, or no CpG-context row)".to_string()
        };
        found.push(
            Severity::Error,
            "no-sites",
            format!("{}: no sites: {why}", s.path),
        );
    } else if s.covered_sites == 0 && s.sites > 0 {
        found.push(
            Severity::Warning,
            "no-coverage",
            format!("{}: every site read has coverage 0", s.path),
        );
    }
}

/// Bismark `.cov` files read as 0-based (both conventions are read correctly): a note naming the
/// first.
pub(crate) fn note_cov_convention(samples: &[SampleCheck], found: &mut Findings) {
    if let Some(z) = samples.iter().find(|s| {
        s.format.as_deref() == Some("bismark-cov") && s.layout.as_deref() == Some("0-based")
    }) {
        found.push(
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

/// `--exclude-contigs` naming no contig of any sample (once every file was read to its end).
pub(crate) fn warn_unused_excludes(
    report: &CheckReport,
    exclude: &HashSet<String>,
    found: &mut Findings,
) {
    if exclude.is_empty() || !report.complete || report.samples.is_empty() {
        return;
    }
    if report.samples.iter().all(|s| s.excluded_sites == 0) {
        found.push(
            Severity::Warning,
            "exclude-unused",
            format!(
                "--exclude-contigs {}: no sample has any of these contigs",
                report.excluded_contigs.join(",")
            ),
        );
    }
}
