//! R-hat and ESS against known values (independent draws, AR(1) chains with known ESS, chains
//! that disagree) and against ArviZ on fixed draws.

use methvb_mcmc::diagnostics::{ess_bulk, ess_mean, ess_sd, ess_tail, mcse_mean, mcse_sd, rhat};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use rand_distr::StandardNormal;

/// `chains` chains of `n` draws of a Gaussian AR(1) with coefficient `rho`, stationary N(0, 1)
/// (first draw from the stationary law), chain-major.
fn ar1_gaussian(seed: u64, chains: usize, n: usize, rho: f64) -> Vec<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    let innov_sd = (1.0 - rho * rho).sqrt();
    let mut x = Vec::with_capacity(chains * n);
    for _ in 0..chains {
        let mut prev: f64 = rng.sample(StandardNormal);
        x.push(prev);
        for _ in 1..n {
            let e: f64 = rng.sample(StandardNormal);
            prev = rho * prev + innov_sd * e;
            x.push(prev);
        }
    }
    x
}

#[test]
fn independent_draws_have_rhat_one_and_ess_n() {
    let (chains, n) = (4, 1000);
    let total = (chains * n) as f64;
    for seed in 0..3 {
        let x = ar1_gaussian(seed, chains, n, 0.0);
        let r = rhat(&x, chains);
        let (b, t) = (ess_bulk(&x, chains), ess_tail(&x, chains));
        println!("iid seed {seed}: rhat {r:.4} ess_bulk {b:.0} ess_tail {t:.0} of {total}");
        assert!((0.995..1.01).contains(&r), "rhat {r}");
        assert!((0.85 * total..1.2 * total).contains(&b), "bulk {b}");
        assert!((0.8 * total..1.25 * total).contains(&t), "tail {t}");
    }
}

#[test]
fn ar1_bulk_ess_matches_theory() {
    // ESS of a stationary AR(1) mean: n (1 - rho) / (1 + rho).
    let (chains, n) = (4, 4000);
    for (seed, rho) in [(10, 0.5), (11, 0.8), (12, -0.3)] {
        let x = ar1_gaussian(seed, chains, n, rho);
        let want = (chains * n) as f64 * (1.0 - rho) / (1.0 + rho);
        let (b, m) = (ess_bulk(&x, chains), ess_mean(&x, chains));
        let t = ess_tail(&x, chains);
        let r = rhat(&x, chains);
        println!("AR(1) rho {rho}: ess_bulk {b:.0} ess_mean {m:.0} theory {want:.0} tail {t:.0}");
        // Estimation noise of the ESS is about 5-10% at these sizes.
        assert!((b / want - 1.0).abs() < 0.15, "bulk {b} vs {want}");
        assert!((m / want - 1.0).abs() < 0.15, "mean {m} vs {want}");
        assert!(r < 1.01, "rhat {r}");
        if rho > 0.0 {
            // Indicators of a Gaussian AR(1) are less autocorrelated than the chain itself.
            assert!(t > 0.85 * want && t < (chains * n) as f64, "tail {t}");
        }
    }
}

#[test]
fn shifted_chains_give_large_rhat() {
    let (chains, n) = (4, 500);
    let mut x = ar1_gaussian(20, chains, n, 0.2);
    for v in &mut x[3 * n..] {
        *v += 3.0;
    }
    let r = rhat(&x, chains);
    println!("one chain shifted by 3 sd: rhat {r:.3}");
    assert!(r > 1.3, "rhat {r}");
    // A drift inside every chain is caught by splitting.
    let mut y = ar1_gaussian(21, chains, n, 0.2);
    for c in 0..chains {
        for t in 0..n {
            y[c * n + t] += 6.0 * t as f64 / n as f64;
        }
    }
    let r = rhat(&y, chains);
    println!("linear drift of 6 sd within chains: rhat {r:.3}");
    assert!(r > 1.3, "rhat {r}");
}

#[test]
fn chains_with_different_scales_are_caught_by_folding() {
    // Same mean, sd 1 vs 3: the bulk R-hat misses it, the folded (tail) R-hat does not.
    let (chains, n) = (4, 1000);
    let mut x = ar1_gaussian(30, chains, n, 0.0);
    for v in &mut x[2 * n..] {
        *v *= 3.0;
    }
    let r = rhat(&x, chains);
    println!("two chains with 3x sd: rank-normalised rhat {r:.3}");
    assert!(r > 1.1, "rhat {r}");
}

/// SplitMix64 stream of uniforms in [0, 1) (53-bit), as in the ArviZ script below.
fn uniforms(seed: u64, n: usize) -> Vec<f64> {
    let mut state = seed;
    (0..n)
        .map(|_| {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            (z >> 11) as f64 * 2f64.powi(-53)
        })
        .collect()
}

/// AR(1) with uniform (optionally cubed) innovations, per-chain shifts and optional rounding to
/// one decimal (ties), exactly as `ar1` in the ArviZ script.
fn ar1_fixed(seed: u64, n: usize, rho: f64, shift: &[f64], cube: bool, round1: bool) -> Vec<f64> {
    let chains = shift.len();
    let u = uniforms(seed, chains * n);
    let mut x = Vec::with_capacity(chains * n);
    for (c, s) in shift.iter().enumerate() {
        let mut prev = 0.0;
        for t in 0..n {
            let mut e = u[c * n + t] - 0.5;
            if cube {
                e = e * e * e * 8.0;
            }
            prev = rho * prev + e;
            let mut v = prev + s;
            if round1 {
                v = (v * 10.0 + 0.5).floor() / 10.0;
            }
            x.push(v);
        }
    }
    x
}

/// Reference values computed once with ArviZ 0.20.0 (numpy 2.4.6, scipy 1.17.1) by this script
/// (`az.rhat(x, method="rank")`, `az.ess(x, method=...)`, `x` of shape (chain, draw)):
///
/// ```python
/// import math
/// import numpy as np, arviz as az
/// M = (1 << 64) - 1
/// def splitmix(state):
///     state = (state + 0x9E3779B97F4A7C15) & M
///     z = state
///     z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M
///     z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M
///     return state, z ^ (z >> 31)
/// def uniforms(seed, n):
///     s, out = seed, []
///     for _ in range(n):
///         s, z = splitmix(s)
///         out.append((z >> 11) * 2.0**-53)
///     return out
/// def ar1(seed, chains, n, rho, shift, cube, round1):
///     u = uniforms(seed, chains * n)
///     x = np.zeros((chains, n))
///     for c in range(chains):
///         prev = 0.0
///         for t in range(n):
///             e = u[c * n + t] - 0.5
///             if cube:
///                 e = e * e * e * 8.0
///             prev = rho * prev + e
///             v = prev + shift[c]
///             if round1:
///                 v = math.floor(v * 10.0 + 0.5) / 10.0
///             x[c, t] = v
///     return x
/// sets = {
///     "A": ar1(1, 4, 100, 0.7, [0.0, 0.0, 0.0, 0.5], False, False),
///     "B": ar1(2, 3, 51, 0.3, [0.0, 0.1, -0.1], True, True),
///     "C": ar1(3, 2, 200, 0.95, [0.0, 0.0], False, False),
/// }
/// for k, x in sets.items():
///     print(k, float(az.rhat(x, method="rank")), float(az.ess(x, method="bulk")),
///           float(az.ess(x, method="tail")), float(az.ess(x, method="mean")),
///           float(az.ess(x, method="sd")), float(az.mcse(x, method="mean")),
///           float(az.mcse(x, method="sd")))
/// ```
#[test]
fn matches_arviz_on_fixed_draws() {
    // (draws, chains, [rhat, ess_bulk, ess_tail, ess_mean, ess_sd, mcse_mean, mcse_sd]) from
    // the script above (printed with %.15g).
    let cases = [
        (
            ar1_fixed(1, 100, 0.7, &[0.0, 0.0, 0.0, 0.5], false, false),
            4,
            [
                1.28104188647801,
                12.8879863903493,
                68.1738433004161,
                12.2125976708281,
                12.2125976708281,
                0.135821448162029,
                0.0984321261085358,
            ],
        ),
        (
            // Odd chain length (middle draw dropped by splitting) and many ties.
            ar1_fixed(2, 51, 0.3, &[0.0, 0.1, -0.1], true, true),
            3,
            [
                1.0491046770874,
                85.5455585419515,
                94.1842511580031,
                96.6154809100684,
                96.6154809100684,
                0.0376206926894009,
                0.0266825693311363,
            ],
        ),
        (
            ar1_fixed(3, 200, 0.95, &[0.0, 0.0], false, false),
            2,
            [
                1.050761345335,
                33.9454879068413,
                96.1025012254947,
                32.9905853700193,
                32.4251011397876,
                0.113827163474278,
                0.0819284558094984,
            ],
        ),
    ];
    for (i, (x, chains, want)) in cases.iter().enumerate() {
        let got = [
            rhat(x, *chains),
            ess_bulk(x, *chains),
            ess_tail(x, *chains),
            ess_mean(x, *chains),
            ess_sd(x, *chains),
            mcse_mean(x, *chains),
            mcse_sd(x, *chains),
        ];
        println!("case {i}: {got:?}");
        for (g, want) in got.iter().zip(want) {
            assert!(
                (g - want).abs() < 1e-12 * want.abs().max(1.0),
                "case {i}: {g} vs ArviZ {want}"
            );
        }
    }
}
