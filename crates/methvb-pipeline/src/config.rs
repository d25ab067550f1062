//! The configuration of a pipeline step: plain, serialisable structs (no command-line types).
//! The binary turns its flags into these; `run.json`, `hyper.json` and the Parquet metadata
//! record them; and the resume keys are their serialisation ([`crate::resume`]), so a setting
//! added here is part of every key without anyone listing it.
//!
//! Files named by a setting are [`FileRef`]s: recorded by path, keyed by content.

use crate::design::DesignConfig;
use std::path::{Path, PathBuf};

use methvb_io::regions::{
    BedRegions, DEFAULT_CLUSTER_MIN_SITES, DEFAULT_MAX_GAP, RegionFilters, RegionSpec,
};
use methvb_model::{Family, FitOptions, StartModel};
use serde::{Deserialize, Serialize};

use crate::error::Result;

/// A file named by a setting (sample sheet, regions BED, reference index, FASTA). It serialises
/// as its path, except inside a resume key, where it is its SHA-256: moving a file keeps a key,
/// changing its content does not ([`crate::resume`]).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct FileRef(PathBuf);

impl FileRef {
    /// The path as given.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// The same file with its path made absolute (relative to the current directory), so that
    /// a command run elsewhere later (`methvb report`) finds it.
    pub fn absolute(&self) -> Self {
        Self(std::path::absolute(&self.0).unwrap_or_else(|_| self.0.clone()))
    }
}

impl From<PathBuf> for FileRef {
    fn from(path: PathBuf) -> Self {
        Self(path)
    }
}

impl Serialize for FileRef {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if crate::resume::keying() {
            let digest = crate::resume::sha256_file(&self.0)
                .map_err(|e| serde::ser::Error::custom(e.chain()))?
                .1;
            serializer.serialize_str(&format!("sha256:{digest}"))
        } else {
            self.0.serialize(serializer)
        }
    }
}

/// Where BAM/SAM calls come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// MM/ML if a record has them, else Bismark XM.
    #[default]
    Auto,
    /// Only MM/ML (and legacy Mm/Ml).
    Mm,
    /// Only Bismark XM.
    Bismark,
}

/// How BAM/SAM records and calls are filtered (`pileup`, and BAM samples of a sheet).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BamFilterConfig {
    /// Fixed pass threshold on the probability of the called state.
    pub filter_threshold: Option<f32>,
    /// Count every call (no threshold).
    pub no_filtering: bool,
    /// Without a threshold or `no_filtering`: the threshold is this quantile of the
    /// called-state probabilities of the first `sample_reads` records.
    pub filter_percentile: f64,
    /// Records used to estimate the threshold.
    pub sample_reads: usize,
    /// Where calls come from.
    pub source: Source,
    /// One row per canonical base counting all modifications together (code `C`).
    pub combine_mods: bool,
    /// Read legacy MM groups without a mode character as explicit `?`.
    pub legacy_as_explicit: bool,
    /// Minimum mapping quality.
    pub min_mapq: u8,
    /// Keep supplementary alignments.
    pub include_supplementary: bool,
    /// Keep duplicate-flagged records.
    pub include_duplicates: bool,
    /// Bismark paired-end: count read 2's calls where it overlaps read 1.
    pub include_overlap: bool,
    /// Bismark: minimum base quality of a call.
    pub min_base_qual: u8,
    /// Skip (and count) records with malformed modification tags instead of stopping.
    pub skip_bad_mod_tags: bool,
}

impl Default for BamFilterConfig {
    /// modkit's defaults: the threshold estimated as the 10% quantile of 10,042 records.
    fn default() -> Self {
        Self {
            filter_threshold: None,
            no_filtering: false,
            filter_percentile: 0.1,
            sample_reads: 10_042,
            source: Source::Auto,
            combine_mods: false,
            legacy_as_explicit: false,
            min_mapq: 0,
            include_supplementary: false,
            include_duplicates: false,
            include_overlap: false,
            min_base_qual: 0,
            skip_bad_mod_tags: false,
        }
    }
}

/// How to find and read the samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputConfig {
    /// Sample sheet (relative paths inside it are relative to the sheet).
    pub samples: FileRef,
    /// Reference group for the contrasts (`None`: the group of the first sample).
    pub reference_group: Option<String>,
    /// Covariates and pairs from the sheet's columns (omitted from the serialised form, and so
    /// from the resume keys, when empty: a run without a design keys as before).
    #[serde(default, skip_serializing_if = "DesignConfig::is_empty")]
    pub design: DesignConfig,
    /// Contig order from a `.fai` or `.dict` (`None`: from the inputs, which must agree).
    pub contigs: Option<FileRef>,
    /// bedMethyl modification code counted as methylated.
    pub mod_code: String,
    /// Count any modification as methylated.
    pub any_mod: bool,
    /// Keep the two strands of a CpG as separate sites.
    pub no_combine_strands: bool,
    /// Contigs dropped from every sample.
    pub exclude_contigs: Vec<String>,
    /// Reference FASTA for the CpG context of BAM samples (`None`: the read sequence).
    pub fasta: Option<FileRef>,
    /// BAM/SAM record and call filters.
    pub bam: BamFilterConfig,
    /// Rows per Arrow batch of merged sites.
    pub batch_size: usize,
}

impl InputConfig {
    /// The inputs of `sheet` with every other setting at its default.
    pub fn new(sheet: impl Into<PathBuf>) -> Self {
        Self {
            samples: FileRef(sheet.into()),
            reference_group: None,
            design: DesignConfig::default(),
            contigs: None,
            mod_code: "m".into(),
            any_mod: false,
            no_combine_strands: false,
            exclude_contigs: Vec::new(),
            fasta: None,
            bam: BamFilterConfig::default(),
            batch_size: 65_536,
        }
    }
}

/// How sites are grouped into regions, and which sites and regions are kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegionConfig {
    /// Regions from a BED file (`None`: tiles or CpG clusters).
    pub regions: Option<FileRef>,
    /// Fixed tiles of this many bp.
    pub tile: Option<u64>,
    /// Distance between tile starts (`None`: the tile size).
    pub step: Option<u64>,
    /// CpG clusters: largest gap in bp between consecutive sites (`None`: the default).
    pub max_gap: Option<u64>,
    /// CpG clusters: fewest sites a cluster needs.
    pub cluster_min_sites: usize,
    /// Cells with fewer reads count as missing.
    pub min_cov: u32,
    /// A site needs coverage in at least this many samples of every group.
    pub min_samples_per_group: usize,
    /// A region needs at least this many sites.
    pub min_sites: usize,
}

impl Default for RegionConfig {
    fn default() -> Self {
        Self {
            regions: None,
            tile: None,
            step: None,
            max_gap: None,
            cluster_min_sites: DEFAULT_CLUSTER_MIN_SITES,
            min_cov: 1,
            min_samples_per_group: 1,
            min_sites: 3,
        }
    }
}

impl RegionConfig {
    /// How the region builder finds regions (reads the BED, if any).
    pub fn spec(&self) -> Result<RegionSpec> {
        Ok(if let Some(bed) = &self.regions {
            RegionSpec::Bed(BedRegions::from_path(bed.path())?)
        } else if let Some(size) = self.tile {
            RegionSpec::Tile {
                size,
                step: self.step.unwrap_or(size),
            }
        } else {
            RegionSpec::Cluster {
                max_gap: self.max_gap.unwrap_or(DEFAULT_MAX_GAP),
                min_sites: self.cluster_min_sites,
            }
        })
    }

    /// The site and region filters.
    pub fn filters(&self) -> RegionFilters {
        RegionFilters {
            min_cov: self.min_cov,
            min_samples_per_group: self.min_samples_per_group,
            min_sites: self.min_sites,
        }
    }
}

/// What both passes share: the variational family and the master seed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// Master seed: every region's random stream derives from (seed, region id).
    pub seed: u64,
    /// Variational family.
    pub family: Family,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            seed: 1,
            family: Family::Structured,
        }
    }
}

/// Options of pass 1 (learning Theta).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HyperConfig {
    /// Regions sampled genome-wide (reservoir sampling) to learn Theta from.
    pub hyper_regions: usize,
    /// Width of the "no difference" component of the prior of group effects (`None`: chosen
    /// by empirical Bayes).
    pub spike_sd: Option<f64>,
}

impl Default for HyperConfig {
    fn default() -> Self {
        Self {
            hyper_regions: 2000,
            spike_sd: None,
        }
    }
}

/// Options of each region's fit in pass 2 (the FDR target is not one: it applies to all regions
/// at once, see [`crate::Pass2`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FitConfig {
    /// Effect size of interest: prob_dm = P(|delta| > delta0).
    pub delta0: f64,
    /// Importance draws of each region's posterior.
    pub draws: u32,
    /// Refit rungs for regions whose importance sampling is unreliable.
    pub max_refit: u8,
    /// Clear nulls may be settled on the first half of the draws (`FitOptions::screen`);
    /// absent (false) in run.json files written before it existed.
    #[serde(default)]
    pub screen: bool,
    /// Start every fit from the data-driven start even when pass 1 learned a start model
    /// (`FitOptions::start`); absent (false) in run.json files written before it existed.
    #[serde(default)]
    pub data_start: bool,
}

impl Default for FitConfig {
    fn default() -> Self {
        let d = FitOptions::default();
        Self {
            delta0: d.delta0,
            draws: d.n_draws,
            max_refit: d.max_refit,
            screen: d.screen,
            data_start: false,
        }
    }
}

impl FitConfig {
    /// The start model the fits use: pass 1's, unless `data_start`.
    pub fn start<'a>(&self, learned: Option<&'a StartModel>) -> Option<&'a StartModel> {
        learned.filter(|_| !self.data_start)
    }

    /// The model's per-region options, contrasts taken from the model's group `reference`.
    pub fn fit_options(&self, model: &ModelConfig, reference: usize) -> FitOptions {
        let mut opts = FitOptions {
            reference,
            n_draws: self.draws,
            max_refit: self.max_refit,
            delta0: self.delta0,
            screen: self.screen,
            ..FitOptions::default()
        };
        opts.vb.family = model.family;
        opts
    }
}

/// Options of the MCMC audit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditConfig {
    /// Regions (a seeded random sample) cross-checked against NUTS; 0 turns the audit off.
    pub mcmc_check: usize,
    /// Also audit regions the verdict flags, up to `mcmc_flagged_cap`.
    pub mcmc_flagged: bool,
    /// Most flagged regions audited.
    pub mcmc_flagged_cap: usize,
}

impl AuditConfig {
    /// No audit.
    pub const OFF: Self = Self {
        mcmc_check: 0,
        mcmc_flagged: false,
        mcmc_flagged_cap: 0,
    };
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            mcmc_check: 16,
            mcmc_flagged: false,
            mcmc_flagged_cap: 64,
        }
    }
}

/// Default target Bayesian FDR of the region calls.
pub const DEFAULT_FDR: f64 = 0.05;

/// Default regions fitted in parallel per minibatch.
pub const DEFAULT_MINIBATCH: usize = 512;
