//! The flags shared by several commands, each group a clap struct that converts into the
//! library's configuration ([`methvb_pipeline::config`]); the value parsers that keep
//! nonsense out.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use methvb_io::regions::DEFAULT_CLUSTER_MIN_SITES;
use methvb_pipeline::commands::Analysis;
use methvb_pipeline::config::{
    self, AuditConfig, BamFilterConfig, FitConfig, HyperConfig, InputConfig, ModelConfig,
    RegionConfig,
};
use methvb_pipeline::design::DesignConfig;

/// Where BAM/SAM calls come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
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
#[derive(Debug, Clone, Args)]
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
    #[arg(long, default_value_t = BamFilterConfig::default().filter_percentile, value_name = "Q")]
    pub filter_percentile: f64,
    /// Records used to estimate the threshold.
    #[arg(long, default_value_t = BamFilterConfig::default().sample_reads, value_name = "N")]
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

/// How to find and read the samples.
/// The experimental design: sample-sheet columns as covariates and pairs.
#[derive(Debug, Clone, Args)]
pub struct DesignArgs {
    /// Sample-sheet columns to adjust for (e.g. batch,age): a column of numbers enters
    /// linearly, centred on its mean; any other is categorical, its first level in sheet order
    /// the reference. Delta is then the group difference at the reference level / mean of
    /// every covariate.
    #[arg(long, value_name = "COL[,COL...]", value_delimiter = ',')]
    pub covariates: Vec<String>,
    /// Sample-sheet column pairing the samples (e.g. donor, for paired or repeated-measures
    /// designs): one effect per level, shared by a region's CpGs; delta is for the average
    /// level.
    #[arg(long, value_name = "COL")]
    pub pair_by: Option<String>,
}

impl DesignArgs {
    /// The library's design settings (column names trimmed, empty ones dropped).
    pub fn config(&self) -> DesignConfig {
        DesignConfig {
            covariates: self
                .covariates
                .iter()
                .map(|c| c.trim().to_string())
                .filter(|c| !c.is_empty())
                .collect(),
            pair_by: self.pair_by.clone(),
        }
    }
}

#[derive(Debug, Clone, Args)]
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
    #[arg(long, default_value_t = InputConfig::new("").batch_size, value_name = "N", value_parser = at_least_one)]
    pub batch_size: usize,
}

/// How sites are grouped into regions, and which sites and regions are kept.
#[derive(Debug, Clone, Args)]
pub struct RegionArgs {
    /// Regions from a BED file (name column = region id, else chrom:start-end; a name shared by
    /// several regions becomes name@chrom:start-end, so that ids are unique).
    #[arg(long, value_name = "BED", conflicts_with_all = ["tile", "max_gap"])]
    pub regions: Option<PathBuf>,
    /// Fixed tiles of this many bp instead of CpG clusters.
    #[arg(long, value_name = "BP", conflicts_with = "max_gap")]
    pub tile: Option<u64>,
    /// Distance between tile starts (default: the tile size).
    #[arg(long, value_name = "BP", requires = "tile")]
    pub step: Option<u64>,
    /// CpG clusters (the default): largest gap in bp between consecutive sites of a cluster.
    #[arg(long, value_name = "BP")]
    pub max_gap: Option<u64>,
    /// CpG clusters: fewest sites a cluster needs.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_CLUSTER_MIN_SITES)]
    pub cluster_min_sites: usize,
    /// Cells (site x sample) with fewer reads count as missing.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub min_cov: u32,
    /// A site needs coverage in at least this many samples of every group.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub min_samples_per_group: usize,
    /// A region needs at least this many sites (after the site filters).
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub min_sites: usize,
}

/// Variational family, as named on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FamilyArg {
    /// Dense covariance over the region-level parameters, diagonal site effects.
    Structured,
    /// Fully diagonal (faster, under-states variance).
    MeanField,
}

/// Options of the model fit.
#[derive(Debug, Clone, Args)]
pub struct ModelArgs {
    /// Covariates and pairs from the sheet's columns.
    #[command(flatten)]
    pub design: DesignArgs,
    /// Master seed: every region's random stream derives from (seed, region id).
    #[arg(long, default_value_t = ModelConfig::default().seed)]
    pub seed: u64,
    /// Variational family.
    #[arg(long, value_enum, default_value = "structured")]
    pub family: FamilyArg,
    /// Effect size of interest: prob_dm = P(|delta| > delta0), delta being a difference of
    /// methylation levels (0 < delta0 < 1).
    #[arg(long, default_value_t = FitConfig::default().delta0, value_parser = delta0_value)]
    pub delta0: f64,
    /// Target Bayesian FDR of the region calls (0 < FDR < 1).
    #[arg(long, default_value_t = config::DEFAULT_FDR, value_parser = fdr_value)]
    pub fdr: f64,
    /// Importance draws of each region's posterior behind its summaries and its PSIS verdict
    /// (one log-density evaluation each; the k-hat threshold is min(1 - 1/log10(N), 0.7)).
    #[arg(long, default_value_t = FitConfig::default().draws, value_parser = clap::value_parser!(u32).range(100..))]
    pub draws: u32,
    /// Refit rungs for regions whose importance sampling is unreliable (0: report the first
    /// fit; each rung costs about as much as the first fit and its draws).
    #[arg(long, default_value_t = FitConfig::default().max_refit)]
    pub max_refit: u8,
    /// Screen clear nulls on half the draws (about a fifth faster; off by default): the draws
    /// come in two interleaved halves, and a fit reliable on the first half with prob_dm < 0.01
    /// and every delta's weighted sd within 1.25x of q's is reported from those.
    #[arg(long)]
    pub screen: bool,
    /// Start every fit from the data (pooled logit levels, curvature) instead of the start model
    /// pass 1 learns on its sampled regions (hyper.json's `start`).
    #[arg(long)]
    pub data_start: bool,
    /// Regions fitted in parallel per minibatch (at least 1).
    #[arg(long, default_value_t = config::DEFAULT_MINIBATCH, value_parser = at_least_one)]
    pub minibatch: usize,
    /// Show a progress bar even when stderr is not a terminal.
    #[arg(long)]
    pub progress: bool,
}

/// A number strictly between 0 and 1 for option `what`, or the reason it is not.
fn open_unit_interval(text: &str, what: &str) -> std::result::Result<f64, String> {
    let v: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number"))?;
    if v > 0.0 && v < 1.0 {
        Ok(v)
    } else {
        Err(format!(
            "{what} must be between 0 and 1 (exclusive), got {v}"
        ))
    }
}

/// A count option that 0 would turn into nonsense (`--minibatch`, `--hyper-regions`, ...).
pub fn at_least_one(text: &str) -> std::result::Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("{text:?} is not a whole number")),
    }
}

/// `--spike-sd`: MODEL.md keeps sd_b0 above 0.05 so that the spike cannot degenerate.
pub fn spike_sd_value(text: &str) -> std::result::Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.05 => Ok(v),
        Ok(v) => Err(format!(
            "the spike width must be at least 0.05 (logit scale), got {v}"
        )),
        Err(_) => Err(format!("{text:?} is not a number")),
    }
}

/// `--fdr`: 0 would call nothing and 1 everything.
pub fn fdr_value(text: &str) -> std::result::Result<f64, String> {
    open_unit_interval(text, "the FDR target (e.g. 0.05)")
}

/// `--delta0`: |delta| never exceeds 1, so 1 or more calls nothing; 0 makes every region
/// "differentially methylated".
fn delta0_value(text: &str) -> std::result::Result<f64, String> {
    open_unit_interval(
        text,
        "the effect size delta0, a difference of methylation levels (e.g. 0.1)",
    )
}

/// Options of pass 1 (learning Theta).
#[derive(Debug, Clone, Args)]
pub struct HyperArgs {
    /// Regions sampled genome-wide (reservoir sampling) to learn Theta from (at least 1).
    #[arg(long, default_value_t = HyperConfig::default().hyper_regions, value_name = "N", value_parser = at_least_one)]
    pub hyper_regions: usize,
    /// Standard deviation (logit scale, >= 0.05) of the "no difference" component of the prior
    /// of group effects (default: chosen by empirical Bayes among 0.05-0.2); the effect grid
    /// above it is fixed, its weights learned.
    #[arg(long, value_name = "SD", value_parser = spike_sd_value)]
    pub spike_sd: Option<f64>,
}

/// Options of the MCMC audit.
#[derive(Debug, Clone, Args)]
pub struct AuditArgs {
    /// Regions (a seeded random sample) to cross-check against NUTS; 0 turns the audit off.
    #[arg(long, default_value_t = AuditConfig::default().mcmc_check, value_name = "N")]
    pub mcmc_check: usize,
    /// Also audit regions the verdict flags (reliable = false), up to --mcmc-flagged-cap.
    #[arg(long)]
    pub mcmc_flagged: bool,
    /// Most flagged regions audited with --mcmc-flagged.
    #[arg(long, default_value_t = AuditConfig::default().mcmc_flagged_cap, value_name = "N")]
    pub mcmc_flagged_cap: usize,
}

impl BamFilterArgs {
    /// The library's BAM filter settings.
    pub fn config(&self) -> BamFilterConfig {
        BamFilterConfig {
            filter_threshold: self.filter_threshold,
            no_filtering: self.no_filtering,
            filter_percentile: self.filter_percentile,
            sample_reads: self.sample_reads,
            source: match self.source {
                Source::Auto => config::Source::Auto,
                Source::Mm => config::Source::Mm,
                Source::Bismark => config::Source::Bismark,
            },
            combine_mods: self.combine_mods,
            legacy_as_explicit: self.legacy_as_explicit,
            min_mapq: self.min_mapq,
            include_supplementary: self.include_supplementary,
            include_duplicates: self.include_duplicates,
            include_overlap: self.include_overlap,
            min_base_qual: self.min_base_qual,
            skip_bad_mod_tags: self.skip_bad_mod_tags,
        }
    }
}

impl InputArgs {
    /// The library's input settings.
    pub fn config(&self) -> InputConfig {
        InputConfig {
            samples: self.samples.clone().into(),
            reference_group: self.reference_group.clone(),
            design: DesignConfig::default(),
            contigs: self.contigs.clone().map(Into::into),
            mod_code: self.mod_code.clone(),
            any_mod: self.any_mod,
            no_combine_strands: self.no_combine_strands,
            exclude_contigs: self.exclude_contigs.clone(),
            fasta: self.fasta.clone().map(Into::into),
            bam: self.bam.config(),
            batch_size: self.batch_size,
        }
    }
}

impl RegionArgs {
    /// The library's region settings.
    pub fn config(&self) -> RegionConfig {
        RegionConfig {
            regions: self.regions.clone().map(Into::into),
            tile: self.tile,
            step: self.step,
            max_gap: self.max_gap,
            cluster_min_sites: self.cluster_min_sites,
            min_cov: self.min_cov,
            min_samples_per_group: self.min_samples_per_group,
            min_sites: self.min_sites,
        }
    }
}

impl ModelArgs {
    /// The settings every job shares, for `input` and `regions`.
    pub fn analysis(&self, input: &InputArgs, regions: &RegionArgs) -> Analysis {
        Analysis {
            input: InputConfig {
                design: self.design.config(),
                ..input.config()
            },
            regions: regions.config(),
            model: ModelConfig {
                seed: self.seed,
                family: match self.family {
                    FamilyArg::Structured => methvb_model::Family::Structured,
                    FamilyArg::MeanField => methvb_model::Family::MeanField,
                },
            },
            fit: FitConfig {
                delta0: self.delta0,
                draws: self.draws,
                max_refit: self.max_refit,
                screen: self.screen,
                data_start: self.data_start,
            },
            fdr: self.fdr,
            minibatch: self.minibatch,
            command: crate::command_line(),
        }
    }
}

impl HyperArgs {
    /// The library's pass-1 settings.
    pub fn config(&self) -> HyperConfig {
        HyperConfig {
            hyper_regions: self.hyper_regions,
            spike_sd: self.spike_sd,
        }
    }
}

impl AuditArgs {
    /// The library's audit settings.
    pub fn config(&self) -> AuditConfig {
        AuditConfig {
            mcmc_check: self.mcmc_check,
            mcmc_flagged: self.mcmc_flagged,
            mcmc_flagged_cap: self.mcmc_flagged_cap,
        }
    }
}
