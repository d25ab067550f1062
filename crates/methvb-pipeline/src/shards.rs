//! The per-contig shards of `methvb run` and what `run --resume` needs to trust one.
//!
//! Pass 2 of `run` writes one shard per contig, `OUT/shards/<contig>.parquet`, as the region
//! stream leaves the contig: the columns and metadata of `methvb fit --chrom` output (`called`
//! within the shard), plus `methvb.contig` and `methvb.resume_key`, a JSON object of everything
//! the rows depend on (methvb and model versions, seed, family, Theta, δ₀, FDR target, summary
//! and PSIS draws, refit rungs, groups, the SHA-256 of every input, and the input and region
//! options). Each shard is
//! published atomically, so a killed run leaves complete shards and hidden temporaries only.
//! `regions.parquet` is then gathered from the shards (`called` recomputed genome-wide, as
//! `methvb gather` does).
//!
//! A shard is reused by `--resume` only if it opens as Parquet and every row decodes, its
//! `methvb.resume_key` equals this run's, its columns are this run's, its rows all lie on the
//! contig its metadata names (and its file name is that contig's), and its row count equals the
//! regions that pass 1 counted on the contig. While pass 2 streams, the region ids of a reused
//! shard are checked against the regions of the contig, one by one.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use arrow_array::{Array, BooleanArray, RecordBatch, StringArray};
use arrow_schema::SchemaRef;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::{Context, Result, bail};
use crate::gather::{metadata_value, open};
use crate::resume::differing_keys;

/// Folder of the shards inside the output directory.
pub const SHARDS_DIR: &str = "shards";
/// Shard metadata key: the contig whose regions the shard holds.
pub const CONTIG_KEY: &str = "methvb.contig";
/// Shard metadata key: the JSON object a shard must match to be reused.
pub const RESUME_KEY: &str = "methvb.resume_key";

/// File name of the shard of `contig`: the contig name where it is a safe file name, else its
/// safe characters (others replaced by `_`) and a hash of the full name.
pub fn file_name(contig: &str) -> String {
    let mut safe: String = contig
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if safe.starts_with('.') {
        safe.replace_range(0..1, "_");
    }
    if safe != contig || safe.len() > 100 {
        let hash = crate::resume::hex(&Sha256::digest(contig.as_bytes())[..4]);
        safe.truncate(100);
        safe = format!("{safe}-{hash}");
    }
    format!("{safe}.parquet")
}

/// A shard that `--resume` did not reuse, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Rejected {
    /// The shard file.
    pub file: PathBuf,
    /// Why it was not reused.
    pub reason: String,
}

/// Checks one shard file against this run; `Ok((contig, rows))` if it can be reused.
fn check(
    path: &Path,
    key: &serde_json::Value,
    schema: &SchemaRef,
    expected_rows: Option<&HashMap<String, u64>>,
) -> std::result::Result<(String, u64), String> {
    let builder = std::fs::File::open(path)
        .map_err(|e| format!("cannot open it: {e}"))
        .and_then(|file| {
            ParquetRecordBatchReaderBuilder::try_new(file)
                .map_err(|e| format!("not a readable Parquet file (truncated or damaged?): {e}"))
        })?;
    let found_key: serde_json::Value = metadata_value(&builder, RESUME_KEY)
        .and_then(|text| serde_json::from_str(&text).ok())
        .ok_or_else(|| format!("no {RESUME_KEY} metadata (not written by `methvb run`)"))?;
    if &found_key != key {
        return Err(format!(
            "written with other settings or inputs (differs in: {})",
            differing_keys(&found_key, key).join(", ")
        ));
    }
    let contig =
        metadata_value(&builder, CONTIG_KEY).ok_or_else(|| format!("no {CONTIG_KEY} metadata"))?;
    if path.file_name().and_then(|n| n.to_str()) != Some(file_name(&contig).as_str()) {
        return Err(format!(
            "holds contig {contig}, whose shard is {}",
            file_name(&contig)
        ));
    }
    if builder.schema().fields() != schema.fields() {
        return Err("its columns differ from this run's".into());
    }
    let rows = u64::try_from(builder.metadata().file_metadata().num_rows()).unwrap_or(0);
    if let Some(expected) = expected_rows {
        let want = expected.get(&contig).copied().unwrap_or(0);
        if rows != want {
            return Err(format!(
                "has {rows} rows, but pass 1 found {want} regions on {contig}"
            ));
        }
    }
    // Decode every row (a damaged page fails here, not in the middle of the gather), and check
    // that every row is on the contig.
    let chrom_index = schema
        .index_of("chrom")
        .map_err(|_| "no chrom column".to_string())?;
    let mut decoded = 0u64;
    let reader = builder
        .build()
        .map_err(|e| format!("cannot read its rows: {e}"))?;
    for batch in reader {
        let batch = batch.map_err(|e| format!("cannot read its rows: {e}"))?;
        let chroms = batch
            .column(chrom_index)
            .as_any()
            .downcast_ref::<StringArray>()
            .ok_or("column chrom is not utf8")?;
        if chroms.iter().any(|c| c != Some(contig.as_str())) {
            return Err(format!("holds rows of contigs other than {contig}"));
        }
        decoded += batch.num_rows() as u64;
    }
    if decoded != rows {
        return Err(format!("{decoded} rows decode, its footer says {rows}"));
    }
    Ok((contig, rows))
}

/// The shards in `dir` that this run can reuse (contig → file), and the ones it cannot.
/// `expected_rows` holds the regions per contig counted by pass 1 (`None` when Theta was given
/// with `--hyper-json` and pass 1 did not run).
pub fn find_reusable(
    dir: &Path,
    key: &serde_json::Value,
    schema: &SchemaRef,
    expected_rows: Option<&HashMap<String, u64>>,
) -> Result<(HashMap<String, PathBuf>, Vec<Rejected>)> {
    let mut reuse = HashMap::new();
    let mut rejected = Vec::new();
    for path in shard_files(dir)? {
        match check(&path, key, schema, expected_rows) {
            Ok((contig, _)) => {
                reuse.insert(contig, path);
            }
            Err(reason) => rejected.push(Rejected { file: path, reason }),
        }
    }
    Ok((reuse, rejected))
}

/// Visible `*.parquet` files in `dir`, sorted (none if `dir` does not exist).
fn shard_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("listing {}", dir.display())),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !name.starts_with('.')
            && name.ends_with(".parquet")
            && entry.file_type().is_ok_and(|t| t.is_file())
        {
            files.push(entry.path());
        }
    }
    files.sort();
    Ok(files)
}

/// Removes the shards in `dir` (and the temporaries of dead runs); then `dir` itself if that
/// leaves it empty.
pub fn remove_all(dir: &Path) -> Result<()> {
    for path in shard_files(dir)? {
        std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
    }
    crate::pass2::remove_stale_temporaries(dir, |name| name.ends_with(".parquet"));
    // Fails (and is left alone) when something else is in there.
    let _ = std::fs::remove_dir(dir);
    Ok(())
}

/// Reads `region_id`, `reliable` and `converged` of a reused shard in order, so its rows can be
/// matched to the regions of its contig as they stream.
pub struct ShardCursor {
    path: PathBuf,
    reader: ParquetRecordBatchReader,
    batch: Option<RecordBatch>,
    row: usize,
    rows: u64,
}

impl ShardCursor {
    /// Opens the shard at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let builder = open(path)?;
        let schema = builder.schema().clone();
        let index = |name: &str| {
            schema
                .index_of(name)
                .with_context(|| format!("{}: no column {name}", path.display()))
        };
        let roots = [index("region_id")?, index("reliable")?, index("converged")?];
        let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
        let reader = builder
            .with_projection(mask)
            .build()
            .with_context(|| format!("reading {}", path.display()))?;
        Ok(Self {
            path: path.to_path_buf(),
            reader,
            batch: None,
            row: 0,
            rows: 0,
        })
    }

    /// Moves to a batch with an unread row; false at the end of the file.
    fn advance(&mut self) -> Result<bool> {
        while self.batch.as_ref().is_none_or(|b| self.row >= b.num_rows()) {
            match self.reader.next() {
                Some(batch) => {
                    self.batch =
                        Some(batch.with_context(|| format!("reading {}", self.path.display()))?);
                    self.row = 0;
                }
                None => {
                    self.batch = None;
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    /// The next row, which must be region `region_id`: its `(reliable, converged)`.
    pub fn next(&mut self, region_id: &str) -> Result<(bool, bool)> {
        let more = self.advance()?;
        let (Some(batch), true) = (self.batch.as_ref(), more) else {
            bail!(
                "{}: has {} rows, but the inputs give more regions on its contig (next: {region_id}); \
                 delete it and run again with --resume",
                self.path.display(),
                self.rows
            );
        };
        let row = self.row;
        let ids = batch
            .column_by_name("region_id")
            .context("no column region_id")?
            .as_any()
            .downcast_ref::<StringArray>()
            .context("column region_id is not utf8")?;
        // A projection keeps the file's column order: look the columns up by name.
        let flag = |name: &str| -> Result<bool> {
            let col = batch
                .column_by_name(name)
                .with_context(|| format!("no column {name}"))?
                .as_any()
                .downcast_ref::<BooleanArray>()
                .context("columns reliable and converged must be boolean")?;
            Ok(col.is_valid(row) && col.value(row))
        };
        let (reliable, converged) = (flag("reliable")?, flag("converged")?);
        if !ids.is_valid(row) || ids.value(row) != region_id {
            bail!(
                "{}: row {} is region {:?}, but the inputs give {region_id} there; \
                 delete it and run again with --resume",
                self.path.display(),
                self.rows + 1,
                if ids.is_valid(row) {
                    ids.value(row)
                } else {
                    ""
                },
            );
        }
        self.row += 1;
        self.rows += 1;
        Ok((reliable, converged))
    }

    /// Checks that every row was matched; returns the row count.
    pub fn finish(mut self) -> Result<u64> {
        let rows = self.rows;
        if self.advance()? {
            bail!(
                "{}: has more rows than the inputs give regions on its contig ({rows}); \
                 delete it and run again with --resume",
                self.path.display()
            );
        }
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_names_are_safe_and_distinct() {
        assert_eq!(file_name("chr1"), "chr1.parquet");
        assert_eq!(file_name("chrUn_KI270302v1"), "chrUn_KI270302v1.parquet");
        let odd = [
            "HLA-A*01:01",
            "HLA-A_01_01",
            "a/b",
            "a_b",
            ".hidden",
            "_hidden",
        ];
        let names: Vec<String> = odd.iter().map(|c| file_name(c)).collect();
        for (c, n) in odd.iter().zip(&names) {
            assert!(!n.starts_with('.'), "{c} -> {n}");
            assert!(!n.contains('/') && !n.contains('*'), "{c} -> {n}");
        }
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "{names:?}");
        assert!(file_name(&"x".repeat(300)).len() < 120);
    }
}
