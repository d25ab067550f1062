//! Empirical Bayes for the global hyperparameters `Theta` (MODEL.md, "Global hyperparameters"):
//! incremental variational EM over minibatches of regions.
//!
//! Each step fits the local q's of one minibatch (rayon-parallel, warm-started from the
//! previous epoch) under the current Theta, with the wide prior of `b` that every fit uses
//! ([`crate::posterior::WIDE_SD`]). The latest expected sufficient statistics of `(a, w, k)`
//! (`E_q`, `E_q^2 + Var_q`) and the latest component log-evidences `ln Z_rk` of `b` of every
//! region visited so far are kept; after each minibatch the Gaussian parts of Theta are the
//! closed-form maximisers given the mean statistics, and the weights of the scale-mixture
//! prior of `b` (on a fixed grid of sds, as ash does) are the EM maximisers of
//! `sum_r ln sum_k w_k Z_rk` with a null-biased Dirichlet prior; then floors apply
//! (see [`apply_floors`]).
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
use crate::posterior::{BPosterior, wide_theta};
use crate::theta::{NULL_SD, ScaleMixture};
use crate::vb::{GaussianQ, VbOptions, fit_vb, region_seed, splitmix64};

/// Lower bound of the null component's sd (MODEL.md: the spike must not degenerate).
pub const SD_B0_MIN: f64 = 0.05;
/// Lower bound of the Gaussian standard deviations of Theta.
pub const SD_MIN: f64 = 0.05;

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
    /// Convergence: largest change over one epoch of `(mu_a, ln sd_a, mu_w, ln sd_w, mu_k,
    /// ln sd_k)`; the mixture weights have converged when the epoch's change of them moves the
    /// mean log-likelihood per region by less than 0.001 nats.
    pub tol: f64,
    /// Optimiser options of the local fits.
    pub vb: VbOptions,
    /// Warm-start each local q from the previous epoch's.
    pub warm_start: bool,
    /// Standard deviation of the null component of the prior of `b` (at least
    /// [`SD_B0_MIN`]); `None` chooses it among 0.05-0.2 by marginal likelihood (see
    /// `fit_b_prior`). The grid of effect components above it is [`ScaleMixture::grid`]'s.
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
/// the `(region, g)` pairs). `beta2` holds `E_q[beta_c^2] + Var_q[beta_c]` per design-matrix
/// column and `u2` the mean of the same over the pair levels (the priors of the design terms
/// are zero-centred).
#[derive(Debug, Clone, Default)]
struct Stats {
    a1: f64,
    a2: f64,
    w1: f64,
    w2: f64,
    k1: f64,
    k2: f64,
    beta2: Vec<f64>,
    u2: f64,
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
            m.beta2.resize(s.beta2.len(), 0.0);
            for (t, x) in m.beta2.iter_mut().zip(&s.beta2) {
                *t += x;
            }
            m.u2 += s.u2;
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
                beta2: m.beta2.iter().map(|x| x * inv).collect(),
                u2: m.u2 * inv,
            }
        })
    }
}

/// Dirichlet pseudo-counts of the mixture weights: ash's default "null-biased" prior
/// (Stephens 2017), 10 on the null component and 1 (no penalty) on the others, so that the null
/// keeps its weight unless the data move it.
const NULL_PSEUDO_COUNT: f64 = 10.0;

/// EM steps of [`mixture_weights`] per Theta update, warm-started from the previous weights: a
/// step is one pass over the regions' component evidences.
const MIXTURE_EM_STEPS: usize = 200;

/// Maximum a posteriori weights of the scale mixture given every region's component
/// log-evidences `ln Z_rk` (`K` per region, see [`BPosterior::log_evidence`]):
/// EM on the mixture proportions with the grid fixed, from `start`.
fn mixture_weights<R: AsRef<[f64]>>(log_z: &[R], start: &[f64]) -> Vec<f64> {
    let k_n = start.len();
    let mut w = start.to_vec();
    // Each row scaled by its largest evidence, one flat row-major matrix (regions x K).
    let mut rows: Vec<f64> = Vec::with_capacity(log_z.len() * k_n);
    for l in log_z.iter().map(AsRef::as_ref) {
        if l.len() == k_n && l.iter().all(|x| x.is_finite()) {
            let mx = l.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            rows.extend(l.iter().map(|x| (x - mx).exp()));
        }
    }
    if rows.is_empty() {
        return w;
    }
    let pseudo = |k: usize| if k == 0 { NULL_PSEUDO_COUNT - 1.0 } else { 0.0 };
    let denom = (rows.len() / k_n) as f64 + NULL_PSEUDO_COUNT - 1.0;
    let mut resp = vec![0.0; k_n];
    for _ in 0..MIXTURE_EM_STEPS {
        resp.fill(0.0);
        for l in rows.chunks_exact(k_n) {
            let total: f64 = l.iter().zip(&w).map(|(l, w)| l * w).sum();
            for ((r, wk), lk) in resp.iter_mut().zip(&w).zip(l) {
                *r += wk * lk / total;
            }
        }
        for k in 0..k_n {
            w[k] = (resp[k] + pseudo(k)) / denom;
        }
    }
    // Weights EM has driven to nothing are set to zero (the component is then skipped when
    // the prior is evaluated); EM cannot revive them anyway.
    for x in w.iter_mut() {
        if *x < NEGLIGIBLE_WEIGHT {
            *x = 0.0;
        }
    }
    let total: f64 = w.iter().sum();
    w.iter_mut().for_each(|x| *x /= total);
    w
}

/// Mixture weights below this are set to zero.
const NEGLIGIBLE_WEIGHT: f64 = 1e-8;

/// Clamps the Gaussian parts of Theta to the floors used by empirical Bayes: every sd
/// `>= 0.05` (the design's too), so that no prior collapses to a point on a finite sample.
pub fn apply_floors(t: &Theta) -> Theta {
    let mut design = t.design.clone();
    for c in &mut design.covariates {
        c.sd = c.sd.max(SD_MIN);
    }
    design.pair_sd = design.pair_sd.map(|sd| sd.max(SD_MIN));
    Theta {
        sd_a: t.sd_a.max(SD_MIN),
        sd_w: t.sd_w.max(SD_MIN),
        sd_k: t.sd_k.max(SD_MIN),
        design,
        ..t.clone()
    }
}

/// Candidate sds of the null component when the user fixes none: the narrowest is
/// [`NULL_SD`], the widest a difference of 0.2 on the logit scale (5 percentage points of
/// methylation at 50%).
const NULL_SD_CANDIDATES: [f64; 5] = [NULL_SD, 0.07, 0.1, 0.14, 0.2];

/// The prior of `b` given the regions' `b` posteriors: for each candidate null sd (only
/// `fixed_null` when the user gives one), the grid of [`ScaleMixture::grid`] with its weights by
/// EM ([`mixture_weights`], warm-started from `prev` when the grid is the same); of the
/// candidates inside the 95% likelihood interval (log-likelihood within
/// [`NULL_SD_LOG_LIK_INTERVAL`] of the best), the widest. The null's width is what the data
/// cannot tell from "no difference": with the narrowest null always, regions whose true
/// differences are small but not zero (the nulls of real data, and of 0.1.0's simulator, sd
/// 0.1) were shrunk to exactly nothing and their intervals missed the truth (coverage 0.81 on
/// `test-data/`). The likelihood is nearly flat over the narrow candidates (200 regions of
/// `test-data/`: 0.05, 0.07 and 0.1 within 1 nat), so the best alone is a coin toss between
/// them (seed 7 chose 0.07 and covered 0.825); a null wider than needed only costs coverage
/// above nominal on regions whose differences are nothing anyway.
fn fit_b_prior(evidence: &CandidateEvidence, prev: &ScaleMixture) -> ScaleMixture {
    // The candidates are independent (rayon keeps their order): the EM over every region's
    // evidences is the sequential part of each Theta update.
    let fits: Vec<(ScaleMixture, f64)> = evidence
        .grids
        .par_iter()
        .enumerate()
        .map(|(c, grid)| {
            let mut grid = grid.clone();
            if grid.sd == prev.sd {
                grid.weight.clone_from(&prev.weight);
            }
            let log_z: Vec<&[f64]> = evidence.of_candidate(c).collect();
            grid.weight = mixture_weights(&log_z, &grid.weight);
            let ll = mixture_log_lik(&log_z, &grid.weight) * log_z.len() as f64;
            (grid, ll)
        })
        .collect();
    let best = fits.iter().map(|f| f.1).fold(f64::NEG_INFINITY, f64::max);
    // Candidates are in increasing sd: the last one inside the interval is the widest.
    fits.into_iter()
        .rfind(|f| f.1 >= best - NULL_SD_LOG_LIK_INTERVAL)
        .map_or_else(|| prev.clone(), |f| f.0)
}

/// One region's component log-evidences under each candidate grid (`None`: degenerate
/// covariance).
type RegionEvidence = Vec<Option<Vec<f64>>>;

/// The component log-evidences `ln Z_rk` of every region visited so far under every candidate
/// grid of [`fit_b_prior`]. A candidate's grid (its sds) never changes, so a region's
/// evidences change only when the region is refitted: they are computed once per local fit
/// instead of once per Theta update.
struct CandidateEvidence {
    /// The candidate grids, in increasing null sd (only the fixed null's when the user gives one).
    grids: Vec<ScaleMixture>,
    /// Per region (`None`: not visited, or one group) its evidences.
    regions: Vec<Option<RegionEvidence>>,
}

impl CandidateEvidence {
    fn new(fixed_null: Option<f64>, n_regions: usize) -> Self {
        let null_sds: Vec<f64> = match fixed_null {
            Some(sd) => vec![sd],
            None => NULL_SD_CANDIDATES.to_vec(),
        };
        Self {
            grids: null_sds
                .into_iter()
                .map(|sd0| ScaleMixture::grid(sd0, 0.9))
                .collect(),
            regions: vec![None; n_regions],
        }
    }

    /// The log-evidences of one region's `b` posterior under every candidate grid.
    fn of_region(&self, b: &BPosterior) -> RegionEvidence {
        self.grids.iter().map(|g| b.log_evidence(g)).collect()
    }

    fn is_empty(&self) -> bool {
        self.regions.iter().all(Option::is_none)
    }

    /// Candidate `c`'s log-evidences of the visited regions, in region order.
    fn of_candidate(&self, c: usize) -> impl Iterator<Item = &[f64]> {
        self.regions
            .iter()
            .flatten()
            .filter_map(move |r| r[c].as_deref())
    }
}

/// Half the 95% quantile of chi-squared with one degree of freedom: candidates whose
/// log-likelihood is within this of the best form a 95% likelihood interval for the null sd.
const NULL_SD_LOG_LIK_INTERVAL: f64 = 1.92;

fn m_step(s: &Stats, evidence: &CandidateEvidence, prev: &Theta) -> Theta {
    let sd = |m1: f64, m2: f64| (m2 - m1 * m1).max(0.0).sqrt();
    let b_prior = if evidence.is_empty() {
        prev.b_prior.clone()
    } else {
        fit_b_prior(evidence, &prev.b_prior)
    };
    let mut design = prev.design.clone();
    for (c, m2) in design.covariates.iter_mut().zip(&s.beta2) {
        c.sd = m2.sqrt();
    }
    design.pair_sd = design.pair_sd.map(|_| s.u2.sqrt());
    apply_floors(&Theta {
        mu_a: s.a1,
        sd_a: sd(s.a1, s.a2),
        b_prior,
        mu_w: s.w1,
        sd_w: sd(s.w1, s.w2),
        mu_k: s.k1,
        sd_k: sd(s.k1, s.k2),
        design,
    })
}

/// The coordinates in which convergence of the Gaussian parts is judged: means and log sds
/// (the design's sds included).
fn transformed(t: &Theta) -> Vec<f64> {
    let mut x = vec![
        t.mu_a,
        t.sd_a.ln(),
        t.mu_w,
        t.sd_w.ln(),
        t.mu_k,
        t.sd_k.ln(),
    ];
    x.extend(t.design.covariates.iter().map(|c| c.sd.ln()));
    x.extend(t.design.pair_sd.map(f64::ln));
    x
}

/// Mean log-likelihood per region of mixture weights `w` given the regions' component
/// log-evidences.
fn mixture_log_lik<R: AsRef<[f64]>>(log_z: &[R], w: &[f64]) -> f64 {
    let rows: Vec<f64> = log_z
        .iter()
        .map(AsRef::as_ref)
        .filter(|l| l.len() == w.len())
        .map(|l| {
            let mx = l.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            mx + l
                .iter()
                .zip(w)
                .map(|(x, wk)| wk * (x - mx).exp())
                .sum::<f64>()
                .ln()
        })
        .filter(|v| v.is_finite())
        .collect();
    rows.iter().sum::<f64>() / rows.len().max(1) as f64
}

/// Largest gain in [`mixture_log_lik`] per region from an epoch's change of the mixture
/// weights that still counts as converged. The weights themselves are a poor coordinate: where
/// the data cannot tell two neighbouring grid components apart (the null and a 0.28-sd one,
/// both narrower than a null region's data sd), EM trades weight between them from epoch to
/// epoch without changing the fit.
const MIXTURE_TOL: f64 = 1e-3;

/// What [`region_stats`] gives for one region.
type LocalFit = (Stats, Option<BPosterior>, GaussianQ);

/// Local fit of one region under Theta with the wide prior of `b`: the expected statistics of
/// `(a, w, k)`, the posterior of `b` (`None` for one group), and q (the next epoch's warm
/// start).
fn region_stats(
    data: &RegionData,
    theta: &Theta,
    opts: &EbOptions,
    warm: Option<&GaussianQ>,
    rng: &mut StdRng,
) -> LocalFit {
    let lay = data.layout();
    let q = fit_vb(data, &wide_theta(theta), &opts.vb, warm, rng).q;
    let mu = q.mu();
    let sd = q.marginal_sd();
    let sq = |i: usize| mu[i] * mu[i] + sd[i] * sd[i];
    let (a, w, k) = (ZLayout::A, lay.w(), lay.k());
    let u2 = (0..lay.n_pairs).map(|p| sq(lay.u(p))).sum::<f64>() / lay.n_pairs.max(1) as f64;
    let stats = Stats {
        a1: mu[a],
        a2: sq(a),
        w1: mu[w],
        w2: sq(w),
        k1: mu[k],
        k2: sq(k),
        beta2: (0..lay.n_covariates).map(|c| sq(lay.beta(c))).collect(),
        u2,
    };
    let b = (data.n_groups > 1).then(|| BPosterior::of(&q, data.n_groups));
    (stats, b, q)
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
        d.check_theta(init)?;
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
    // The grid; the starting weights are init's when it has the same grid.
    let mut b_prior = ScaleMixture::grid(opts.spike_sd.unwrap_or(NULL_SD), 0.9);
    if init.b_prior.sd == b_prior.sd {
        b_prior.weight.clone_from(&init.b_prior.weight);
    }
    let mut theta = apply_floors(&init.with_b_prior(b_prior));
    let mut warm: Vec<Option<GaussianQ>> = vec![None; r];
    // Incremental EM: the latest statistics and evidences of every region visited so far;
    // Theta is refitted to all of them after each minibatch.
    let mut stats: Vec<Option<Stats>> = vec![None; r];
    let mut candidates = CandidateEvidence::new(opts.spike_sd, r);
    let mut history = vec![theta.clone()];
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
        let start_theta = theta.clone();
        for batch in order.chunks(bsz) {
            let (th, cand) = (&theta, &candidates);
            let results: Vec<(LocalFit, Option<RegionEvidence>)> = batch
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
                    let fit = region_stats(data, th, opts, w, &mut rng);
                    let log_z = fit.1.as_ref().map(|b| cand.of_region(b));
                    (fit, log_z)
                })
                .collect();
            for (&i, ((st, _, q), log_z)) in batch.iter().zip(results) {
                warm[i] = Some(q);
                stats[i] = Some(st);
                candidates.regions[i] = log_z;
            }
            if let Some(mean) = Stats::mean(&stats) {
                theta = m_step(&mean, &candidates, &theta);
            }
        }
        history.push(theta.clone());
        let change = transformed(&theta)
            .iter()
            .zip(transformed(&start_theta))
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        // The weights' gain over the epoch, both on this epoch's evidences and grid (a grid
        // that changed is not converged).
        // Theta's grid is always one of the candidates' (the start's or the chosen one).
        let candidate = candidates
            .grids
            .iter()
            .position(|g| g.sd == theta.b_prior.sd);
        let gain = match candidate {
            Some(c) if theta.b_prior.sd == start_theta.b_prior.sd => {
                let log_z: Vec<&[f64]> = candidates.of_candidate(c).collect();
                mixture_log_lik(&log_z, &theta.b_prior.weight)
                    - mixture_log_lik(&log_z, &start_theta.b_prior.weight)
            }
            _ => f64::INFINITY,
        };
        if epochs >= opts.min_epochs && change < opts.tol && gain.abs() < MIXTURE_TOL {
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
