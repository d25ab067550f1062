//! Gathering: concatenates the per-chromosome shards written by `methvb fit` (or by
//! `methvb run` under `OUT/shards/`) into one results table and recomputes the FDR calls over all
//! of them, so that a sharded workflow gives the same rows as one `methvb run`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use arrow_array::{Array, BooleanArray, Float64Array, RecordBatch, StringArray};
use methvb_io::parquet_out::AtomicParquetWriter;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::error::{Context, Result, bail};
use crate::schema::{CALLED, RESULTS_ROW_GROUP_ROWS};

/// Opens a Parquet file for reading (its footer parsed).
pub fn open(path: &Path) -> Result<ParquetRecordBatchReaderBuilder<std::fs::File>> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    ParquetRecordBatchReaderBuilder::try_new(file)
        .with_context(|| format!("{}: not a readable Parquet file", path.display()))
}

/// The value of key-value metadata `key` of an opened Parquet file.
pub fn metadata_value(
    builder: &ParquetRecordBatchReaderBuilder<std::fs::File>,
    key: &str,
) -> Option<String> {
    builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|e| e.key == key))
        .and_then(|e| e.value.clone())
}

/// The metadata that must agree between shards for their rows to belong to one run. The run
/// id covers the inputs and every setting; the others say which of the common ones differ.
fn shard_identity(
    builder: &ParquetRecordBatchReaderBuilder<std::fs::File>,
) -> Vec<(String, String)> {
    const KEYS: [&str; 6] = [
        "methvb.version",
        "methvb.model_version",
        "methvb.seed",
        "methvb.theta",
        "methvb.delta0",
        crate::run_folder::RUN_ID_KEY,
    ];
    KEYS.iter()
        .map(|&k| {
            (
                k.to_string(),
                metadata_value(builder, k).unwrap_or_default(),
            )
        })
        .collect()
}

/// What [`gather`] wrote.
#[derive(Debug, Clone, Copy)]
pub struct Gathered {
    /// Rows (regions) written.
    pub rows: u64,
    /// Regions called at the FDR target over all shards.
    pub called: u64,
}

/// The key-value metadata of a gathered file.
#[derive(Debug, Clone)]
pub enum GatherMetadata {
    /// These entries (`methvb run`, which knows its own).
    Given(Vec<(String, String)>),
    /// The first shard's `methvb.*` entries, with this command line and the FDR target
    /// (`methvb gather`).
    FromShards {
        /// The command line that gathers.
        command: String,
    },
}

/// Concatenates `shards` (in order) into `out` with `called` recomputed over all of them at
/// target `fdr`. Streams the rows (memory: one batch and one PEP per region).
pub fn gather(
    shards: &[PathBuf],
    fdr: f64,
    out: &Path,
    metadata: GatherMetadata,
) -> Result<Gathered> {
    let Some(first_path) = shards.first() else {
        bail!("no shards to gather");
    };
    // First pass: every PEP, and a check that the shards share one schema.
    let first = open(first_path)?;
    // The file-level key-value metadata describes the gathered file; the shards' embedded Arrow
    // schema metadata (if any) would contradict it, so the schema is taken without it.
    let schema = std::sync::Arc::new(arrow_schema::Schema::new(first.schema().fields().clone()));
    let first_meta = shard_identity(&first);
    let metadata = match metadata {
        GatherMetadata::Given(metadata) => metadata,
        GatherMetadata::FromShards { command } => {
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
            metadata.push(("methvb.command".into(), command));
            metadata.push(("methvb.fdr".into(), fdr.to_string()));
            metadata
        }
    };
    let pep_index = schema.index_of("pep").ok();
    let chrom_index = schema
        .index_of("chrom")
        .context("shards lack a chrom column")?;
    let mut chrom_owner: HashMap<String, usize> = HashMap::new();
    for (shard_idx, shard) in shards.iter().enumerate() {
        let builder = open(shard)?;
        if builder.schema().fields() != schema.fields() {
            bail!(
                "{}: columns differ from {}",
                shard.display(),
                first_path.display()
            );
        }
        let identity = shard_identity(&builder);
        if identity != first_meta {
            let differ: Vec<String> = identity
                .iter()
                .zip(&first_meta)
                .filter(|(a, b)| a != b)
                .map(|((key, a), (_, b))| format!("{key} {a:?} vs {b:?}"))
                .collect();
            bail!(
                "{}: from another run than {} ({}): its rows were fitted from other inputs or \
                 settings; gather the shards of one workflow only",
                shard.display(),
                first_path.display(),
                differ.join(", ")
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
                            shards[other].display(),
                            shard.display()
                        );
                    }
                } else {
                    chrom_owner.insert(chrom.to_string(), shard_idx);
                }
            }
        }
    }
    // The genome-wide calls' threshold, from a few passes over the shards' PEPs (not a copy of
    // them: memory stays flat whatever the genome size).
    let cut = match pep_index {
        Some(index) => Some(methvb_model::PepCut::find(fdr, |add| {
            shards
                .iter()
                .try_for_each(|shard| for_each_f64(shard, index, add))
        })?),
        None => None,
    };
    // Then copy the rows, replacing `called` by the genome-wide calls.
    let called_index = schema.index_of(CALLED).ok();
    let mut writer =
        AtomicParquetWriter::create(out, schema.clone(), metadata, RESULTS_ROW_GROUP_ROWS)?;
    let mut called = 0u64;
    for shard in shards {
        let reader = open(shard)?
            .with_batch_size(RESULTS_ROW_GROUP_ROWS)
            .build()?;
        for batch in reader {
            let batch = batch.with_context(|| format!("reading {}", shard.display()))?;
            let batch = match (called_index, pep_index, cut) {
                (Some(i), Some(p), Some(cut)) => {
                    let calls: BooleanArray = f64_column(&batch, p, shard)?
                        .iter()
                        .map(|pep| Some(cut.called(pep.unwrap_or(f64::NAN))))
                        .collect();
                    called += calls.true_count() as u64;
                    let mut columns = batch.columns().to_vec();
                    columns[i] = std::sync::Arc::new(calls);
                    RecordBatch::try_new(schema.clone(), columns)?
                }
                _ => batch,
            };
            writer.write(&batch)?;
        }
    }
    let rows = writer.finish()?;
    Ok(Gathered { rows, called })
}

/// Column `index` of `batch` (read from `path`) as Float64.
pub(crate) fn f64_column<'a>(
    batch: &'a RecordBatch,
    index: usize,
    path: &Path,
) -> Result<&'a Float64Array> {
    batch
        .column(index)
        .as_any()
        .downcast_ref::<Float64Array>()
        .with_context(|| {
            format!(
                "{}: column {} is not Float64",
                path.display(),
                batch.schema().field(index).name()
            )
        })
}

/// Feeds every value of the Float64 column `index` of the Parquet file at `path` to `each`, in
/// row order (NaN for a null).
pub(crate) fn for_each_f64(path: &Path, index: usize, each: &mut dyn FnMut(f64)) -> Result<()> {
    let builder = open(path)?;
    let mask = ProjectionMask::roots(builder.parquet_schema(), [index]);
    let reader = builder
        .with_projection(mask)
        .with_batch_size(RESULTS_ROW_GROUP_ROWS)
        .build()?;
    for batch in reader {
        let batch = batch.with_context(|| format!("reading {}", path.display()))?;
        f64_column(&batch, 0, path)?
            .iter()
            .for_each(|v| each(v.unwrap_or(f64::NAN)));
    }
    Ok(())
}
