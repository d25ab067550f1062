//! Empirical Bayes for the global hyperparameters `Theta` (MODEL.md, "Global hyperparameters"):
//! incremental variational EM over minibatches of regions.
//!
//! Each step fits the local q's of one minibatch (rayon-parallel, warm-started from the
//! previous epoch) under the current Theta, except that every `b_g` gets a wide normal prior
//! so that `q(b_g)` yields a Gaussian likelihood message of `b_g`. The latest expected
//! sufficient statistics of `(a, w, k)` (`E_q`, `E_q^2 + Var_q`) and the latest messages of
//! every region visited so far are kept; after each minibatch the Gaussian parts of Theta are
//! the closed-form maximisers given the mean statistics, and the spike-and-slab part is the
//! maximum-likelihood fit to the messages; then floors apply (see [`apply_floors`]).
//! Minibatch results are collected in order and reduced sequentially, so the result does not
//! depend on the number of threads. docs/model.md says why this departs from MODEL.md's
//! Robbins-Monro step and draw-averaged responsibilities.

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
    /// Convergence: largest change over one epoch of `(mu_a, ln sd_a, logit pi0,
    /// ln sqrt(sd_b0^2 + v), ln sd_b1, mu_w, ln sd_w, mu_k, ln sd_k)`, `v` the median message
    /// variance of `b`.
    pub tol: f64,
    /// Optimiser options of the local fits.
    pub vb: VbOptions,
    /// Warm-start each local q from the previous epoch's.
    pub warm_start: bool,
    /// Hold the spike width `sd_b0` at this value (at least [`SD_B0_MIN`]) instead of learning
    /// it. `None` (the default) learns it from the likelihood messages, floored at
    /// [`SD_B0_MIN`]. The spike is the "no difference" component and the data inform its width
    /// only weakly (a null region's `b` has a data sd of ~0.15 at 15x coverage), so a user may
    /// prefer to fix it.
    pub spike_sd: Option<f64>,
}

impl Default for EbOptions {
    fn default() -> Self {
        Self {
            batch_size: 256,
            max_epochs: 30,
            min_epochs: 3,
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
    /// Mean over the regions that have statistics (`None`: not visited yet).
    fn mean(all: &[Option<Stats>]) -> Option<Stats> {
        let mut m = Stats::default();
        let mut n = 0usize;
        for s in all.iter().flatten() {
            m.a1 += s.a1;
            m.a2 += s.a2;
            m.w1 += s.w1;
            m.w2 += s.w2;
            m.k1 += s.k1;
            m.k2 += s.k2;
            n += 1;
        }
        (n > 0).then(|| {
            let inv = 1.0 / n as f64;
            Stats {
                a1: m.a1 * inv,
                a2: m.a2 * inv,
                w1: m.w1 * inv,
                w2: m.w2 * inv,
                k1: m.k1 * inv,
                k2: m.k2 * inv,
            }
        })
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

/// The coordinates in which convergence is judged. The spike enters as the log sd of a null
/// region's `b_hat`, `ln sqrt(sd_b0^2 + v)` with `v` the median message variance: near the
/// floor, `ln sd_b0` itself jitters by 0.2-0.3 between epochs although the data cannot tell
/// those values apart (they change that sd by ~2%).
fn transformed(t: &Theta, message_var: f64) -> [f64; 9] {
    [
        t.mu_a,
        t.sd_a.ln(),
        (t.pi0 / (1.0 - t.pi0)).ln(),
        0.5 * (t.sd_b0 * t.sd_b0 + message_var).ln(),
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
    let mut warm: Vec<Option<GaussianQ>> = vec![None; r];
    // Incremental EM: the latest statistics and messages of every region visited so far; Theta
    // is refitted to all of them after each minibatch.
    let mut stats: Vec<Option<Stats>> = vec![None; r];
    let mut messages: Vec<Vec<Message>> = vec![Vec::new(); r];
    let mut history = vec![theta];
    let mut order: Vec<usize> = (0..r).collect();
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
            for (&i, (st, msgs, q)) in batch.iter().zip(results) {
                warm[i] = Some(q);
                stats[i] = Some(st);
                messages[i] = msgs;
            }
            if let Some(mean) = Stats::mean(&stats) {
                let all: Vec<Message> = messages.iter().flatten().copied().collect();
                theta = m_step(&mean, &all, &theta, opts.spike_sd);
            }
        }
        history.push(theta);
        let mut vars: Vec<f64> = messages.iter().flatten().map(|m| m.var).collect();
        let message_var = if vars.is_empty() {
            0.0
        } else {
            let mid = vars.len() / 2;
            *vars.select_nth_unstable_by(mid, f64::total_cmp).1
        };
        let change = transformed(&theta, message_var)
            .iter()
            .zip(transformed(&start_theta, message_var))
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
