//! Shared helpers of the report tests: fixture copies, synthetic Parquet files, an XML checker.

#![allow(dead_code)]

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{
    ArrayRef, BooleanArray, Float64Array, RecordBatch, StringArray, UInt32Array, UInt64Array,
};
use arrow_schema::{Field, Schema};
use parquet::arrow::ArrowWriter;

/// The outputs of a real `methvb run` on the bundled test-data (3 vs 3 samples, 200 regions).
pub fn small_run_fixture() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/small_run"))
}

/// Copies the fixture run into a fresh temporary directory (reports are written beside it).
pub fn copy_small_run() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for f in ["regions.parquet", "run.json", "hyper.json"] {
        std::fs::copy(small_run_fixture().join(f), dir.path().join(f)).expect("copy fixture");
    }
    dir
}

/// Writes `columns` as one Parquet file.
pub fn write_parquet(path: &Path, columns: Vec<(&str, ArrayRef)>) {
    let fields: Vec<Field> = columns
        .iter()
        .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
        .collect();
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(schema.clone(), columns.into_iter().map(|c| c.1).collect())
        .expect("batch");
    let mut w =
        ArrowWriter::try_new(File::create(path).expect("create"), schema, None).expect("writer");
    w.write(&batch).expect("write");
    w.close().expect("close");
}

/// One audit row.
#[derive(Debug, Clone)]
pub struct AuditRow {
    pub region: String,
    pub quantity: String,
    pub vb_mean: f64,
    pub vb_sd: f64,
    pub mcmc_mean: f64,
    pub mcmc_sd: f64,
    pub rhat: f64,
    pub divergences: u32,
    pub flagged: bool,
}

impl AuditRow {
    /// P(|Δ| > δ₀) on Δ rows, from the VB (`vb`) or MCMC mean: a logistic ramp around 0.1.
    pub fn prob_dm(&self, vb: bool) -> Option<f64> {
        let mean = if vb { self.vb_mean } else { self.mcmc_mean };
        (self.quantity == "delta").then(|| 1.0 / (1.0 + (-(mean.abs() - 0.1) * 40.0).exp()))
    }

    pub fn z_bias(&self) -> f64 {
        (self.vb_mean - self.mcmc_mean) / self.mcmc_sd
    }
    pub fn sd_ratio(&self) -> f64 {
        self.vb_sd / self.mcmc_sd
    }
}

/// A synthetic audit: `regions` regions × (a, b_treated, k, delta, w), with known values;
/// every 10th region is `flagged`, the others `sample`.
pub fn synthetic_audit(regions: usize) -> Vec<AuditRow> {
    let mut rows = Vec::new();
    for r in 0..regions {
        for (qi, (q, mean, sd)) in [
            ("a", 0.4, 0.3),
            ("b_treated", -0.8, 0.5),
            ("k", 3.0, 0.4),
            ("delta", 0.12, 0.05),
            ("w", -1.0, 0.2),
        ]
        .into_iter()
        .enumerate()
        {
            let t = (r * 5 + qi) as f64;
            // `w` is far off (z = 3), but the headline figures leave it out.
            let shift = if q == "w" {
                3.0
            } else {
                0.2 * ((t * 0.37).sin())
            };
            rows.push(AuditRow {
                region: format!("region_{r:06}"),
                quantity: q.to_string(),
                vb_mean: mean + shift * sd + 0.01 * t.cos(),
                vb_sd: sd * (0.8 + 0.1 * (t * 0.11).cos()),
                mcmc_mean: mean + 0.01 * t.cos(),
                mcmc_sd: sd,
                // Every 7th region mixes badly on k.
                rhat: if r % 7 == 3 && q == "k" {
                    1.05
                } else {
                    1.001 + 0.001 * (t * 0.5).sin().abs()
                },
                divergences: if r % 5 == 0 { 2 } else { 0 },
                flagged: r % 10 == 9,
            });
        }
    }
    rows
}

/// Writes the audit with the schema of `mcmc_check.parquet`.
pub fn write_audit(path: &Path, rows: &[AuditRow]) {
    let f = |g: &dyn Fn(&AuditRow) -> f64| -> ArrayRef {
        Arc::new(Float64Array::from_iter_values(rows.iter().map(g)))
    };
    write_parquet(
        path,
        vec![
            (
                "region_id",
                Arc::new(StringArray::from_iter_values(
                    rows.iter().map(|r| r.region.clone()),
                )),
            ),
            (
                "quantity",
                Arc::new(StringArray::from_iter_values(
                    rows.iter().map(|r| r.quantity.clone()),
                )),
            ),
            ("vb_mean", f(&|r| r.vb_mean)),
            ("vb_sd", f(&|r| r.vb_sd)),
            ("mcmc_mean", f(&|r| r.mcmc_mean)),
            ("mcmc_sd", f(&|r| r.mcmc_sd)),
            ("rhat", f(&|r| r.rhat)),
            ("ess_bulk", f(&|r| 800.0 - 100.0 * (r.rhat - 1.0) * 100.0)),
            ("ess_tail", f(&|_| 700.0)),
            ("z_bias", f(&|r| r.z_bias())),
            ("sd_ratio", f(&|r| r.sd_ratio())),
            (
                "divergences",
                Arc::new(UInt32Array::from_iter_values(
                    rows.iter().map(|r| r.divergences),
                )),
            ),
            (
                "vb_prob_dm",
                Arc::new(Float64Array::from(
                    rows.iter().map(|r| r.prob_dm(true)).collect::<Vec<_>>(),
                )),
            ),
            (
                "mcmc_prob_dm",
                Arc::new(Float64Array::from(
                    rows.iter().map(|r| r.prob_dm(false)).collect::<Vec<_>>(),
                )),
            ),
            (
                "selected_by",
                Arc::new(StringArray::from_iter_values(
                    rows.iter()
                        .map(|r| if r.flagged { "flagged" } else { "sample" }),
                )),
            ),
            (
                "family",
                Arc::new(StringArray::from_iter_values(
                    rows.iter().map(|_| "structured"),
                )),
            ),
        ],
    );
}

/// A synthetic regions table with the columns the report reads, `n` rows, for `groups`
/// (reference first). One group: no Δ, `prob_dm` or `called`; two groups: `delta_mean` and
/// `prob_dm`; more: `delta_<g>_*`.
/// Region i has Δ = 0.6·sin(i), prob_dm = min(1, |Δ|·2), called when prob_dm > 0.9.
pub fn synthetic_regions(path: &Path, n: usize, groups: &[&str]) {
    let delta: Vec<f64> = (0..n).map(|i| 0.6 * (i as f64 * 0.7).sin()).collect();
    let prob: Vec<f64> = delta.iter().map(|d| (d.abs() * 2.0).min(1.0)).collect();
    let f64s = |v: Vec<f64>| -> ArrayRef { Arc::new(Float64Array::from(v)) };
    let mut cols: Vec<(String, ArrayRef)> = Vec::new();
    cols.push((
        "region_id".into(),
        Arc::new(StringArray::from_iter_values(
            (0..n).map(|i| format!("r{i}")),
        )),
    ));
    for (k, g) in groups.iter().enumerate() {
        cols.push((
            format!("coverage_{g}"),
            Arc::new(UInt64Array::from_iter_values(
                (0..n).map(|i| ((i * 37 + k * 11) % 5000) as u64),
            )),
        ));
    }
    if groups.len() == 2 {
        cols.push(("delta_mean".into(), f64s(delta.clone())));
        cols.push(("prob_dm".into(), f64s(prob.clone())));
    } else if groups.len() > 2 {
        for (k, g) in groups.iter().enumerate().skip(1) {
            // The first contrast carries the pattern; the others are shifted.
            let d: Vec<f64> = delta.iter().map(|d| d * k as f64 / 2.0).collect();
            cols.push((format!("delta_{g}_mean"), f64s(d)));
            cols.push((format!("delta_{g}_prob_dm"), f64s(prob.clone())));
        }
        cols.push(("prob_dm".into(), f64s(prob.clone())));
    }
    cols.push((
        "phi_mean".into(),
        f64s(
            (0..n)
                .map(|i| 0.01 + 0.2 * ((i % 97) as f64 / 97.0))
                .collect(),
        ),
    ));
    cols.push((
        "khat".into(),
        f64s(
            (0..n)
                .map(|i| -0.2 + 1.1 * ((i % 89) as f64 / 89.0))
                .collect(),
        ),
    ));
    cols.push(("khat_threshold".into(), f64s(vec![0.7; n])));
    cols.push((
        "reliable".into(),
        Arc::new(BooleanArray::from_iter(
            (0..n).map(|i| Some(-0.2 + 1.1 * ((i % 89) as f64 / 89.0) <= 0.7)),
        )),
    ));
    cols.push((
        "converged".into(),
        Arc::new(BooleanArray::from_iter((0..n).map(|i| Some(i % 50 != 0)))),
    ));
    if groups.len() > 1 {
        cols.push((
            "called".into(),
            Arc::new(BooleanArray::from_iter(prob.iter().map(|p| Some(*p > 0.9)))),
        ));
    }
    cols.push((
        "family".into(),
        Arc::new(StringArray::from_iter_values((0..n).map(|_| "structured"))),
    ));
    write_parquet(
        path,
        cols.iter().map(|(n, a)| (n.as_str(), a.clone())).collect(),
    );
}

/// The `<svg …>…</svg>` blocks of a page.
pub fn svgs(html: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find("<svg") {
        let Some(len) = rest[start..].find("</svg>") else {
            break;
        };
        out.push(&rest[start..start + len + 6]);
        rest = &rest[start + len + 6..];
    }
    out
}

/// Checks that `xml` is a well-formed element tree: every tag closed in order, attributes
/// quoted, no stray `<` or `&` in text. Returns the number of elements.
pub fn check_xml(xml: &str) -> Result<usize, String> {
    let b = xml.as_bytes();
    let mut stack: Vec<&str> = Vec::new();
    let mut i = 0;
    let mut elements = 0;
    while i < b.len() {
        match b[i] {
            b'<' => {
                let end = xml[i..].find('>').ok_or("unterminated tag")? + i;
                let tag = &xml[i + 1..end];
                if let Some(name) = tag.strip_prefix('/') {
                    let open = stack
                        .pop()
                        .ok_or_else(|| format!("closing {name} with nothing open"))?;
                    if open != name.trim() {
                        return Err(format!("</{name}> closes <{open}>"));
                    }
                } else if tag.starts_with('!') || tag.starts_with('?') {
                } else {
                    let self_closing = tag.ends_with('/');
                    let body = tag.trim_end_matches('/');
                    let name = body.split_whitespace().next().ok_or("empty tag")?;
                    if !name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == ':')
                    {
                        return Err(format!("bad element name {name:?}"));
                    }
                    // Attributes: name="value" pairs.
                    let attrs = &body[name.len()..];
                    if !attrs.matches('"').count().is_multiple_of(2) {
                        return Err(format!("unbalanced quotes in <{tag}>"));
                    }
                    elements += 1;
                    if !self_closing {
                        stack.push(name);
                    }
                }
                i = end + 1;
            }
            b'&' => {
                let semi = xml[i..].find(';').ok_or("bare &")?;
                let ent = &xml[i + 1..i + semi];
                if !(ent.starts_with('#') || ["amp", "lt", "gt", "quot", "apos"].contains(&ent)) {
                    return Err(format!("unknown entity &{ent};"));
                }
                i += semi + 1;
            }
            _ => i += 1,
        }
    }
    if let Some(open) = stack.pop() {
        return Err(format!("<{open}> never closed"));
    }
    Ok(elements)
}

/// The text of the `<td>` in the row whose `data-key` is `key`.
pub fn cell<'a>(html: &'a str, key: &str) -> Option<&'a str> {
    let marker = format!("<tr data-key=\"{key}\">");
    let start = html.find(&marker)? + marker.len();
    let row = &html[start..start + html[start..].find("</tr>")?];
    let td = row.find("<td>")? + 4;
    Some(&row[td..td + row[td..].find("</td>")?])
}

/// The contents of `<section id="id">`.
pub fn section<'a>(html: &'a str, id: &str) -> Option<&'a str> {
    let marker = format!("<section id=\"{id}\">");
    let start = html.find(&marker)?;
    let len = html[start..].find("</section>")?;
    Some(&html[start..start + len])
}

/// Per-CpG data for the `n` top called regions of the small run, with known counts: region `r`
/// has its `n_sites` sites 7 bp apart from its start; sample `s` at site `j` has `n = 1 + (j + s)
/// % 9` reads (0 for sample 2 at every third site), `m = n * (s % 2)` for control samples and
/// `m = n - n / 3` for treated ones.
pub fn synthetic_sites(dir: &Path, n: usize) -> methvb_report::CpgData {
    let top = methvb_report::top_called(dir, n).expect("top regions");
    let samples: Vec<String> = [
        "control_1",
        "control_2",
        "control_3",
        "treated_1",
        "treated_2",
        "treated_3",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let groups: Vec<String> = samples
        .iter()
        .map(|s| s.split('_').next().unwrap().to_string())
        .collect();
    let regions = top
        .iter()
        .map(|t| {
            let j_count = t.n_sites as usize;
            let mut methylated = Vec::new();
            let mut coverage = Vec::new();
            for j in 0..j_count {
                for s in 0..samples.len() {
                    let n = if s == 2 && j % 3 == 0 {
                        0
                    } else {
                        1 + ((j + s) % 9) as u32
                    };
                    let m = if s < 3 { n * (s as u32 % 2) } else { n - n / 3 };
                    methylated.push(m);
                    coverage.push(n);
                }
            }
            methvb_report::RegionSites {
                region_id: t.region_id.clone(),
                positions: (0..j_count as u64).map(|j| t.start + 7 * j).collect(),
                methylated,
                coverage,
            }
        })
        .collect();
    methvb_report::CpgData {
        samples,
        sample_groups: groups,
        regions,
        note: None,
    }
}

/// The columns of a regions table that the top-table tests compare against.
#[derive(Debug, Clone)]
pub struct RegionRow {
    pub id: String,
    pub chrom: String,
    pub start: u64,
    pub end: u64,
    pub called: bool,
    pub prob_dm: f64,
    pub lfsr: f64,
    pub delta: f64,
    pub theta_control: f64,
}

/// Reads those columns of `path` with the parquet crate's arrow reader, by name.
pub fn read_regions(path: &Path) -> Vec<RegionRow> {
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Float64Type, UInt64Type};
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        File::open(path).expect("open regions"),
    )
    .expect("Parquet")
    .build()
    .expect("reader");
    let mut rows = Vec::new();
    for batch in reader {
        let b = batch.expect("batch");
        let s = |n: &str| b.column_by_name(n).unwrap().as_string::<i32>().clone();
        let u = |n: &str| {
            b.column_by_name(n)
                .unwrap()
                .as_primitive::<UInt64Type>()
                .clone()
        };
        let f = |n: &str| {
            b.column_by_name(n)
                .unwrap()
                .as_primitive::<Float64Type>()
                .clone()
        };
        let (id, chrom, start, end) = (s("region_id"), s("chrom"), u("start"), u("end"));
        let (prob, lfsr, delta, theta) = (
            f("prob_dm"),
            f("lfsr"),
            f("delta_mean"),
            f("theta_control_mean"),
        );
        let called = b.column_by_name("called").unwrap().as_boolean().clone();
        for i in 0..b.num_rows() {
            rows.push(RegionRow {
                id: id.value(i).to_string(),
                chrom: chrom.value(i).to_string(),
                start: start.value(i),
                end: end.value(i),
                called: called.value(i),
                prob_dm: prob.value(i),
                lfsr: lfsr.value(i),
                delta: delta.value(i),
                theta_control: theta.value(i),
            });
        }
    }
    rows
}
