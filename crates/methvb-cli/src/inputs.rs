//! Options shared by every command that reads a sample sheet, and the code that opens the
//! samples as one merged site stream.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use methvb_bam::{
    BadModTags, BamOptions, BamSampleReader, CallSource, CpgFilter, Filter, FilterChoice, ModCode,
};
use methvb_io::SiteSource;
use methvb_io::contigs::ContigOrder;
use methvb_io::merge::SiteMerger;
use methvb_io::sample::{ContigFilter, ReaderOptions, SampleReader};
use methvb_io::sheet::{SampleSheet, is_alignment_file};
use serde::{Deserialize, Serialize};

/// Where BAM/SAM calls come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// MM/ML if a record has them, else Bismark XM.
    Auto,
    /// Only MM/ML (and legacy Mm/Ml).
    Mm,
    /// Only Bismark XM.
    Bismark,
}

/// How BAM/SAM records and calls are filtered: the same options, with the same names and
/// defaults, for `pileup` and for BAM samples of a sheet (`run`, `fit`, `hyper`, `sites`).
#[derive(Debug, Clone, Args, Serialize, Deserialize)]
#[command(next_help_heading = "BAM/SAM input (pileup, and BAM samples of a sheet)")]
pub struct BamFilterArgs {
    /// Fixed pass threshold on the probability of the called state.
    #[arg(long, value_name = "X", conflicts_with = "no_filtering")]
    pub filter_threshold: Option<f32>,
    /// Count every call (no threshold).
    #[arg(long)]
    pub no_filtering: bool,
    /// Without --filter-threshold / --no-filtering: the threshold is this quantile of the
    /// called-state probabilities of the first --sample-reads records (modkit: 0.1).
    #[arg(long, default_value_t = 0.1, value_name = "Q")]
    pub filter_percentile: f64,
    /// Records used to estimate the threshold.
    #[arg(long, default_value_t = 10_042, value_name = "N")]
    pub sample_reads: usize,
    /// Where calls come from.
    #[arg(long, value_enum, default_value_t = Source::Auto)]
    pub source: Source,
    /// One row per canonical base counting all modifications together (code `C`), like
    /// modkit --combine-mods (a sheet's BAM samples then ignore --mod-code).
    #[arg(long)]
    pub combine_mods: bool,
    /// Read legacy MM groups without a mode character (PacBio `C+m`) as explicit `?`: unlisted
    /// Cs are no-calls, not canonical (what `modkit update-tags --mode ambiguous` does).
    #[arg(long)]
    pub legacy_as_explicit: bool,
    /// Minimum mapping quality.
    #[arg(long, default_value_t = 0, value_name = "Q")]
    pub min_mapq: u8,
    /// Keep supplementary alignments.
    #[arg(long)]
    pub include_supplementary: bool,
    /// Keep duplicate-flagged records.
    #[arg(long)]
    pub include_duplicates: bool,
    /// Bismark paired-end: count read 2's calls where it overlaps read 1 (default: dropped,
    /// like bismark_methylation_extractor --no_overlap).
    #[arg(long)]
    pub include_overlap: bool,
    /// Bismark: minimum base quality of a call.
    #[arg(long, default_value_t = 0, value_name = "Q")]
    pub min_base_qual: u8,
    /// Skip (and count) records whose MM/ML (or XM/XG) tags are malformed, as modkit does,
    /// instead of stopping with an error that names the record.
    #[arg(long)]
    pub skip_bad_mod_tags: bool,
}

impl BamFilterArgs {
    /// The pileup options these flags set, over `opts`, and the call filter.
    pub fn apply(&self, opts: &mut BamOptions) -> Result<()> {
        if !(0.0..1.0).contains(&self.filter_percentile) {
            bail!("--filter-percentile must be in [0, 1)");
        }
        let p = &mut opts.pileup;
        p.source = match self.source {
            Source::Auto => CallSource::Auto,
            Source::Mm => CallSource::ModTags,
            Source::Bismark => CallSource::Bismark,
        };
        p.combine_mods = self.combine_mods;
        p.legacy_as_explicit = self.legacy_as_explicit;
        p.min_mapq = self.min_mapq;
        p.include_supplementary = self.include_supplementary;
        p.include_duplicates = self.include_duplicates;
        p.no_overlap = !self.include_overlap;
        p.min_base_qual = self.min_base_qual;
        p.bad_mod_tags = if self.skip_bad_mod_tags {
            BadModTags::Skip
        } else {
            BadModTags::Error
        };
        p.require_calls = true;
        opts.filter = if self.no_filtering {
            FilterChoice::NoFiltering
        } else if let Some(t) = self.filter_threshold {
            FilterChoice::Threshold(t)
        } else {
            FilterChoice::Estimate {
                reads: self.sample_reads,
                percentile: self.filter_percentile,
            }
        };
        Ok(())
    }
}

/// `opts` with its filter resolved for `path` (the threshold estimated once, when asked), and
/// that threshold (`None`: no filtering).
pub fn resolve_bam_filter(path: &Path, opts: &BamOptions) -> Result<(BamOptions, Option<f32>)> {
    let filter = methvb_bam::resolve_filter(path, opts)?;
    let (choice, threshold) = match filter {
        Filter::None => (FilterChoice::NoFiltering, None),
        Filter::Threshold(t) => (FilterChoice::Threshold(t), Some(t)),
    };
    Ok((
        BamOptions {
            filter: choice,
            ..opts.clone()
        },
        threshold,
    ))
}

/// How BAM/SAM samples of a sheet are read: `--mod-code`, `--any-mod`, the BAM filter flags,
/// strands combined unless `--no-combine-strands`, CpG context from `--fasta` when given (else
/// from the read sequence). Shared by the commands that read a sheet and by `check`.
pub fn bam_sample_options(
    mod_code: &str,
    any_mod: bool,
    bam: &BamFilterArgs,
    no_combine_strands: bool,
    fasta: Option<&Path>,
) -> Result<BamOptions> {
    let code = ModCode::parse(mod_code)
        .with_context(|| format!("--mod-code {mod_code:?} is not a modification code"))?;
    let mut opts = BamOptions {
        mod_code: code,
        any_mod,
        ..BamOptions::default()
    };
    bam.apply(&mut opts)?;
    opts.pileup.combine_strands = !no_combine_strands;
    if let Some(fasta) = fasta {
        opts.pileup.cpg = CpgFilter::Reference(fasta.to_path_buf());
    }
    Ok(opts)
}

/// How to find and read the samples.
#[derive(Debug, Clone, Args, Serialize, Deserialize)]
pub struct InputArgs {
    /// Sample sheet (TSV or CSV with columns sample, group, path and optionally format;
    /// relative paths are relative to the sheet).
    #[arg(long, value_name = "SHEET")]
    pub samples: PathBuf,
    /// Reference group for the contrasts (default: the group of the first sample).
    #[arg(long, value_name = "GROUP", alias = "reference")]
    pub reference_group: Option<String>,
    /// Contig order from a FASTA index (.fai) or sequence dictionary (.dict); without it the
    /// order is taken from the inputs, which must agree.
    #[arg(long, value_name = "FAI|DICT")]
    pub contigs: Option<PathBuf>,
    /// bedMethyl modification code to count as methylated (`m` 5mC, `h` 5hmC, `C` any C mod,
    /// a ChEBI number such as 21839); rows with other codes are skipped and counted.
    #[arg(long, default_value = "m", value_name = "CODE")]
    pub mod_code: String,
    /// Count any modification as methylated (what bisulfite sequencing sees: 5mC + 5hmC).
    #[arg(long)]
    pub any_mod: bool,
    /// Keep the two strands of a CpG as separate sites (default: + at p and − at p+1 are
    /// combined into one site, as `pileup --combine-strands` does).
    #[arg(long, alias = "no-strand-merge")]
    pub no_combine_strands: bool,
    /// Drop these contigs from every sample (comma-separated), e.g. spike-ins such as lambda.
    #[arg(long, value_delimiter = ',', value_name = "CONTIGS")]
    pub exclude_contigs: Vec<String>,
    /// Reference genome FASTA, indexed (.fai beside it): CpG context of BAM samples (default:
    /// from the read sequence).
    #[arg(long, value_name = "FASTA")]
    pub fasta: Option<PathBuf>,
    #[command(flatten)]
    pub bam: BamFilterArgs,
    /// Rows per Arrow batch of merged sites (at least 1).
    #[arg(long, default_value_t = 65_536, value_name = "N", value_parser = crate::pipeline::at_least_one)]
    pub batch_size: usize,
}

impl InputArgs {
    /// Reads the sample sheet (with the reference group first).
    pub fn sheet(&self) -> Result<SampleSheet> {
        let sheet = SampleSheet::from_path(&self.samples)?;
        Ok(sheet.with_reference(self.reference_group.as_deref())?)
    }

    /// Opens every sample of `sheet` and starts their k-way merge. BAM/SAM files (by extension)
    /// are piled up on the fly into per-CpG counts; text files go through the format readers.
    pub fn open_merger(&self, sheet: &SampleSheet) -> Result<SiteMerger> {
        let order = match &self.contigs {
            Some(path) => ContigOrder::from_path(path)?,
            None => ContigOrder::default(),
        };
        let mut sources: Vec<Box<dyn SiteSource + Send>> = Vec::with_capacity(sheet.samples.len());
        for entry in &sheet.samples {
            let source: Box<dyn SiteSource + Send> = if is_alignment_file(&entry.path) {
                let (opts, _) = resolve_bam_filter(&entry.path, &self.bam_options()?)?;
                Box::new(BamSampleReader::open(&entry.path, &opts)?)
            } else {
                let opts = ReaderOptions {
                    format: entry.format,
                    mod_code: self.mod_code.clone(),
                    any_mod: self.any_mod,
                    merge_strands: !self.no_combine_strands,
                };
                Box::new(SampleReader::open(&entry.path, &opts)?)
            };
            sources.push(if self.exclude_contigs.is_empty() {
                source
            } else {
                Box::new(ContigFilter::new(source, &self.exclude_contigs))
            });
        }
        let groups = sheet.samples.iter().map(|s| s.group.clone()).collect();
        Ok(SiteMerger::new(sources, order)?.with_samples(sheet.sample_names(), groups))
    }

    fn bam_options(&self) -> Result<BamOptions> {
        bam_sample_options(
            &self.mod_code,
            self.any_mod,
            &self.bam,
            self.no_combine_strands,
            self.fasta.as_deref(),
        )
    }

    /// The call threshold used for each BAM/SAM sample of `sheet`, in sheet order (`null`: no
    /// filtering), as run.json records it.
    fn bam_thresholds(&self, sheet: &SampleSheet) -> Result<Vec<BamThreshold>> {
        let mut out = Vec::new();
        for entry in &sheet.samples {
            if is_alignment_file(&entry.path) {
                let (_, threshold) = resolve_bam_filter(&entry.path, &self.bam_options()?)?;
                out.push(BamThreshold {
                    sample: entry.name.clone(),
                    threshold,
                });
            }
        }
        Ok(out)
    }

    /// What run.json, hyper.json and the Parquet metadata (`methvb.input_options`) record of
    /// the inputs: these options (paths absolute) and the call threshold used for each BAM/SAM
    /// sample (`bam_thresholds`, estimated or given; `null`: no filtering).
    pub fn provenance(&self, sheet: &SampleSheet) -> Result<serde_json::Value> {
        let mut value = serde_json::to_value(self.absolute())?;
        if let Some(map) = value.as_object_mut() {
            map.insert(
                "bam_thresholds".into(),
                serde_json::to_value(self.bam_thresholds(sheet)?)?,
            );
        }
        Ok(value)
    }

    /// These options with every path made absolute (relative to the current directory), so that
    /// a later command run elsewhere (`methvb report`) can read the same inputs.
    fn absolute(&self) -> Self {
        let abs = |p: &PathBuf| std::path::absolute(p).unwrap_or_else(|_| p.clone());
        Self {
            samples: abs(&self.samples),
            contigs: self.contigs.as_ref().map(abs),
            fasta: self.fasta.as_ref().map(abs),
            ..self.clone()
        }
    }
}

/// The call threshold of one BAM/SAM sample.
#[derive(Debug, Clone, Serialize)]
struct BamThreshold {
    /// Sample name.
    sample: String,
    /// Pass threshold on the called-state probability (`None`: every call counted).
    threshold: Option<f32>,
}
