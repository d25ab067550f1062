//! `methvb export DIR`: genome-browser files from `DIR/regions.parquet` (a `run` folder, or the
//! folder of a `gather` output): `calls.bed` (BED9 with a track line: the called regions, name =
//! region id, score = 1000 × prob_dm, red where Δ > 0, blue where Δ < 0) and `delta.bedgraph`
//! (the posterior mean Δ of every region), both in genome order; with `--bgzip` also BGZF copies
//! with tabix indexes (`calls.bed.gz` + `.tbi`, `delta.bedgraph.gz` + `.tbi`). More than two
//! groups: one `delta_<g>.bedgraph` per contrast, and calls coloured by the contrast of largest
//! |Δ|. Every file is written through a temporary file and a rename.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use methvb_io::browser;
use methvb_pipeline::export::{folder_label, publish, read_table};

/// Arguments of `methvb export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Folder holding regions.parquet (a `methvb run --out` folder, or the folder of a
    /// `methvb gather --out` file); the files are written there.
    #[arg(value_name = "DIR")]
    pub(crate) dir: PathBuf,
    /// Also write BGZF-compressed copies with tabix indexes (`.gz` + `.gz.tbi`), for IGV and
    /// `tabix` queries.
    #[arg(long)]
    pub(crate) bgzip: bool,
}

/// Runs `methvb export`.
pub fn run(args: &ExportArgs, quiet: bool) -> Result<()> {
    let path = methvb_pipeline::schema::files::results_table(&args.dir);
    if !path.is_file() {
        bail!(
            "{} not found: give the folder of a `methvb run --out` or `methvb dmr --out` (or of a \
             `methvb gather --out` file named regions.parquet)",
            path.display()
        );
    }
    methvb_pipeline::run_folder::check_consistent(&args.dir).with_context(|| {
        format!(
            "checking that the files in {} are of one run",
            args.dir.display()
        )
    })?;
    let table = read_table(&path)?;
    let label = folder_label(&args.dir);
    let calls = browser::calls_bed(&table, &label);
    let mut written = publish(&args.dir, "calls.bed", &calls, &table.contigs, args.bgzip)?;
    for k in 0..table.contrasts.len() {
        let lines = browser::delta_bedgraph(&table, k, &label);
        let name = format!("{}.bedgraph", table.contrasts[k]);
        written.extend(publish(
            &args.dir,
            &name,
            &lines,
            &table.contigs,
            args.bgzip,
        )?);
    }
    if !quiet {
        eprintln!(
            "methvb export: {} called of {} regions -> {}",
            calls.len(),
            table.rows.len(),
            written
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(())
}
