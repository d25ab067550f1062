//! NUTS sampling of one region's posterior `p(z | y, Theta)` and its comparison with the VB fit
//! (MODEL.md, "Cross-check against MCMC").

use std::cell::Cell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Instant;

use methvb_model::likelihood::b_prior_lp;
use methvb_model::linalg::cholesky;
use methvb_model::posterior::{group_levels, wide_theta};
use methvb_model::vb::{region_seed, splitmix64};
use methvb_model::{Family, RegionData, RegionFit, Theta, ZLayout, log_joint_grad};
use nuts_rs::{Chain, CpuLogpFunc, CpuMath, CpuMathError, DiagNutsSettings, HasDims, Settings};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

use crate::diagnostics::diagnose;
use crate::error::McmcError;

/// How chains are initialised.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InitStrategy {
    /// `z = mu_q + scale * L_q eps`: a draw of the VB q with its standard deviations multiplied
    /// by `scale` (over-dispersed for `scale > 1`). Default, with `scale = 2`.
    VbOverdispersed {
        /// Factor applied to q's standard deviations (`>= 1`).
        scale: f64,
    },
    /// A draw of `z` from the prior given Theta (independent of the VB fit).
    Prior,
}

impl Default for InitStrategy {
    fn default() -> Self {
        Self::VbOverdispersed { scale: 2.0 }
    }
}

/// Options of [`audit_region`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AuditOptions {
    /// Independent chains per region (default 4).
    pub chains: u32,
    /// Warm-up draws per chain: step size and diagonal mass matrix adaptation (default 500).
    pub tune: u32,
    /// Retained draws per chain (default 1000).
    pub draws: u32,
    /// Chain initialisation (default: VB q over-dispersed by a factor 2 in sd).
    pub init: InitStrategy,
    /// Target mean acceptance statistic of the step-size adaptation (default 0.9: smaller steps
    /// than Stan's 0.8, which removed the divergences seen at 0.8 in the funnel between `w` and
    /// the site effects of sparse regions, at ~1.3x the cost).
    pub target_accept: f64,
    /// Maximum tree depth (at most `2^maxdepth - 1` leapfrog steps per draw; default 10).
    pub maxdepth: u32,
}

impl Default for AuditOptions {
    fn default() -> Self {
        Self {
            chains: 4,
            tune: 500,
            draws: 1000,
            init: InitStrategy::default(),
            target_accept: 0.9,
            maxdepth: 10,
        }
    }
}

impl AuditOptions {
    /// Checks the options.
    pub fn validate(&self) -> Result<(), McmcError> {
        let ok = self.chains >= 1
            && self.draws >= 10
            && (1..=20).contains(&self.maxdepth)
            && self.target_accept > 0.0
            && self.target_accept < 1.0
            && match self.init {
                InitStrategy::VbOverdispersed { scale } => scale.is_finite() && scale > 0.0,
                InitStrategy::Prior => true,
            };
        if ok {
            Ok(())
        } else {
            Err(McmcError::Options(format!(
                "need chains >= 1, draws >= 10, 1 <= maxdepth <= 20, 0 < target_accept < 1 and \
                 a positive finite init scale: {self:?}"
            )))
        }
    }
}

/// Fewest effective draws of the reweighted wide-prior chains before the audit samples the
/// mixture density itself (see [`audit_region`]).
pub const MIN_WEIGHT_ESS: f64 = 400.0;

/// Which density the audit's chains sampled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditTarget {
    /// The posterior under the wide normal prior of `b`, reweighted to the mixture prior.
    WideReweighted,
    /// The posterior under the mixture prior itself (unweighted draws).
    Mixture,
}

impl AuditTarget {
    /// `"wide_reweighted"` or `"mixture"`.
    pub fn name(self) -> &'static str {
        match self {
            Self::WideReweighted => "wide_reweighted",
            Self::Mixture => "mixture",
        }
    }
}

/// VB versus NUTS for one scalar quantity of one region.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRow {
    /// `a`, `b_<g>`, `w`, `k` or `delta_<g>` (`g = 1..G`).
    pub name: String,
    /// Posterior mean reported by the VB fit (importance-sampled mixture posterior).
    pub vb_mean: f64,
    /// Posterior standard deviation reported by the VB fit.
    pub vb_sd: f64,
    /// Posterior mean from the pooled, reweighted NUTS draws.
    pub mcmc_mean: f64,
    /// Posterior sd from the pooled, reweighted NUTS draws.
    pub mcmc_sd: f64,
    /// Rank-normalised split R-hat.
    pub rhat: f64,
    /// Bulk effective sample size.
    pub ess_bulk: f64,
    /// Tail effective sample size.
    pub ess_tail: f64,
    /// Monte Carlo standard error of `mcmc_mean`.
    pub mcse_mean: f64,
    /// Monte Carlo standard error of `mcmc_sd`.
    pub mcse_sd: f64,
    /// Standardised bias `(vb_mean - mcmc_mean) / mcmc_sd`.
    pub z_bias: f64,
    /// `vb_sd / mcmc_sd` (below 1: q under-states the posterior spread).
    pub sd_ratio: f64,
    /// For `delta_g` rows: `P(|delta_g| > delta0)` under q (`None` for other rows).
    pub vb_prob_dm: Option<f64>,
    /// For `delta_g` rows: `P(|delta_g| > delta0)` from the NUTS draws.
    pub mcmc_prob_dm: Option<f64>,
}

/// Result of the NUTS cross-check of one region.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegionAudit {
    /// Region id (as given to [`audit_region`]).
    pub region_id: String,
    /// Family of the VB q that was audited.
    pub family: Family,
    /// The VB fit's verdict (`RegionFit::reliable`).
    pub vb_reliable: bool,
    /// The density the chains sampled.
    pub target: AuditTarget,
    /// Effective sample size of the importance weights that turn the wide-prior NUTS draws
    /// into draws of the mixture posterior (Kish's `1 / sum w^2`, of `chains * draws`).
    pub weight_ess: f64,
    /// Number of sites `J`.
    pub n_sites: usize,
    /// Number of groups `G`.
    pub n_groups: usize,
    /// One row per quantity: `a`, `b_1..b_{G-1}`, `w`, `k`, `delta_1..delta_{G-1}`.
    pub rows: Vec<AuditRow>,
    /// Largest R-hat over every coordinate of `z` (site effects included) and every `delta_g`
    /// (NaN if any is undefined).
    pub max_rhat: f64,
    /// Smallest bulk ESS over the same quantities.
    pub min_ess_bulk: f64,
    /// Smallest tail ESS over the same quantities.
    pub min_ess_tail: f64,
    /// Divergent transitions after warm-up, summed over chains.
    pub divergences: u64,
    /// Post-warm-up draws that hit the maximum tree depth, summed over chains.
    pub max_depth_hits: u64,
    /// Gradient evaluations, warm-up included, summed over chains.
    pub grad_evals: u64,
    /// Proposals (warm-up included) rejected because `k` left `[mu_k - 20 sd_k, min(mu_k +
    /// 20 sd_k, 30)]` (see [`K_PRIOR_SDS`], [`K_NUMERIC_MAX`]); they also count as divergences
    /// when they end a trajectory after warm-up.
    pub k_rejections: u64,
    /// Mean over chains of the adapted step size.
    pub step_size: f64,
    /// Chains run.
    pub chains: u32,
    /// Retained draws per chain.
    pub draws: u32,
    /// Wall-clock seconds of the sampling and diagnostics.
    pub seconds: f64,
}

/// Seed of chain `chain` of a region: `splitmix64(region_seed(seed, region_id) ^
/// splitmix64(NUTS_TAG + chain))`, so that chains are independent of each other, of the VB
/// stream (which uses `region_seed` directly) and of the thread that runs them.
pub fn chain_seed(seed: u64, region_id: &str, chain: u32) -> u64 {
    /// ASCII "NUTS": separates the chain streams from other uses of `region_seed`.
    const NUTS_TAG: u64 = 0x4E55_5453_0000_0000;
    splitmix64(region_seed(seed, region_id) ^ splitmix64(NUTS_TAG + u64::from(chain)))
}

/// Largest `k` at which the density is evaluated: above `kappa = e^30 ~ 1e13` the beta-binomial
/// equals the binomial to ~13 digits for any realistic coverage, so the likelihood is flat in
/// `k` and only the prior moves chains there. (The bound was added when `log_joint_grad` lost
/// all precision at such `k` for cells with `n >= 40`, a spurious mode near `k = 100`; the
/// likelihood now uses Stirling's series there and is exact, and the bound stays as a guard.)
pub const K_NUMERIC_MAX: f64 = 30.0;

/// Proposals with `|k - mu_k| > K_PRIOR_SDS * sd_k` are rejected: the prior density there is
/// below `e^-200` of its peak, so the truncated posterior equals the exact one to far below
/// Monte Carlo error, and chains cannot wander into the numerically unreliable far tail.
pub const K_PRIOR_SDS: f64 = 20.0;

/// Bounds `[mu_k - 20 sd_k, min(mu_k + 20 sd_k, 30)]` on `k`.
fn k_bounds(theta: &Theta) -> (f64, f64) {
    (
        theta.mu_k - K_PRIOR_SDS * theta.sd_k,
        (theta.mu_k + K_PRIOR_SDS * theta.sd_k).min(K_NUMERIC_MAX),
    )
}

/// The region's log joint as a nuts-rs density over the unconstrained `z`.
struct RegionDensity<'a> {
    data: RegionData<'a>,
    /// The Theta whose posterior is sampled (see [`audit_region`]).
    theta: &'a Theta,
    dim: usize,
    /// Index of `k` in `z`.
    k_index: usize,
    /// Rejection bounds on `k`.
    k_lo: f64,
    k_hi: f64,
    /// Proposals rejected by the bounds (shared with the chain driver; single thread).
    rejected: Rc<Cell<u64>>,
}

/// A non-finite log density or gradient, or `k` outside its bounds: nuts-rs treats it as a
/// divergence and rejects the proposal.
#[derive(Debug, thiserror::Error)]
#[error("non-finite log density or gradient, or k out of bounds")]
struct NonFinite;

impl nuts_rs::LogpError for NonFinite {
    fn is_recoverable(&self) -> bool {
        true
    }
}

impl HasDims for RegionDensity<'_> {
    fn dim_sizes(&self) -> HashMap<String, u64> {
        let d = self.dim as u64;
        HashMap::from([
            ("unconstrained_parameter".to_owned(), d),
            ("dim".to_owned(), d),
        ])
    }
}

impl CpuLogpFunc for RegionDensity<'_> {
    type LogpError = NonFinite;
    type FlowParameters = ();
    type ExpandedVector = Vec<f64>;

    fn dim(&self) -> usize {
        self.dim
    }

    fn logp(&mut self, position: &[f64], grad: &mut [f64]) -> Result<f64, NonFinite> {
        let k = position[self.k_index];
        if !(self.k_lo..=self.k_hi).contains(&k) {
            self.rejected.set(self.rejected.get() + 1);
            return Err(NonFinite);
        }
        let lp = log_joint_grad(&self.data, self.theta, position, grad);
        if lp.is_finite() && grad.iter().all(|g| g.is_finite()) {
            Ok(lp)
        } else {
            Err(NonFinite)
        }
    }

    fn expand_vector<R: rand::Rng + ?Sized>(
        &mut self,
        _rng: &mut R,
        array: &[f64],
    ) -> Result<Vec<f64>, CpuMathError> {
        Ok(array.to_vec())
    }
}

/// Draws a starting point of a chain into `z`.
fn draw_init(
    strategy: InitStrategy,
    vb: &RegionFit,
    chol: &[f64],
    lay: ZLayout,
    theta: &Theta,
    rng: &mut StdRng,
    z: &mut [f64],
) {
    let nb = lay.n_block();
    match strategy {
        InitStrategy::VbOverdispersed { scale } => {
            let eps: Vec<f64> = (0..nb).map(|_| rng.sample(StandardNormal)).collect();
            for i in 0..nb {
                let dev: f64 = (0..=i).map(|j| chol[i * nb + j] * eps[j]).sum();
                z[i] = vb.mu[i] + scale * dev;
            }
            for ((zi, m), s) in z[nb..].iter_mut().zip(&vb.mu[nb..]).zip(&vb.sd[nb..]) {
                let e: f64 = rng.sample(StandardNormal);
                *zi = m + scale * s * e;
            }
        }
        InitStrategy::Prior => {
            let mut normal = || -> f64 { rng.sample(StandardNormal) };
            z[ZLayout::A] = theta.mu_a + theta.sd_a * normal();
            z[lay.w()] = theta.mu_w + theta.sd_w * normal();
            z[lay.k()] = theta.mu_k + theta.sd_k * normal();
            for j in 0..lay.n_sites {
                z[lay.v(j)] = normal();
            }
            // A component of the mixture prior of b, then b from it.
            let prior = &theta.b_prior;
            let u: f64 = rng.random();
            let mut acc = 0.0;
            let mut sd = prior.max_sd();
            for (w, s) in prior.weight.iter().zip(&prior.sd) {
                acc += w;
                if u < acc {
                    sd = *s;
                    break;
                }
            }
            for h in 1..lay.n_groups {
                let e: f64 = rng.sample(StandardNormal);
                z[lay.b(h)] = e * sd;
            }
            for c in 0..lay.n_covariates {
                z[lay.beta(c)] = theta.design.covariate_sd(c) * normal_draw(rng);
            }
            let pair_sd = theta.design.pair_sd.unwrap_or(0.0);
            for p in 0..lay.n_pairs {
                z[lay.u(p)] = pair_sd * normal_draw(rng);
            }
        }
    }
}

fn normal_draw(rng: &mut StdRng) -> f64 {
    rng.sample(StandardNormal)
}

/// Per-chain sampler statistics.
#[derive(Default)]
struct ChainStats {
    divergences: u64,
    max_depth_hits: u64,
    grad_evals: u64,
    step_size: f64,
    k_rejections: u64,
}

/// Runs one chain and writes its retained draws of every quantity into `store`
/// (`store[(q * n_chains + chain) * n_draws + t]`, quantities `z_0..z_{D-1}`, then the
/// contrasts of `vb.delta`, each against `vb.reference`).
#[allow(clippy::too_many_arguments)]
fn run_chain(
    data: &RegionData,
    theta: &Theta,
    target: &Theta,
    vb: &RegionFit,
    chol: &[f64],
    opts: &AuditOptions,
    seed: u64,
    chain: u32,
    store: &mut [f64],
) -> Result<ChainStats, McmcError> {
    let lay = data.layout();
    let d = lay.dim();
    let (g_n, j_n) = (data.n_groups, data.n_sites);
    let (n_chains, n_draws) = (opts.chains as usize, opts.draws as usize);
    let c = chain as usize;
    let sampler_err = |e: &dyn std::fmt::Display| McmcError::Sampler {
        chain,
        message: format!("{e:#}"),
    };
    let (k_lo, k_hi) = k_bounds(theta);
    let mut rng = StdRng::seed_from_u64(seed);
    // Starting point: redraw (up to 20 times) until the log joint is finite, else q's mean.
    let mut init = vec![0.0; d];
    let mut grad = vec![0.0; d];
    let mut found = false;
    for _ in 0..20 {
        draw_init(opts.init, vb, chol, lay, theta, &mut rng, &mut init);
        let lp = log_joint_grad(data, target, &init, &mut grad);
        let k_ok = (k_lo..=k_hi).contains(&init[lay.k()]);
        if k_ok && lp.is_finite() && grad.iter().all(|g| g.is_finite()) {
            found = true;
            break;
        }
    }
    if !found {
        init.copy_from_slice(&vb.mu[..d]);
    }
    // Diagonal mass matrix and step size adapted over the warm-up (nuts-rs defaults otherwise).
    let mut settings = DiagNutsSettings {
        num_tune: u64::from(opts.tune),
        num_draws: u64::from(opts.draws),
        maxdepth: u64::from(opts.maxdepth),
        num_chains: 1,
        seed,
        ..DiagNutsSettings::default()
    };
    settings.adapt_options.step_size_settings.target_accept = opts.target_accept;
    let rejected = Rc::new(Cell::new(0));
    let density = RegionDensity {
        data: *data,
        theta: target,
        dim: d,
        k_index: lay.k(),
        k_lo,
        k_hi,
        rejected: Rc::clone(&rejected),
    };
    let mut sampler = settings
        .new_chain(u64::from(chain), CpuMath::new(density), &mut rng)
        .map_err(|e| sampler_err(&e))?;
    sampler.set_position(&init).map_err(|e| sampler_err(&e))?;
    let mut stats = ChainStats::default();
    let mut theta_g = vec![0.0; g_n];
    let mut scratch = vec![0.0; j_n];
    let max_steps = (1u64 << opts.maxdepth) - 1;
    for i in 0..(opts.tune as usize + n_draws) {
        let (pos, prog) = sampler.draw().map_err(|e| sampler_err(&e))?;
        stats.grad_evals += prog.num_gradients;
        let Some(t) = i.checked_sub(opts.tune as usize) else {
            continue;
        };
        stats.divergences += u64::from(prog.diverging);
        stats.max_depth_hits += u64::from(prog.num_steps >= max_steps);
        stats.step_size = prog.step_size;
        for q in 0..d {
            store[(q * n_chains + c) * n_draws + t] = pos[q];
        }
        // theta_g = mean_j logistic(a + c_g + exp(w) v_j) (MODEL.md); delta_g = theta_g - theta_0.
        group_levels(&pos, lay, &mut scratch, &mut theta_g);
        for (i, ds) in vb.delta.iter().enumerate() {
            store[((d + i) * n_chains + c) * n_draws + t] =
                theta_g[ds.group] - theta_g[vb.reference];
        }
    }
    stats.k_rejections = rejected.get();
    Ok(stats)
}

/// Maximum that propagates NaN (an undefined diagnostic must not be hidden).
fn nan_max(it: impl Iterator<Item = f64>) -> f64 {
    it.fold(f64::NEG_INFINITY, |m, x| {
        if m.is_nan() || x.is_nan() {
            f64::NAN
        } else {
            m.max(x)
        }
    })
}

/// Weighted mean and sd of pooled draws (normalised weights `w`, reliability-weight
/// correction `1 / (1 - sum w^2)`; with equal weights this is the usual `ddof = 1` sd).
fn mean_sd(x: &[f64], w: &[f64]) -> (f64, f64) {
    let m: f64 = x.iter().zip(w).map(|(x, w)| x * w).sum();
    let v: f64 = x.iter().zip(w).map(|(x, w)| w * (x - m) * (x - m)).sum();
    let w2: f64 = w.iter().map(|w| w * w).sum();
    (m, (v / (1.0 - w2).max(1e-12)).sqrt())
}

/// Samples the posterior `p(z | y, Theta)` of one region with NUTS (nuts-rs, diagonal mass
/// matrix and step size adapted during `opts.tune` warm-up draws) and compares it with the VB
/// fit `vb` of the same region.
///
/// The chains sample the posterior under the wide normal prior of `b` that the VB fit uses
/// (unimodal, so chains mix), and the pooled draws are importance-weighted by
/// `prior_mix(b) / prior_wide(b)`: an exact (consistent) estimate of the posterior under the
/// actual scale-mixture prior, whose null and effect modes a chain on the mixture density
/// itself may fail to cross between. The weights depend on `b` only; their effective sample
/// size is reported ([`RegionAudit::weight_ess`]). When it is below [`MIN_WEIGHT_ESS`], the
/// chains are run again on the mixture density itself ([`RegionAudit::target`]). R-hat and
/// ESS describe the chains whose draws are reported.
///
/// Chains run one after the other in the calling thread (nuts-rs chains are `!Send`; callers
/// parallelise over regions). Chain `c` is seeded by [`chain_seed`]`(seed, region_id, c)`, so
/// the result depends only on the inputs. `delta0` is the effect-size threshold of
/// `P(|delta_g| > delta0)`, reported for the `delta_g` rows from both q and the NUTS draws (use
/// the value the VB fit was summarised with).
///
/// # Errors
/// [`McmcError::Model`] for invalid data or Theta, [`McmcError::Options`] for invalid options,
/// [`McmcError::Mismatch`] if `vb` is not a fit of a region of this shape, and
/// [`McmcError::Sampler`] if nuts-rs fails.
pub fn audit_region(
    data: &RegionData,
    theta: &Theta,
    vb: &RegionFit,
    opts: &AuditOptions,
    seed: u64,
    region_id: &str,
    delta0: f64,
) -> Result<RegionAudit, McmcError> {
    let start = Instant::now();
    data.validate()?;
    theta.validate()?;
    data.check_theta(theta)?;
    opts.validate()?;
    let (k_lo, k_hi) = k_bounds(theta);
    if k_lo >= k_hi - theta.sd_k {
        return Err(McmcError::Options(format!(
            "mu_k = {} is too close to the numeric bound k <= {K_NUMERIC_MAX} to sample k",
            theta.mu_k
        )));
    }
    if delta0.is_nan() || delta0 < 0.0 {
        return Err(McmcError::Options(format!(
            "delta0 must be >= 0, got {delta0}"
        )));
    }
    let lay = data.layout();
    let (d, nb, g_n) = (lay.dim(), lay.n_block(), data.n_groups);
    if vb.mu.len() != d
        || vb.sd.len() != d
        || vb.cov_block.len() != nb * nb
        || vb.delta.len() != g_n - 1
    {
        return Err(McmcError::Mismatch(format!(
            "region has D = {d}, G = {g_n}; the VB fit has {} means, {} sds, {} block entries, \
             {} deltas",
            vb.mu.len(),
            vb.sd.len(),
            vb.cov_block.len(),
            vb.delta.len()
        )));
    }
    // Cholesky of q's block covariance for the initial draws; a non-PD block (rounding) falls
    // back to its diagonal.
    let chol = cholesky(&vb.cov_block, nb).unwrap_or_else(|| {
        let mut l = vec![0.0; nb * nb];
        for i in 0..nb {
            l[i * nb + i] = vb.sd[i];
        }
        l
    });
    let (n_chains, n_draws) = (opts.chains as usize, opts.draws as usize);
    let n_q = d + g_n - 1;
    let per_q = n_chains * n_draws;
    // All chains on one target density; the pooled draws and the summed sampler statistics.
    let sample = |target: &Theta| -> Result<(Vec<f64>, ChainStats), McmcError> {
        let mut store = vec![0.0; n_q * per_q];
        let mut total = ChainStats::default();
        for c in 0..opts.chains {
            let st = run_chain(
                data,
                theta,
                target,
                vb,
                &chol,
                opts,
                chain_seed(seed, region_id, c),
                c,
                &mut store,
            )?;
            total.divergences += st.divergences;
            total.max_depth_hits += st.max_depth_hits;
            total.grad_evals += st.grad_evals;
            total.k_rejections += st.k_rejections;
            total.step_size += st.step_size / f64::from(opts.chains);
        }
        Ok((store, total))
    };
    // First the wide-prior posterior; importance weights prior_mix(b) / prior_wide(b) turn
    // its pooled draws into draws of the exact mixture posterior.
    let wide = wide_theta(theta);
    let (mut store, mut stats) = sample(&wide)?;
    let mut weight = vec![0.0; per_q];
    let mut b = vec![0.0; g_n - 1];
    for (i, w) in weight.iter_mut().enumerate() {
        for h in 1..g_n {
            b[h - 1] = store[lay.b(h) * per_q + i];
        }
        *w = if g_n > 1 {
            b_prior_lp(&b, &theta.b_prior, None).0 - b_prior_lp(&b, &wide.b_prior, None).0
        } else {
            0.0
        };
    }
    let max_lw = weight.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    weight.iter_mut().for_each(|w| *w = (*w - max_lw).exp());
    let total: f64 = weight.iter().sum();
    weight.iter_mut().for_each(|w| *w /= total);
    let mut weight_ess = 1.0 / weight.iter().map(|w| w * w).sum::<f64>();
    // Too few effective draws (the mixture posterior sits in a small part of the wide one,
    // typically a weakly informed region in the null component): sample the mixture
    // density itself. Its chains start from the wide-prior fit, spread over both modes, so
    // R-hat shows whether they mixed between them.
    let target = if weight_ess < MIN_WEIGHT_ESS && g_n > 1 {
        (store, stats) = sample(theta)?;
        weight.fill(1.0 / per_q as f64);
        weight_ess = per_q as f64;
        AuditTarget::Mixture
    } else {
        AuditTarget::WideReweighted
    };
    let diags: Vec<_> = (0..n_q)
        .map(|q| diagnose(&store[q * per_q..(q + 1) * per_q], n_chains))
        .collect();
    let max_rhat = nan_max(diags.iter().map(|x| x.rhat));
    let min_ess_bulk = -nan_max(diags.iter().map(|x| -x.ess_bulk));
    let min_ess_tail = -nan_max(diags.iter().map(|x| -x.ess_tail));
    // Reported quantities: (name, index into store, vb mean, vb sd, vb P(|delta| > delta0)).
    let mut items: Vec<(String, usize, f64, f64, Option<f64>)> = Vec::with_capacity(2 * g_n + 2);
    let z_item = |name: String, i: usize| (name, i, vb.block[i].0, vb.block[i].1, None);
    items.push(z_item("a".to_owned(), ZLayout::A));
    for g in 1..g_n {
        items.push(z_item(format!("b_{g}"), lay.b(g)));
    }
    if let Some(design) = data.design {
        for (c, name) in design.columns().iter().enumerate() {
            items.push(z_item(format!("beta_{name}"), lay.beta(c)));
        }
        for (p, name) in design.pairs().iter().enumerate() {
            items.push(z_item(format!("u_{name}"), lay.u(p)));
        }
    }
    items.push(z_item("w".to_owned(), lay.w()));
    items.push(z_item("k".to_owned(), lay.k()));
    for (i, ds) in vb.delta.iter().enumerate() {
        let s = ds.summary;
        items.push((
            format!("delta_{}", ds.group),
            d + i,
            s.mean,
            s.sd,
            Some(ds.prob_dm),
        ));
    }
    let rows = items
        .into_iter()
        .map(|(name, q, vb_mean, vb_sd, vb_prob_dm)| {
            let x = &store[q * per_q..(q + 1) * per_q];
            let (mcmc_mean, mcmc_sd) = mean_sd(x, &weight);
            let mcmc_prob_dm = vb_prob_dm.map(|_| {
                x.iter()
                    .zip(&weight)
                    .filter(|(v, _)| v.abs() > delta0)
                    .fold(0.0, |acc, (_, w)| acc + w)
            });
            AuditRow {
                name,
                vb_mean,
                vb_sd,
                mcmc_mean,
                mcmc_sd,
                rhat: diags[q].rhat,
                ess_bulk: diags[q].ess_bulk,
                ess_tail: diags[q].ess_tail,
                mcse_mean: diags[q].mcse_mean,
                mcse_sd: diags[q].mcse_sd,
                z_bias: (vb_mean - mcmc_mean) / mcmc_sd,
                sd_ratio: vb_sd / mcmc_sd,
                vb_prob_dm,
                mcmc_prob_dm,
            }
        })
        .collect();
    Ok(RegionAudit {
        region_id: region_id.to_owned(),
        family: vb.family,
        vb_reliable: vb.reliable,
        weight_ess,
        n_sites: data.n_sites,
        n_groups: g_n,
        rows,
        max_rhat,
        min_ess_bulk,
        min_ess_tail,
        divergences: stats.divergences,
        max_depth_hits: stats.max_depth_hits,
        grad_evals: stats.grad_evals,
        k_rejections: stats.k_rejections,
        step_size: stats.step_size,
        target,
        chains: opts.chains,
        draws: opts.draws,
        seconds: start.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_seeds_differ_by_chain_region_and_seed() {
        let s = chain_seed(7, "chr1:1-100", 0);
        assert_eq!(s, chain_seed(7, "chr1:1-100", 0));
        assert_ne!(s, chain_seed(7, "chr1:1-100", 1));
        assert_ne!(s, chain_seed(7, "chr1:1-101", 0));
        assert_ne!(s, chain_seed(8, "chr1:1-100", 0));
        assert_ne!(s, region_seed(7, "chr1:1-100"));
    }
}
