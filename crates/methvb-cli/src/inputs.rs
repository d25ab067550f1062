//! Options shared by every command that reads a sample sheet, and the code that opens the
//! samples as one merged site stream.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use methvb_bam::{BadModTags, BamOptions, BamSampleReader, CpgFilter, ModCode};
use methvb_io::SiteSource;
use methvb_io::contigs::ContigOrder;
use methvb_io::merge::SiteMerger;
use methvb_io::sample::{ContigFilter, ReaderOptions, SampleReader};
use methvb_io::sheet::SampleSheet;

/// How to find and read the samples.
#[derive(Debug, Clone, Args)]
pub struct InputArgs {
    /// Sample sheet (TSV or CSV with columns sample, group, path and optionally format;
    /// relative paths are relative to the sheet).
    #[arg(long, value_name = "SHEET")]
    pub samples: PathBuf,
    /// Reference group for the contrasts (default: the group of the first sample).
    #[arg(long, value_name = "GROUP")]
    pub reference: Option<String>,
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
    /// Keep the two strands of a CpG as separate sites (default: + at p and − at p+1 merge).
    #[arg(long)]
    pub no_strand_merge: bool,
    /// Drop these contigs from every sample (comma-separated), e.g. spike-ins such as lambda.
    #[arg(long, value_delimiter = ',', value_name = "CONTIGS")]
    pub exclude_contigs: Vec<String>,
    /// Indexed reference FASTA: CpG context of BAM samples (default: from the read sequence).
    #[arg(long, value_name = "FASTA")]
    pub fasta: Option<PathBuf>,
    /// BAM/SAM samples: skip (and count) records whose MM/ML tags are malformed, as modkit does,
    /// instead of stopping with an error that names the record.
    #[arg(long)]
    pub skip_bad_mod_tags: bool,
    /// Rows per Arrow batch of merged sites (at least 1).
    #[arg(long, default_value_t = 65_536, value_name = "N", value_parser = crate::pipeline::at_least_one)]
    pub batch_size: usize,
}

impl InputArgs {
    /// Reads the sample sheet (with the reference group first).
    pub fn sheet(&self) -> Result<SampleSheet> {
        let sheet = SampleSheet::from_path(&self.samples)?;
        Ok(sheet.with_reference(self.reference.as_deref())?)
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
                Box::new(BamSampleReader::open(&entry.path, &self.bam_options()?)?)
            } else {
                let opts = ReaderOptions {
                    format: entry.format,
                    mod_code: self.mod_code.clone(),
                    any_mod: self.any_mod,
                    merge_strands: !self.no_strand_merge,
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
        let mod_code = ModCode::parse(&self.mod_code).with_context(|| {
            format!("--mod-code {:?} is not a modification code", self.mod_code)
        })?;
        let mut opts = BamOptions {
            mod_code,
            any_mod: self.any_mod,
            ..BamOptions::default()
        };
        opts.pileup.combine_strands = !self.no_strand_merge;
        opts.pileup.bad_mod_tags = if self.skip_bad_mod_tags {
            BadModTags::Skip
        } else {
            BadModTags::Error
        };
        opts.pileup.require_calls = true;
        if let Some(fasta) = &self.fasta {
            opts.pileup.cpg = CpgFilter::Reference(fasta.clone());
        }
        Ok(opts)
    }
}

/// Whether a sample is an alignment file (BAM or SAM) rather than a count table.
fn is_alignment_file(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("bam") || e.eq_ignore_ascii_case("sam"))
}
