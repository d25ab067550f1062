//! `methvb run`, `methvb hyper` and `methvb fit`: their flags, turned into the library's jobs
//! ([`methvb_pipeline::commands`]), and what they say when done.

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args;
use methvb_pipeline::commands::{self, FitJob, HyperJob, RunConfig, contigs_count};
use methvb_pipeline::pass2::FitSummary;

use crate::args::{AuditArgs, HyperArgs, InputArgs, ModelArgs, RegionArgs};
use crate::progress::Terminal;

/// Arguments of `methvb run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    input: InputArgs,
    #[command(flatten)]
    regions: RegionArgs,
    #[command(flatten)]
    pub(crate) model: ModelArgs,
    #[command(flatten)]
    hyper: HyperArgs,
    #[command(flatten)]
    audit: AuditArgs,
    /// Use this Theta (a hyper.json) instead of learning it in pass 1.
    #[arg(long, value_name = "JSON")]
    hyper_json: Option<PathBuf>,
    /// Output directory: regions.parquet, hyper.json, run.json (and shards/ while running). The
    /// outputs of an earlier run there are removed before this run writes its own.
    #[arg(long, short, value_name = "DIR")]
    out: PathBuf,
    /// Continue an interrupted run into the same --out: reuse DIR/hyper.json if it was learned
    /// from the same inputs and settings (else learn Theta again), and every complete shard in
    /// DIR/shards/ whose inputs, settings and Theta match this run's and whose rows check out;
    /// fit only the other contigs. The result equals that of an uninterrupted run. Without
    /// --resume a run starts afresh and removes old shards.
    #[arg(long)]
    resume: bool,
    /// Keep DIR/shards/ (one Parquet file per contig, as `methvb fit --chrom` writes) after a
    /// successful run; by default it is removed once regions.parquet is written.
    #[arg(long)]
    keep_shards: bool,
}

/// Arguments of `methvb hyper`.
#[derive(Debug, Args)]
pub struct HyperCmdArgs {
    #[command(flatten)]
    input: InputArgs,
    #[command(flatten)]
    regions: RegionArgs,
    #[command(flatten)]
    pub(crate) model: ModelArgs,
    #[command(flatten)]
    hyper: HyperArgs,
    /// Output JSON (Theta and how it was learned).
    #[arg(long, short, value_name = "JSON")]
    out: PathBuf,
}

/// Arguments of `methvb fit`.
#[derive(Debug, Args)]
pub struct FitArgs {
    #[command(flatten)]
    input: InputArgs,
    #[command(flatten)]
    regions: RegionArgs,
    #[command(flatten)]
    pub(crate) model: ModelArgs,
    /// Theta from `methvb hyper` (or a run's hyper.json).
    #[arg(long, value_name = "JSON")]
    hyper: PathBuf,
    /// Only fit regions on these chromosomes (repeat or comma-separate); default: all.
    #[arg(long, value_name = "CHROM", value_delimiter = ',')]
    chrom: Vec<String>,
    /// Output Parquet file (`called` is the FDR call within this file; `methvb gather`
    /// recomputes it over all shards).
    #[arg(long, short, value_name = "FILE.parquet")]
    out: PathBuf,
}

impl RunArgs {
    /// The library's job.
    pub fn config(&self) -> RunConfig {
        RunConfig {
            analysis: self.model.analysis(&self.input, &self.regions),
            hyper: self.hyper.config(),
            audit: self.audit.config(),
            hyper_json: self.hyper_json.clone(),
            out: self.out.clone(),
            resume: self.resume,
            keep_shards: self.keep_shards,
        }
    }
}

impl HyperCmdArgs {
    /// The library's job.
    pub fn config(&self) -> HyperJob {
        HyperJob {
            analysis: self.model.analysis(&self.input, &self.regions),
            hyper: self.hyper.config(),
            out: self.out.clone(),
        }
    }
}

impl FitArgs {
    /// The library's job.
    pub fn config(&self) -> FitJob {
        FitJob {
            analysis: self.model.analysis(&self.input, &self.regions),
            hyper: self.hyper.clone(),
            chrom: self.chrom.clone(),
            out: self.out.clone(),
        }
    }
}

fn report(summary: &FitSummary, out: &Path) {
    eprintln!(
        "methvb: {} regions fitted in {:.1} s ({} called, {} unreliable, {} not converged) -> {}",
        summary.pass.regions_used,
        summary.pass.seconds,
        summary.regions_called,
        summary.regions_unreliable,
        summary.regions_not_converged,
        out.display()
    );
}

/// Runs `methvb run`.
pub fn run(args: &RunArgs, quiet: bool) -> Result<()> {
    let progress = Terminal::new(quiet, args.model.progress);
    let outcome = commands::run(&args.config(), &progress)?;
    if quiet {
        return Ok(());
    }
    let resume = &outcome.resume;
    if args.resume {
        eprintln!(
            "methvb: --resume: reused {} regions on {} ({}), fitted {}",
            resume.regions_reused,
            contigs_count(resume.contigs_reused.len()),
            resume.contigs_reused.join(", "),
            contigs_count(resume.contigs_fitted.len())
        );
    }
    report(&outcome.summary, &outcome.regions);
    if let Some(m) = &outcome.mcmc {
        eprintln!(
            "methvb: MCMC audit of {} regions: median |z_bias| {:.3} (worst {:.2}), median sd ratio {:.2}, {} regions with R-hat > {}",
            m.n_regions,
            m.median_abs_z_bias,
            m.worst_abs_z_bias,
            m.median_sd_ratio,
            m.regions_rhat_above,
            m.rhat_threshold
        );
    }
    Ok(())
}

/// Runs `methvb hyper`.
pub fn hyper(args: &HyperCmdArgs, quiet: bool) -> Result<()> {
    let progress = Terminal::new(quiet, args.model.progress);
    let file = commands::hyper(&args.config(), &progress)?;
    if !quiet {
        eprintln!(
            "methvb: Theta learned from {} of {} regions in {} epochs -> {}",
            file.regions_sampled,
            file.regions_seen,
            file.epochs,
            args.out.display()
        );
    }
    Ok(())
}

/// Runs `methvb fit`.
pub fn fit(args: &FitArgs, quiet: bool) -> Result<()> {
    let progress = Terminal::new(quiet, args.model.progress);
    let summary = commands::fit(&args.config(), &progress)?;
    if !quiet {
        report(&summary, &args.out);
    }
    Ok(())
}
