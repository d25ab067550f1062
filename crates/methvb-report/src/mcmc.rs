//! `mcmc_check.parquet`: the NUTS audit of a sample of regions, one row per (region, quantity).

use methvb_pipeline::schema::audit_columns as a;
use std::fs::File;
use std::path::Path;

use arrow_array::Array;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::ReportError;
use crate::columns::{num, utf8};

/// R-hat above which a region counts as not mixed.
pub const RHAT_LIMIT: f64 = 1.01;

/// The kind of an audited quantity, by the prefix of its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `a`: the region's baseline (logit scale).
    A,
    /// `b_<group>`: a group effect.
    B,
    /// `k`: log concentration.
    K,
    /// `w`: log scale of the sample effects.
    W,
    /// `delta` or `delta_<group>`: a difference of methylation levels.
    Delta,
    /// Anything else.
    Other,
}

impl Kind {
    fn of(quantity: &str) -> Kind {
        if quantity == "a" {
            Kind::A
        } else if quantity.starts_with("b_") {
            Kind::B
        } else if quantity == "k" {
            Kind::K
        } else if quantity == "w" {
            Kind::W
        } else if quantity == "delta" || quantity.starts_with("delta_") {
            Kind::Delta
        } else {
            Kind::Other
        }
    }

    /// Legend label.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Kind::A => "a",
            Kind::B => "b (group effects)",
            Kind::K => "k",
            Kind::W => "w",
            Kind::Delta => "Δ",
            Kind::Other => "other",
        }
    }

    /// All kinds in legend order.
    pub(crate) const ALL: [Kind; 6] =
        [Kind::Delta, Kind::A, Kind::B, Kind::K, Kind::W, Kind::Other];

    /// Whether the headline figures pool this kind (a, b, k and Δ, as MODEL.md names them;
    /// `run.json` → `mcmc_check` pools the same).
    pub(crate) fn headline(self) -> bool {
        matches!(self, Kind::A | Kind::B | Kind::K | Kind::Delta)
    }
}

/// One row of `mcmc_check.parquet`.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub region_id: String,
    pub quantity: String,
    pub kind: Kind,
    pub vb_mean: f64,
    pub vb_sd: f64,
    pub mcmc_mean: f64,
    pub mcmc_sd: f64,
    pub rhat: f64,
    pub ess_bulk: f64,
    pub z_bias: f64,
    pub sd_ratio: f64,
    pub divergences: f64,
    pub family: String,
    /// `sample` or `flagged` (empty when the column is absent).
    pub selected_by: String,
    /// P(|Δ| > δ₀) under VB and under NUTS: on Δ rows (NaN elsewhere, or without the columns).
    pub vb_prob_dm: f64,
    pub mcmc_prob_dm: f64,
}

/// Reads every row (the audit covers a sample of regions, so it is small).
pub(crate) fn read(path: &Path) -> Result<Vec<Row>, ReportError> {
    let pq = |source| ReportError::Parquet {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(|source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(pq)?
        .with_batch_size(65_536)
        .build()
        .map_err(pq)?;
    let mut rows = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| pq(e.into()))?;
        let region = utf8(&batch, a::REGION_ID, path)?;
        let quantity = utf8(&batch, a::QUANTITY, path)?;
        let family = batch
            .column_by_name(a::FAMILY)
            .and_then(|_| utf8(&batch, a::FAMILY, path).ok());
        let selected_by = batch
            .column_by_name(a::SELECTED_BY)
            .and_then(|_| utf8(&batch, a::SELECTED_BY, path).ok());
        let vb_mean = num(&batch, a::VB_MEAN, path)?;
        let vb_sd = num(&batch, a::VB_SD, path)?;
        let mcmc_mean = num(&batch, a::MCMC_MEAN, path)?;
        let mcmc_sd = num(&batch, a::MCMC_SD, path)?;
        let rhat = num(&batch, a::RHAT, path)?;
        let ess_bulk = num(&batch, "ess_bulk", path)?;
        let z_bias = num(&batch, a::Z_BIAS, path)?;
        let sd_ratio = num(&batch, a::SD_RATIO, path)?;
        let divergences = num(&batch, "divergences", path)?;
        let optional = |name: &str| {
            batch
                .column_by_name(name)
                .map(|_| num(&batch, name, path))
                .transpose()
        };
        let vb_prob_dm = optional(a::VB_PROB_DM)?;
        let mcmc_prob_dm = optional(a::MCMC_PROB_DM)?;
        for i in 0..batch.num_rows() {
            let text = |a: &arrow_array::StringArray| {
                if a.is_null(i) {
                    String::new()
                } else {
                    a.value(i).to_string()
                }
            };
            let q = text(quantity);
            rows.push(Row {
                region_id: text(region),
                kind: Kind::of(&q),
                quantity: q,
                vb_mean: vb_mean.get(i),
                vb_sd: vb_sd.get(i),
                mcmc_mean: mcmc_mean.get(i),
                mcmc_sd: mcmc_sd.get(i),
                rhat: rhat.get(i),
                ess_bulk: ess_bulk.get(i),
                z_bias: z_bias.get(i),
                sd_ratio: sd_ratio.get(i),
                divergences: divergences.get(i),
                family: family.map(text).unwrap_or_default(),
                selected_by: selected_by.map(text).unwrap_or_default(),
                vb_prob_dm: vb_prob_dm.as_ref().map_or(f64::NAN, |c| c.get(i)),
                mcmc_prob_dm: mcmc_prob_dm.as_ref().map_or(f64::NAN, |c| c.get(i)),
            });
        }
    }
    Ok(rows)
}

/// Headline numbers of the audit.
#[derive(Debug, Clone, PartialEq)]
pub struct McmcSummary {
    /// Rows (region × quantity).
    pub rows: usize,
    /// Distinct regions audited.
    pub regions: usize,
    /// Of those, regions audited because their k-hat was above the threshold
    /// (`selected_by = flagged`).
    pub regions_flagged: usize,
    /// Median |z_bias| over the a, b, k and Δ rows with a finite value.
    pub median_abs_z: f64,
    /// Largest |z_bias| over the a, b, k and Δ rows, with its region and quantity.
    pub worst_abs_z: Option<(f64, String, String)>,
    /// Median sd_ratio (VB sd / MCMC sd) over the a, b, k and Δ rows.
    pub median_sd_ratio: f64,
    /// Regions with any R-hat above [`RHAT_LIMIT`] (or not finite).
    pub regions_rhat_over: usize,
    /// Largest R-hat.
    pub max_rhat: f64,
    /// Smallest bulk ESS.
    pub min_ess_bulk: f64,
    /// Divergent transitions, summed once per region (the count is per region, repeated on
    /// each of its rows).
    pub divergences: f64,
}

/// Median of the finite values (NaN when there are none).
pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

/// Summarises the audit rows.
pub(crate) fn summarise(rows: &[Row]) -> McmcSummary {
    let mut regions: Vec<&str> = rows.iter().map(|r| r.region_id.as_str()).collect();
    regions.sort_unstable();
    regions.dedup();
    let mut over: Vec<&str> = rows
        .iter()
        .filter(|r| r.rhat.is_nan() || r.rhat > RHAT_LIMIT)
        .map(|r| r.region_id.as_str())
        .collect();
    over.sort_unstable();
    over.dedup();
    let mut flagged: Vec<&str> = rows
        .iter()
        .filter(|r| r.selected_by == "flagged")
        .map(|r| r.region_id.as_str())
        .collect();
    flagged.sort_unstable();
    flagged.dedup();
    let headline = || rows.iter().filter(|r| r.kind.headline());
    let worst = headline()
        .filter(|r| r.z_bias.is_finite())
        .max_by(|a, b| a.z_bias.abs().total_cmp(&b.z_bias.abs()))
        .map(|r| (r.z_bias.abs(), r.region_id.clone(), r.quantity.clone()));
    let mut div: Vec<(&str, f64)> = rows
        .iter()
        .map(|r| (r.region_id.as_str(), r.divergences))
        .collect();
    div.sort_by(|a, b| a.0.cmp(b.0));
    div.dedup_by(|a, b| a.0 == b.0);
    McmcSummary {
        rows: rows.len(),
        regions: regions.len(),
        regions_flagged: flagged.len(),
        median_abs_z: median(headline().map(|r| r.z_bias.abs()).collect()),
        worst_abs_z: worst,
        median_sd_ratio: median(headline().map(|r| r.sd_ratio).collect()),
        regions_rhat_over: over.len(),
        max_rhat: rows
            .iter()
            .map(|r| r.rhat)
            .filter(|x| x.is_finite())
            .fold(f64::NAN, f64::max),
        min_ess_bulk: rows
            .iter()
            .map(|r| r.ess_bulk)
            .filter(|x| x.is_finite())
            .fold(f64::NAN, f64::min),
        divergences: div.iter().map(|d| d.1).filter(|x| x.is_finite()).sum(),
    }
}
