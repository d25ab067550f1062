//! `methvb gather`: concatenates the per-chromosome shards written by `methvb fit` into one
//! results table and recomputes the FDR calls over all of them, so that a sharded workflow gives
//! the same rows as one `methvb run`.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use arrow_array::{Array, Float64Array, RecordBatch, StringArray};
use clap::Args;
use methvb_io::parquet_out::AtomicParquetWriter;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::results::CALLED;

/// Arguments of `methvb gather`.
#[derive(Debug, Args)]
pub struct GatherArgs {
    /// Shards from `methvb fit`, in genomic order.
    #[arg(required = true, value_name = "SHARD.parquet")]
    shards: Vec<PathBuf>,
    /// Target Bayesian FDR of the region calls.
    #[arg(long, default_value_t = 0.05)]
    fdr: f64,
    /// Output Parquet file.
    #[arg(long, short, value_name = "FILE.parquet")]
    out: PathBuf,
}

fn open(path: &PathBuf) -> Result<ParquetRecordBatchReaderBuilder<std::fs::File>> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    ParquetRecordBatchReaderBuilder::try_new(file)
        .with_context(|| format!("{}: not a readable Parquet file", path.display()))
}

/// The metadata that must agree between shards for their rows to belong to one run.
fn shard_identity(
    builder: &ParquetRecordBatchReaderBuilder<std::fs::File>,
) -> Vec<(String, String)> {
    const KEYS: [&str; 5] = [
        "methvb.version",
        "methvb.model_version",
        "methvb.seed",
        "methvb.theta",
        "methvb.delta0",
    ];
    let kv = builder.metadata().file_metadata().key_value_metadata();
    KEYS.iter()
        .map(|&k| {
            let v = kv
                .and_then(|kv| kv.iter().find(|e| e.key == k))
                .and_then(|e| e.value.clone())
                .unwrap_or_default();
            (k.to_string(), v)
        })
        .collect()
}

/// Runs `methvb gather`.
pub fn run(args: &GatherArgs, quiet: bool) -> Result<()> {
    // First pass: every PEP, and a check that the shards share one schema.
    let first = open(&args.shards[0])?;
    // The file-level key-value metadata describes the gathered file; the shards' embedded Arrow
    // schema metadata (if any) would contradict it, so the schema is taken without it.
    let schema = std::sync::Arc::new(arrow_schema::Schema::new(first.schema().fields().clone()));
    let first_meta = shard_identity(&first);
    let mut metadata: Vec<(String, String)> = first
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .map(|kv| {
            kv.iter()
                .filter(|e| {
                    e.key.starts_with("methvb.")
                        && e.key != "methvb.command"
                        && e.key != "methvb.fdr"
                })
                .map(|e| (e.key.clone(), e.value.clone().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    metadata.push(("methvb.command".into(), crate::command_line()));
    metadata.push(("methvb.fdr".into(), args.fdr.to_string()));
    let pep_index = schema.index_of("pep").ok();
    let mut peps: Vec<f64> = Vec::new();
    let chrom_index = schema
        .index_of("chrom")
        .context("shards lack a chrom column")?;
    let mut chrom_owner: HashMap<String, usize> = HashMap::new();
    for (shard_idx, shard) in args.shards.iter().enumerate() {
        let builder = open(shard)?;
        if builder.schema().fields() != schema.fields() {
            bail!(
                "{}: columns differ from {}",
                shard.display(),
                args.shards[0].display()
            );
        }
        if shard_identity(&builder) != first_meta {
            bail!(
                "{}: fitted with a different seed, Theta, delta0 or methvb version than {} ({:?} vs {:?})",
                shard.display(),
                args.shards[0].display(),
                shard_identity(&builder),
                first_meta
            );
        }
        let chrom_only = open(shard)?;
        let mask = ProjectionMask::roots(chrom_only.parquet_schema(), [chrom_index]);
        for batch in chrom_only.with_projection(mask).build()? {
            let batch = batch.with_context(|| format!("reading {}", shard.display()))?;
            let chroms = batch
                .column(0)
                .as_any()
                .downcast_ref::<StringArray>()
                .context("column chrom is not utf8")?;
            for chrom in chroms.iter().flatten() {
                if let Some(&other) = chrom_owner.get(chrom) {
                    if other != shard_idx {
                        bail!(
                            "contig {chrom} appears in both {} and {}: each contig must be in exactly one shard",
                            args.shards[other].display(),
                            shard.display()
                        );
                    }
                } else {
                    chrom_owner.insert(chrom.to_string(), shard_idx);
                }
            }
        }
        let Some(pep_index) = pep_index else { continue };
        for batch in builder.build()? {
            let batch = batch.with_context(|| format!("reading {}", shard.display()))?;
            let pep = batch
                .column(pep_index)
                .as_any()
                .downcast_ref::<Float64Array>()
                .context("column pep is not Float64")?;
            peps.extend(pep.iter().map(|v| v.unwrap_or(f64::NAN)));
        }
    }
    let calls = if pep_index.is_some() {
        methvb_model::call_by_pep(&peps, args.fdr)
    } else {
        Vec::new()
    };
    // Second pass: copy the rows, replacing `called` by the genome-wide calls.
    let called_index = schema.index_of(CALLED).ok();
    let mut writer = AtomicParquetWriter::create(
        &args.out,
        schema.clone(),
        metadata,
        crate::results::RESULTS_ROW_GROUP_ROWS,
    )?;
    let mut offset = 0usize;
    for shard in &args.shards {
        for batch in open(shard)?.build()? {
            let batch = batch.with_context(|| format!("reading {}", shard.display()))?;
            let rows = batch.num_rows();
            let batch = match called_index {
                Some(i) => {
                    let mut columns = batch.columns().to_vec();
                    columns[i] = std::sync::Arc::new(arrow_array::BooleanArray::from(
                        calls[offset..offset + rows].to_vec(),
                    ));
                    RecordBatch::try_new(schema.clone(), columns)?
                }
                None => batch,
            };
            writer.write(&batch)?;
            offset += rows;
        }
    }
    let rows = writer.finish()?;
    if !quiet {
        let called = calls.iter().filter(|&&c| c).count();
        eprintln!(
            "methvb gather: {rows} regions from {} shards ({called} called at FDR {}) -> {}",
            args.shards.len(),
            args.fdr,
            args.out.display()
        );
    }
    Ok(())
}
