//! `methvb`: Bayesian differential methylation from count tables, fitted by stochastic
//! variational Bayes. This binary only parses arguments, turns them into the library's
//! configuration and prints messages and errors; the work lives in `methvb-pipeline` (the
//! jobs) and the crates below it.

mod args;
mod check;
mod dmr;
mod export;
#[cfg(test)]
mod flags;
mod gather;
mod pileup;
mod progress;
mod report;
mod run;
mod simulate;
mod sites;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Bayesian differential methylation (WGBS/RRBS, nanopore/PacBio) by stochastic variational Bayes.
#[derive(Debug, Parser)]
#[command(name = "methvb", version, about, long_about = None)]
struct Cli {
    /// Worker threads for parallel work (default: all cores).
    #[arg(long, global = true, value_parser = args::at_least_one)]
    threads: Option<usize>,
    /// Print nothing but errors.
    #[arg(long, short, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Merge the samples of a sheet by position and write the sites to Parquet.
    Sites(sites::SitesArgs),
    /// Learn Theta, fit every region, write regions.parquet, hyper.json and run.json.
    Run(run::RunArgs),
    /// Pass 1 only: learn Theta from a genome-wide sample of regions (for sharded workflows).
    Hyper(run::HyperCmdArgs),
    /// Pass 2 only: fit regions (optionally some chromosomes) with a given Theta.
    Fit(run::FitArgs),
    /// Find DMRs de novo: scan the CpG clusters for differentially methylated stretches, fit
    /// each with the model and call them at a DMR-level Bayesian FDR; writes dmrs.parquet,
    /// dmrs.bed, cpgs.parquet, hyper.json and run.json.
    Dmr(dmr::DmrArgs),
    /// Concatenate `fit` shards into one table, recomputing the FDR calls over all of them.
    Gather(gather::GatherArgs),
    /// Per-position modification counts (MM/ML or Bismark XM) from a BAM/SAM as modkit-style
    /// 18-column bedMethyl.
    Pileup(pileup::PileupArgs),
    /// Genome-browser files of DIR/regions.parquet: DIR/calls.bed (BED9, the called regions)
    /// and DIR/delta.bedgraph (posterior mean delta of every region); --bgzip adds tabix-indexed
    /// BGZF copies.
    Export(export::ExportArgs),
    /// Write DIR/report.html: a self-contained HTML report (inline SVG plots) of a run: summary
    /// and inputs, volcano, top called regions (table, per-CpG panels), k-hat, MCMC audit.
    Report(report::ReportArgs),
    /// Simulate a dataset (bedMethyl per sample, sample sheet, regions, truth) from the model.
    Simulate(simulate::SimulateArgs),
    /// Pre-flight report on the inputs (count tables and BAM/SAM samples, read as `run` reads
    /// them): reader errors, contig naming and sets, order, groups, regions, coverage.
    Check(check::CheckArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(threads) = cli.threads
        && let Err(e) = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build_global()
    {
        eprintln!("methvb: error: cannot start {threads} threads: {e}");
        return ExitCode::from(2);
    }
    let result = match &cli.command {
        Command::Sites(args) => sites::run(args, cli.quiet),
        Command::Simulate(args) => simulate::run(args, cli.quiet),
        Command::Run(args) => run::run(args, cli.quiet),
        Command::Hyper(args) => run::hyper(args, cli.quiet),
        Command::Fit(args) => run::fit(args, cli.quiet),
        Command::Dmr(args) => dmr::run(args, cli.quiet),
        Command::Gather(args) => gather::run(args, cli.quiet),
        Command::Report(args) => report::run(args, cli.quiet),
        Command::Export(args) => export::run(args, cli.quiet),
        Command::Pileup(args) => pileup::run(args, cli.quiet),
        Command::Check(args) => check::run(args, cli.quiet),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("methvb: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The command line as typed, for provenance metadata in outputs.
pub fn command_line() -> String {
    std::env::args().collect::<Vec<_>>().join(" ")
}
