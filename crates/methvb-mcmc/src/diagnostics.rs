//! Convergence diagnostics of Vehtari, Gelman, Simpson, Carpenter & Bürkner (2021), "Rank-
//! normalization, folding, and localization: an improved R-hat for assessing convergence of
//! MCMC", Bayesian Analysis 16(2): rank-normalised split R-hat and bulk / tail effective sample
//! sizes.
//!
//! The formulas follow the reference implementation in ArviZ 0.20 (`arviz.stats.diagnostics`:
//! `_rhat_rank`, `_ess_bulk`, `_ess_tail`, `_ess` with Geyer's initial positive and monotone
//! sequences), which the tests check against hard-coded ArviZ outputs:
//! - chains are split in halves (`n // 2` draws each; the middle draw of an odd-length chain is
//!   dropped);
//! - rank normalisation: average ranks `r` over all pooled draws, `z = Phi^-1((r - 3/8) / (N +
//!   1/4))`;
//! - R-hat = `max(R-hat(z(split x)), R-hat(z(split |x - median x|)))` with the classic split
//!   R-hat `sqrt((B/W + n - 1) / n)`;
//! - bulk ESS = ESS of `z(split x)`; tail ESS = min of the ESS of the indicators
//!   `x <= q_0.05` and `x <= q_0.95` (type-7 quantiles), split;
//! - ESS: biased autocovariances per chain (`1/n` normalisation, as ArviZ's FFT), combined
//!   across chains as in Stan, truncated by Geyer's initial positive sequence, made monotone,
//!   and `tau` bounded below by `1 / log10(m n)`.
//!
//! All functions take draws chain-major: `draws[c * n + t]` is draw `t` of chain `c`, all
//! chains of equal length `n = draws.len() / n_chains`.

use statrs::function::erf::erfc_inv;

/// R-hat and effective sample sizes of one scalar quantity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Diagnostics {
    /// Rank-normalised split R-hat (max of bulk and folded-tail R-hat).
    pub rhat: f64,
    /// Bulk effective sample size (rank-normalised, split chains).
    pub ess_bulk: f64,
    /// Tail effective sample size (min over the 5% and 95% quantile indicators).
    pub ess_tail: f64,
    /// Monte Carlo standard error of the posterior mean.
    pub mcse_mean: f64,
    /// Monte Carlo standard error of the posterior sd.
    pub mcse_sd: f64,
}

/// Computes [`Diagnostics`] (NaN where a quantity is undefined: fewer than 4 draws per chain,
/// no chain, non-finite draws, or a constant quantity for R-hat).
pub fn diagnose(draws: &[f64], n_chains: usize) -> Diagnostics {
    Diagnostics {
        rhat: rhat(draws, n_chains),
        ess_bulk: ess_bulk(draws, n_chains),
        ess_tail: ess_tail(draws, n_chains),
        mcse_mean: mcse_mean(draws, n_chains),
        mcse_sd: mcse_sd(draws, n_chains),
    }
}

/// Chain length, or `None` if the shape is unusable (as ArviZ's `_not_valid` with
/// `min_draws = 4`, `min_chains = 1`).
fn chain_len(draws: &[f64], n_chains: usize) -> Option<usize> {
    if n_chains == 0 || draws.is_empty() || !draws.len().is_multiple_of(n_chains) {
        return None;
    }
    let n = draws.len() / n_chains;
    if n < 4 || draws.iter().any(|x| !x.is_finite()) {
        return None;
    }
    Some(n)
}

/// Splits every chain into its first and last `n / 2` draws: returns `2 m` chains of `n / 2`.
fn split_chains(draws: &[f64], n_chains: usize, n: usize) -> Vec<f64> {
    let half = n / 2;
    let mut out = Vec::with_capacity(2 * n_chains * half);
    for c in 0..n_chains {
        let chain = &draws[c * n..(c + 1) * n];
        out.extend_from_slice(&chain[..half]);
        out.extend_from_slice(&chain[n - half..]);
    }
    out
}

/// Standard normal quantile `Phi^-1(p)` for `0 < p < 1`.
pub fn normal_quantile(p: f64) -> f64 {
    -std::f64::consts::SQRT_2 * erfc_inv(2.0 * p)
}

/// Rank normalisation in place: average ranks over all values (ties share their mean rank),
/// then `Phi^-1((r - 3/8) / (N - 2 * 3/8 + 1))` (Blom's offset, as ArviZ `_z_scale`).
fn z_scale(x: &mut [f64]) {
    let n = x.len();
    let mut idx: Vec<usize> = (0..n).collect();
    idx.sort_by(|&i, &j| x[i].total_cmp(&x[j]));
    let mut ranks = vec![0.0; n];
    let mut i = 0;
    while i < n {
        let mut e = i + 1;
        while e < n && x[idx[e]] == x[idx[i]] {
            e += 1;
        }
        // 1-based ranks i+1 ..= e share their mean.
        let r = (i + 1 + e) as f64 / 2.0;
        for &t in &idx[i..e] {
            ranks[t] = r;
        }
        i = e;
    }
    let c = 3.0 / 8.0;
    let denom = n as f64 - 2.0 * c + 1.0;
    for (v, r) in x.iter_mut().zip(&ranks) {
        *v = normal_quantile((r - c) / denom);
    }
}

/// Mean and sample variance (`ddof = 1`).
fn mean_var(x: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    let m = x.iter().sum::<f64>() / n;
    let v = x.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / (n - 1.0);
    (m, v)
}

/// Classic R-hat `sqrt((B/W + n - 1) / n)` of `m` chains of `n` draws (no splitting).
fn rhat_classic(draws: &[f64], m: usize) -> f64 {
    let n = draws.len() / m;
    let mut means = Vec::with_capacity(m);
    let mut w = 0.0;
    for c in 0..m {
        let (mu, v) = mean_var(&draws[c * n..(c + 1) * n]);
        means.push(mu);
        w += v;
    }
    w /= m as f64;
    let b = if m > 1 {
        n as f64 * mean_var(&means).1
    } else {
        0.0
    };
    let nf = n as f64;
    ((b / w + nf - 1.0) / nf).sqrt()
}

/// Median of `x` (average of the two middle values for even length).
fn median(x: &[f64]) -> f64 {
    let mut s = x.to_vec();
    s.sort_unstable_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        0.5 * (s[n / 2 - 1] + s[n / 2])
    }
}

/// Type-7 (linear interpolation) quantile of `x`.
fn quantile(x: &[f64], p: f64) -> f64 {
    let mut s = x.to_vec();
    s.sort_unstable_by(f64::total_cmp);
    let h = (s.len() - 1) as f64 * p;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(s.len() - 1);
    s[lo] + (h - lo as f64) * (s[hi] - s[lo])
}

/// Rank-normalised split R-hat: `max(R-hat of z(split x), R-hat of z(split |x - median|))`.
///
/// # Examples
/// ```
/// // Two chains stuck at different levels (ArviZ: 1.822).
/// let mut x: Vec<f64> = (0..100).map(|i| (i as f64 * 0.37).sin()).collect();
/// x.extend((0..100).map(|i| 5.0 + (i as f64 * 0.37).sin()));
/// assert!((methvb_mcmc::diagnostics::rhat(&x, 2) - 1.822).abs() < 1e-3);
/// ```
pub fn rhat(draws: &[f64], n_chains: usize) -> f64 {
    let Some(n) = chain_len(draws, n_chains) else {
        return f64::NAN;
    };
    let m2 = 2 * n_chains;
    let mut split = split_chains(draws, n_chains, n);
    let med = median(draws);
    let mut folded: Vec<f64> = split.iter().map(|x| (x - med).abs()).collect();
    z_scale(&mut split);
    z_scale(&mut folded);
    let bulk = rhat_classic(&split, m2);
    let tail = rhat_classic(&folded, m2);
    // NaN (constant quantity) propagates rather than being hidden by `max`.
    if bulk.is_nan() || tail.is_nan() {
        f64::NAN
    } else {
        bulk.max(tail)
    }
}

/// Bulk ESS: ESS of the rank-normalised split chains.
pub fn ess_bulk(draws: &[f64], n_chains: usize) -> f64 {
    let Some(n) = chain_len(draws, n_chains) else {
        return f64::NAN;
    };
    let mut split = split_chains(draws, n_chains, n);
    z_scale(&mut split);
    ess_raw(&split, 2 * n_chains)
}

/// Tail ESS: minimum of the ESS of the split indicators `x <= q_0.05` and `x <= q_0.95`.
pub fn ess_tail(draws: &[f64], n_chains: usize) -> f64 {
    let Some(n) = chain_len(draws, n_chains) else {
        return f64::NAN;
    };
    let split = split_chains(draws, n_chains, n);
    let mut ind = vec![0.0; split.len()];
    let mut out = f64::INFINITY;
    for p in [0.05, 0.95] {
        let q = quantile(draws, p);
        for (i, x) in ind.iter_mut().zip(&split) {
            *i = if *x <= q { 1.0 } else { 0.0 };
        }
        out = out.min(ess_raw(&ind, 2 * n_chains));
    }
    out
}

/// ESS of the plain split chains (no rank normalisation): the ESS that goes with the Monte
/// Carlo standard error of the mean, `mcse = sd / sqrt(ess_mean)` (ArviZ `method="mean"`).
pub fn ess_mean(draws: &[f64], n_chains: usize) -> f64 {
    let Some(n) = chain_len(draws, n_chains) else {
        return f64::NAN;
    };
    let split = split_chains(draws, n_chains, n);
    ess_raw(&split, 2 * n_chains)
}

/// ESS for the posterior sd: `min(ESS(split x), ESS(split x^2))` (ArviZ `method="sd"`; note
/// `x^2` is not centred, as in ArviZ).
pub fn ess_sd(draws: &[f64], n_chains: usize) -> f64 {
    let Some(n) = chain_len(draws, n_chains) else {
        return f64::NAN;
    };
    let split = split_chains(draws, n_chains, n);
    let sq: Vec<f64> = split.iter().map(|x| x * x).collect();
    ess_raw(&split, 2 * n_chains).min(ess_raw(&sq, 2 * n_chains))
}

/// Pooled sample sd (`ddof = 1`).
fn pooled_sd(draws: &[f64]) -> f64 {
    mean_var(draws).1.sqrt()
}

/// Monte Carlo standard error of the mean, `sd / sqrt(ess_mean)` (ArviZ `mcse`, `"mean"`).
pub fn mcse_mean(draws: &[f64], n_chains: usize) -> f64 {
    if chain_len(draws, n_chains).is_none() {
        return f64::NAN;
    }
    pooled_sd(draws) / ess_mean(draws, n_chains).sqrt()
}

/// Monte Carlo standard error of the sd, `sd * sqrt(e (1 - 1/ess)^(ess - 1) - 1)` with
/// `ess = ess_sd` (ArviZ `mcse`, `"sd"`; about `sd / sqrt(2 ess)` for large `ess`).
pub fn mcse_sd(draws: &[f64], n_chains: usize) -> f64 {
    if chain_len(draws, n_chains).is_none() {
        return f64::NAN;
    }
    let ess = ess_sd(draws, n_chains);
    let fac = (std::f64::consts::E * (1.0 - 1.0 / ess).powf(ess - 1.0) - 1.0).sqrt();
    pooled_sd(draws) * fac
}

/// Multi-chain ESS of `m` chains (chain-major), without splitting (ArviZ `_ess`).
fn ess_raw(draws: &[f64], m: usize) -> f64 {
    let n = draws.len() / m;
    let size = draws.len() as f64;
    let (lo, hi) = draws
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &x| {
            (l.min(x), h.max(x))
        });
    // numpy's float64 `resolution` (1e-15): a constant quantity has ESS = size.
    if hi - lo < 1e-15 {
        return size;
    }
    if n < 4 {
        return f64::NAN;
    }
    let nf = n as f64;
    // Centred chains and chain means.
    let mut centred = draws.to_vec();
    let mut means = Vec::with_capacity(m);
    for c in 0..m {
        let ch = &mut centred[c * n..(c + 1) * n];
        let mu = ch.iter().sum::<f64>() / nf;
        for x in ch.iter_mut() {
            *x -= mu;
        }
        means.push(mu);
    }
    // Mean over chains of the biased lag-t autocovariance (1/n normalisation).
    let acov = |t: usize| -> f64 {
        let mut s = 0.0;
        for c in 0..m {
            let ch = &centred[c * n..(c + 1) * n];
            s += ch[..n - t]
                .iter()
                .zip(&ch[t..])
                .map(|(a, b)| a * b)
                .sum::<f64>();
        }
        s / (nf * m as f64)
    };
    let acov0 = acov(0);
    let mean_var = acov0 * nf / (nf - 1.0);
    let mut var_plus = mean_var * (nf - 1.0) / nf;
    if m > 1 {
        var_plus += mean_var_of(&means);
    }
    let rho = |ac: f64| 1.0 - (mean_var - ac) / var_plus;
    let mut rho_t = vec![0.0; n];
    let mut even = 1.0;
    rho_t[0] = even;
    let mut odd = rho(acov(1));
    rho_t[1] = odd;
    // Geyer's initial positive sequence.
    let mut t: usize = 1;
    while t < n - 3 && even + odd > 0.0 {
        even = rho(acov(t + 1));
        odd = rho(acov(t + 2));
        if even + odd >= 0.0 {
            rho_t[t + 1] = even;
            rho_t[t + 2] = odd;
        }
        t += 2;
    }
    // max_t = t - 2 may be -1 (no iteration): keep signed arithmetic as in ArviZ.
    let max_t = t as isize - 2;
    let at = |i: isize| (i + 1) as usize; // index max_t + 1 >= 0
    if even > 0.0 {
        rho_t[at(max_t)] = even;
    }
    // Geyer's initial monotone sequence.
    let mut t: isize = 1;
    while t <= max_t - 2 {
        let u = t as usize;
        if rho_t[u + 1] + rho_t[u + 2] > rho_t[u - 1] + rho_t[u] {
            rho_t[u + 1] = (rho_t[u - 1] + rho_t[u]) / 2.0;
            rho_t[u + 2] = rho_t[u + 1];
        }
        t += 2;
    }
    let head: f64 = rho_t[..at(max_t)].iter().sum();
    let tau = (-1.0 + 2.0 * head + rho_t[at(max_t)]).max(1.0 / size.log10());
    if rho_t.iter().any(|r| r.is_nan()) {
        return f64::NAN;
    }
    size / tau
}

/// Sample variance (`ddof = 1`) of `x`.
fn mean_var_of(x: &[f64]) -> f64 {
    mean_var(x).1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn z_scale_averages_ties_and_is_symmetric() {
        let mut x = vec![3.0, 1.0, 2.0, 2.0];
        z_scale(&mut x);
        // Ranks 4, 1, 2.5, 2.5 of N = 4: p = (r - 3/8) / 4.25.
        assert!((x[0] - normal_quantile((4.0 - 0.375) / 4.25)).abs() < 1e-12);
        assert!((x[1] + x[0]).abs() < 1e-12, "symmetric: {x:?}");
        assert_eq!(x[2], x[3]);
        assert!(x[2].abs() < 1e-12);
    }

    #[test]
    fn normal_quantile_known_values() {
        assert!(normal_quantile(0.5).abs() < 1e-15);
        assert!((normal_quantile(0.975) - 1.959_963_984_540_054).abs() < 1e-12);
        assert!((normal_quantile(0.001) + 3.090_232_306_167_813_5).abs() < 1e-11);
    }

    #[test]
    fn split_drops_middle_draw_of_odd_chains() {
        let x = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0];
        assert_eq!(
            split_chains(&x, 2, 5),
            vec![1.0, 2.0, 4.0, 5.0, 6.0, 7.0, 9.0, 10.0]
        );
    }

    #[test]
    fn invalid_shapes_give_nan() {
        assert!(rhat(&[1.0, 2.0, 3.0], 1).is_nan());
        assert!(ess_bulk(&[1.0, 2.0, 3.0, 4.0, 5.0], 2).is_nan());
        assert!(ess_tail(&[], 1).is_nan());
        assert!(rhat(&[1.0, f64::NAN, 3.0, 4.0], 1).is_nan());
        assert!(rhat(&[1.0; 8], 1).is_nan());
        // A constant quantity has ESS equal to the number of draws (ArviZ convention).
        assert_eq!(ess_bulk(&[2.0; 16], 2), 16.0);
    }
}
