//! `methvb sites`: the merged sites of a sample sheet as a Parquet file.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use methvb_io::parquet_out::{AtomicParquetWriter, DEFAULT_ROW_GROUP_ROWS};

use crate::args::InputArgs;

/// Arguments of `methvb sites`.
#[derive(Debug, Args)]
pub struct SitesArgs {
    #[command(flatten)]
    pub(crate) input: InputArgs,
    /// Output Parquet file: columns chrom, pos (0-based), then `<sample>_m`, `<sample>_n`.
    #[arg(long, short, value_name = "FILE.parquet")]
    pub(crate) out: PathBuf,
}

/// Runs `methvb sites`.
pub fn run(args: &SitesArgs, quiet: bool) -> Result<()> {
    let input = args.input.config();
    let sheet = input.sheet()?;
    let mut merger = input.open_merger(&sheet)?;
    let metadata = vec![
        (
            "methvb.version".to_string(),
            env!("CARGO_PKG_VERSION").to_string(),
        ),
        ("methvb.command".to_string(), crate::command_line()),
        (
            "methvb.input_options".to_string(),
            input.provenance(&sheet)?.to_string(),
        ),
    ];
    let mut writer =
        AtomicParquetWriter::create(&args.out, merger.schema(), metadata, DEFAULT_ROW_GROUP_ROWS)?;
    while let Some(batch) = merger.next_batch(args.input.batch_size)? {
        writer.write(&batch)?;
    }
    let rows = writer.finish()?;
    if !quiet {
        let stats = merger.stats();
        eprintln!(
            "methvb sites: {rows} merged sites from {} samples ({} positions with no coverage in any sample dropped) -> {}",
            sheet.samples.len(),
            stats.rows_dropped_all_zero,
            args.out.display()
        );
    }
    Ok(())
}
