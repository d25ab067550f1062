//! Per-region fit and posterior summaries (MODEL.md, "What is reported per region"), PSIS
//! reliability check with refits, and the region-level Bayesian FDR call rule.

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

use crate::Theta;
use crate::error::ModelError;
use crate::likelihood::{RegionData, ZLayout, log_joint, logistic};
use crate::psis::{khat_threshold, psis_khat};
use crate::vb::{Family, GaussianQ, VbFit, VbOptions, fit_vb, region_seed};

/// Options of [`fit_region`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FitOptions {
    /// Optimiser options (family, iteration cap, tolerances, step size).
    pub vb: VbOptions,
    /// Draws of q used for the summaries (MODEL.md default 1000).
    pub n_draws: u32,
    /// Draws of q used for PSIS k-hat (each costs one log-joint evaluation).
    pub n_psis_draws: u32,
    /// Effect-size threshold `delta0` of `P(|delta| > delta0)`.
    pub delta0: f64,
    /// Maximum number of refit rungs for regions whose k-hat exceeds the threshold.
    pub max_refit: u8,
}

impl Default for FitOptions {
    fn default() -> Self {
        Self {
            vb: VbOptions::default(),
            n_draws: 1000,
            n_psis_draws: 400,
            delta0: 0.1,
            max_refit: 2,
        }
    }
}

/// Mean, standard deviation and central 95% interval of a scalar posterior quantity.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PosteriorSummary {
    /// Posterior mean.
    pub mean: f64,
    /// Posterior standard deviation.
    pub sd: f64,
    /// 2.5% quantile.
    pub q025: f64,
    /// 97.5% quantile.
    pub q975: f64,
}

/// Summary of `delta_g = theta_g - theta_0` for one group `g >= 1`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DeltaSummary {
    /// Group `g` compared with the reference group 0.
    pub group: usize,
    /// Mean, sd and 95% interval of `delta_g`.
    pub summary: PosteriorSummary,
    /// `P(|delta_g| > delta0)`.
    pub prob_dm: f64,
    /// Local false sign rate `min(P(delta_g >= 0), P(delta_g <= 0))`.
    pub lfsr: f64,
}

/// Everything reported for one region.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegionFit {
    /// Family of the q the summaries come from (a refit may switch mean-field to structured).
    pub family: Family,
    /// `theta_g = mean_j logistic(a + b_g + exp(w) v_j)` per group `g = 0..G`.
    pub theta: Vec<PosteriorSummary>,
    /// `delta_g` for `g = 1..G` (empty when `G = 1`).
    pub delta: Vec<DeltaSummary>,
    /// Region-level `P(max_g |delta_g| > delta0)` (equals `delta[0].prob_dm` when `G = 2`; 0
    /// when `G = 1`).
    pub prob_dm: f64,
    /// Posterior error probability `1 - prob_dm`.
    pub pep: f64,
    /// Posterior mean of the dispersion `phi = 1 / (1 + kappa)`.
    pub phi_mean: f64,
    /// Posterior sd of `phi`.
    pub phi_sd: f64,
    /// Mean of q over `z = (a, b_1..b_{G-1}, w, k, v_1..v_J)`.
    pub mu: Vec<f64>,
    /// Marginal sd of q for every coordinate of `z`.
    pub sd: Vec<f64>,
    /// Covariance of q over the block `(a, b, w, k)`, `(G+2) x (G+2)` row-major (diagonal for
    /// mean-field); site effects are independent under q with variances `sd[G+2..]^2`.
    pub cov_block: Vec<f64>,
    /// Final smoothed ELBO (excludes the data constant `sum log C(n, m)`).
    pub elbo: f64,
    /// Iterations of the optimiser run whose q is reported.
    pub iterations: u32,
    /// Whether that run met the convergence rule.
    pub converged: bool,
    /// PSIS k-hat of q against the exact posterior.
    pub khat: f64,
    /// Threshold used for `khat` (depends on the number of PSIS draws).
    pub khat_threshold: f64,
    /// `khat <= khat_threshold`.
    pub reliable: bool,
    /// Refit rungs used (0 = the first fit was reported as is).
    pub refit: u8,
}

fn summarise(x: &mut [f64]) -> PosteriorSummary {
    let n = x.len() as f64;
    let mean = x.iter().sum::<f64>() / n;
    let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n - 1.0).max(1.0);
    PosteriorSummary {
        mean,
        sd: var.sqrt(),
        q025: quantile(x, 0.025),
        q975: quantile(x, 0.975),
    }
}

/// Linear-interpolation quantile (R type 7), by selection rather than sorting (`x` is
/// reordered): the two order statistics it needs are the `lo`-th element and the smallest
/// one above it.
fn quantile(x: &mut [f64], p: f64) -> f64 {
    let h = (x.len() - 1) as f64 * p;
    let lo = h.floor() as usize;
    let (_, x_lo, above) = x.select_nth_unstable_by(lo, f64::total_cmp);
    let x_lo = *x_lo;
    let x_hi = above.iter().copied().min_by(f64::total_cmp).unwrap_or(x_lo);
    x_lo + (h - lo as f64) * (x_hi - x_lo)
}

/// PSIS k-hat of q for this region from `n` draws.
fn khat_of(data: &RegionData, theta: &Theta, q: &GaussianQ, n: usize, rng: &mut StdRng) -> f64 {
    let d = q.dim;
    let mut eps = vec![0.0; d];
    let mut z = vec![0.0; d];
    let mut lw = Vec::with_capacity(n);
    let sd: Vec<f64> = q.log_sd().iter().map(|l| l.exp()).collect();
    for _ in 0..n {
        for e in eps.iter_mut() {
            *e = rng.sample(StandardNormal);
        }
        q.transform_sd(&sd, &eps, &mut z);
        lw.push(log_joint(data, theta, &z) - q.ln_q_at_eps(&eps));
    }
    let mut buf = Vec::new();
    psis_khat(&mut lw, &mut buf)
}

/// Summaries from `opts.n_draws` draws of q.
fn summaries(
    data: &RegionData,
    q: &GaussianQ,
    delta0: f64,
    n_draws: usize,
    rng: &mut StdRng,
) -> (Vec<PosteriorSummary>, Vec<DeltaSummary>, f64, f64, f64) {
    let lay = data.layout();
    let (g_n, j_n) = (data.n_groups, data.n_sites);
    let d = lay.dim();
    let s = n_draws.max(2);
    let mut eps = vec![0.0; d];
    let mut z = vec![0.0; d];
    let mut th = vec![0.0; g_n * s];
    let mut phi = vec![0.0; s];
    let mut any_dm = 0usize;
    let mut site_neg_exp = vec![0.0; j_n];
    let sd: Vec<f64> = q.log_sd().iter().map(|l| l.exp()).collect();
    for t in 0..s {
        for e in eps.iter_mut() {
            *e = rng.sample(StandardNormal);
        }
        q.transform_sd(&sd, &eps, &mut z);
        let a = z[ZLayout::A];
        let ew = z[lay.w()].exp();
        // logistic(x_j + b_g) = 1 / (1 + e^(-x_j) e^(-b_g)): one exp per site and one per
        // group instead of one per (site, group). Arguments clamped to +-700 keep both
        // factors finite and non-zero, so the product is never 0 * inf.
        let neg_exp = |x: f64| (-x.clamp(-700.0, 700.0)).exp();
        for (j, e) in site_neg_exp.iter_mut().enumerate() {
            *e = neg_exp(a + ew * z[lay.v(j)]);
        }
        for g in 0..g_n {
            let b = if g == 0 { 0.0 } else { z[lay.b(g)] };
            th[g * s + t] = if j_n > 0 {
                let eb = neg_exp(b);
                site_neg_exp
                    .iter()
                    .map(|e| 1.0 / (1.0 + e * eb))
                    .sum::<f64>()
                    / j_n as f64
            } else {
                logistic(a + b)
            };
        }
        if (1..g_n).any(|g| (th[g * s + t] - th[t]).abs() > delta0) {
            any_dm += 1;
        }
        phi[t] = logistic(-z[lay.k()]);
    }
    let mut deltas = Vec::with_capacity(g_n.saturating_sub(1));
    let mut col = vec![0.0; s];
    for g in 1..g_n {
        let (mut dm, mut pos, mut neg) = (0usize, 0usize, 0usize);
        for t in 0..s {
            let dv = th[g * s + t] - th[t];
            col[t] = dv;
            dm += usize::from(dv.abs() > delta0);
            pos += usize::from(dv >= 0.0);
            neg += usize::from(dv <= 0.0);
        }
        let sn = s as f64;
        deltas.push(DeltaSummary {
            group: g,
            summary: summarise(&mut col),
            prob_dm: dm as f64 / sn,
            lfsr: (pos.min(neg)) as f64 / sn,
        });
    }
    let thetas = (0..g_n)
        .map(|g| summarise(&mut th[g * s..(g + 1) * s]))
        .collect();
    let ps = summarise(&mut phi);
    let prob_dm = if g_n > 1 {
        any_dm as f64 / s as f64
    } else {
        0.0
    };
    (thetas, deltas, prob_dm, ps.mean, ps.sd)
}

/// Fits one region: VB fit, PSIS k-hat check, refits of unreliable fits, summaries.
///
/// The random stream is `StdRng::seed_from_u64(region_seed(seed, region_id))`, so the result
/// depends only on the inputs, not on the thread that runs it. Refit rungs (up to
/// `opts.max_refit`, only while k-hat exceeds its threshold): each moves to the next larger
/// family (mean-field -> structured -> coupled), warm-starts from the previous q with a
/// quartered tolerance and a halved step size, and doubles the PSIS draws; the last rung's q
/// is reported. Longer runs and more Monte Carlo draws per step were tried as rungs: they cost
/// 4x more and flagged as many regions (docs/model.md, "PSIS k-hat in practice").
///
/// # Errors
/// [`ModelError`] if `data` or `theta` is invalid.
pub fn fit_region(
    data: &RegionData,
    theta: &Theta,
    opts: &FitOptions,
    seed: u64,
    region_id: &str,
) -> Result<RegionFit, ModelError> {
    data.validate()?;
    theta.validate()?;
    if opts.delta0.is_nan() || opts.delta0 < 0.0 || opts.n_draws < 2 || opts.n_psis_draws < 25 {
        return Err(ModelError::Options(
            "need delta0 >= 0, n_draws >= 2, n_psis_draws >= 25".into(),
        ));
    }
    let mut rng = StdRng::seed_from_u64(region_seed(seed, region_id));
    let mut vb = opts.vb.clone();
    let mut n_psis = opts.n_psis_draws as usize;
    let first = fit_vb(data, theta, &vb, None, &mut rng);
    let k0 = khat_of(data, theta, &first.q, n_psis, &mut rng);
    let mut cur: (VbFit, f64, f64) = (first, k0, khat_threshold(n_psis));
    let mut rung = 0u8;
    while (cur.1.is_nan() || cur.1 > cur.2) && rung < opts.max_refit {
        rung += 1;
        vb.family = match vb.family {
            Family::MeanField => Family::Structured,
            Family::Structured | Family::Coupled => Family::Coupled,
        };
        vb.rel_tol *= 0.25;
        vb.lr *= 0.5;
        n_psis *= 2;
        let fit = fit_vb(data, theta, &vb, Some(&cur.0.q), &mut rng);
        let k = khat_of(data, theta, &fit.q, n_psis, &mut rng);
        // The latest (largest family, longest run) rung is reported, not the best k-hat, so
        // that k-hat is not biased low by selecting the minimum of noisy estimates.
        cur = (fit, k, khat_threshold(n_psis));
    }
    let (fit, khat, thr) = cur;
    let (theta_s, delta, prob_dm, phi_mean, phi_sd) =
        summaries(data, &fit.q, opts.delta0, opts.n_draws as usize, &mut rng);
    Ok(RegionFit {
        family: fit.q.family,
        theta: theta_s,
        delta,
        prob_dm,
        pep: 1.0 - prob_dm,
        phi_mean,
        phi_sd,
        mu: fit.q.mu().to_vec(),
        sd: fit.q.marginal_sd(),
        cov_block: fit.q.covariance_block(),
        elbo: fit.elbo,
        iterations: fit.iterations,
        converged: fit.converged,
        khat,
        khat_threshold: thr,
        reliable: khat <= thr,
        refit: rung,
    })
}

/// Region-level Bayesian FDR control: calls the largest set of regions, taken in ascending
/// order of PEP, whose mean PEP is `<= target`.
///
/// Ties are kept together (regions with equal PEP are all called or none are), so the result
/// does not depend on input order; NaN PEPs are never called.
///
/// # Examples
/// ```
/// let calls = methvb_model::call_by_pep(&[0.01, 0.5, 0.02, 0.09], 0.05);
/// assert_eq!(calls, vec![true, false, true, true]);
/// ```
pub fn call_by_pep(pep: &[f64], target: f64) -> Vec<bool> {
    let mut idx: Vec<usize> = (0..pep.len()).filter(|&i| !pep[i].is_nan()).collect();
    idx.sort_by(|&i, &j| pep[i].total_cmp(&pep[j]).then(i.cmp(&j)));
    let mut calls = vec![false; pep.len()];
    let mut sum = 0.0;
    let mut accepted = 0usize;
    let mut i = 0;
    while i < idx.len() {
        // The tie group [i, e).
        let mut e = i + 1;
        while e < idx.len() && pep[idx[e]] == pep[idx[i]] {
            e += 1;
        }
        let group_sum: f64 = idx[i..e].iter().map(|&t| pep[t]).sum();
        if (sum + group_sum) / e as f64 > target {
            break;
        }
        sum += group_sum;
        accepted = e;
        i = e;
    }
    for &t in &idx[..accepted] {
        calls[t] = true;
    }
    calls
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_by_pep_prefix_and_ties() {
        assert_eq!(call_by_pep(&[], 0.05), Vec::<bool>::new());
        assert_eq!(call_by_pep(&[0.2, 0.3], 0.05), vec![false, false]);
        // Mean of {0, 0.04, 0.1} = 0.0467 <= 0.05; adding 0.12 gives 0.065.
        assert_eq!(
            call_by_pep(&[0.12, 0.0, 0.1, 0.04], 0.05),
            vec![false, true, true, true]
        );
        // A tie that would straddle the bound is excluded as a whole.
        assert_eq!(
            call_by_pep(&[0.0, 0.08, 0.08], 0.05),
            vec![true, false, false]
        );
        assert_eq!(
            call_by_pep(&[0.0, 0.0, 0.12, 0.12], 0.05),
            vec![true, true, false, false]
        );
        assert_eq!(call_by_pep(&[0.0, 0.0, 0.08, 0.08], 0.05), vec![true; 4]);
        assert_eq!(call_by_pep(&[f64::NAN, 0.01], 0.05), vec![false, true]);
    }

    #[test]
    fn quantiles_follow_type7() {
        let mut x = [4.0, 1.0, 5.0, 3.0, 2.0];
        assert_eq!(quantile(&mut x, 0.5), 3.0);
        assert!((quantile(&mut x, 0.025) - 1.1).abs() < 1e-12);
        assert!((quantile(&mut x, 0.975) - 4.9).abs() < 1e-12);
        assert_eq!(quantile(&mut x, 1.0), 5.0);
        assert_eq!(quantile(&mut x, 0.0), 1.0);
        assert_eq!(quantile(&mut [7.0], 0.975), 7.0);
        // Against sorting, on draws with ties.
        let mut y: Vec<f64> = (0..1000)
            .map(|i| f64::from((i * 7919) % 613) / 7.0)
            .collect();
        let mut sorted = y.clone();
        sorted.sort_by(f64::total_cmp);
        for p in [0.025, 0.5, 0.975] {
            let h: f64 = 999.0 * p;
            let lo = h.floor() as usize;
            let want = sorted[lo] + (h - lo as f64) * (sorted[lo + 1] - sorted[lo]);
            assert_eq!(quantile(&mut y, p), want, "p = {p}");
        }
    }
}
