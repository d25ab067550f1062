//! One streaming pass over `regions.parquet` that fills fixed-size accumulators (histograms and
//! a binned volcano), so memory and report size do not grow with the number of regions.

use methvb_pipeline::schema::columns as c;
use std::fs::File;
use std::path::Path;

use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::ReportError;
use crate::columns::{NumCol, boolean, is_true, num, utf8};

/// Rows per decoded batch.
const BATCH_ROWS: usize = 65_536;

/// A histogram over a fixed range with equal-width bins; values outside are counted apart.
#[derive(Debug, Clone)]
pub(crate) struct Hist {
    pub lo: f64,
    pub hi: f64,
    pub counts: Vec<u64>,
    pub below: u64,
    pub above: u64,
    pub missing: u64,
}

impl Hist {
    pub(crate) fn new(lo: f64, hi: f64, bins: usize) -> Self {
        Hist {
            lo,
            hi,
            counts: vec![0; bins],
            below: 0,
            above: 0,
            missing: 0,
        }
    }

    pub(crate) fn width(&self) -> f64 {
        (self.hi - self.lo) / self.counts.len() as f64
    }

    #[inline]
    pub(crate) fn add(&mut self, x: f64) {
        if !x.is_finite() {
            // ±inf are outside any finite range; NaN is missing.
            if x.is_nan() {
                self.missing += 1;
            } else if x < 0.0 {
                self.below += 1;
            } else {
                self.above += 1;
            }
        } else if x < self.lo {
            self.below += 1;
        } else if x >= self.hi {
            self.above += 1;
        } else {
            let last = self.counts.len() - 1;
            let bin = ((x - self.lo) / self.width()) as usize;
            self.counts[bin.min(last)] += 1;
        }
    }

    /// First and one-past-last non-empty bins, if any.
    pub(crate) fn extent(&self) -> Option<(usize, usize)> {
        let first = self.counts.iter().position(|&c| c > 0)?;
        let last = self.counts.iter().rposition(|&c| c > 0)?;
        Some((first, last + 1))
    }
}

/// Which contrast the volcano plot shows.
#[derive(Debug, Clone)]
pub(crate) struct Contrast {
    /// e.g. `treated − control`.
    pub label: String,
    /// Column of the posterior mean of Δ.
    pub mean_col: String,
    /// Column of P(|Δ| > δ₀).
    pub prob_col: String,
    /// Said under the plot (more than two groups).
    pub note: Option<String>,
}

/// Volcano range: Δ in [-1, 1] (a difference of proportions), prob_dm in [0, 1].
pub(crate) const VOLCANO_X: (f64, f64) = (-1.0, 1.0);
/// Bins of the fine volcano grid along Δ (width 0.002).
pub(crate) const VOLCANO_NX: usize = 1000;
/// Bins of the fine volcano grid along prob_dm (height 0.002).
pub(crate) const VOLCANO_NY: usize = 500;
/// Most columns drawn: the fine grid is merged in blocks over the shown Δ range.
pub(crate) const VOLCANO_COLS: usize = 200;
/// Most rows drawn.
pub(crate) const VOLCANO_ROWS: usize = 100;

/// The volcano: every point while there are at most `max_points`, and always a fixed grid of
/// counts (called and not called apart), drawn instead of the points for larger runs.
#[derive(Debug, Clone)]
pub(crate) struct Volcano {
    pub max_points: usize,
    /// (Δ mean, prob_dm, called) while `n <= max_points`; cleared after.
    pub points: Vec<(f32, f32, bool)>,
    pub binned: bool,
    pub called_bins: Vec<u32>,
    pub other_bins: Vec<u32>,
    pub n: u64,
    pub missing: u64,
}

impl Volcano {
    fn new(max_points: usize) -> Self {
        Volcano {
            max_points,
            points: Vec::new(),
            binned: false,
            called_bins: vec![0; VOLCANO_NX * VOLCANO_NY],
            other_bins: vec![0; VOLCANO_NX * VOLCANO_NY],
            n: 0,
            missing: 0,
        }
    }

    #[inline]
    fn add(&mut self, delta: f64, prob: f64, called: bool) {
        if !delta.is_finite() || !prob.is_finite() {
            self.missing += 1;
            return;
        }
        self.n += 1;
        let (x0, x1) = VOLCANO_X;
        let fx = ((delta.clamp(x0, x1) - x0) / (x1 - x0) * VOLCANO_NX as f64) as usize;
        let fy = (prob.clamp(0.0, 1.0) * VOLCANO_NY as f64) as usize;
        let cell = fy.min(VOLCANO_NY - 1) * VOLCANO_NX + fx.min(VOLCANO_NX - 1);
        let bins = if called {
            &mut self.called_bins
        } else {
            &mut self.other_bins
        };
        bins[cell] = bins[cell].saturating_add(1);
        if !self.binned {
            if self.points.len() < self.max_points {
                self.points.push((delta as f32, prob as f32, called));
            } else {
                self.binned = true;
                self.points = Vec::new();
            }
        }
    }
}

/// One called region of the top table, with what the table and its per-CpG panel show.
#[derive(Debug, Clone, PartialEq)]
pub struct TopRegion {
    /// Rank (1 = highest prob_dm).
    pub rank: usize,
    /// Region id.
    pub region_id: String,
    /// Contig.
    pub chrom: String,
    /// 0-based start.
    pub start: u64,
    /// 0-based end (exclusive).
    pub end: u64,
    /// Sites the fit used.
    pub n_sites: u64,
    /// Posterior mean of Δ (the contrast of the volcano) and its 95% interval.
    pub delta: (f64, f64, f64),
    /// P(|Δ| > δ₀).
    pub prob_dm: f64,
    /// Local false sign rate (NaN where the table has none).
    pub lfsr: f64,
    /// The verdict: the delta summaries can be used.
    pub reliable: bool,
    /// Per group (reference first): posterior mean of θ_g and its 95% interval.
    pub theta: Vec<(f64, f64, f64)>,
}

/// Keeps the `cap` best called regions seen, by descending prob_dm, then ascending lfsr, then
/// region id (so ties do not depend on the file's order).
#[derive(Debug, Clone)]
struct TopKeeper {
    cap: usize,
    rows: Vec<TopRegion>,
}

impl TopKeeper {
    fn order(a: &TopRegion, b: &TopRegion) -> std::cmp::Ordering {
        b.prob_dm
            .total_cmp(&a.prob_dm)
            .then(a.lfsr.total_cmp(&b.lfsr))
            .then_with(|| a.region_id.cmp(&b.region_id))
    }

    fn push(&mut self, row: TopRegion) {
        if self.cap == 0 {
            return;
        }
        self.rows.push(row);
        if self.rows.len() >= 2 * self.cap {
            self.rows.sort_by(Self::order);
            self.rows.truncate(self.cap);
        }
    }

    fn finish(mut self) -> Vec<TopRegion> {
        self.rows.sort_by(Self::order);
        self.rows.truncate(self.cap);
        for (i, r) in self.rows.iter_mut().enumerate() {
            r.rank = i + 1;
        }
        self.rows
    }
}

/// Everything the report needs from `regions.parquet`.
#[derive(Debug, Clone)]
pub(crate) struct RegionsScan {
    pub groups: Vec<String>,
    pub contrast: Option<Contrast>,
    pub rows: u64,
    /// Regions called (None without a `called` column, i.e. one group).
    pub called: Option<u64>,
    pub unreliable: u64,
    pub not_converged: u64,
    pub volcano: Option<Volcano>,
    /// k-hat in [-0.5, 1.5) of the reliable regions.
    pub khat_reliable: Hist,
    /// k-hat in [-0.5, 1.5) of the unreliable regions.
    pub khat_unreliable: Hist,
    /// Distinct k-hat thresholds, ascending, and how many regions had each (the first 16 seen).
    pub thresholds: Vec<(f64, u64)>,
    /// log10 φ in [-4, 0).
    pub log_phi: Hist,
    /// Per group, log10 coverage in [0, 9); zero coverage is counted in `missing`.
    pub log_coverage: Vec<Hist>,
    /// Key-value metadata of the file.
    pub metadata: Vec<(String, String)>,
    /// The best called regions (at most the `top` asked of [`scan`]), best first.
    pub top: Vec<TopRegion>,
}

/// Reads `path` once and fills the accumulators; keeps the `top` best called regions.
pub(crate) fn scan(path: &Path, max_points: usize, top: usize) -> Result<RegionsScan, ReportError> {
    let io = |source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    };
    let pq = |source| ReportError::Parquet {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(io)?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(pq)?;
    let metadata = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .map(|kv| {
            kv.iter()
                .filter(|e| e.key.starts_with("methvb."))
                .map(|e| (e.key.clone(), e.value.clone().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    let schema = builder.schema().clone();
    let has = |name: &str| schema.column_with_name(name).is_some();
    let groups: Vec<String> = schema
        .fields()
        .iter()
        .filter_map(|f| f.name().strip_prefix("coverage_").map(str::to_string))
        .collect();
    let contrast = if has(c::DELTA_MEAN) && has(c::PROB_DM) {
        let label = match (groups.first(), groups.get(1)) {
            (Some(r), Some(g)) => format!("{g} − {r}"),
            _ => "Δ".to_string(),
        };
        Some(Contrast {
            label,
            mean_col: c::DELTA_MEAN.into(),
            prob_col: c::PROB_DM.into(),
            note: None,
        })
    } else {
        groups.iter().skip(1).find_map(|g| {
            let mean_col = format!("delta_{g}_mean");
            let prob_col = format!("delta_{g}_prob_dm");
            (has(&mean_col) && has(&prob_col)).then(|| Contrast {
                label: format!("{g} − {}", groups[0]),
                note: Some(format!(
                    "This run has {} groups; the volcano shows the first non-reference contrast, \
                     {g} − {} (columns {mean_col} and {prob_col}). Highlighted regions are those \
                     called on any contrast.",
                    groups.len(),
                    groups[0]
                )),
                mean_col,
                prob_col,
            })
        })
    };
    let has_called = has(c::CALLED);
    let mut wanted: Vec<String> = groups.iter().map(|g| format!("coverage_{g}")).collect();
    for name in [
        c::PHI_MEAN,
        c::KHAT,
        "khat_threshold",
        c::RELIABLE,
        c::CONVERGED,
        c::CALLED,
    ] {
        wanted.push(name.to_string());
    }
    if let Some(c) = &contrast {
        wanted.push(c.mean_col.clone());
        wanted.push(c.prob_col.clone());
    }
    // The top table: columns by name; a column the table lacks reads as NaN.
    let prefix = contrast
        .as_ref()
        .map(|c| c.mean_col.trim_end_matches("_mean").to_string());
    let top_cols = TopColumns::names(&groups, prefix.as_deref(), has(c::LFSR));
    // The table needs the coordinates, prob_dm and Δ; lfsr, n_sites and θ read as NaN if absent.
    let top_ok = has_called
        && contrast.is_some()
        && [c::REGION_ID, c::CHROM, c::START, c::END, c::PROB_DM]
            .iter()
            .all(|c| has(c))
        && top_cols.delta.iter().all(|c| has(c));
    if top_ok {
        wanted.extend(top_cols.all());
    }
    let roots: Vec<usize> = wanted
        .iter()
        .filter_map(|w| schema.index_of(w).ok())
        .collect();
    let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
    let reader = builder
        .with_projection(mask)
        .with_batch_size(BATCH_ROWS)
        .build()
        .map_err(pq)?;

    let mut out = RegionsScan {
        groups: groups.clone(),
        contrast: contrast.clone(),
        rows: 0,
        called: has_called.then_some(0),
        unreliable: 0,
        not_converged: 0,
        volcano: contrast.as_ref().map(|_| Volcano::new(max_points)),
        khat_reliable: Hist::new(-0.5, 1.5, 80),
        khat_unreliable: Hist::new(-0.5, 1.5, 80),
        thresholds: Vec::new(),
        log_phi: Hist::new(-4.0, 0.0, 80),
        log_coverage: groups.iter().map(|_| Hist::new(0.0, 9.0, 180)).collect(),
        metadata,
        top: Vec::new(),
    };
    let mut keeper = TopKeeper {
        cap: if top_ok { top } else { 0 },
        rows: Vec::new(),
    };
    let cov_names: Vec<String> = groups.iter().map(|g| format!("coverage_{g}")).collect();
    for batch in reader {
        let batch = batch.map_err(|e| pq(e.into()))?;
        let khat = num(&batch, c::KHAT, path)?;
        let threshold = num(&batch, "khat_threshold", path)?;
        let phi = num(&batch, c::PHI_MEAN, path)?;
        let reliable = boolean(&batch, c::RELIABLE, path)?;
        let converged = boolean(&batch, c::CONVERGED, path)?;
        let called = if has_called {
            Some(boolean(&batch, c::CALLED, path)?)
        } else {
            None
        };
        let covs = cov_names
            .iter()
            .map(|c| num(&batch, c, path))
            .collect::<Result<Vec<_>, _>>()?;
        let top_batch = if keeper.cap > 0 {
            Some(TopBatch::new(&batch, &top_cols, path)?)
        } else {
            None
        };
        let volcano_cols = match &contrast {
            Some(c) => Some((
                num(&batch, &c.mean_col, path)?,
                num(&batch, &c.prob_col, path)?,
            )),
            None => None,
        };
        for i in 0..batch.num_rows() {
            out.rows += 1;
            let is_called = called.is_some_and(|c| is_true(c, i));
            if is_called && let Some(n) = out.called.as_mut() {
                *n += 1;
            }
            if is_true(reliable, i) {
                out.khat_reliable.add(khat.get(i));
            } else {
                out.unreliable += 1;
                out.khat_unreliable.add(khat.get(i));
            }
            if !is_true(converged, i) {
                out.not_converged += 1;
            }
            let t = threshold.get(i);
            if let Some(e) = out
                .thresholds
                .iter_mut()
                .find(|(v, _)| v.to_bits() == t.to_bits())
            {
                e.1 += 1;
            } else if out.thresholds.len() < 16 {
                out.thresholds.push((t, 1));
            }
            out.log_phi.add(phi.get(i).log10());
            for (h, c) in out.log_coverage.iter_mut().zip(&covs) {
                let v = c.get(i);
                // log10(0) = -inf, which would count as "below"; keep zero coverage apart.
                if v > 0.0 {
                    h.add(v.log10());
                } else {
                    h.missing += 1;
                }
            }
            if let (Some(v), Some((m, p))) = (out.volcano.as_mut(), volcano_cols.as_ref()) {
                v.add(m.get(i), p.get(i), is_called);
            }
            if is_called && let Some(t) = &top_batch {
                keeper.push(t.row(i, is_true(reliable, i)));
            }
        }
    }
    out.thresholds.sort_by(|a, b| a.0.total_cmp(&b.0));
    out.top = keeper.finish();
    Ok(out)
}

/// Names of the columns of the top table.
#[derive(Debug, Clone)]
struct TopColumns {
    delta: [String; 3],
    lfsr: String,
    theta: Vec<[String; 3]>,
}

impl TopColumns {
    fn names(groups: &[String], prefix: Option<&str>, has_lfsr: bool) -> Self {
        let p = prefix.unwrap_or("delta");
        let stats = |p: &str| {
            [
                format!("{p}_mean"),
                format!("{p}_q025"),
                format!("{p}_q975"),
            ]
        };
        TopColumns {
            delta: stats(p),
            lfsr: if has_lfsr {
                c::LFSR.into()
            } else {
                format!("{p}_lfsr")
            },
            theta: groups
                .iter()
                .map(|g| stats(&format!("theta_{g}")))
                .collect(),
        }
    }

    fn all(&self) -> Vec<String> {
        let mut v: Vec<String> = [
            c::REGION_ID,
            c::CHROM,
            c::START,
            c::END,
            c::N_SITES,
            c::PROB_DM,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.extend(self.delta.iter().cloned());
        v.push(self.lfsr.clone());
        v.extend(self.theta.iter().flatten().cloned());
        v
    }
}

/// The top-table columns of one batch.
struct TopBatch<'a> {
    id: &'a arrow_array::StringArray,
    chrom: &'a arrow_array::StringArray,
    start: NumCol<'a>,
    end: NumCol<'a>,
    n_sites: Option<NumCol<'a>>,
    prob_dm: NumCol<'a>,
    delta: [Option<NumCol<'a>>; 3],
    lfsr: Option<NumCol<'a>>,
    theta: Vec<[Option<NumCol<'a>>; 3]>,
}

impl<'a> TopBatch<'a> {
    fn new(
        batch: &'a arrow_array::RecordBatch,
        c: &TopColumns,
        path: &Path,
    ) -> Result<Self, ReportError> {
        let optional = |n: &str| -> Result<Option<NumCol<'a>>, ReportError> {
            batch
                .column_by_name(n)
                .map(|_| num(batch, n, path))
                .transpose()
        };
        let three = |n: &[String; 3]| -> Result<[Option<NumCol<'a>>; 3], ReportError> {
            Ok([optional(&n[0])?, optional(&n[1])?, optional(&n[2])?])
        };
        Ok(TopBatch {
            id: utf8(batch, c::REGION_ID, path)?,
            chrom: utf8(batch, c::CHROM, path)?,
            start: num(batch, c::START, path)?,
            end: num(batch, c::END, path)?,
            n_sites: optional(c::N_SITES)?,
            prob_dm: num(batch, c::PROB_DM, path)?,
            delta: three(&c.delta)?,
            lfsr: optional(&c.lfsr)?,
            theta: c.theta.iter().map(three).collect::<Result<_, _>>()?,
        })
    }

    fn row(&self, i: usize, reliable: bool) -> TopRegion {
        let get = |c: &Option<NumCol<'_>>| c.as_ref().map_or(f64::NAN, |c| c.get(i));
        let three = |c: &[Option<NumCol<'_>>; 3]| (get(&c[0]), get(&c[1]), get(&c[2]));
        TopRegion {
            rank: 0,
            region_id: self.id.value(i).to_string(),
            chrom: self.chrom.value(i).to_string(),
            start: self.start.get(i) as u64,
            end: self.end.get(i) as u64,
            n_sites: self.n_sites.as_ref().map_or(0, |c| c.get(i) as u64),
            delta: three(&self.delta),
            prob_dm: self.prob_dm.get(i),
            lfsr: get(&self.lfsr),
            reliable,
            theta: self.theta.iter().map(three).collect(),
        }
    }
}
