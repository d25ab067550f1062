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
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::Theta;
use crate::error::ModelError;
use crate::likelihood::{RegionData, ZLayout};
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
    /// Optimiser options of the local fits.
    pub vb: VbOptions,
    /// Warm-start each local q from the previous epoch's.
    pub warm_start: bool,
    /// Hold the spike width `sd_b0` at this value instead of learning it (`None` learns it).
    /// The spike is the "no difference" component: its width is a modelling choice, and at
    /// typical coverage the data barely inform it (a null region's `b` has a data sd of ~0.15,
    /// so the EB likelihood is flat below ~0.1 and EM drifts to ~0.15, which makes intervals
    /// conservative). The default is MODEL.md's floor, 0.05 on the logit scale.
    pub spike_sd: Option<f64>,
}

impl Default for EbOptions {
    fn default() -> Self {
        Self {
            batch_size: 256,
            max_epochs: 30,
            min_epochs: 3,
            step_exponent: 0.6,
            tol: 0.05,
            vb: VbOptions {
                max_iter: 1500,
                ..VbOptions::default()
            },
            warm_start: true,
            spike_sd: None,
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
    }
}

/// Prior sd of every `b_g` in the local fits of empirical Bayes: wide, so that `q(b_g)` is
/// essentially the likelihood of `b_g`, and that prior is then divided out exactly (see
/// [`Message`]). Fitting the local q's under the spike-and-slab prior instead, and averaging
/// the spike's responsibility over draws of q, inflated `sd_b0` threefold (0.15 for a true
/// 0.05): one Gaussian q cannot follow a posterior that is part spike, part slab, and its
/// width in between was read back as the spike's width.
const MESSAGE_PRIOR_SD: f64 = 3.0;

/// Gaussian likelihood message of one `b_g`: the data say `b_hat ~ Normal(b, var)`.
#[derive(Debug, Clone, Copy)]
struct Message {
    b_hat: f64,
    var: f64,
}

impl Message {
    /// Divides the `Normal(0, MESSAGE_PRIOR_SD^2)` prior out of `q(b_g) = Normal(mean, sd^2)`.
    /// `None` if the data carry no information on `b_g` (e.g. a group without reads).
    fn from_q(mean: f64, sd: f64) -> Option<Message> {
        let precision = 1.0 / (sd * sd) - 1.0 / (MESSAGE_PRIOR_SD * MESSAGE_PRIOR_SD);
        (precision > 1e-3).then(|| Message {
            b_hat: mean / (sd * sd * precision),
            var: 1.0 / precision,
        })
    }
}

/// Maximum-likelihood spike-and-slab prior of `b` given the messages: EM on the
/// normal-means problem `b_hat ~ pi0 N(0, sd_b0^2 + var) + (1 - pi0) N(0, sd_b1^2 + var)`,
/// from `start` (the previous Theta), `sd_b0` held at `spike_sd` when given. Returns
/// `(pi0, sd_b0, sd_b1)` before floors.
fn spike_slab_mle(msgs: &[Message], start: &Theta, spike_sd: Option<f64>) -> (f64, f64, f64) {
    let (mut pi0, mut v0, mut v1) = (start.pi0, start.sd_b0.powi(2), start.sd_b1.powi(2));
    if msgs.is_empty() {
        return (pi0, v0.sqrt(), v1.sqrt());
    }
    let log_normal = |x: f64, var: f64| -0.5 * (x * x / var + var.ln());
    for _ in 0..SPIKE_SLAB_EM_STEPS {
        let (mut r0_sum, mut r0_b2, mut r1_b2) = (0.0, 0.0, 0.0);
        for m in msgs {
            let l0 = pi0.ln() + log_normal(m.b_hat, v0 + m.var);
            let l1 = (1.0 - pi0).ln() + log_normal(m.b_hat, v1 + m.var);
            let r0 = 1.0 / (1.0 + (l1 - l0).exp());
            // E[b^2 | b_hat, component] = posterior mean^2 + posterior variance.
            let post_b2 = |v: f64| {
                let shrink = v / (v + m.var);
                (shrink * m.b_hat).powi(2) + shrink * m.var
            };
            r0_sum += r0;
            r0_b2 += r0 * post_b2(v0);
            r1_b2 += (1.0 - r0) * post_b2(v1);
        }
        let n = msgs.len() as f64;
        pi0 = (r0_sum / n).clamp(1e-6, 1.0 - 1e-6);
        v0 = spike_sd
            .map_or(r0_b2 / r0_sum.max(1e-12), |sd| sd * sd)
            .max(1e-8);
        v1 = (r1_b2 / (n - r0_sum).max(1e-12)).max(1e-8);
    }
    (pi0, v0.sqrt(), v1.sqrt())
}

/// EM steps of [`spike_slab_mle`] per Theta update: EM for a variance component moves slowly
/// where the likelihood is flat (here, a spike narrower than the data sd of `b`), and a step
/// costs only a pass over the messages.
const SPIKE_SLAB_EM_STEPS: usize = 300;

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

fn m_step(s: &Stats, msgs: &[Message], prev: &Theta, spike_sd: Option<f64>) -> Theta {
    let sd = |m1: f64, m2: f64| (m2 - m1 * m1).max(0.0).sqrt();
    let (pi0, sd_b0, sd_b1) = spike_slab_mle(msgs, prev, spike_sd);
    apply_floors(&Theta {
        mu_a: s.a1,
        sd_a: sd(s.a1, s.a2),
        pi0,
        sd_b0,
        sd_b1,
        mu_w: s.w1,
        sd_w: sd(s.w1, s.w2),
        mu_k: s.k1,
        sd_k: sd(s.k1, s.k2),
    })
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

/// Local fit of one region under Theta with the wide message prior on `b`: the expected
/// statistics of `(a, w, k)`, the likelihood messages of `b_1..b_{G-1}`, and q (the next
/// epoch's warm start).
fn region_stats(
    data: &RegionData,
    theta: &Theta,
    opts: &EbOptions,
    warm: Option<&GaussianQ>,
    rng: &mut StdRng,
) -> (Stats, Vec<Message>, GaussianQ) {
    let lay = data.layout();
    let local = Theta {
        pi0: 0.5,
        sd_b0: MESSAGE_PRIOR_SD,
        sd_b1: MESSAGE_PRIOR_SD,
        ..*theta
    };
    let q = fit_vb(data, &local, &opts.vb, warm, rng).q;
    let mu = q.mu();
    let sd = q.marginal_sd();
    let sq = |i: usize| mu[i] * mu[i] + sd[i] * sd[i];
    let (a, w, k) = (ZLayout::A, lay.w(), lay.k());
    let stats = Stats {
        a1: mu[a],
        a2: sq(a),
        w1: mu[w],
        w2: sq(w),
        k1: mu[k],
        k2: sq(k),
    };
    let msgs = (1..data.n_groups)
        .filter_map(|g| Message::from_q(mu[lay.b(g)], sd[lay.b(g)]))
        .collect();
    (stats, msgs, q)
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
    let r = regions.len();
    let bsz = opts.batch_size.min(r);
    let rho_floor = bsz as f64 / r as f64;
    if opts
        .spike_sd
        .is_some_and(|sd| !(sd.is_finite() && sd >= SD_B0_MIN))
    {
        return Err(ModelError::Options(format!(
            "spike_sd must be finite and >= {SD_B0_MIN}"
        )));
    }
    let mut theta = apply_floors(&Theta {
        sd_b0: opts.spike_sd.unwrap_or(init.sd_b0),
        ..*init
    });
    let mut stats: Option<Stats> = None;
    let mut warm: Vec<Option<GaussianQ>> = vec![None; r];
    // The latest messages of every region visited so far (the spike-and-slab part of Theta is
    // refitted to all of them after each minibatch).
    let mut messages: Vec<Vec<Message>> = vec![Vec::new(); r];
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
            let results: Vec<(Stats, Vec<Message>, GaussianQ)> = batch
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
            for (s, _, _) in &results {
                mean.a1 += s.a1 * inv;
                mean.a2 += s.a2 * inv;
                mean.w1 += s.w1 * inv;
                mean.w2 += s.w2 * inv;
                mean.k1 += s.k1 * inv;
                mean.k2 += s.k2 * inv;
            }
            for (&i, (_, msgs, q)) in batch.iter().zip(results) {
                warm[i] = Some(q);
                messages[i] = msgs;
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
                let all: Vec<Message> = messages.iter().flatten().copied().collect();
                theta = m_step(s, &all, &theta, opts.spike_sd);
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
