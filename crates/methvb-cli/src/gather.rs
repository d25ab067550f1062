//! `methvb gather`: concatenates the per-chromosome shards written by `methvb fit` into one
//! results table, recomputing the FDR calls over all of them ([`methvb_pipeline::gather`]).

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use methvb_pipeline::gather::{GatherMetadata, gather};

/// Arguments of `methvb gather`.
#[derive(Debug, Args)]
pub struct GatherArgs {
    /// Shards from `methvb fit`, in genomic order.
    #[arg(required = true, value_name = "SHARD.parquet")]
    pub(crate) shards: Vec<PathBuf>,
    /// Target Bayesian FDR of the region calls (0 < FDR < 1).
    #[arg(long, default_value_t = methvb_pipeline::config::DEFAULT_FDR, value_parser = crate::args::fdr_value)]
    pub(crate) fdr: f64,
    /// Output Parquet file.
    #[arg(long, short, value_name = "FILE.parquet")]
    pub(crate) out: PathBuf,
}

/// Runs `methvb gather`.
pub fn run(args: &GatherArgs, quiet: bool) -> Result<()> {
    let metadata = GatherMetadata::FromShards {
        command: crate::command_line(),
    };
    let gathered = gather(&args.shards, args.fdr, &args.out, metadata)?;
    if !quiet {
        eprintln!(
            "methvb gather: {} regions from {} shards ({} called at FDR {}) -> {}",
            gathered.rows,
            args.shards.len(),
            gathered.called,
            args.fdr,
            args.out.display()
        );
    }
    Ok(())
}
