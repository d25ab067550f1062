//! The output contracts: the file names of a run folder, the columns of `regions.parquet`
//! ([`ResultsLayout`]: schema and record batches) and of `mcmc_check.parquet`
//! ([`audit_schema`]), all documented in `docs/output.md`. `methvb-report` and the tests read
//! the tables by these names.

use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Float64Builder, StringBuilder, UInt32Builder, UInt64Builder,
};
use arrow_array::{ArrayRef, BooleanArray, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use methvb_io::regions::Region;
use methvb_model::RegionFit;

/// Rows per row group of the results tables: their rows are wide, and the Parquet writer holds
/// one row group in memory, so this caps the memory of pass 2 whatever the genome size.
pub const RESULTS_ROW_GROUP_ROWS: usize = 16_384;

/// Name of the boolean column added once the genome-wide FDR threshold is known.
pub const CALLED: &str = columns::CALLED;

/// File names of a run folder.
pub mod files {
    /// The results table.
    pub const REGIONS: &str = "regions.parquet";
    /// Provenance and counts of the run.
    pub const RUN: &str = "run.json";
    /// Theta and how it was learned.
    pub const HYPER: &str = "hyper.json";
    /// The MCMC audit table.
    pub const MCMC: &str = "mcmc_check.parquet";
    /// The HTML report (`methvb report`).
    pub const REPORT: &str = "report.html";
    /// The DMR table of `methvb dmr` (the columns of `regions.parquet`).
    pub const DMRS: &str = "dmrs.parquet";
    /// The called DMRs as BED9 (`methvb dmr`).
    pub const DMRS_BED: &str = "dmrs.bed";
    /// The per-CpG evidence of `methvb dmr`.
    pub const CPGS: &str = "cpgs.parquet";

    /// The results table of an output folder: `regions.parquet` (`run`, `gather`), else the
    /// `dmrs.parquet` of a `dmr` folder (`regions.parquet` when neither exists, for the error).
    pub fn results_table(dir: &std::path::Path) -> std::path::PathBuf {
        let dmrs = dir.join(DMRS);
        if !dir.join(REGIONS).is_file() && dmrs.is_file() {
            dmrs
        } else {
            dir.join(REGIONS)
        }
    }
}

/// Columns of `regions.parquet` that every layout has (the per-group and per-contrast ones are
/// named after the groups: see [`ResultsLayout::new`]).
pub mod columns {
    /// Region id (BED name, else `chrom:start-end`).
    pub const REGION_ID: &str = "region_id";
    /// Contig.
    pub const CHROM: &str = "chrom";
    /// 0-based start.
    pub const START: &str = "start";
    /// End (exclusive).
    pub const END: &str = "end";
    /// Sites of the region.
    pub const N_SITES: &str = "n_sites";
    /// Posterior mean of delta (two groups).
    pub const DELTA_MEAN: &str = "delta_mean";
    /// P(|delta| > delta0) (any group differs, for more than two groups).
    pub const PROB_DM: &str = "prob_dm";
    /// Local false sign rate (two groups).
    pub const LFSR: &str = "lfsr";
    /// Posterior error probability of a call.
    pub const PEP: &str = "pep";
    /// Posterior mean of the region's dispersion.
    pub const PHI_MEAN: &str = "phi_mean";
    /// PSIS k-hat.
    pub const KHAT: &str = "khat";
    /// The verdict on the posterior.
    pub const RELIABLE: &str = "reliable";
    /// Whether the optimiser met its convergence rule.
    pub const CONVERGED: &str = "converged";
    /// The FDR call.
    pub const CALLED: &str = "called";
}

/// Columns of `mcmc_check.parquet`, one row per audited region and quantity.
pub mod audit_columns {
    /// Region id.
    pub const REGION_ID: &str = "region_id";
    /// Why the region was audited (`sample` or `flagged`).
    pub const SELECTED_BY: &str = "selected_by";
    /// The quantity (`a`, `b`, `delta`, `k`, ...).
    pub const QUANTITY: &str = "quantity";
    /// VB posterior mean.
    pub const VB_MEAN: &str = "vb_mean";
    /// VB posterior sd.
    pub const VB_SD: &str = "vb_sd";
    /// NUTS posterior mean.
    pub const MCMC_MEAN: &str = "mcmc_mean";
    /// NUTS posterior sd.
    pub const MCMC_SD: &str = "mcmc_sd";
    /// Split R-hat of the chains.
    pub const RHAT: &str = "rhat";
    /// Bulk effective sample size.
    pub const ESS_BULK: &str = "ess_bulk";
    /// Tail effective sample size.
    pub const ESS_TAIL: &str = "ess_tail";
    /// Monte Carlo standard error of the NUTS mean.
    pub const MCSE_MEAN: &str = "mcse_mean";
    /// (VB mean - NUTS mean) / NUTS sd.
    pub const Z_BIAS: &str = "z_bias";
    /// VB sd / NUTS sd.
    pub const SD_RATIO: &str = "sd_ratio";
    /// VB prob_dm (delta rows only).
    pub const VB_PROB_DM: &str = "vb_prob_dm";
    /// NUTS prob_dm (delta rows only).
    pub const MCMC_PROB_DM: &str = "mcmc_prob_dm";
    /// Divergent NUTS transitions.
    pub const DIVERGENCES: &str = "divergences";
    /// The VB family.
    pub const FAMILY: &str = "family";
    /// Effective sample size of the importance weights.
    pub const WEIGHT_ESS: &str = "weight_ess";
    /// The VB verdict.
    pub const VB_RELIABLE: &str = "vb_reliable";
}

/// Columns of `cpgs.parquet` (`methvb dmr`; the per-group ones end in the group's name).
pub mod cpg_columns {
    /// Contig.
    pub const CHROM: &str = "chrom";
    /// 0-based position of the CpG.
    pub const POS: &str = "pos";
    /// Id of the run of CpGs (cluster) it was scanned in.
    pub const CLUSTER_ID: &str = "cluster_id";
    /// Id of the candidate DMR holding it (`dmrs.parquet` `region_id`), null outside them.
    pub const DMR_ID: &str = "dmr_id";
    /// Reads of a group: `coverage_<group>`.
    pub const COVERAGE: &str = "coverage";
    /// Pooled methylation of a group: `level_<group>` (null without reads).
    pub const LEVEL: &str = "level";
    /// `level_<other> - level_<reference>` (null where a group has no read).
    pub const DIFF: &str = "diff";
    /// Its standard error under no difference (null where a group has no read).
    pub const SE: &str = "se";
    /// `diff / se` (null where a group has no read).
    pub const Z: &str = "z";
}

/// The schema of `cpgs.parquet` for two groups (reference first).
pub fn cpg_schema(groups: &[String]) -> SchemaRef {
    use cpg_columns as c;
    let mut fields = vec![
        Field::new(c::CHROM, DataType::Utf8, false),
        Field::new(c::POS, DataType::UInt64, false),
        Field::new(c::CLUSTER_ID, DataType::Utf8, false),
        Field::new(c::DMR_ID, DataType::Utf8, true),
    ];
    for g in groups {
        fields.push(Field::new(
            format!("{}_{g}", c::COVERAGE),
            DataType::UInt32,
            false,
        ));
    }
    for g in groups {
        fields.push(Field::new(
            format!("{}_{g}", c::LEVEL),
            DataType::Float64,
            true,
        ));
    }
    for name in [c::DIFF, c::SE, c::Z] {
        fields.push(Field::new(name, DataType::Float64, true));
    }
    Arc::new(Schema::new(fields))
}

/// The schema of `mcmc_check.parquet`.
pub fn audit_schema() -> SchemaRef {
    use audit_columns as c;
    let float = |n: &str, nullable: bool| Field::new(n, DataType::Float64, nullable);
    Arc::new(Schema::new(vec![
        Field::new(c::REGION_ID, DataType::Utf8, false),
        Field::new(c::SELECTED_BY, DataType::Utf8, false),
        Field::new(c::QUANTITY, DataType::Utf8, false),
        float(c::VB_MEAN, false),
        float(c::VB_SD, false),
        float(c::MCMC_MEAN, false),
        float(c::MCMC_SD, false),
        float(c::RHAT, false),
        float(c::ESS_BULK, false),
        float(c::ESS_TAIL, false),
        float(c::MCSE_MEAN, false),
        float(c::Z_BIAS, false),
        float(c::SD_RATIO, false),
        float(c::VB_PROB_DM, true),
        float(c::MCMC_PROB_DM, true),
        Field::new(c::DIVERGENCES, DataType::UInt32, false),
        Field::new(c::FAMILY, DataType::Utf8, false),
        float(c::WEIGHT_ESS, false),
        Field::new(c::VB_RELIABLE, DataType::Boolean, false),
    ]))
}

/// Columns of the results table for a given set of groups (reference first).
#[derive(Debug, Clone)]
pub struct ResultsLayout {
    groups: Vec<String>,
    /// Sample names in sheet order (the per-sample columns).
    samples: Vec<String>,
    /// Schema without [`CALLED`] (what pass 2 writes).
    fitted: SchemaRef,
    /// Schema with [`CALLED`] (the published table).
    called: SchemaRef,
}

/// Suffixes of a posterior summary.
const STATS: [&str; 4] = ["mean", "sd", "q025", "q975"];

impl ResultsLayout {
    /// The layout for `groups` (index 0 = reference group) and `samples` (sheet order).
    pub fn new(groups: &[String], samples: &[String]) -> Self {
        let f64f = |name: String| Field::new(name, DataType::Float64, false);
        let mut fields = vec![
            Field::new(columns::REGION_ID, DataType::Utf8, false),
            Field::new(columns::CHROM, DataType::Utf8, false),
            Field::new(columns::START, DataType::UInt64, false),
            Field::new(columns::END, DataType::UInt64, false),
            Field::new(columns::N_SITES, DataType::UInt32, false),
            Field::new("n_samples", DataType::UInt32, false),
        ];
        for g in groups {
            fields.push(Field::new(format!("coverage_{g}"), DataType::UInt64, false));
        }
        for g in groups {
            fields.push(f64f(format!("raw_{g}")));
        }
        for g in groups {
            fields.push(f64f(format!("site_mean_{g}")));
        }
        for s in samples {
            fields.push(f64f(format!("sample_meth_{s}")));
        }
        for s in samples {
            fields.push(Field::new(
                format!("sample_coverage_{s}"),
                DataType::UInt64,
                false,
            ));
        }
        for g in groups {
            for s in STATS {
                fields.push(f64f(format!("theta_{g}_{s}")));
            }
        }
        for g in delta_prefixes(groups) {
            for s in STATS {
                fields.push(f64f(format!("{g}_{s}")));
            }
            if groups.len() > 2 {
                fields.push(f64f(format!("{g}_prob_dm")));
                fields.push(f64f(format!("{g}_lfsr")));
            }
        }
        if groups.len() >= 2 {
            fields.push(f64f(columns::PROB_DM.into()));
            if groups.len() == 2 {
                fields.push(f64f(columns::LFSR.into()));
            }
            fields.push(f64f(columns::PEP.into()));
            fields.push(f64f("p_null".into()));
        }
        for name in [columns::PHI_MEAN, "phi_sd", "elbo", "expected_loglik", "kl"] {
            fields.push(f64f(name.into()));
        }
        fields.push(Field::new("iterations", DataType::UInt32, false));
        fields.push(Field::new(columns::CONVERGED, DataType::Boolean, false));
        fields.push(f64f(columns::KHAT.into()));
        fields.push(f64f("khat_threshold".into()));
        fields.push(f64f("ess".into()));
        fields.push(f64f("delta_shift".into()));
        fields.push(f64f("prob_dm_shift".into()));
        fields.push(Field::new(columns::RELIABLE, DataType::Boolean, false));
        fields.push(Field::new("refit", DataType::UInt32, false));
        fields.push(Field::new("family", DataType::Utf8, false));
        fields.push(f64f("ppc_dispersion_z".into()));
        fields.push(Field::new("ppc_worst_site", DataType::UInt32, false));
        fields.push(f64f("ppc_worst_site_p".into()));
        fields.push(Field::new("ppc_worst_sample", DataType::Utf8, false));
        fields.push(f64f("ppc_worst_sample_p".into()));
        fields.push(Field::new("misfit", DataType::Boolean, false));
        let fitted = Arc::new(Schema::new(fields.clone()));
        let mut with_call = fields;
        if groups.len() >= 2 {
            with_call.push(Field::new(CALLED, DataType::Boolean, false));
        }
        Self {
            groups: groups.to_vec(),
            samples: samples.to_vec(),
            fitted,
            called: Arc::new(Schema::new(with_call)),
        }
    }

    /// Schema written by pass 2 (no `called` column yet).
    pub fn fitted_schema(&self) -> SchemaRef {
        self.fitted.clone()
    }

    /// Schema of the published table.
    pub fn called_schema(&self) -> SchemaRef {
        self.called.clone()
    }

    /// Whether the table has a contrast (and so `pep` and `called`).
    pub fn has_contrast(&self) -> bool {
        self.groups.len() >= 2
    }

    /// One record batch (without `called`) from regions and their fits, in order.
    /// `sample_group` numbers the groups as this layout does (reference first), `model_index`
    /// maps them to the model's numbering of the fits.
    pub fn batch(
        &self,
        regions: &[Region],
        fits: &[RegionFit],
        sample_group: &[usize],
        model_index: &[usize],
    ) -> Result<RecordBatch, arrow_schema::ArrowError> {
        let rows = regions.len();
        let g_count = self.groups.len();
        let mut id = StringBuilder::new();
        let mut chrom = StringBuilder::new();
        let mut start = UInt64Builder::with_capacity(rows);
        let mut end = UInt64Builder::with_capacity(rows);
        let mut n_sites = UInt32Builder::with_capacity(rows);
        let mut n_samples = UInt32Builder::with_capacity(rows);
        let mut coverage: Vec<UInt64Builder> = (0..g_count)
            .map(|_| UInt64Builder::with_capacity(rows))
            .collect();
        let mut raw: Vec<Float64Builder> = (0..g_count)
            .map(|_| Float64Builder::with_capacity(rows))
            .collect();
        let mut site_mean: Vec<Float64Builder> = (0..g_count)
            .map(|_| Float64Builder::with_capacity(rows))
            .collect();
        let s_count = self.samples.len();
        let mut sample_meth: Vec<Float64Builder> = (0..s_count)
            .map(|_| Float64Builder::with_capacity(rows))
            .collect();
        let mut sample_cov: Vec<UInt64Builder> = (0..s_count)
            .map(|_| UInt64Builder::with_capacity(rows))
            .collect();
        let mut theta: Vec<Float64Builder> = (0..g_count * 4)
            .map(|_| Float64Builder::with_capacity(rows))
            .collect();
        let delta_cols = if g_count > 2 { 6 } else { 4 };
        let mut delta: Vec<Float64Builder> = (0..(g_count.saturating_sub(1)) * delta_cols)
            .map(|_| Float64Builder::with_capacity(rows))
            .collect();
        let mut prob_dm = Float64Builder::with_capacity(rows);
        let mut lfsr = Float64Builder::with_capacity(rows);
        let mut pep = Float64Builder::with_capacity(rows);
        let mut p_null = Float64Builder::with_capacity(rows);
        let mut phi_mean = Float64Builder::with_capacity(rows);
        let mut phi_sd = Float64Builder::with_capacity(rows);
        let mut elbo = Float64Builder::with_capacity(rows);
        let mut expected_loglik = Float64Builder::with_capacity(rows);
        let mut kl = Float64Builder::with_capacity(rows);
        let mut ess = Float64Builder::with_capacity(rows);
        let mut delta_shift = Float64Builder::with_capacity(rows);
        let mut prob_dm_shift = Float64Builder::with_capacity(rows);
        let mut ppc_dispersion = Float64Builder::with_capacity(rows);
        let mut ppc_site = UInt32Builder::with_capacity(rows);
        let mut ppc_site_p = Float64Builder::with_capacity(rows);
        let mut ppc_sample = StringBuilder::new();
        let mut ppc_sample_p = Float64Builder::with_capacity(rows);
        let mut misfit = BooleanBuilder::with_capacity(rows);
        let mut iterations = UInt32Builder::with_capacity(rows);
        let mut converged = BooleanBuilder::with_capacity(rows);
        let mut khat = Float64Builder::with_capacity(rows);
        let mut khat_threshold = Float64Builder::with_capacity(rows);
        let mut reliable = BooleanBuilder::with_capacity(rows);
        let mut refit = UInt32Builder::with_capacity(rows);
        let mut family = StringBuilder::new();
        let mut cov_sum = vec![0u64; g_count];
        let mut m_sum = vec![0u64; g_count];
        let mut levels = SiteLevels::new(g_count, s_count);
        for (region, fit) in regions.iter().zip(fits) {
            id.append_value(&region.id);
            chrom.append_value(&region.chrom);
            start.append_value(region.start);
            end.append_value(region.end);
            n_sites.append_value(region.n_sites() as u32);
            let mut covered = vec![false; s_count];
            cov_sum.fill(0);
            m_sum.fill(0);
            for (cell, (&m, &n)) in region.methylated.iter().zip(&region.coverage).enumerate() {
                let s = cell % s_count;
                covered[s] |= n > 0;
                cov_sum[sample_group[s]] += u64::from(n);
                m_sum[sample_group[s]] += u64::from(m);
            }
            n_samples.append_value(covered.iter().filter(|&&c| c).count() as u32);
            levels.add_region(region, sample_group);
            for (b, v) in site_mean.iter_mut().zip(levels.group_means()) {
                b.append_value(v);
            }
            for (b, v) in sample_meth.iter_mut().zip(levels.sample_means()) {
                b.append_value(v);
            }
            for (b, &n) in sample_cov.iter_mut().zip(&levels.sample_coverage) {
                b.append_value(n);
            }
            for g in 0..g_count {
                coverage[g].append_value(cov_sum[g]);
                raw[g].append_value(if cov_sum[g] > 0 {
                    m_sum[g] as f64 / cov_sum[g] as f64
                } else {
                    f64::NAN
                });
                let t = &fit.theta[model_index[g]];
                for (k, v) in [t.mean, t.sd, t.q025, t.q975].into_iter().enumerate() {
                    theta[g * 4 + k].append_value(v);
                }
            }
            // The contrast of output group g (>= 1) against the reference (NaN if the fit
            // has none, which a fit of this layout's groups always has).
            for (d_idx, &mg) in model_index.iter().skip(1).enumerate() {
                let mut vals = match fit.delta.iter().find(|d| d.group == mg) {
                    Some(d) => {
                        let s = &d.summary;
                        vec![s.mean, s.sd, s.q025, s.q975, d.prob_dm, d.lfsr]
                    }
                    None => vec![f64::NAN; 6],
                };
                vals.truncate(delta_cols);
                for (k, v) in vals.into_iter().enumerate() {
                    delta[d_idx * delta_cols + k].append_value(v);
                }
            }
            if g_count >= 2 {
                prob_dm.append_value(fit.prob_dm);
                if g_count == 2 {
                    lfsr.append_value(fit.delta[0].lfsr);
                }
                pep.append_value(fit.pep);
                p_null.append_value(fit.p_null);
            }
            phi_mean.append_value(fit.phi_mean);
            phi_sd.append_value(fit.phi_sd);
            elbo.append_value(fit.elbo);
            expected_loglik.append_value(fit.expected_loglik);
            kl.append_value(fit.kl);
            ess.append_value(fit.ess);
            delta_shift.append_value(fit.delta_shift);
            prob_dm_shift.append_value(fit.prob_dm_shift);
            ppc_dispersion.append_value(fit.ppc.dispersion_z);
            ppc_site.append_value(fit.ppc.worst_site);
            ppc_site_p.append_value(fit.ppc.worst_site_p);
            ppc_sample.append_value(
                self.samples
                    .get(fit.ppc.worst_sample as usize)
                    .map_or("", String::as_str),
            );
            ppc_sample_p.append_value(fit.ppc.worst_sample_p);
            misfit.append_value(fit.misfit);
            iterations.append_value(fit.iterations);
            converged.append_value(fit.converged);
            khat.append_value(fit.khat);
            khat_threshold.append_value(fit.khat_threshold);
            reliable.append_value(fit.reliable);
            refit.append_value(u32::from(fit.refit));
            family.append_value(fit.family.name());
        }
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(id.finish()),
            Arc::new(chrom.finish()),
            Arc::new(start.finish()),
            Arc::new(end.finish()),
            Arc::new(n_sites.finish()),
            Arc::new(n_samples.finish()),
        ];
        columns.extend(
            coverage
                .iter_mut()
                .map(|b| Arc::new(b.finish()) as ArrayRef),
        );
        columns.extend(raw.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
        for b in site_mean.iter_mut().chain(sample_meth.iter_mut()) {
            columns.push(Arc::new(b.finish()));
        }
        columns.extend(
            sample_cov
                .iter_mut()
                .map(|b| Arc::new(b.finish()) as ArrayRef),
        );
        columns.extend(theta.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
        columns.extend(delta.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
        if g_count >= 2 {
            columns.push(Arc::new(prob_dm.finish()));
            if g_count == 2 {
                columns.push(Arc::new(lfsr.finish()));
            }
            columns.push(Arc::new(pep.finish()));
            columns.push(Arc::new(p_null.finish()));
        }
        for b in [
            &mut phi_mean,
            &mut phi_sd,
            &mut elbo,
            &mut expected_loglik,
            &mut kl,
        ] {
            columns.push(Arc::new(b.finish()));
        }
        columns.push(Arc::new(iterations.finish()));
        columns.push(Arc::new(converged.finish()));
        columns.push(Arc::new(khat.finish()));
        columns.push(Arc::new(khat_threshold.finish()));
        columns.push(Arc::new(ess.finish()));
        columns.push(Arc::new(delta_shift.finish()));
        columns.push(Arc::new(prob_dm_shift.finish()));
        columns.push(Arc::new(reliable.finish()));
        columns.push(Arc::new(refit.finish()));
        columns.push(Arc::new(family.finish()));
        columns.push(Arc::new(ppc_dispersion.finish()));
        columns.push(Arc::new(ppc_site.finish()));
        columns.push(Arc::new(ppc_site_p.finish()));
        columns.push(Arc::new(ppc_sample.finish()));
        columns.push(Arc::new(ppc_sample_p.finish()));
        columns.push(Arc::new(misfit.finish()));
        RecordBatch::try_new(self.fitted.clone(), columns)
    }

    /// `batch` (from [`Self::fitted_schema`]) with `pep` as its `pep` column.
    pub fn with_pep(
        &self,
        batch: &RecordBatch,
        pep: &[f64],
    ) -> Result<RecordBatch, arrow_schema::ArrowError> {
        let mut columns = batch.columns().to_vec();
        let index = batch.schema().index_of(columns::PEP)?;
        columns[index] = Arc::new(arrow_array::Float64Array::from(pep.to_vec()));
        RecordBatch::try_new(batch.schema(), columns)
    }

    /// `batch` (from [`Self::fitted_schema`]) with the `called` column appended.
    pub fn with_calls(
        &self,
        batch: &RecordBatch,
        called: &[bool],
    ) -> Result<RecordBatch, arrow_schema::ArrowError> {
        let mut columns = batch.columns().to_vec();
        columns.push(Arc::new(BooleanArray::from(called.to_vec())));
        RecordBatch::try_new(self.called.clone(), columns)
    }
}

/// Site-averaged raw levels of one region: per group, the mean over the sites the group covers
/// of the site's pooled ratio Σm / Σn over the group's samples (the raw counterpart of θ_g, which
/// also averages over sites); per sample, the mean over its covered sites of m / n, and its reads.
#[derive(Debug)]
struct SiteLevels {
    group_sum: Vec<f64>,
    group_sites: Vec<u32>,
    sample_sum: Vec<f64>,
    sample_sites: Vec<u32>,
    sample_coverage: Vec<u64>,
    site_m: Vec<u64>,
    site_n: Vec<u64>,
}

impl SiteLevels {
    fn new(groups: usize, samples: usize) -> Self {
        Self {
            group_sum: vec![0.0; groups],
            group_sites: vec![0; groups],
            sample_sum: vec![0.0; samples],
            sample_sites: vec![0; samples],
            sample_coverage: vec![0; samples],
            site_m: vec![0; groups],
            site_n: vec![0; groups],
        }
    }

    /// Replaces the sums by those of `region` (cells `j * S + s`).
    fn add_region(&mut self, region: &Region, sample_group: &[usize]) {
        for v in [&mut self.group_sum, &mut self.sample_sum] {
            v.fill(0.0);
        }
        for v in [&mut self.group_sites, &mut self.sample_sites] {
            v.fill(0);
        }
        self.sample_coverage.fill(0);
        let s_count = sample_group.len();
        for j in 0..region.n_sites() {
            self.site_m.fill(0);
            self.site_n.fill(0);
            for (s, &g) in sample_group.iter().enumerate() {
                let (m, n) = (
                    region.methylated[j * s_count + s],
                    region.coverage[j * s_count + s],
                );
                if n == 0 {
                    continue;
                }
                self.site_m[g] += u64::from(m);
                self.site_n[g] += u64::from(n);
                self.sample_sum[s] += f64::from(m) / f64::from(n);
                self.sample_sites[s] += 1;
                self.sample_coverage[s] += u64::from(n);
            }
            for g in 0..self.group_sum.len() {
                if self.site_n[g] > 0 {
                    self.group_sum[g] += self.site_m[g] as f64 / self.site_n[g] as f64;
                    self.group_sites[g] += 1;
                }
            }
        }
    }

    fn mean(sum: &[f64], count: &[u32]) -> impl Iterator<Item = f64> {
        sum.iter()
            .zip(count)
            .map(|(&x, &k)| if k > 0 { x / f64::from(k) } else { f64::NAN })
    }

    /// Per group: mean over covered sites of the pooled site ratio (NaN without coverage).
    fn group_means(&self) -> impl Iterator<Item = f64> {
        Self::mean(&self.group_sum, &self.group_sites)
    }

    /// Per sample: mean over covered sites of m / n (NaN without coverage).
    fn sample_means(&self) -> impl Iterator<Item = f64> {
        Self::mean(&self.sample_sum, &self.sample_sites)
    }
}

/// Column-name prefixes of the contrasts: `delta` for two groups, `delta_<group>` for more.
fn delta_prefixes(groups: &[String]) -> Vec<String> {
    match groups.len() {
        0 | 1 => Vec::new(),
        2 => vec!["delta".to_string()],
        _ => groups[1..].iter().map(|g| format!("delta_{g}")).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn site_levels_average_over_sites_not_reads() {
        // Two samples of group 0, one of group 1; two sites. Site 0 is deep and unmethylated,
        // site 1 shallow and fully methylated: pooled Σm/Σn is near 0, the site mean is 0.5.
        let region = Region {
            id: "r".into(),
            chrom: "chr1".into(),
            start: 0,
            end: 10,
            positions: vec![1, 5],
            methylated: vec![0, 0, 3, 1, 2, 0],
            coverage: vec![90, 10, 6, 1, 2, 0],
        };
        let mut levels = SiteLevels::new(2, 3);
        levels.add_region(&region, &[0, 0, 1]);
        let g: Vec<f64> = levels.group_means().collect();
        // Group 0: site 0 pooled 0/100, site 1 pooled 3/3 -> (0 + 1) / 2.
        assert_eq!(g[0], 0.5);
        // Group 1: only site 0 covered, 3/6.
        assert_eq!(g[1], 0.5);
        let s: Vec<f64> = levels.sample_means().collect();
        assert_eq!(s, vec![0.5, 0.5, 0.5]);
        assert_eq!(levels.sample_coverage, vec![91, 12, 6]);
        // A sample without coverage anywhere is NaN, with 0 reads.
        let empty = Region {
            methylated: vec![0; 6],
            coverage: vec![0; 6],
            ..region
        };
        levels.add_region(&empty, &[0, 0, 1]);
        assert!(levels.sample_means().all(f64::is_nan));
        assert!(levels.group_means().all(f64::is_nan));
        assert_eq!(levels.sample_coverage, vec![0, 0, 0]);
    }
}
