//! Typed, allocation-free access to the numeric and boolean columns of a record batch.

use std::path::Path;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Float64Type, Int32Type, Int64Type, UInt32Type, UInt64Type};
use arrow_array::{Array, ArrayRef, BooleanArray, RecordBatch, StringArray};
use arrow_schema::DataType;

use crate::ReportError;

/// A numeric column read as f64 (nulls read as NaN).
pub(crate) enum NumCol<'a> {
    F64(&'a arrow_array::Float64Array),
    F32(&'a arrow_array::Float32Array),
    U64(&'a arrow_array::UInt64Array),
    U32(&'a arrow_array::UInt32Array),
    I64(&'a arrow_array::Int64Array),
    I32(&'a arrow_array::Int32Array),
}

impl NumCol<'_> {
    /// Value of row `i` as f64; NaN when null.
    #[inline]
    pub(crate) fn get(&self, i: usize) -> f64 {
        match self {
            NumCol::F64(a) => {
                if a.is_null(i) {
                    f64::NAN
                } else {
                    a.value(i)
                }
            }
            NumCol::F32(a) => {
                if a.is_null(i) {
                    f64::NAN
                } else {
                    f64::from(a.value(i))
                }
            }
            // Integer counts far below 2^53: the conversion is exact for any real run.
            NumCol::U64(a) => {
                if a.is_null(i) {
                    f64::NAN
                } else {
                    a.value(i) as f64
                }
            }
            NumCol::U32(a) => {
                if a.is_null(i) {
                    f64::NAN
                } else {
                    f64::from(a.value(i))
                }
            }
            NumCol::I64(a) => {
                if a.is_null(i) {
                    f64::NAN
                } else {
                    a.value(i) as f64
                }
            }
            NumCol::I32(a) => {
                if a.is_null(i) {
                    f64::NAN
                } else {
                    f64::from(a.value(i))
                }
            }
        }
    }
}

fn column<'a>(
    batch: &'a RecordBatch,
    name: &str,
    path: &Path,
) -> Result<&'a ArrayRef, ReportError> {
    batch
        .column_by_name(name)
        .ok_or_else(|| ReportError::Column {
            path: path.to_path_buf(),
            column: name.to_string(),
            problem: "missing".into(),
        })
}

/// The numeric column `name` of `batch`.
pub(crate) fn num<'a>(
    batch: &'a RecordBatch,
    name: &str,
    path: &Path,
) -> Result<NumCol<'a>, ReportError> {
    let col = column(batch, name, path)?;
    Ok(match col.data_type() {
        DataType::Float64 => NumCol::F64(col.as_primitive::<Float64Type>()),
        DataType::Float32 => NumCol::F32(col.as_primitive::<Float32Type>()),
        DataType::UInt64 => NumCol::U64(col.as_primitive::<UInt64Type>()),
        DataType::UInt32 => NumCol::U32(col.as_primitive::<UInt32Type>()),
        DataType::Int64 => NumCol::I64(col.as_primitive::<Int64Type>()),
        DataType::Int32 => NumCol::I32(col.as_primitive::<Int32Type>()),
        other => {
            return Err(ReportError::Column {
                path: path.to_path_buf(),
                column: name.to_string(),
                problem: format!("expected a number, found {other}"),
            });
        }
    })
}

/// The boolean column `name` of `batch`.
pub(crate) fn boolean<'a>(
    batch: &'a RecordBatch,
    name: &str,
    path: &Path,
) -> Result<&'a BooleanArray, ReportError> {
    let col = column(batch, name, path)?;
    col.as_boolean_opt().ok_or_else(|| ReportError::Column {
        path: path.to_path_buf(),
        column: name.to_string(),
        problem: format!("expected bool, found {}", col.data_type()),
    })
}

/// The utf8 column `name` of `batch`.
pub(crate) fn utf8<'a>(
    batch: &'a RecordBatch,
    name: &str,
    path: &Path,
) -> Result<&'a StringArray, ReportError> {
    let col = column(batch, name, path)?;
    col.as_string_opt::<i32>()
        .ok_or_else(|| ReportError::Column {
            path: path.to_path_buf(),
            column: name.to_string(),
            problem: format!("expected utf8, found {}", col.data_type()),
        })
}

/// `true` when row `i` of a boolean column is set (null counts as false).
#[inline]
pub(crate) fn is_true(a: &BooleanArray, i: usize) -> bool {
    a.is_valid(i) && a.value(i)
}
