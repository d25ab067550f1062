//! `methvb report DIR`: a self-contained HTML page (inline SVG plots, no external references)
//! from the outputs of `methvb run` in DIR. The work lives in `methvb-report`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

/// Arguments of `methvb report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Output directory of `methvb run` (regions.parquet; run.json, hyper.json and
    /// mcmc_check.parquet are used when present). A folder whose files come from different
    /// runs (a file run.json does not list, another run id or Theta) is refused.
    #[arg(value_name = "DIR")]
    dir: PathBuf,
    /// Write the report here instead of DIR/report.html.
    #[arg(long, short, value_name = "FILE.html")]
    out: Option<PathBuf>,
    /// Most points drawn one by one in a scatter plot; larger volcano plots are drawn as a
    /// grid of counts, so the page stays small for millions of regions.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    max_points: usize,
}

/// Runs `methvb report`.
pub fn run(args: &ReportArgs, quiet: bool) -> Result<()> {
    crate::run_folder::check_consistent(&args.dir).with_context(|| {
        format!(
            "checking that the files in {} are of one run",
            args.dir.display()
        )
    })?;
    let options = methvb_report::ReportOptions {
        output: args.out.clone(),
        max_points: args.max_points,
    };
    let outcome = methvb_report::write_report(&args.dir, &options)
        .with_context(|| format!("writing the report of {}", args.dir.display()))?;
    if !quiet {
        let audit = match &outcome.mcmc {
            Some(m) => format!("MCMC audit of {} regions", m.regions),
            None => "no MCMC audit".to_string(),
        };
        eprintln!(
            "methvb: report of {} regions ({audit}) -> {} ({} KB)",
            outcome.regions,
            outcome.path.display(),
            outcome.bytes.div_ceil(1024)
        );
    }
    Ok(())
}
