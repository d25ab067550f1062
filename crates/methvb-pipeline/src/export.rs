//! Genome-browser files of a results table (`regions.parquet` of `run`, `dmrs.parquet` of
//! `dmr`): the rows they need ([`read_table`]) and their publication, plain and as BGZF with a
//! tabix index ([`publish`]). The formats are `methvb_io::browser`'s.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, UInt64Type};
use arrow_array::{Array, RecordBatch};
use methvb_io::browser::{BrowserFile, Row, Table};

use crate::error::{Context, Result, bail};
use crate::schema::CALLED;

/// The name a folder's browser tracks carry: its own name (the path as given if it has none).
pub fn folder_label(dir: &Path) -> String {
    std::fs::canonicalize(dir)
        .ok()
        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| dir.display().to_string())
}

/// Reads the rows of `path` that the browser files need, by column name.
pub fn read_table(path: &Path) -> Result<Table> {
    let builder = crate::gather::open(path)?;
    let schema = builder.schema().clone();
    let contrasts: Vec<String> = schema
        .fields()
        .iter()
        .filter_map(|f| f.name().strip_suffix("_mean"))
        .filter(|n| *n == "delta" || n.starts_with("delta_"))
        .map(str::to_string)
        .collect();
    if contrasts.is_empty() || schema.index_of("prob_dm").is_err() {
        bail!(
            "{}: no delta or prob_dm columns: a single-group run has no contrast to export",
            path.display()
        );
    }
    let reader = builder
        .with_batch_size(65_536)
        .build()
        .with_context(|| format!("{}: cannot read its rows", path.display()))?;
    let mut contig_index: HashMap<String, usize> = HashMap::new();
    let mut table = Table {
        contigs: Vec::new(),
        rows: Vec::new(),
        contrasts,
    };
    for batch in reader {
        let batch = batch.with_context(|| format!("{}: cannot read its rows", path.display()))?;
        let b = Columns::new(&batch, &table.contrasts, path)?;
        for i in 0..batch.num_rows() {
            let chrom = b.chrom.value(i);
            let contig = match contig_index.get(chrom) {
                Some(&k) => k,
                None => {
                    table.contigs.push(chrom.to_string());
                    contig_index.insert(chrom.to_string(), table.contigs.len() - 1);
                    table.contigs.len() - 1
                }
            };
            table.rows.push(Row {
                id: b.id.value(i).to_string(),
                contig,
                start: b.start.value(i),
                end: b.end.value(i),
                called: b.called.is_valid(i) && b.called.value(i),
                prob_dm: b.prob_dm.value(i),
                delta: b.delta.iter().map(|d| d.value(i)).collect(),
            });
        }
    }
    // The table is in genomic order already for clusters and tiles; BED regions keep the BED's
    // order, which need not be sorted.
    table.sort();
    Ok(table)
}

/// The columns `export` reads, by name.
struct Columns<'a> {
    id: &'a arrow_array::StringArray,
    chrom: &'a arrow_array::StringArray,
    start: &'a arrow_array::UInt64Array,
    end: &'a arrow_array::UInt64Array,
    called: &'a arrow_array::BooleanArray,
    prob_dm: &'a arrow_array::Float64Array,
    delta: Vec<&'a arrow_array::Float64Array>,
}

impl<'a> Columns<'a> {
    fn new(batch: &'a RecordBatch, contrasts: &[String], path: &Path) -> Result<Self> {
        let col = |name: &str| {
            batch
                .column_by_name(name)
                .with_context(|| format!("{}: no column {name}", path.display()))
        };
        let wrong = |name: &str| format!("{}: column {name} has the wrong type", path.display());
        let utf8 = |name: &str| -> Result<&'a arrow_array::StringArray> {
            col(name)?
                .as_string_opt::<i32>()
                .with_context(|| wrong(name))
        };
        let u64s = |name: &str| -> Result<&'a arrow_array::UInt64Array> {
            col(name)?
                .as_primitive_opt::<UInt64Type>()
                .with_context(|| wrong(name))
        };
        let f64s = |name: &str| -> Result<&'a arrow_array::Float64Array> {
            col(name)?
                .as_primitive_opt::<Float64Type>()
                .with_context(|| wrong(name))
        };
        Ok(Self {
            id: utf8("region_id")?,
            chrom: utf8("chrom")?,
            start: u64s("start")?,
            end: u64s("end")?,
            called: col(CALLED)?
                .as_boolean_opt()
                .with_context(|| wrong(CALLED))?,
            prob_dm: f64s("prob_dm")?,
            delta: contrasts
                .iter()
                .map(|c| f64s(&format!("{c}_mean")))
                .collect::<Result<_>>()?,
        })
    }
}

/// Writes `name` (and with `bgzip` also `name.gz` and `name.gz.tbi`) into `dir`; returns the
/// paths written.
pub fn publish(
    dir: &Path,
    name: &str,
    lines: &BrowserFile,
    contigs: &[String],
    bgzip: bool,
) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let path = dir.join(name);
    methvb_io::atomic::write_atomic(&path, lines.text().as_bytes())?;
    written.push(path);
    if bgzip {
        let (data, index) = lines
            .bgzip_with_index(contigs)
            .with_context(|| format!("compressing and indexing {name}"))?;
        let gz = dir.join(format!("{name}.gz"));
        let tbi = dir.join(format!("{name}.gz.tbi"));
        methvb_io::atomic::write_atomic(&gz, &data)?;
        methvb_io::atomic::write_atomic(&tbi, &index)?;
        written.extend([gz, tbi]);
    }
    Ok(written)
}
