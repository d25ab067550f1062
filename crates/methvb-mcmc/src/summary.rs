//! Run-level summary of the per-region audits (for `run.json`).

use serde::{Deserialize, Serialize};

use crate::audit::{AuditRow, RegionAudit};

/// R-hat above this flags a region as not converged (Vehtari et al. 2021).
pub const RHAT_THRESHOLD: f64 = 1.01;

/// Agreement figures of one kind of quantity (`a`, `b`, `w`, `k` or `delta`) over all regions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuantitySummary {
    /// Kind: `a`, `b` (all `b_g`), `w`, `k` or `delta` (all `delta_g`).
    pub kind: String,
    /// Rows of this kind with finite `z_bias` and `sd_ratio`.
    pub n: usize,
    /// Median `|z_bias|`.
    pub median_abs_z_bias: f64,
    /// Largest `|z_bias|`.
    pub worst_abs_z_bias: f64,
    /// Share of rows with `|z_bias| < 0.2`.
    pub frac_abs_z_bias_below_0_2: f64,
    /// Median `sd_ratio`.
    pub median_sd_ratio: f64,
    /// Smallest `sd_ratio`.
    pub min_sd_ratio: f64,
    /// Largest `sd_ratio`.
    pub max_sd_ratio: f64,
    /// Share of rows with `0.8 <= sd_ratio <= 1.2`.
    pub frac_sd_ratio_within_0_8_1_2: f64,
}

/// Summary of a set of [`RegionAudit`]s.
///
/// The headline agreement figures pool the quantities MODEL.md names (`a`, `b_g`, `k`,
/// `delta_g`); `w` is reported in [`AuditSummary::by_quantity`] only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditSummary {
    /// Regions audited.
    pub n_regions: usize,
    /// Rows pooled in the headline figures (finite `z_bias` and `sd_ratio`).
    pub n_rows: usize,
    /// Median `|z_bias|` over the pooled rows.
    pub median_abs_z_bias: f64,
    /// Largest `|z_bias|` over the pooled rows.
    pub worst_abs_z_bias: f64,
    /// Region of the largest `|z_bias|` (empty if there is none).
    pub worst_region: String,
    /// Quantity of the largest `|z_bias|`.
    pub worst_quantity: String,
    /// Median `sd_ratio` over the pooled rows.
    pub median_sd_ratio: f64,
    /// The R-hat threshold used ([`RHAT_THRESHOLD`]).
    pub rhat_threshold: f64,
    /// Regions whose `max_rhat` exceeds the threshold or is undefined.
    pub regions_rhat_above: usize,
    /// Divergent transitions after warm-up, over all regions and chains.
    pub total_divergences: u64,
    /// Regions with at least one divergence.
    pub regions_with_divergences: usize,
    /// Median wall-clock seconds per region.
    pub median_seconds: f64,
    /// Total wall-clock seconds (sum over regions).
    pub total_seconds: f64,
    /// Figures per kind of quantity.
    pub by_quantity: Vec<QuantitySummary>,
    /// Agreement of the per-region answer (delta and prob_dm) and whether the verdict caught
    /// the disagreements.
    pub verdict: VerdictSummary,
}

/// `|z_bias|` of a delta row above which VB and NUTS disagree (issue targets, docs/model.md).
pub const DELTA_Z_OFF: f64 = 0.5;
/// Difference of `prob_dm` above which VB and NUTS disagree.
pub const PROB_DM_OFF: f64 = 0.1;

/// How well the VB answer and its `reliable` flag match NUTS over the audited regions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerdictSummary {
    /// Regions with at least one delta row.
    pub n_regions: usize,
    /// Share of those whose every `|z_bias|` of delta is `<= 0.3`.
    pub frac_delta_z_within_0_3: f64,
    /// Share whose every `|vb_prob_dm - mcmc_prob_dm|` is `<= 0.05`.
    pub frac_prob_dm_within_0_05: f64,
    /// Regions off by `|z| >` [`DELTA_Z_OFF`] or by more than [`PROB_DM_OFF`] in prob_dm.
    pub regions_off: usize,
    /// Of those, how many the VB fit flagged (`reliable = false`).
    pub regions_off_flagged: usize,
    /// Regions the VB fit flagged.
    pub regions_flagged: usize,
    /// Ids of the regions off and not flagged (the verdict's misses).
    pub missed: Vec<String>,
}

fn verdict_summary(audits: &[RegionAudit]) -> VerdictSummary {
    let deltas = |a: &RegionAudit| -> Vec<(f64, f64)> {
        a.rows
            .iter()
            .filter(|r| kind(&r.name) == "delta")
            .map(|r| {
                let dp = match (r.vb_prob_dm, r.mcmc_prob_dm) {
                    (Some(v), Some(m)) => (v - m).abs(),
                    _ => f64::NAN,
                };
                (r.z_bias.abs(), dp)
            })
            .collect()
    };
    let (mut n, mut z_ok, mut p_ok, mut off, mut off_flagged) = (0, 0, 0, 0, 0);
    let mut missed = Vec::new();
    for a in audits {
        let d = deltas(a);
        if d.is_empty() {
            continue;
        }
        n += 1;
        z_ok += usize::from(d.iter().all(|(z, _)| *z <= 0.3));
        p_ok += usize::from(d.iter().all(|(_, p)| *p <= 0.05));
        // NaN (no spread, no prob_dm) counts as off: it cannot be shown to agree.
        let is_off = d
            .iter()
            .any(|(z, p)| z.is_nan() || p.is_nan() || *z > DELTA_Z_OFF || *p > PROB_DM_OFF);
        if is_off {
            off += 1;
            if a.vb_reliable {
                missed.push(a.region_id.clone());
            } else {
                off_flagged += 1;
            }
        }
    }
    let nf = n.max(1) as f64;
    VerdictSummary {
        n_regions: n,
        frac_delta_z_within_0_3: z_ok as f64 / nf,
        frac_prob_dm_within_0_05: p_ok as f64 / nf,
        regions_off: off,
        regions_off_flagged: off_flagged,
        regions_flagged: audits.iter().filter(|a| !a.vb_reliable).count(),
        missed,
    }
}

/// Median of the finite values of `x` (NaN if there are none).
fn median(mut x: Vec<f64>) -> f64 {
    x.retain(|v| v.is_finite());
    if x.is_empty() {
        return f64::NAN;
    }
    x.sort_unstable_by(f64::total_cmp);
    let n = x.len();
    if n % 2 == 1 {
        x[n / 2]
    } else {
        0.5 * (x[n / 2 - 1] + x[n / 2])
    }
}

/// Kind of a row name: `b_2` -> `b`, `delta_1` -> `delta`, `beta_batch=B` -> `beta`, `u_d1` -> `u`.
fn kind(name: &str) -> &str {
    name.split('_').next().unwrap_or(name)
}

fn usable(r: &AuditRow) -> bool {
    r.z_bias.is_finite() && r.sd_ratio.is_finite()
}

fn quantity_summary(kind: &str, rows: &[&AuditRow]) -> QuantitySummary {
    let n = rows.len();
    let nf = n.max(1) as f64;
    let abs_z: Vec<f64> = rows.iter().map(|r| r.z_bias.abs()).collect();
    let ratio: Vec<f64> = rows.iter().map(|r| r.sd_ratio).collect();
    let (fold_max, fold_min) = (
        |v: &[f64]| v.iter().copied().fold(f64::NAN, f64::max),
        |v: &[f64]| v.iter().copied().fold(f64::NAN, f64::min),
    );
    QuantitySummary {
        kind: kind.to_owned(),
        n,
        median_abs_z_bias: median(abs_z.clone()),
        worst_abs_z_bias: fold_max(&abs_z),
        frac_abs_z_bias_below_0_2: abs_z.iter().filter(|&&z| z < 0.2).count() as f64 / nf,
        median_sd_ratio: median(ratio.clone()),
        min_sd_ratio: fold_min(&ratio),
        max_sd_ratio: fold_max(&ratio),
        frac_sd_ratio_within_0_8_1_2: ratio.iter().filter(|&&r| (0.8..=1.2).contains(&r)).count()
            as f64
            / nf,
    }
}

/// Summarises audits: agreement (median and worst `|z_bias|`, median `sd_ratio`), convergence
/// (regions with R-hat above [`RHAT_THRESHOLD`], divergences) and cost.
///
/// Rows with a non-finite `z_bias` or `sd_ratio` (a quantity with zero posterior spread) are
/// left out of the agreement figures.
pub fn summarize(audits: &[RegionAudit]) -> AuditSummary {
    let mut headline: Vec<(&RegionAudit, &AuditRow)> = Vec::new();
    let kinds = ["a", "b", "beta", "u", "w", "k", "delta"];
    let mut per_kind: Vec<Vec<&AuditRow>> = vec![Vec::new(); kinds.len()];
    for a in audits {
        for r in a.rows.iter().filter(|r| usable(r)) {
            let k = kind(&r.name);
            if let Some(i) = kinds.iter().position(|&x| x == k) {
                per_kind[i].push(r);
            }
            if k != "w" {
                headline.push((a, r));
            }
        }
    }
    let worst = headline
        .iter()
        .max_by(|x, y| x.1.z_bias.abs().total_cmp(&y.1.z_bias.abs()));
    AuditSummary {
        n_regions: audits.len(),
        n_rows: headline.len(),
        median_abs_z_bias: median(headline.iter().map(|(_, r)| r.z_bias.abs()).collect()),
        worst_abs_z_bias: worst.map_or(f64::NAN, |(_, r)| r.z_bias.abs()),
        worst_region: worst.map_or_else(String::new, |(a, _)| a.region_id.clone()),
        worst_quantity: worst.map_or_else(String::new, |(_, r)| r.name.clone()),
        median_sd_ratio: median(headline.iter().map(|(_, r)| r.sd_ratio).collect()),
        rhat_threshold: RHAT_THRESHOLD,
        regions_rhat_above: audits
            .iter()
            .filter(|a| a.max_rhat.is_nan() || a.max_rhat > RHAT_THRESHOLD)
            .count(),
        total_divergences: audits.iter().map(|a| a.divergences).sum(),
        regions_with_divergences: audits.iter().filter(|a| a.divergences > 0).count(),
        median_seconds: median(audits.iter().map(|a| a.seconds).collect()),
        total_seconds: audits.iter().map(|a| a.seconds).sum(),
        by_quantity: kinds
            .iter()
            .zip(&per_kind)
            .filter(|(_, rows)| !rows.is_empty())
            .map(|(k, rows)| quantity_summary(k, rows))
            .collect(),
        verdict: verdict_summary(audits),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use methvb_model::Family;

    fn row(name: &str, z: f64, ratio: f64) -> AuditRow {
        AuditRow {
            name: name.to_owned(),
            vb_mean: 0.0,
            vb_sd: ratio,
            mcmc_mean: -z,
            mcmc_sd: 1.0,
            rhat: 1.0,
            ess_bulk: 1000.0,
            ess_tail: 1000.0,
            mcse_mean: 0.03,
            mcse_sd: 0.02,
            z_bias: z,
            sd_ratio: ratio,
            vb_prob_dm: None,
            mcmc_prob_dm: None,
        }
    }

    fn audit(id: &str, rows: Vec<AuditRow>, rhat: f64, div: u64, secs: f64) -> RegionAudit {
        RegionAudit {
            region_id: id.to_owned(),
            family: Family::Structured,
            vb_reliable: id != "r2",
            weight_ess: 3000.0,
            target: crate::AuditTarget::WideReweighted,
            n_sites: 3,
            n_groups: 2,
            rows,
            max_rhat: rhat,
            min_ess_bulk: 500.0,
            min_ess_tail: 400.0,
            divergences: div,
            max_depth_hits: 0,
            grad_evals: 0,
            k_rejections: 0,
            step_size: 0.3,
            chains: 4,
            draws: 1000,
            seconds: secs,
        }
    }

    #[test]
    fn summary_pools_rows_and_counts_flags() {
        let audits = vec![
            audit(
                "r1",
                vec![
                    row("a", 0.1, 1.0),
                    row("b_1", -0.3, 0.9),
                    row("w", 5.0, 0.2),
                    row("k", 0.05, 1.1),
                    row("delta_1", 0.2, 0.7),
                ],
                1.002,
                0,
                1.0,
            ),
            audit(
                "r2",
                vec![row("a", -0.6, 0.95), row("k", f64::NAN, 1.0)],
                1.05,
                3,
                3.0,
            ),
            audit("r3", vec![], f64::NAN, 1, 2.0),
        ];
        let s = summarize(&audits);
        assert_eq!(s.n_regions, 3);
        // Headline rows: r1 a, b_1, k, delta_1 and r2 a (w and the NaN row excluded).
        assert_eq!(s.n_rows, 5);
        // |z| = 0.1, 0.3, 0.05, 0.2, 0.6 -> median 0.2; worst 0.6 in r2 / a.
        assert!((s.median_abs_z_bias - 0.2).abs() < 1e-12);
        assert!((s.worst_abs_z_bias - 0.6).abs() < 1e-12);
        assert_eq!(
            (s.worst_region.as_str(), s.worst_quantity.as_str()),
            ("r2", "a")
        );
        // Ratios 1.0, 0.9, 1.1, 0.7, 0.95 -> median 0.95.
        assert!((s.median_sd_ratio - 0.95).abs() < 1e-12);
        assert_eq!(s.regions_rhat_above, 2);
        assert_eq!(s.total_divergences, 4);
        assert_eq!(s.regions_with_divergences, 2);
        assert_eq!(s.median_seconds, 2.0);
        assert_eq!(s.total_seconds, 6.0);
        let kinds: Vec<&str> = s.by_quantity.iter().map(|q| q.kind.as_str()).collect();
        assert_eq!(kinds, ["a", "b", "w", "k", "delta"]);
        let a = &s.by_quantity[0];
        assert_eq!(a.n, 2);
        assert!((a.median_abs_z_bias - 0.35).abs() < 1e-12);
        assert_eq!(a.frac_abs_z_bias_below_0_2, 0.5);
        assert_eq!(a.frac_sd_ratio_within_0_8_1_2, 1.0);
        assert_eq!(s.by_quantity[2].min_sd_ratio, 0.2);
        // Only r1 has a delta row (|z| 0.2, no prob_dm: counted as off, and r1 is reliable).
        assert_eq!(s.verdict.n_regions, 1);
        assert_eq!(s.verdict.frac_delta_z_within_0_3, 1.0);
        assert_eq!(s.verdict.regions_off, 1);
        assert_eq!(s.verdict.missed, ["r1"]);
        assert_eq!(s.verdict.regions_flagged, 1);
    }

    #[test]
    fn verdict_counts_regions_off_and_flagged() {
        let d = |id: &str, z: f64, vb: f64, mc: f64| {
            let mut r = row("delta_1", z, 1.0);
            r.vb_prob_dm = Some(vb);
            r.mcmc_prob_dm = Some(mc);
            audit(id, vec![r], 1.0, 0, 1.0)
        };
        // r1 agrees; r2 (flagged) is off in z; r3 is off in prob_dm and reliable.
        let audits = vec![
            d("r1", 0.1, 0.5, 0.52),
            d("r2", 0.8, 0.5, 0.5),
            d("r3", 0.2, 0.9, 0.7),
        ];
        let v = summarize(&audits).verdict;
        assert_eq!(v.n_regions, 3);
        assert!((v.frac_delta_z_within_0_3 - 2.0 / 3.0).abs() < 1e-12);
        assert!((v.frac_prob_dm_within_0_05 - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!((v.regions_off, v.regions_off_flagged), (2, 1));
        assert_eq!(v.missed, ["r3"]);
    }

    #[test]
    fn empty_summary_is_nan_not_panic() {
        let s = summarize(&[]);
        assert_eq!(s.n_regions, 0);
        assert!(s.median_abs_z_bias.is_nan());
        assert!(s.worst_abs_z_bias.is_nan());
        assert!(s.by_quantity.is_empty());
    }
}
