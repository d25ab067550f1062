//! Pareto-smoothed importance sampling diagnostic k-hat (Yao et al. 2018; Vehtari et al. 2024),
//! with the generalized Pareto fit of Zhang & Stephens (2009) as implemented in the R package
//! `loo` (`gpdfit`, including its weakly informative prior adjustment of k).

/// Fit of a generalized Pareto distribution with location 0.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GpdFit {
    /// Shape `k` (positive: heavy tail).
    pub k: f64,
    /// Scale `sigma`.
    pub sigma: f64,
}

/// Zhang & Stephens (2009) empirical-Bayes estimate of the generalized Pareto parameters from
/// exceedances `x` (all `>= 0`), sorted ascending, with `loo`'s adjustment
/// `k <- (n k + 5) / (n + 10)`. Returns `None` for fewer than 5 points or a degenerate sample
/// (largest value not positive, or non-finite values).
pub fn gpd_fit(x: &[f64]) -> Option<GpdFit> {
    let n = x.len();
    if n < 5 {
        return None;
    }
    let xmax = x[n - 1];
    if xmax.is_nan() || xmax <= 0.0 || x.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let prior = 3.0;
    let m = 30 + (n as f64).sqrt().floor() as usize;
    // First quartile, `x[floor(n/4 + 0.5)]` in R's 1-based indexing.
    let q_idx = ((n as f64 / 4.0 + 0.5).floor() as usize).clamp(1, n) - 1;
    let mut xstar = x[q_idx];
    if xstar.is_nan() || xstar <= 0.0 {
        // Ties at zero: fall back to the smallest positive value (loo would divide by zero).
        xstar = x.iter().copied().find(|v| *v > 0.0).unwrap_or(xmax);
    }
    let mut thetas = Vec::with_capacity(m);
    let mut ls = Vec::with_capacity(m);
    for j in 1..=m {
        let th = 1.0 / xmax + (1.0 - (m as f64 / (j as f64 - 0.5)).sqrt()) / prior / xstar;
        let a = -th;
        let kk = x.iter().map(|&v| (a * v).ln_1p()).sum::<f64>() / n as f64;
        let l = n as f64 * ((a / kk).ln() - kk - 1.0);
        thetas.push(th);
        ls.push(if l.is_finite() { l } else { f64::NEG_INFINITY });
    }
    let lmax = ls.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !lmax.is_finite() {
        return None;
    }
    let wsum: f64 = ls.iter().map(|l| (l - lmax).exp()).sum();
    let theta_hat: f64 = thetas
        .iter()
        .zip(&ls)
        .map(|(t, l)| t * (l - lmax).exp())
        .sum::<f64>()
        / wsum;
    let k = x.iter().map(|&v| (-theta_hat * v).ln_1p()).sum::<f64>() / n as f64;
    let sigma = -k / theta_hat;
    let k = (n as f64 * k + 10.0 * 0.5) / (n as f64 + 10.0);
    if !k.is_finite() {
        return None;
    }
    Some(GpdFit { k, sigma })
}

/// Tail length used for `s` importance ratios: `ceil(min(s / 5, 3 sqrt(s)))`.
pub fn tail_length(s: usize) -> usize {
    let s = s as f64;
    (s / 5.0).min(3.0 * s.sqrt()).ceil() as usize
}

/// k-hat threshold for `s` draws: `min(1 - 1 / log10(s), 0.7)` (Vehtari et al. 2024).
pub fn khat_threshold(s: usize) -> f64 {
    (1.0 - 1.0 / (s as f64).log10()).min(0.7)
}

/// PSIS k-hat of log importance ratios `log_ratios` (sorted in place). All ratios equal (to 12
/// digits) means importance sampling is exact: reported as `-1.0`. Non-finite ratios (a draw
/// with zero target density) are ignored; fewer than 25 finite ratios gives `f64::INFINITY`.
pub fn psis_khat(log_ratios: &mut [f64], tail_buf: &mut Vec<f64>) -> f64 {
    log_ratios.sort_unstable_by(f64::total_cmp);
    let finite: &[f64] = {
        let lo = log_ratios
            .iter()
            .position(|v| v.is_finite())
            .unwrap_or(log_ratios.len());
        let hi = log_ratios
            .iter()
            .rposition(|v| v.is_finite())
            .map_or(lo, |h| h + 1);
        if log_ratios[..lo].iter().any(|v| v.is_nan()) || log_ratios[hi..].iter().any(|v| *v > 0.0)
        {
            // +inf or NaN ratios: the tail is infinitely heavy.
            return f64::INFINITY;
        }
        &log_ratios[lo..hi]
    };
    let s = finite.len();
    if s < 25 {
        return f64::INFINITY;
    }
    let m = tail_length(s);
    let max = finite[s - 1];
    let cutoff = finite[s - m - 1] - max;
    if cutoff > -1e-12 {
        return -1.0;
    }
    let ec = cutoff.exp();
    tail_buf.clear();
    tail_buf.extend(finite[s - m..].iter().map(|&v| (v - max).exp() - ec));
    gpd_fit(tail_buf).map_or(f64::INFINITY, |f| f.k)
}

/// Quantile function of the generalized Pareto distribution with location 0.
fn gpd_quantile(p: f64, fit: GpdFit) -> f64 {
    if fit.k.abs() < 1e-12 {
        -fit.sigma * (-p).ln_1p()
    } else {
        fit.sigma * ((-fit.k * (-p).ln_1p()).exp() - 1.0) / fit.k
    }
}

/// Pareto-smoothed importance weights (Vehtari et al. 2024): the largest
/// [`tail_length`]`(S)` ratios are replaced by the expected order statistics of the generalized
/// Pareto distribution fitted to them, then every ratio is truncated at the largest raw one.
/// `log_ratios` (any order, finite) is overwritten with the smoothed log weights, shifted so
/// that the largest is 0; `order` is scratch space. Returns k-hat (as [`psis_khat`]); when the
/// tail cannot be fitted the weights are left raw and k-hat is `f64::INFINITY`.
pub fn psis_smooth(log_ratios: &mut [f64], order: &mut Vec<usize>, tail_buf: &mut Vec<f64>) -> f64 {
    let s = log_ratios.len();
    if s < 25 || log_ratios.iter().any(|v| !v.is_finite()) {
        let max = log_ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        log_ratios.iter_mut().for_each(|v| *v -= max);
        return f64::INFINITY;
    }
    let max = log_ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    log_ratios.iter_mut().for_each(|v| *v -= max);
    order.clear();
    order.extend(0..s);
    // Only the cutoff and the tail above it need their ranks: a selection, then a sort of
    // the tail (a full sort of 1000 ratios was ~1.5% of a run).
    let m = tail_length(s);
    let by_ratio = |&i: &usize, &j: &usize| log_ratios[i].total_cmp(&log_ratios[j]);
    order.select_nth_unstable_by(s - m - 1, by_ratio);
    order[s - m..].sort_unstable_by(by_ratio);
    let cutoff = log_ratios[order[s - m - 1]];
    if cutoff > -1e-12 {
        return -1.0;
    }
    let ec = cutoff.exp();
    tail_buf.clear();
    tail_buf.extend(order[s - m..].iter().map(|&i| log_ratios[i].exp() - ec));
    let Some(fit) = gpd_fit(tail_buf) else {
        return f64::INFINITY;
    };
    for (rank, &i) in order[s - m..].iter().enumerate() {
        let p = (rank as f64 + 0.5) / m as f64;
        log_ratios[i] = (ec + gpd_quantile(p, fit)).ln().min(0.0);
    }
    fit.k
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};
    use rand_distr::StandardNormal;

    fn gpd_sample(k: f64, sigma: f64, n: usize, seed: u64) -> Vec<f64> {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut x: Vec<f64> = (0..n)
            .map(|_| {
                let u: f64 = rng.random();
                sigma * ((1.0 - u).powf(-k) - 1.0) / k
            })
            .collect();
        x.sort_by(f64::total_cmp);
        x
    }

    #[test]
    fn gpd_fit_recovers_known_shape() {
        // n = 2000 exceedances per sample: the sd of k-hat is about (1 + k) / sqrt(n) < 0.04.
        // Each fit within 0.2 (5 sd), the mean of 10 fits within 0.04 (3 sd of the mean).
        for (k, sigma) in [(0.3, 1.0), (0.7, 2.5), (-0.2, 1.0)] {
            let mut ks = Vec::new();
            for seed in 0..10 {
                let x = gpd_sample(k, sigma, 2000, 100 + seed);
                let fit = gpd_fit(&x).unwrap();
                assert!((fit.k - k).abs() < 0.2, "k={k}: got {}", fit.k);
                assert!(
                    (fit.sigma / sigma - 1.0).abs() < 0.25,
                    "sigma={sigma}: got {}",
                    fit.sigma
                );
                ks.push(fit.k);
            }
            let mean = ks.iter().sum::<f64>() / ks.len() as f64;
            assert!((mean - k).abs() < 0.04, "k={k}: mean over seeds {mean}");
        }
    }

    #[test]
    fn smoothing_keeps_the_body_and_tames_the_tail() {
        // q = N(0, 0.6^2) for p = N(0, 1): tail shape 1 - 0.36 = 0.64 (k-hat at S = 1000 is
        // lower: the asymptotic tail is not reached); the smoothed weights
        // must give a better estimate of E_p[x^2] = 1 than the raw ones over many replicates.
        let mut raw_err = 0.0;
        let mut smooth_err = 0.0;
        for seed in 0..40 {
            let mut rng = StdRng::seed_from_u64(1000 + seed);
            let x: Vec<f64> = (0..1000)
                .map(|_| 0.6 * rng.sample::<f64, _>(StandardNormal))
                .collect();
            let lw: Vec<f64> = x
                .iter()
                .map(|x| -0.5 * x * x + 0.5 * (x / 0.6).powi(2))
                .collect();
            let estimate = |lw: &[f64]| {
                let w: Vec<f64> = lw.iter().map(|l| l.exp()).collect();
                let t: f64 = w.iter().sum();
                w.iter().zip(&x).map(|(w, x)| w * x * x).sum::<f64>() / t
            };
            raw_err += (estimate(&lw) - 1.0).powi(2);
            let mut sm = lw.clone();
            let (mut order, mut buf) = (Vec::new(), Vec::new());
            let k = psis_smooth(&mut sm, &mut order, &mut buf);
            assert!(k > 0.1 && k < 1.2, "k-hat {k}");
            assert!(sm.iter().all(|v| *v <= 0.0));
            // The body below the tail is unchanged (up to the shift).
            let shift = lw.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let below = sm
                .iter()
                .zip(&lw)
                .filter(|(s, l)| (**s - (**l - shift)).abs() < 1e-12);
            assert!(below.count() >= 1000 - tail_length(1000));
            smooth_err += (estimate(&sm) - 1.0).powi(2);
        }
        assert!(smooth_err < raw_err, "{smooth_err} vs {raw_err}");
    }

    #[test]
    fn thresholds_and_tail_length() {
        assert!((khat_threshold(1000) - (1.0 - 1.0 / 3.0)).abs() < 1e-12);
        assert_eq!(khat_threshold(1_000_000), 0.7);
        assert_eq!(tail_length(400), 60);
        assert_eq!(tail_length(100), 20);
    }

    #[test]
    fn khat_of_exact_and_wider_proposals_is_small_and_narrow_is_large() {
        let mut rng = StdRng::seed_from_u64(3);
        let draws: Vec<f64> = (0..1000).map(|_| rng.sample(StandardNormal)).collect();
        let mut buf = Vec::new();
        // q = p exactly: ratios constant.
        let mut lw = vec![-0.75; 1000];
        assert_eq!(psis_khat(&mut lw, &mut buf), -1.0);
        // p = N(0, 1) evaluated by a different (but equal) formula: rounding-level noise only.
        let mut lw: Vec<f64> = draws
            .iter()
            .map(|x| (-(x * x) / 2.0).exp().ln() + 0.5 * x * x)
            .collect();
        assert!(psis_khat(&mut lw, &mut buf) < 0.5);
        // q = N(0, 1.2^2) wider than p = N(0, 1): bounded ratios, k-hat well below 0.5.
        let mut lw: Vec<f64> = draws
            .iter()
            .map(|e| {
                let x = 1.2 * e;
                -0.5 * x * x - (-0.5 * e * e - 1.2f64.ln())
            })
            .collect();
        let k = psis_khat(&mut lw, &mut buf);
        assert!(k < 0.3, "wider proposal k-hat {k}");
        // q = N(0, 0.5^2) much narrower than p = N(0, 1): true k = 1 - 0.25 = 0.75 (Yao et al.).
        let mut lw: Vec<f64> = draws
            .iter()
            .map(|e| {
                let x = 0.5 * e;
                -0.5 * x * x - (-0.5 * e * e - 0.5f64.ln())
            })
            .collect();
        let k = psis_khat(&mut lw, &mut buf);
        assert!(k > 0.55, "narrow proposal k-hat {k}");
    }
}
