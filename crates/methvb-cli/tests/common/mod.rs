//! Helpers shared by the integration tests: run the real `methvb` binary, read Parquet outputs
//! row by row (bit-exact for floats), locate the shared real data.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, UInt32Type, UInt64Type};
use arrow_array::{Array, ArrayRef, Float64Array, RecordBatch};
use arrow_schema::DataType;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// Path of the binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_methvb");

/// Draws of q per posterior summary in the tests (the default 1000 is slow in debug builds).
pub const DRAWS: &str = "200";

/// A `methvb` command with the given arguments (not yet run).
pub fn methvb(args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    cmd
}

/// Runs `methvb args` to completion and returns its output (does not check the status).
pub fn run_methvb(args: &[&str]) -> Output {
    methvb(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot start {BIN}: {e}"))
}

/// Runs `methvb args` and panics with its stderr unless it succeeds.
pub fn run_ok(args: &[&str]) -> Output {
    let out = run_methvb(args);
    assert!(
        out.status.success(),
        "methvb {} failed ({}):\n{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Simulates `regions` regions (3 vs 3 samples, chr1..chr3) into `dir/name`; returns the
/// sample sheet.
pub fn simulate(dir: &Path, name: &str, regions: usize, seed: u64) -> PathBuf {
    let sim = dir.join(name);
    run_ok(&[
        "-q",
        "simulate",
        "--out",
        s(&sim),
        "--regions",
        &regions.to_string(),
        "--seed",
        &seed.to_string(),
    ]);
    let sheet = sim.join("samples.tsv");
    assert!(sheet.is_file(), "simulate wrote no sample sheet");
    sheet
}

/// `p` as &str (temp dirs are UTF-8 on the test machines).
pub fn s(p: &Path) -> &str {
    p.to_str().expect("test paths are UTF-8")
}

/// One cell of a results or sites table, with floats kept as their bit pattern so that
/// comparisons are bit for bit (and NaN equals NaN).
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// Utf8 or dictionary-encoded Utf8.
    Str(String),
    /// Any unsigned or signed integer, widened.
    Int(i128),
    /// Float64 bits.
    F64(u64),
    /// Boolean.
    Bool(bool),
    /// A null slot.
    Null,
}

impl Cell {
    /// The value as f64 (integers converted, floats from their bits).
    pub fn as_f64(&self) -> f64 {
        match self {
            Cell::F64(b) => f64::from_bits(*b),
            Cell::Int(i) => *i as f64,
            other => panic!("not a number: {other:?}"),
        }
    }

    /// The value as an integer.
    pub fn as_int(&self) -> i128 {
        match self {
            Cell::Int(i) => *i,
            other => panic!("not an integer: {other:?}"),
        }
    }

    /// The value as a string.
    pub fn as_str(&self) -> &str {
        match self {
            Cell::Str(s) => s,
            other => panic!("not a string: {other:?}"),
        }
    }
}

fn column_cells(array: &ArrayRef) -> Vec<Cell> {
    let n = array.len();
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        if array.is_null(i) {
            out.push(Cell::Null);
            continue;
        }
        let cell = match array.data_type() {
            DataType::Utf8 => Cell::Str(array.as_string::<i32>().value(i).to_string()),
            DataType::UInt64 => Cell::Int(array.as_primitive::<UInt64Type>().value(i).into()),
            DataType::UInt32 => Cell::Int(array.as_primitive::<UInt32Type>().value(i).into()),
            DataType::Int32 => Cell::Int(array.as_primitive::<Int32Type>().value(i).into()),
            DataType::Int64 => Cell::Int(
                array
                    .as_primitive::<arrow_array::types::Int64Type>()
                    .value(i)
                    .into(),
            ),
            DataType::Float64 => Cell::F64(
                array
                    .as_any()
                    .downcast_ref::<Float64Array>()
                    .expect("Float64 column")
                    .value(i)
                    .to_bits(),
            ),
            DataType::Boolean => Cell::Bool(array.as_boolean().value(i)),
            DataType::Dictionary(k, v) if **k == DataType::Int32 && **v == DataType::Utf8 => {
                let dict = array.as_dictionary::<Int32Type>();
                let key = dict.keys().value(i);
                let values = dict.values().as_string::<i32>();
                Cell::Str(values.value(key as usize).to_string())
            }
            other => panic!("column type {other} not handled by the test reader"),
        };
        out.push(cell);
    }
    out
}

/// A Parquet file read back as column names and rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// Column names in file order.
    pub columns: Vec<String>,
    /// Rows, each with one cell per column.
    pub rows: Vec<Vec<Cell>>,
}

impl Table {
    /// Index of column `name` (panics with the list of columns if absent).
    pub fn col(&self, name: &str) -> usize {
        self.columns
            .iter()
            .position(|c| c == name)
            .unwrap_or_else(|| panic!("no column {name:?} in {:?}", self.columns))
    }

    /// Every value of column `name`.
    pub fn column(&self, name: &str) -> Vec<&Cell> {
        let i = self.col(name);
        self.rows.iter().map(|r| &r[i]).collect()
    }
}

/// Reads every record batch of a Parquet file with the parquet crate's arrow reader.
pub fn read_batches(path: &Path) -> Vec<RecordBatch> {
    let file = File::open(path).unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
    ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap_or_else(|e| panic!("{}: not Parquet: {e}", path.display()))
        .build()
        .expect("building the Parquet reader")
        .map(|b| b.unwrap_or_else(|e| panic!("reading {}: {e}", path.display())))
        .collect()
}

/// Reads a Parquet file into a [`Table`].
pub fn read_table(path: &Path) -> Table {
    let batches = read_batches(path);
    let schema = ParquetRecordBatchReaderBuilder::try_new(File::open(path).expect("reopen"))
        .expect("Parquet")
        .schema()
        .clone();
    let columns: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    let mut rows = Vec::new();
    for batch in &batches {
        let cols: Vec<Vec<Cell>> = batch.columns().iter().map(column_cells).collect();
        for r in 0..batch.num_rows() {
            rows.push(cols.iter().map(|c| c[r].clone()).collect());
        }
    }
    Table { columns, rows }
}

/// Asserts that two Parquet files hold the same columns and rows, bit for bit, naming the first
/// differing cell. Also checks the Arrow schemas (types and nullability), not only the values.
pub fn assert_same_rows(a: &Path, b: &Path) {
    let schema = |p: &Path| {
        ParquetRecordBatchReaderBuilder::try_new(File::open(p).expect("open"))
            .expect("Parquet")
            .schema()
            .fields()
            .clone()
    };
    assert_eq!(
        schema(a),
        schema(b),
        "schemas of {} and {} differ",
        a.display(),
        b.display()
    );
    let (ta, tb) = (read_table(a), read_table(b));
    assert_eq!(
        ta.rows.len(),
        tb.rows.len(),
        "{} has {} rows, {} has {}",
        a.display(),
        ta.rows.len(),
        b.display(),
        tb.rows.len()
    );
    for (i, (ra, rb)) in ta.rows.iter().zip(&tb.rows).enumerate() {
        for (j, (ca, cb)) in ra.iter().zip(rb).enumerate() {
            assert_eq!(
                ca,
                cb,
                "row {i} column {} differs between {} and {}",
                ta.columns[j],
                a.display(),
                b.display()
            );
        }
    }
}

/// The `theta` object of a hyper.json.
pub fn theta_of(path: &Path) -> serde_json::Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let v: serde_json::Value = serde_json::from_str(&text).expect("hyper.json is JSON");
    v.get("theta")
        .cloned()
        .unwrap_or_else(|| panic!("{} has no theta", path.display()))
}

/// Files (not directories) in `dir`, by name, sorted; empty if `dir` does not exist.
pub fn files_in(dir: &Path) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = rd
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The shared DSS example data (`/work/shared/data/dss`, beside the repo). Panics with a clear
/// message when it is missing: these tests must fail, not pass silently, without their data.
pub fn dss_dir() -> PathBuf {
    let dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/data/dss"
    ));
    let probe = dir.join("cond1_1.txt");
    assert!(
        probe.is_file(),
        "shared test data missing: {} not found (the repo must sit beside shared/data, see \
         shared/data/README.md)",
        probe.display()
    );
    dir.canonicalize().expect("canonical path of the DSS data")
}

/// Writes a DSS sample sheet (format column `dss`, absolute paths) for the four example files:
/// C1, C2 in group `cond1`, N1, N2 in group `cond2`.
pub fn write_dss_sheet(dir: &Path) -> PathBuf {
    let data = dss_dir();
    let mut text = String::from("sample\tgroup\tpath\tformat\n");
    for (sample, group, file) in [
        ("C1", "cond1", "cond1_1.txt"),
        ("C2", "cond1", "cond1_2.txt"),
        ("N1", "cond2", "cond2_1.txt"),
        ("N2", "cond2", "cond2_2.txt"),
    ] {
        text.push_str(&format!(
            "{sample}\t{group}\t{}\tdss\n",
            data.join(file).display()
        ));
    }
    let sheet = dir.join("dss_samples.tsv");
    std::fs::write(&sheet, text).expect("writing the DSS sheet");
    sheet
}
