//! Atomic Parquet output: a file appears under its final name only once it is complete.
//!
//! [`AtomicParquetWriter`] streams into an [`AtomicFile`] (the hidden `.<out>.tmp-<pid>` beside
//! `<out>`), which [`AtomicParquetWriter::finish`] syncs and renames to `<out>`. A writer dropped
//! without `finish` — an error, a panic, Ctrl-C unwinding — removes its temporary file, so a
//! reader never sees a truncated Parquet file under the final name. Compression is zstd (level
//! 3), Float columns are written without a dictionary, row groups are capped at a row count,
//! and the caller's key-value pairs go into the file's metadata and into the embedded Arrow
//! schema (`ARROW:schema`) as well, where pyarrow, polars and pandas look for them
//! (`pyarrow.parquet.read_table(p).schema.metadata`).

use std::path::Path;

use arrow_array::RecordBatch;
use arrow_schema::{DataType, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties};

use crate::atomic::AtomicFile;
use crate::error::{ErrorKind, ReadError};

/// Default cap on rows per row group.
pub const DEFAULT_ROW_GROUP_ROWS: usize = 262_144;

/// A Parquet writer that publishes its file atomically on [`finish`](Self::finish).
pub struct AtomicParquetWriter {
    writer: ArrowWriter<AtomicFile>,
    rows: u64,
}

impl std::fmt::Debug for AtomicParquetWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AtomicParquetWriter")
            .field("out", &self.path())
            .field("rows", &self.rows)
            .finish_non_exhaustive()
    }
}

/// An output error of `out` (the message of a failing [`AtomicFile`] step also names the
/// temporary it concerned).
fn output_error(out: &Path, message: impl ToString) -> ReadError {
    ReadError::new(out, 0, ErrorKind::Output(message.to_string()))
}

impl AtomicParquetWriter {
    /// Starts writing batches of `schema` for `out`, with at most `max_row_group_rows` rows per
    /// row group and `metadata` as the file's key-value metadata, also added to the metadata of
    /// the Arrow schema stored in the file (a key of `schema`'s own metadata is overwritten).
    pub fn create(
        out: &Path,
        schema: SchemaRef,
        metadata: Vec<(String, String)>,
        max_row_group_rows: usize,
    ) -> Result<Self, ReadError> {
        let zstd = ZstdLevel::try_new(3).map_err(|e| output_error(out, e))?;
        let kv: Vec<KeyValue> = metadata
            .iter()
            .map(|(k, v)| KeyValue::new(k.clone(), v.clone()))
            .collect();
        let mut schema_metadata = schema.metadata().clone();
        schema_metadata.extend(metadata);
        let schema = std::sync::Arc::new(schema.as_ref().clone().with_metadata(schema_metadata));
        let mut props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(zstd))
            .set_max_row_group_row_count(Some(max_row_group_rows.max(1)))
            .set_statistics_enabled(EnabledStatistics::Page)
            .set_key_value_metadata((!kv.is_empty()).then_some(kv));
        // Float columns (posterior summaries, diagnostics) hold distinct values: a dictionary
        // would not shrink them, and its encoder keeps a hash table of every value of the open
        // row group, which was most of pass 2's memory (see `docs/model.md`, "Memory").
        for field in schema.fields() {
            if matches!(field.data_type(), DataType::Float32 | DataType::Float64) {
                props = props.set_column_dictionary_enabled(field.name().as_str().into(), false);
            }
        }
        let props = props.build();
        let file = AtomicFile::create(out).map_err(|e| ReadError::new(out, 0, e.into()))?;
        // `try_new` drops `file` on error, which removes the temporary.
        let writer =
            ArrowWriter::try_new(file, schema, Some(props)).map_err(|e| output_error(out, e))?;
        Ok(Self { writer, rows: 0 })
    }

    /// The final output path.
    pub fn path(&self) -> &Path {
        self.writer.inner().path()
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Appends one batch (its schema must match the writer's).
    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), ReadError> {
        self.writer
            .write(batch)
            .map_err(|e| output_error(self.path(), e))?;
        self.rows += batch.num_rows() as u64;
        Ok(())
    }

    /// Closes the current row group early (e.g. at a contig boundary).
    pub fn flush(&mut self) -> Result<(), ReadError> {
        self.writer
            .flush()
            .map_err(|e| output_error(self.path(), e))
    }

    /// Writes the footer, syncs the file and renames it to the final path. Returns the number
    /// of rows written.
    pub fn finish(self) -> Result<u64, ReadError> {
        let out = self.path().to_path_buf();
        let file = self
            .writer
            .into_inner()
            .map_err(|e| output_error(&out, e))?;
        file.commit()
            .map_err(|e| ReadError::new(&out, 0, e.into()))?;
        Ok(self.rows)
    }
}

/// Drains `merger` into `writer` in batches of `batch_rows`; returns the rows written.
/// The caller still calls [`AtomicParquetWriter::finish`].
pub fn write_merged(
    merger: &mut crate::merge::SiteMerger,
    writer: &mut AtomicParquetWriter,
    batch_rows: usize,
) -> Result<u64, ReadError> {
    let mut rows = 0;
    while let Some(b) = merger.next_batch(batch_rows)? {
        writer.write(&b)?;
        rows += b.num_rows() as u64;
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use std::fs::File;

    use super::*;
    use crate::SiteSource;
    use crate::contigs::ContigOrder;
    use crate::merge::{SiteMerger, VecSource};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    fn batches() -> (SchemaRef, Vec<RecordBatch>) {
        let rows_a: Vec<(&str, u64, u32, u32)> = (0..2500u64)
            .map(|i| {
                (
                    if i < 1200 { "chr1" } else { "chr2" },
                    i * 3,
                    (i % 5) as u32,
                    5,
                )
            })
            .collect();
        let rows_b: Vec<(&str, u64, u32, u32)> = (0..2000u64)
            .map(|i| (if i < 900 { "chr1" } else { "chr2" }, i * 2, 1, 2))
            .collect();
        let sources: Vec<Box<dyn SiteSource + Send>> = vec![
            Box::new(VecSource::new("a", &rows_a)),
            Box::new(VecSource::new("b", &rows_b)),
        ];
        let mut mg = SiteMerger::new(sources, ContigOrder::Learned)
            .unwrap()
            .with_samples(vec!["A".into(), "B".into()], vec!["g".into(), "h".into()]);
        let mut v = Vec::new();
        while let Some(b) = mg.next_batch(700).unwrap() {
            v.push(b);
        }
        (mg.schema(), v)
    }

    #[test]
    fn round_trip_and_atomic_rename() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("sites.parquet");
        let (schema, bs) = batches();
        let mut w = AtomicParquetWriter::create(
            &out,
            schema.clone(),
            vec![("methvb.version".into(), "test".into())],
            1000,
        )
        .unwrap();
        for b in &bs {
            w.write(b).unwrap();
        }
        assert!(!out.exists(), "final file must not exist before finish");
        let listing: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        let tmp = format!(".sites.parquet.tmp-{}", std::process::id());
        assert_eq!(listing, [tmp.as_str()], "only the hidden temporary");
        let total = w.finish().unwrap();
        assert_eq!(total, bs.iter().map(|b| b.num_rows() as u64).sum::<u64>());
        // Only the final file remains.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("sites.parquet")]);

        let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(&out).unwrap()).unwrap();
        let meta = builder.metadata().clone();
        assert!(meta.file_metadata().num_rows() as u64 == total);
        assert!(meta.num_row_groups() >= 3, "row groups capped at 1000 rows");
        for rg in meta.row_groups() {
            assert!(rg.num_rows() <= 1000);
        }
        let kv = meta.file_metadata().key_value_metadata().unwrap();
        assert!(
            kv.iter()
                .any(|k| k.key == "methvb.version" && k.value.as_deref() == Some("test"))
        );
        assert_eq!(builder.schema().fields(), schema.fields());
        // The reader merges the file's key-value pairs into the schema metadata.
        for (k, v) in schema.metadata() {
            assert_eq!(builder.schema().metadata().get(k), Some(v));
        }
        let back: Vec<RecordBatch> = builder
            .with_batch_size(700)
            .build()
            .unwrap()
            .map(|b| b.unwrap())
            .collect();
        assert_eq!(rows_of(&back), rows_of(&bs));
    }

    /// Rows of a batch list flattened to comparable tuples (values, not dictionary layout).
    fn rows_of(v: &[RecordBatch]) -> Vec<(String, u64, Vec<u32>)> {
        let mut out = Vec::new();
        for b in v {
            let view = crate::batch::SiteBatchView::new(b).unwrap();
            for r in 0..b.num_rows() {
                let cells = (0..view.n_samples())
                    .flat_map(|s| [view.m[s][r], view.n[s][r]])
                    .collect();
                out.push((view.chrom(r).to_string(), view.pos[r], cells));
            }
        }
        out
    }

    #[test]
    fn write_merged_drains_the_merger() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("m.parquet");
        let src: Vec<Box<dyn SiteSource + Send>> = vec![Box::new(VecSource::new(
            "a",
            &[("c", 1, 0, 1), ("c", 2, 1, 1), ("d", 0, 1, 2)],
        ))];
        let mut mg = SiteMerger::new(src, ContigOrder::Learned).unwrap();
        let mut w = AtomicParquetWriter::create(&out, mg.schema(), vec![], 10).unwrap();
        assert_eq!(write_merged(&mut mg, &mut w, 2).unwrap(), 3);
        assert_eq!(w.finish().unwrap(), 3);
        let r = ParquetRecordBatchReaderBuilder::try_new(File::open(&out).unwrap())
            .unwrap()
            .build()
            .unwrap();
        let back: Vec<RecordBatch> = r.map(|b| b.unwrap()).collect();
        assert_eq!(
            rows_of(&back),
            vec![
                ("c".to_string(), 1, vec![0, 1]),
                ("c".to_string(), 2, vec![1, 1]),
                ("d".to_string(), 0, vec![1, 2]),
            ]
        );
    }

    #[test]
    fn dropped_writer_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("x.parquet");
        let (schema, bs) = batches();
        {
            let mut w = AtomicParquetWriter::create(&out, schema, vec![], 1000).unwrap();
            w.write(&bs[0]).unwrap();
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
