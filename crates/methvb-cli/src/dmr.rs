//! `methvb dmr`: its flags, turned into the library's job ([`methvb_pipeline::dmr`]), and what
//! it says when done.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use methvb_io::regions::DEFAULT_CLUSTER_MIN_SITES;
use methvb_pipeline::config::HyperConfig;
use methvb_pipeline::dmr::{self, DmrJob, ScanConfig};

use crate::args::{InputArgs, ModelArgs, RegionArgs, at_least_one, spike_sd_value};
use crate::progress::Terminal;

/// Arguments of `methvb dmr`.
#[derive(Debug, Args)]
pub struct DmrArgs {
    #[command(flatten)]
    input: InputArgs,
    #[command(flatten)]
    clusters: ClusterArgs,
    #[command(flatten)]
    scan: ScanArgs,
    #[command(flatten)]
    pub(crate) model: ModelArgs,
    /// Regions sampled genome-wide (reservoir sampling) to learn Theta from (at least 1). Fewer
    /// than `run`'s default: Theta is the prior of a few candidates here, and 500 regions gave
    /// the same recall, precision and ends as 2,000 on the data of benches/compare/dmr.sh, at a
    /// quarter of the cost.
    #[arg(long, default_value_t = dmr::DEFAULT_HYPER_REGIONS, value_name = "N", value_parser = at_least_one)]
    hyper_regions: usize,
    /// Standard deviation (logit scale, >= 0.05) of the "no difference" component of the prior
    /// of group effects (default: chosen by empirical Bayes among 0.05-0.2).
    #[arg(long, value_name = "SD", value_parser = spike_sd_value)]
    spike_sd: Option<f64>,
    /// Use this Theta (from `methvb hyper`, or a run's hyper.json) instead of learning it.
    #[arg(long, value_name = "JSON")]
    hyper_json: Option<PathBuf>,
    /// Only scan these chromosomes (repeat or comma-separate; one shard of a workflow, with
    /// --hyper-json; `methvb gather` of the shards' dmrs.parquet recomputes the calls).
    #[arg(long, value_name = "CHROM", value_delimiter = ',')]
    chrom: Vec<String>,
    /// Output directory: dmrs.parquet, dmrs.bed, cpgs.parquet, hyper.json, run.json. The
    /// outputs of an earlier run there are removed first.
    #[arg(long, short, value_name = "DIR")]
    out: PathBuf,
}

/// The runs of CpGs scanned, and the site filters.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "CpG clusters scanned")]
struct ClusterArgs {
    /// Largest gap in bp between consecutive CpGs of a cluster: a DMR never spans a larger one.
    #[arg(long, value_name = "BP")]
    max_gap: Option<u64>,
    /// Fewest CpGs a cluster needs (after the site filters).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_CLUSTER_MIN_SITES)]
    cluster_min_sites: usize,
    /// Cells (site x sample) with fewer reads count as missing.
    #[arg(long, value_name = "N", default_value_t = 1)]
    min_cov: u32,
    /// A CpG needs coverage in at least this many samples of every group.
    #[arg(long, value_name = "N", default_value_t = 1)]
    min_samples_per_group: usize,
}

/// How candidate DMRs are found in a cluster.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "DMR scan")]
struct ScanArgs {
    /// Fewest CpGs of a DMR.
    #[arg(long, value_name = "N", default_value_t = ScanConfig::default().min_sites, value_parser = at_least_one)]
    min_cpgs: usize,
    /// Most CpGs of a DMR (bounds the scan's cost in long clusters).
    #[arg(long, value_name = "N", default_value_t = ScanConfig::default().max_sites, value_parser = at_least_one)]
    max_cpgs: usize,
    /// Smallest scan score |T| of a candidate (T: the z statistic of one common difference
    /// over the stretch); candidates are then fitted and called by the model.
    #[arg(long, value_name = "T", default_value_t = ScanConfig::default().min_score)]
    min_score: f64,
}

impl DmrArgs {
    /// The library's job.
    pub fn config(&self) -> DmrJob {
        let c = &self.clusters;
        let regions = RegionArgs {
            regions: None,
            tile: None,
            step: None,
            max_gap: c.max_gap,
            cluster_min_sites: c.cluster_min_sites,
            min_cov: c.min_cov,
            min_samples_per_group: c.min_samples_per_group,
            min_sites: c.cluster_min_sites,
        };
        DmrJob {
            analysis: self.model.analysis(&self.input, &regions),
            hyper: HyperConfig {
                hyper_regions: self.hyper_regions,
                spike_sd: self.spike_sd,
            },
            hyper_json: self.hyper_json.clone(),
            scan: ScanConfig {
                min_sites: self.scan.min_cpgs,
                max_sites: self.scan.max_cpgs,
                min_score: self.scan.min_score,
                ..ScanConfig::default()
            },
            chrom: self.chrom.clone(),
            out: self.out.clone(),
        }
    }
}

/// Runs `methvb dmr`.
pub fn run(args: &DmrArgs, quiet: bool) -> Result<()> {
    let progress = Terminal::new(quiet, args.model.progress);
    let outcome = dmr::dmr(&args.config(), &progress)?;
    if !quiet {
        let s = &outcome.summary;
        eprintln!(
            "methvb dmr: {} clusters scanned ({} CpGs), {} candidates fitted, {} DMRs called \
             ({} unreliable) -> {}",
            s.clusters,
            s.cpgs,
            s.candidates,
            s.called,
            s.unreliable,
            outcome.dmrs.display()
        );
    }
    Ok(())
}
