//! Opening the samples of a sheet as one merged site stream, and what the outputs record of
//! the inputs.

use std::path::Path;

use methvb_bam::{
    BadModTags, BamOptions, BamSampleReader, CallSource, CpgFilter, Filter, FilterChoice, ModCode,
};
use methvb_io::SiteSource;
use methvb_io::contigs::ContigOrder;
use methvb_io::merge::SiteMerger;
use methvb_io::sample::{ContigFilter, ReaderOptions, SampleReader};
use methvb_io::sheet::{SampleSheet, is_alignment_file};
use serde::Serialize;

use crate::config::{BamFilterConfig, InputConfig, Source};
use crate::error::{Context, Result, bail};

impl BamFilterConfig {
    /// The pileup options these settings set, over `opts`, and the call filter.
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

impl InputConfig {
    /// Reads the sample sheet (with the reference group first).
    pub fn sheet(&self) -> Result<SampleSheet> {
        let sheet = SampleSheet::from_path(self.samples.path())?;
        Ok(sheet.with_reference(self.reference_group.as_deref())?)
    }

    /// Opens every sample of `sheet` and starts their k-way merge. BAM/SAM files (by extension)
    /// are piled up on the fly into per-CpG counts; text files go through the format readers.
    pub fn open_merger(&self, sheet: &SampleSheet) -> Result<SiteMerger> {
        let order = match &self.contigs {
            Some(path) => ContigOrder::from_path(path.path())?,
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

    /// How BAM/SAM samples are piled up: the modification code, strands, CpG context and the
    /// record and call filters.
    pub fn bam_options(&self) -> Result<BamOptions> {
        let mod_code = ModCode::parse(&self.mod_code).with_context(|| {
            format!("--mod-code {:?} is not a modification code", self.mod_code)
        })?;
        let mut opts = BamOptions {
            mod_code,
            any_mod: self.any_mod,
            ..BamOptions::default()
        };
        self.bam.apply(&mut opts)?;
        opts.pileup.combine_strands = !self.no_combine_strands;
        if let Some(fasta) = &self.fasta {
            opts.pileup.cpg = CpgFilter::Reference(fasta.path().to_path_buf());
        }
        Ok(opts)
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
    /// the inputs: these settings (paths absolute) and the call threshold used for each BAM/SAM
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

    /// These settings with every path made absolute (relative to the current directory), so
    /// that a later command run elsewhere (`methvb report`) can read the same inputs.
    pub fn absolute(&self) -> Self {
        Self {
            samples: self.samples.absolute(),
            contigs: self.contigs.as_ref().map(|f| f.absolute()),
            fasta: self.fasta.as_ref().map(|f| f.absolute()),
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
