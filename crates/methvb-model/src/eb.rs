//! Empirical Bayes for the global hyperparameters `Theta` (MODEL.md, "Global hyperparameters"):
//! stochastic variational EM over minibatches of regions.
//!
//! Each step fits the local q's of one minibatch (rayon-parallel, warm-started from the
//! previous epoch), turns them into expected sufficient statistics (for the Gaussian parts
//! `E_q` and `E_q^2 + Var_q`; for the spike-and-slab prior of `b` the responsibilities of the
//! spike averaged over draws of q, with `b^2` weighted by them), and moves a running average of
//! those statistics toward the minibatch mean with a Robbins-Monro step. Theta is the
//! closed-form maximiser given the running statistics, with floors (see [`apply_floors`]).
//! Minibatch results are collected in order and reduced sequentially, so the result does not
//! depend on the number of threads.

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use rand_distr::StandardNormal;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::Theta;
use crate::error::ModelError;
use crate::likelihood::{RegionData, ZLayout, mixture_lp};
use crate::vb::{GaussianQ, VbOptions, fit_vb, region_seed, splitmix64};

/// Lower bound of `sd_b0` (MODEL.md: the spike must not degenerate).
pub const SD_B0_MIN: f64 = 0.05;
/// Lower bound of the other standard deviations of Theta.
pub const SD_MIN: f64 = 0.05;
/// Bounds of `pi0`.
pub const PI0_RANGE: (f64, f64) = (0.5, 0.999);

/// Options of [`fit_hyper`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EbOptions {
    /// Regions per minibatch.
    pub batch_size: usize,
    /// Maximum passes over the regions.
    pub max_epochs: u32,
    /// Minimum passes before convergence may be declared.
    pub min_epochs: u32,
    /// Robbins-Monro exponent: step `rho_t = max((t + 1)^-exponent, batch_size / R)`.
    pub step_exponent: f64,
    /// Convergence: largest change over one epoch of `(mu_a, ln sd_a, logit pi0, ln sd_b0,
    /// ln sd_b1, mu_w, ln sd_w, mu_k, ln sd_k)`.
    pub tol: f64,
    /// Draws of q per `b_g` used to average the mixture responsibilities.
    pub resp_draws: u32,
    /// Optimiser options of the local fits.
    pub vb: VbOptions,
    /// Warm-start each local q from the previous epoch's.
    pub warm_start: bool,
}

impl Default for EbOptions {
    fn default() -> Self {
        Self {
            batch_size: 256,
            max_epochs: 30,
            min_epochs: 3,
            step_exponent: 0.6,
            tol: 0.05,
            resp_draws: 32,
            vb: VbOptions {
                max_iter: 1500,
                ..VbOptions::default()
            },
            warm_start: true,
        }
    }
}

/// Result of empirical Bayes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HyperFit {
    /// Estimated hyperparameters.
    pub theta: Theta,
    /// Epochs run.
    pub epochs: u32,
    /// Theta at the end of each epoch (the initial value first).
    pub history: Vec<Theta>,
    /// Whether the convergence rule fired before `max_epochs`.
    pub converged: bool,
}

/// Expected sufficient statistics, as means (Gaussian parts over regions; mixture parts over
/// the `(region, g)` pairs).
#[derive(Debug, Clone, Copy, Default)]
struct Stats {
    a1: f64,
    a2: f64,
    w1: f64,
    w2: f64,
    k1: f64,
    k2: f64,
    r0: f64,
    r0b2: f64,
    r1b2: f64,
}

impl Stats {
    fn lerp(&mut self, other: &Stats, rho: f64) {
        let f = |x: &mut f64, y: f64| *x += rho * (y - *x);
        f(&mut self.a1, other.a1);
        f(&mut self.a2, other.a2);
        f(&mut self.w1, other.w1);
        f(&mut self.w2, other.w2);
        f(&mut self.k1, other.k1);
        f(&mut self.k2, other.k2);
        f(&mut self.r0, other.r0);
        f(&mut self.r0b2, other.r0b2);
        f(&mut self.r1b2, other.r1b2);
    }
}

/// Clamps Theta to the floors used by empirical Bayes: every sd `>= 0.05` (`sd_b0` by MODEL.md,
/// the others so that no prior collapses to a point on a finite sample), `sd_b1 >= 2 sd_b0`
/// (the slab stays distinguishable from the spike; otherwise the labels are meaningless),
/// `pi0` in `[0.5, 0.999]` (the spike is by definition the majority "no difference" component,
/// and at least 0.1% prior mass stays on the slab so real effects are never shrunk to zero).
pub fn apply_floors(t: &Theta) -> Theta {
    let sd_b0 = t.sd_b0.max(SD_B0_MIN);
    Theta {
        mu_a: t.mu_a,
        sd_a: t.sd_a.max(SD_MIN),
        pi0: t.pi0.clamp(PI0_RANGE.0, PI0_RANGE.1),
        sd_b0,
        sd_b1: t.sd_b1.max(2.0 * sd_b0),
        mu_w: t.mu_w,
        sd_w: t.sd_w.max(SD_MIN),
        mu_k: t.mu_k,
        sd_k: t.sd_k.max(SD_MIN),
    }
}

fn m_step(s: &Stats, prev: &Theta, has_b: bool) -> Theta {
    let sd = |m1: f64, m2: f64| (m2 - m1 * m1).max(0.0).sqrt();
    let mut t = Theta {
        mu_a: s.a1,
        sd_a: sd(s.a1, s.a2),
        mu_w: s.w1,
        sd_w: sd(s.w1, s.w2),
        mu_k: s.k1,
        sd_k: sd(s.k1, s.k2),
        ..*prev
    };
    if has_b {
        let r0 = s.r0.clamp(1e-9, 1.0 - 1e-9);
        t.pi0 = r0;
        t.sd_b0 = (s.r0b2 / r0).sqrt();
        t.sd_b1 = (s.r1b2 / (1.0 - r0)).sqrt();
    }
    apply_floors(&t)
}

fn transformed(t: &Theta) -> [f64; 9] {
    [
        t.mu_a,
        t.sd_a.ln(),
        (t.pi0 / (1.0 - t.pi0)).ln(),
        t.sd_b0.ln(),
        t.sd_b1.ln(),
        t.mu_w,
        t.sd_w.ln(),
        t.mu_k,
        t.sd_k.ln(),
    ]
}

/// Local fit and expected statistics of one region.
fn region_stats(
    data: &RegionData,
    theta: &Theta,
    opts: &EbOptions,
    warm: Option<&GaussianQ>,
    rng: &mut StdRng,
) -> (Stats, GaussianQ) {
    let lay = data.layout();
    let fit = fit_vb(data, theta, &opts.vb, warm, rng);
    let q = fit.q;
    let mu = q.mu();
    let sd = q.marginal_sd();
    let sq = |i: usize| mu[i] * mu[i] + sd[i] * sd[i];
    let (a, w, k) = (ZLayout::A, lay.w(), lay.k());
    let mut s = Stats {
        a1: mu[a],
        a2: sq(a),
        w1: mu[w],
        w2: sq(w),
        k1: mu[k],
        k2: sq(k),
        ..Stats::default()
    };
    let nd = opts.resp_draws.max(1);
    for g in 1..data.n_groups {
        let i = lay.b(g);
        for _ in 0..nd {
            let e: f64 = rng.sample(StandardNormal);
            let b = mu[i] + sd[i] * e;
            let (_, _, r0) = mixture_lp(b, theta);
            s.r0 += r0;
            s.r0b2 += r0 * b * b;
            s.r1b2 += (1.0 - r0) * b * b;
        }
    }
    let nb = f64::from(nd) * (data.n_groups.saturating_sub(1)).max(1) as f64;
    s.r0 /= nb;
    s.r0b2 /= nb;
    s.r1b2 /= nb;
    (s, q)
}

/// Learns Theta from `regions` (pairs of region id and data) by stochastic variational EM,
/// starting from `init`. Deterministic given `seed`, whatever the rayon thread count.
///
/// # Errors
/// [`ModelError`] if a region is invalid, the regions do not share one number of groups, or
/// `init`/`opts` are unusable.
pub fn fit_hyper(
    regions: &[(&str, RegionData<'_>)],
    init: &Theta,
    opts: &EbOptions,
    seed: u64,
) -> Result<HyperFit, ModelError> {
    init.validate()?;
    if regions.is_empty() || opts.batch_size == 0 {
        return Err(ModelError::Options(
            "need at least one region and batch_size >= 1".into(),
        ));
    }
    let n_groups = regions[0].1.n_groups;
    for (_, d) in regions {
        d.validate()?;
        if d.n_groups != n_groups {
            return Err(ModelError::Shape {
                what: "all regions must share n_groups",
            });
        }
    }
    let has_b = n_groups > 1;
    let r = regions.len();
    let bsz = opts.batch_size.min(r);
    let rho_floor = bsz as f64 / r as f64;
    let mut theta = apply_floors(init);
    let mut stats: Option<Stats> = None;
    let mut warm: Vec<Option<GaussianQ>> = vec![None; r];
    let mut history = vec![theta];
    let mut order: Vec<usize> = (0..r).collect();
    let mut step = 0u32;
    let mut converged = false;
    let mut epochs = 0;
    for epoch in 0..opts.max_epochs {
        epochs = epoch + 1;
        let epoch_mix = splitmix64(u64::from(epoch) + 1);
        let mut shuf = StdRng::seed_from_u64(splitmix64(seed ^ epoch_mix));
        order.sort_unstable();
        for i in (1..r).rev() {
            let j = shuf.random_range(0..=i);
            order.swap(i, j);
        }
        let start_theta = theta;
        for batch in order.chunks(bsz) {
            let th = theta;
            let results: Vec<(Stats, GaussianQ)> = batch
                .par_iter()
                .map(|&i| {
                    let (id, data) = &regions[i];
                    let mut rng =
                        StdRng::seed_from_u64(splitmix64(region_seed(seed, id) ^ epoch_mix));
                    let w = if opts.warm_start {
                        warm[i].as_ref()
                    } else {
                        None
                    };
                    region_stats(data, &th, opts, w, &mut rng)
                })
                .collect();
            let mut mean = Stats::default();
            let inv = 1.0 / results.len() as f64;
            for (s, _) in &results {
                mean.a1 += s.a1 * inv;
                mean.a2 += s.a2 * inv;
                mean.w1 += s.w1 * inv;
                mean.w2 += s.w2 * inv;
                mean.k1 += s.k1 * inv;
                mean.k2 += s.k2 * inv;
                mean.r0 += s.r0 * inv;
                mean.r0b2 += s.r0b2 * inv;
                mean.r1b2 += s.r1b2 * inv;
            }
            for (&i, (_, q)) in batch.iter().zip(results) {
                warm[i] = Some(q);
            }
            let rho = (f64::from(step) + 1.0)
                .powf(-opts.step_exponent)
                .max(rho_floor)
                .min(1.0);
            step += 1;
            match stats.as_mut() {
                None => stats = Some(mean),
                Some(s) => s.lerp(&mean, rho),
            }
            if let Some(s) = &stats {
                theta = m_step(s, &theta, has_b);
            }
        }
        history.push(theta);
        let change = transformed(&theta)
            .iter()
            .zip(transformed(&start_theta))
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        if epochs >= opts.min_epochs && change < opts.tol {
            converged = true;
            break;
        }
    }
    Ok(HyperFit {
        theta,
        epochs,
        history,
        converged,
    })
}
