//! The Arrow schema of merged site batches.
//!
//! One row per site (a CpG position covered in at least one sample), in merge order (contigs in
//! the merge's contig order, positions increasing within a contig). Columns, in this order:
//!
//! | column | type | meaning |
//! |---|---|---|
//! | `chrom` | `Dictionary(Int32, Utf8)` | contig name; each batch carries its own dictionary holding the contigs of that batch in order |
//! | `pos` | `UInt64` | **0-based** position of the cytosine (of the + strand C after strand merging) |
//! | `<sample>_m` | `UInt32` | methylated reads of `<sample>` (0 where the sample lacks the site) |
//! | `<sample>_n` | `UInt32` | reads covering the site in `<sample>` (0 where the sample lacks the site) |
//!
//! The `_m`/`_n` pairs follow the sample-sheet order. No column is nullable: a missing
//! observation is `m = n = 0`.
//!
//! Schema metadata (plain comma lists; sample and group names are restricted to
//! `[A-Za-z0-9_.-]` by the sample sheet, so commas cannot occur in them):
//!
//! * `methvb.samples`: sample names in column order, e.g. `C1,C2,N1,N2`;
//! * `methvb.groups`: the group of each sample, in the same order, e.g. `C,C,N,N`;
//! * `methvb.coordinates`: always `0-based`.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, UInt32Type, UInt64Type};
use arrow_array::{Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};

/// Name of the contig column.
pub const CHROM: &str = "chrom";
/// Name of the 0-based position column.
pub const POS: &str = "pos";
/// Metadata key: comma-separated sample names.
pub const META_SAMPLES: &str = "methvb.samples";
/// Metadata key: comma-separated group of each sample.
pub const META_GROUPS: &str = "methvb.groups";
/// Metadata key: coordinate convention (`0-based`).
pub const META_COORDINATES: &str = "methvb.coordinates";
/// Default number of rows per batch.
pub const DEFAULT_BATCH_ROWS: usize = 65_536;

/// Column name of the methylated count of `sample`.
pub fn m_column(sample: &str) -> String {
    format!("{sample}_m")
}

/// Column name of the coverage of `sample`.
pub fn n_column(sample: &str) -> String {
    format!("{sample}_n")
}

/// The data type of the `chrom` column.
pub fn chrom_type() -> DataType {
    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
}

/// Builds the site schema for `samples` (names) whose groups are `groups` (same length).
pub fn site_schema(samples: &[String], groups: &[String]) -> SchemaRef {
    let mut fields = Vec::with_capacity(2 + 2 * samples.len());
    fields.push(Field::new(CHROM, chrom_type(), false));
    fields.push(Field::new(POS, DataType::UInt64, false));
    for s in samples {
        fields.push(Field::new(m_column(s), DataType::UInt32, false));
        fields.push(Field::new(n_column(s), DataType::UInt32, false));
    }
    let mut meta = HashMap::new();
    meta.insert(META_SAMPLES.to_string(), samples.join(","));
    meta.insert(META_GROUPS.to_string(), groups.join(","));
    meta.insert(META_COORDINATES.to_string(), "0-based".to_string());
    Arc::new(Schema::new_with_metadata(fields, meta))
}

/// Sample names and groups read back from a site schema's metadata (`None` when absent).
pub fn schema_samples(schema: &Schema) -> Option<(Vec<String>, Vec<String>)> {
    let split = |s: &str| -> Vec<String> {
        if s.is_empty() {
            Vec::new()
        } else {
            s.split(',').map(str::to_string).collect()
        }
    };
    let samples = split(schema.metadata().get(META_SAMPLES)?);
    let groups = split(schema.metadata().get(META_GROUPS)?);
    (samples.len() == groups.len()).then_some((samples, groups))
}

/// Borrowed, typed views of the columns of one site batch.
#[derive(Debug)]
pub struct SiteBatchView<'a> {
    /// Dictionary keys of `chrom`, one per row.
    pub chrom_keys: &'a [i32],
    /// Dictionary values of `chrom`.
    pub chrom_values: &'a StringArray,
    /// 0-based positions.
    pub pos: &'a [u64],
    /// Methylated counts, one slice per sample.
    pub m: Vec<&'a [u32]>,
    /// Coverages, one slice per sample.
    pub n: Vec<&'a [u32]>,
}

impl<'a> SiteBatchView<'a> {
    /// Views `batch`, checking it has the site layout (`chrom`, `pos`, then `_m`/`_n` pairs
    /// of the expected types, no nulls). The error says what is wrong.
    pub fn new(batch: &'a RecordBatch) -> Result<Self, String> {
        let cols = batch.columns();
        if cols.len() < 2 || !cols.len().is_multiple_of(2) {
            return Err(format!(
                "site batch has {} columns; expected chrom, pos and an _m/_n pair per sample",
                cols.len()
            ));
        }
        if cols.iter().any(|c| c.null_count() > 0) {
            return Err("site batch has null values".into());
        }
        let chrom = cols[0]
            .as_dictionary_opt::<Int32Type>()
            .ok_or("column 1 (chrom) is not Dictionary(Int32, Utf8)")?;
        let chrom_values = chrom
            .values()
            .as_string_opt::<i32>()
            .ok_or("column 1 (chrom) dictionary values are not Utf8")?;
        let pos = cols[1]
            .as_primitive_opt::<UInt64Type>()
            .ok_or("column 2 (pos) is not UInt64")?;
        let mut m = Vec::with_capacity(cols.len() / 2 - 1);
        let mut n = Vec::with_capacity(cols.len() / 2 - 1);
        for (k, pair) in cols[2..].chunks(2).enumerate() {
            let mm = pair[0]
                .as_primitive_opt::<UInt32Type>()
                .ok_or_else(|| format!("column {} is not UInt32", 3 + 2 * k))?;
            let nn = pair[1]
                .as_primitive_opt::<UInt32Type>()
                .ok_or_else(|| format!("column {} is not UInt32", 4 + 2 * k))?;
            m.push(mm.values().as_ref());
            n.push(nn.values().as_ref());
        }
        let keys: &[i32] = chrom.keys().values().as_ref();
        if let Some(&k) = keys
            .iter()
            .find(|&&k| k < 0 || k as usize >= chrom_values.len())
        {
            return Err(format!("chrom key {k} outside the dictionary"));
        }
        Ok(Self {
            chrom_keys: keys,
            chrom_values,
            pos: pos.values().as_ref(),
            m,
            n,
        })
    }

    /// Number of samples.
    pub fn n_samples(&self) -> usize {
        self.m.len()
    }

    /// Contig name of row `i`.
    pub fn chrom(&self, i: usize) -> &'a str {
        // Keys were checked to lie inside the dictionary in `new`.
        self.chrom_values.value(self.chrom_keys[i] as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_layout_and_metadata() {
        let s = site_schema(&["A".into(), "B".into()], &["g1".into(), "g2".into()]);
        let names: Vec<_> = s.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, ["chrom", "pos", "A_m", "A_n", "B_m", "B_n"]);
        assert_eq!(s.field(0).data_type(), &chrom_type());
        let (samples, groups) = schema_samples(&s).unwrap();
        assert_eq!(samples, ["A", "B"]);
        assert_eq!(groups, ["g1", "g2"]);
    }
}
