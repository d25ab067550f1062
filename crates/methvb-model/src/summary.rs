//! Per-region fit and posterior summaries (MODEL.md, "What is reported per region"): the
//! wide-prior VB fit, its exact mixture posterior, importance sampling against the exact
//! posterior with the PSIS verdict and refits, a posterior predictive check, and the
//! region-level Bayesian FDR call rule.

use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use crate::Theta;
use crate::error::ModelError;
use crate::likelihood::{GroupContrasts, RegionData, ZLayout, logistic};
use crate::posterior::{
    ImportanceDraws, ImportanceSampler, group_levels, weighted_mean_sd, weighted_summary,
    wide_theta,
};
use crate::psis::khat_threshold;
use crate::start::StartModel;
use crate::vb::{Family, VbFit, VbOptions, fit_vb, init_q, region_seed};

pub use crate::posterior::PosteriorSummary;

/// Options of [`fit_region`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FitOptions {
    /// Optimiser options (family, iteration cap, tolerances, step size).
    pub vb: VbOptions,
    /// Importance draws of the mixture posterior behind every summary and the PSIS check
    /// (each costs one log-joint evaluation; MODEL.md default 1000).
    pub n_draws: u32,
    /// Effect-size threshold `delta0` of `P(|delta| > delta0)`.
    pub delta0: f64,
    /// Maximum number of refit rungs for regions whose importance sampling is unreliable.
    pub max_refit: u8,
    /// Group the differences are taken from: `delta_g = theta_g - theta_reference`. The fit
    /// itself is symmetric in the groups; only the reported contrasts depend on this, so
    /// choosing another reference flips signs and changes nothing else, exactly.
    pub reference: usize,
    /// Draw the systematic positions in two interleaved halves and report a clear null from the
    /// first ([`settles`]); every other fit gets all `n_draws`. Off by default: it saves about a
    /// fifth of the time but draws in another order (docs/model.md, "Speed", session 13).
    pub screen: bool,
    /// The amortised start of the first fit ([`StartModel`], learned in pass 1); `None`:
    /// [`crate::vb::init_q`]'s data-driven start.
    #[serde(skip)]
    pub start: Option<StartModel>,
}

impl Default for FitOptions {
    fn default() -> Self {
        Self {
            vb: VbOptions::default(),
            n_draws: 1000,
            delta0: 0.1,
            max_refit: 2,
            reference: 0,
            screen: false,
            start: None,
        }
    }
}

/// Smallest effective sample size of the importance weights for a region made reliable by its
/// PSIS diagnostic: below it the Monte Carlo sd of `prob_dm` can exceed `0.5 / sqrt(100) =
/// 0.05`.
pub const MIN_ESS: f64 = 100.0;
/// Largest move of delta by the importance correction, in posterior sds, and of prob_dm, for
/// which q's own answer counts as confirmed when the PSIS diagnostic alone does not make the
/// region reliable (docs/model.md, "The verdict").
pub const MAX_SHIFT: (f64, f64) = (0.2, 0.02);

/// The verdict on one region's importance draws (docs/model.md, "The verdict"): reliable when
/// the importance-sampling estimates are trustworthy by PSIS (`khat <= threshold`, `ess >=
/// MIN_ESS`), or when the weights still have a finite mean (`khat < 1`) and correcting q by
/// them moves neither delta nor prob_dm by more than [`MAX_SHIFT`]: q's answer for delta is
/// then confirmed by the exact posterior, even if q is off in coordinates delta does not
/// depend on (site effects, dispersion), which alone drive k-hat up.
fn verdict(khat: f64, threshold: f64, ess: f64, delta_shift: f64, prob_dm_shift: f64) -> bool {
    (khat <= threshold && ess >= MIN_ESS)
        || (khat < 1.0 && delta_shift <= MAX_SHIFT.0 && prob_dm_shift <= MAX_SHIFT.1)
}

/// Interleaved stages of a fit's importance draws when screening (`FitOptions::screen`).
const SCREEN_STAGES: usize = 2;

/// A region whose first stage of draws is reliable settles there when it is a clear null
/// (`prob_dm` below this) ...
const SETTLE_PROB_DM: f64 = 0.01;

/// ... and the importance weights do not change the spread of any delta by more than this
/// factor either way (a few heavily weighted draws of an effect component can widen it on half
/// the draws, and the shift rule, measured in the widened sd, would not see it).
const SETTLE_SD_RATIO: f64 = 1.25;

/// Whether the summaries of a reliable first stage settle the region (see [`SETTLE_PROB_DM`]).
fn settles(s: &Summaries) -> bool {
    s.prob_dm < SETTLE_PROB_DM && s.delta_sd_ratio <= SETTLE_SD_RATIO
}

/// Summary of `delta_g = theta_g - theta_reference` for one group `g` other than the
/// reference.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DeltaSummary {
    /// Group `g` compared with the reference group.
    pub group: usize,
    /// Mean, sd and 95% interval of `delta_g`.
    pub summary: PosteriorSummary,
    /// `P(|delta_g| > delta0)`.
    pub prob_dm: f64,
    /// Local false sign rate `min(P(delta_g >= 0), P(delta_g <= 0))`.
    pub lfsr: f64,
}

/// Posterior predictive check of a region's counts (docs/model.md, "Posterior predictive
/// check"): Pearson residuals `r = (m - n pi) / sqrt(n pi (1 - pi) (1 + (n - 1) phi))` of every
/// cell under posterior draws, compared with their exact mean (1) and variance under the
/// beta-binomial.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PredictiveCheck {
    /// Standardised excess of `sum r^2` over the region: large positive values mean more
    /// spread between samples than the model's dispersion allows.
    pub dispersion_z: f64,
    /// Site (index into the region's sites) with the largest standardised `sum_s r^2`.
    pub worst_site: u32,
    /// Upper-tail normal p-value of that site's statistic, Bonferroni-adjusted over the sites.
    pub worst_site_p: f64,
    /// Sample (index into the sample sheet) whose residuals sum furthest from zero over the
    /// region's sites.
    pub worst_sample: u32,
    /// Two-sided normal p-value of that sum (standardised by its number of cells),
    /// Bonferroni-adjusted over the samples.
    pub worst_sample_p: f64,
}

impl PredictiveCheck {
    /// Thresholds of [`RegionFit::misfit`]: a dispersion excess of 4 sd, or a site or a sample
    /// whose adjusted p-value is below 0.001.
    pub fn misfit(&self) -> bool {
        self.dispersion_z > 4.0 || self.worst_site_p < 1e-3 || self.worst_sample_p < 1e-3
    }
}

/// Everything reported for one region.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegionFit {
    /// Family of the wide-prior q the mixture posterior was built from.
    pub family: Family,
    /// `theta_g = mean_j logistic(a + c_g + exp(w) v_j)` per group `g = 0..G`.
    pub theta: Vec<PosteriorSummary>,
    /// The reference group of the contrasts ([`FitOptions::reference`]).
    pub reference: usize,
    /// `delta_g = theta_g - theta_reference` for every other group, in group order (empty
    /// when `G = 1`).
    pub delta: Vec<DeltaSummary>,
    /// Region-level `P(max_g |delta_g| > delta0)` (equals `delta[0].prob_dm` when `G = 2`; 0
    /// when `G = 1`).
    pub prob_dm: f64,
    /// Posterior error probability `1 - prob_dm`.
    pub pep: f64,
    /// Posterior probability that the region's group effects come from the null ("no
    /// difference") component of the prior (0 when `G = 1`).
    pub p_null: f64,
    /// Posterior mean of the dispersion `phi = 1 / (1 + kappa)`.
    pub phi_mean: f64,
    /// Posterior sd of `phi`.
    pub phi_sd: f64,
    /// Posterior mean and sd of the region-level block `(a, b_1..b_{G-1}, w, k)` under the
    /// mixture prior.
    pub block: Vec<(f64, f64)>,
    /// Mean of the wide-prior q over `z = (a, b_1..b_{G-1}, w, k, v_1..v_J)`.
    pub mu: Vec<f64>,
    /// Marginal sd of the wide-prior q for every coordinate of `z`.
    pub sd: Vec<f64>,
    /// Covariance of the wide-prior q over the block `(a, b, w, k)`, `(G+2) x (G+2)` row-major.
    pub cov_block: Vec<f64>,
    /// ELBO of the mixture posterior `q_mix` (excludes the data constant `sum log C(n, m)`).
    pub elbo: f64,
    /// Expected log-likelihood under `q_mix` (same constant excluded): with [`Self::kl`],
    /// `elbo = expected_loglik - kl`.
    pub expected_loglik: f64,
    /// `KL(q_mix || prior)`: near zero when q has drifted to the prior.
    pub kl: f64,
    /// Iterations of the optimiser run whose q is reported.
    pub iterations: u32,
    /// Whether that run met the convergence rule.
    pub converged: bool,
    /// PSIS k-hat of the importance weights of `q_mix` against the exact posterior.
    pub khat: f64,
    /// Threshold used for `khat` (depends on the number of draws).
    pub khat_threshold: f64,
    /// Effective sample size of the smoothed importance weights.
    pub ess: f64,
    /// The verdict: the delta summaries can be used (see [`MIN_ESS`], [`MAX_SHIFT`] and
    /// docs/model.md, "The verdict").
    pub reliable: bool,
    /// Refit rungs used (0 = the first fit was reported as is).
    pub refit: u8,
    /// How far the importance correction moved delta, in posterior sds (largest over the
    /// groups): `|E_w[delta] - E_q[delta]| / sd_w(delta)`.
    pub delta_shift: f64,
    /// How far the importance correction moved prob_dm.
    pub prob_dm_shift: f64,
    /// Posterior predictive check of the counts.
    pub ppc: PredictiveCheck,
    /// The check flags the region: the model does not describe its counts (see
    /// [`PredictiveCheck::misfit`]).
    pub misfit: bool,
}

/// Number of posterior draws (resampled by weight) behind the predictive check.
const PPC_DRAWS: usize = 64;

/// Mean, variance and kurtosis factor of a beta-binomial cell: returns
/// `(n pi, var, Var(r^2))` for the standardised residual `r`.
fn beta_binomial_moments(n: f64, pi: f64, kappa: f64) -> (f64, f64, f64) {
    let (a, b) = (pi * kappa, (1.0 - pi) * kappa);
    let s = a + b;
    let var = n * pi * (1.0 - pi) * (s + n) / (s + 1.0);
    // Kurtosis E[r^4] of BetaBinomial(n, a, b) (closed form); Var(r^2) = kurtosis - 1.
    let kurtosis = if kappa > 1e12 {
        // Binomial limit.
        3.0 + (1.0 - 6.0 * pi * (1.0 - pi)) / (n * pi * (1.0 - pi))
    } else {
        let lead = s * s * (1.0 + s) / (n * a * b * (s + 2.0) * (s + 3.0) * (s + n));
        lead * (s * (s - 1.0 + 6.0 * n) + 3.0 * a * b * (n - 2.0) + 6.0 * n * n
            - 3.0 * a * b * n * (6.0 - n) / s
            - 18.0 * a * b * n * n / (s * s))
    };
    (n * pi, var, (kurtosis - 1.0).max(0.0))
}

/// The posterior predictive check from `PPC_DRAWS` draws resampled systematically by weight.
fn predictive_check(data: &RegionData, draws: &ImportanceDraws) -> PredictiveCheck {
    let lay = data.layout();
    let (j_n, s_n, g_n) = (data.n_sites, data.n_samples, data.n_groups);
    let d = lay.dim();
    let contrasts = GroupContrasts { n_groups: g_n };
    let mut site_obs = vec![0.0; j_n];
    let mut site_var = vec![0.0; j_n];
    let mut site_cells = vec![0.0; j_n];
    let mut sample_sum = vec![0.0; s_n];
    let mut sample_cells = vec![0.0; s_n];
    let (mut obs, mut var, mut cells) = (0.0, 0.0, 0.0);
    let mut offset = [0.0; crate::likelihood::MAX_GROUPS];
    let mut class_offset = [0.0; crate::design::MAX_CLASSES];
    let (sample_class, _) = data.classes();
    let n_w = draws.weight.len();
    let mut cum = 0.0;
    let mut next = 0usize;
    for t in 0..n_w {
        cum += draws.weight[t];
        // Systematic resampling: draw t is taken once for every grid point (i + 0.5) / M
        // below its cumulative weight.
        while next < PPC_DRAWS && (next as f64 + 0.5) / PPC_DRAWS as f64 <= cum {
            next += 1;
            let z = &draws.z[t * d..(t + 1) * d];
            let (a, ew, kappa) = (z[ZLayout::A], z[lay.w()].exp(), z[lay.k()].exp());
            contrasts.offsets(&z[1..g_n], &mut offset);
            data.class_offsets(z, &offset, &mut class_offset);
            for j in 0..j_n {
                let site = a + ew * z[lay.v(j)];
                for s in 0..s_n {
                    let n = data.coverage[j * s_n + s];
                    if n == 0 {
                        continue;
                    }
                    let pi =
                        logistic(site + class_offset[sample_class[s]]).clamp(1e-12, 1.0 - 1e-12);
                    let (mean, v, v_r2) = beta_binomial_moments(f64::from(n), pi, kappa);
                    let r = (f64::from(data.methylated[j * s_n + s]) - mean) / v.sqrt();
                    site_obs[j] += r * r;
                    site_var[j] += v_r2;
                    site_cells[j] += 1.0;
                    sample_sum[s] += r;
                    sample_cells[s] += 1.0;
                }
            }
        }
    }
    let m = next.max(1) as f64;
    let (mut worst, mut worst_z) = (0usize, f64::NEG_INFINITY);
    for j in 0..j_n {
        obs += site_obs[j];
        var += site_var[j];
        cells += site_cells[j];
        if site_cells[j] > 0.0 {
            // Averages over the draws: the posterior mean of the discrepancy, against its
            // mean (one per cell) and the variance of a single replicate.
            let zj = (site_obs[j] / m - site_cells[j] / m) / (site_var[j] / m).sqrt();
            if zj > worst_z {
                (worst, worst_z) = (j, zj);
            }
        }
    }
    let dispersion_z = if cells > 0.0 {
        (obs / m - cells / m) / (var / m).sqrt()
    } else {
        0.0
    };
    let upper_tail = |z: f64| {
        if z.is_finite() {
            0.5 * statrs::function::erf::erfc(z / std::f64::consts::SQRT_2)
        } else {
            1.0
        }
    };
    // A sample whose residuals lean one way at every site (a shifted or mislabelled sample):
    // under the model the cells are independent given the parameters, so the sum of a
    // sample's residuals has variance equal to its number of cells.
    let (mut worst_sample, mut worst_sample_z) = (0usize, 0.0);
    for s in 0..s_n {
        if sample_cells[s] > 0.0 {
            let zs = ((sample_sum[s] / m) / (sample_cells[s] / m).sqrt()).abs();
            if zs > worst_sample_z {
                (worst_sample, worst_sample_z) = (s, zs);
            }
        }
    }
    PredictiveCheck {
        dispersion_z,
        worst_site: worst as u32,
        worst_site_p: (upper_tail(worst_z) * j_n.max(1) as f64).min(1.0),
        worst_sample: worst_sample as u32,
        worst_sample_p: (2.0 * upper_tail(worst_sample_z) * s_n as f64).min(1.0),
    }
}

/// Below this, a Monte Carlo probability (prob_dm, lfsr) cannot be told from zero by ~1000
/// weighted draws, and the reported value is a normal approximation of the tail instead (see
/// [`tail_probability`]).
pub const TAIL_FROM: f64 = 0.01;

/// `P(|x| > t)` (two tails) or `P(x > t)` for `x ~ N(mean, sd^2)`, by the complementary error
/// function (exact far into the tails, where `1 - Phi` would round to zero).
fn normal_tail(mean: f64, sd: f64, t: f64, two_sided: bool) -> f64 {
    let upper = |z: f64| 0.5 * statrs::function::erf::erfc(z / std::f64::consts::SQRT_2);
    let sd = sd.max(1e-300);
    if two_sided {
        upper((t - mean) / sd) + upper((t + mean) / sd)
    } else {
        upper((t - mean) / sd)
    }
}

/// A small posterior probability of delta from its mixture components: within each component
/// the draws' weighted mean and sd of delta, a normal tail, weighted by the component's
/// posterior weight. `kind` picks the event: `|delta| > delta0`, or the smaller of
/// `delta >= 0` and `delta <= 0` (the lfsr). The Monte Carlo estimate of a probability below
/// [`TAIL_FROM`] rests on a handful of draws or none (half the null regions get exactly 0,
/// which ranks a region with a small but certain effect with the nulls); the normal tail
/// keeps ordering them by their evidence.
fn tail_probability(col: &[f64], draws: &ImportanceDraws, delta0: f64, lfsr: bool) -> f64 {
    let k_max = draws.component.iter().copied().max().unwrap_or(0);
    let (mut pos, mut neg, mut two) = (0.0, 0.0, 0.0);
    for k in 0..=k_max {
        let (mut wk, mut m1, mut m2) = (0.0, 0.0, 0.0);
        for ((x, w), _) in col
            .iter()
            .zip(&draws.weight)
            .zip(&draws.component)
            .filter(|(_, c)| **c == k)
        {
            wk += w;
            m1 += w * x;
            m2 += w * x * x;
        }
        if wk <= 0.0 {
            continue;
        }
        let mean = m1 / wk;
        let sd = (m2 / wk - mean * mean).max(0.0).sqrt();
        if lfsr {
            pos += wk * normal_tail(mean, sd, 0.0, false);
            neg += wk * normal_tail(-mean, sd, 0.0, false);
        } else {
            two += wk * normal_tail(mean, sd, delta0, true);
        }
    }
    if lfsr { pos.min(neg) } else { two }
}

/// The reported summaries of one set of importance draws.
struct Summaries {
    /// Largest `|E_w[delta_g] - E_q[delta_g]| / sd_w(delta_g)` over the groups: how far the
    /// importance correction moved each delta, in posterior sds.
    delta_shift: f64,
    /// Largest ratio (either way) of a delta's weighted sd to its sd under q (equal weights).
    delta_sd_ratio: f64,
    /// `|prob_dm - P_q(|delta| > delta0)|`: how far the correction moved prob_dm.
    prob_dm_shift: f64,
    theta: Vec<PosteriorSummary>,
    delta: Vec<DeltaSummary>,
    prob_dm: f64,
    p_null: f64,
    phi: (f64, f64),
    block: Vec<(f64, f64)>,
}

fn summarise(
    data: &RegionData,
    draws: &ImportanceDraws,
    delta0: f64,
    reference: usize,
) -> Summaries {
    let lay = data.layout();
    let (g_n, nb, d) = (data.n_groups, lay.n_block(), lay.dim());
    let w = &draws.weight;
    let s = w.len();
    let mut levels = vec![0.0; g_n * s];
    let mut scratch = vec![0.0; data.n_sites];
    let mut row = vec![0.0; g_n];
    let mut phi = vec![0.0; s];
    let mut any_dm = 0.0;
    let mut any_dm_q = 0.0;
    for t in 0..s {
        let z = &draws.z[t * d..(t + 1) * d];
        group_levels(z, lay, &mut scratch, &mut row);
        for g in 0..g_n {
            levels[g * s + t] = row[g];
        }
        if (0..g_n).any(|g| (row[g] - row[reference]).abs() > delta0) {
            any_dm += w[t];
            any_dm_q += 1.0 / s as f64;
        }
        phi[t] = logistic(-z[lay.k()]);
    }
    let mut pairs = Vec::with_capacity(s);
    let mut col = vec![0.0; s];
    let mut delta = Vec::with_capacity(g_n.saturating_sub(1));
    let mut delta_shift: f64 = 0.0;
    let mut delta_sd_ratio: f64 = 1.0;
    for g in (0..g_n).filter(|&g| g != reference) {
        let (mut dm, mut pos, mut neg) = (0.0, 0.0, 0.0);
        for t in 0..s {
            let dv = levels[g * s + t] - levels[reference * s + t];
            col[t] = dv;
            if dv.abs() > delta0 {
                dm += w[t];
            }
            if dv >= 0.0 {
                pos += w[t];
            }
            if dv <= 0.0 {
                neg += w[t];
            }
        }
        let summary = weighted_summary(&col, w, &mut pairs);
        let q_mean = col.iter().sum::<f64>() / s as f64;
        delta_shift = delta_shift.max((summary.mean - q_mean).abs() / summary.sd.max(1e-12));
        let q_var = col.iter().map(|x| (x - q_mean) * (x - q_mean)).sum::<f64>() / (s - 1) as f64;
        let ratio = summary.sd.max(1e-12) / q_var.sqrt().max(1e-12);
        delta_sd_ratio = delta_sd_ratio.max(ratio).max(1.0 / ratio);
        let small = |mc: f64, lfsr: bool| {
            if mc < TAIL_FROM {
                tail_probability(&col, draws, delta0, lfsr).min(TAIL_FROM)
            } else {
                mc.min(1.0)
            }
        };
        delta.push(DeltaSummary {
            group: g,
            summary,
            prob_dm: small(dm, false),
            lfsr: small(pos.min(neg), true),
        });
    }
    let theta = (0..g_n)
        .map(|g| weighted_summary(&levels[g * s..(g + 1) * s], w, &mut pairs))
        .collect();
    let block = (0..nb)
        .map(|i| {
            for (t, c) in col.iter_mut().enumerate() {
                *c = draws.z[t * d + i];
            }
            weighted_mean_sd(&col, w)
        })
        .collect();
    let p_null = if g_n > 1 {
        draws
            .null_given_b
            .iter()
            .zip(w)
            .map(|(p, w)| p * w)
            .sum::<f64>()
    } else {
        0.0
    };
    // The region-level probability: the Monte Carlo estimate, or below TAIL_FROM the
    // groups' tails combined as if independent.
    let prob_dm = if g_n < 2 {
        0.0
    } else if any_dm < TAIL_FROM {
        (1.0 - delta.iter().map(|d| 1.0 - d.prob_dm).product::<f64>()).min(TAIL_FROM)
    } else {
        any_dm.min(1.0)
    };
    Summaries {
        delta_shift,
        delta_sd_ratio,
        prob_dm_shift: (any_dm - any_dm_q).abs(),
        theta,
        delta,
        prob_dm,
        p_null,
        phi: weighted_mean_sd(&phi, w),
        block,
    }
}

/// Fits one region: a VB fit under the wide prior of `b`, its mixture posterior under
/// `theta.b_prior`, importance sampling of it against the exact posterior, refits while the
/// weights are unreliable, summaries and the predictive check.
///
/// The random stream is `StdRng::seed_from_u64(region_seed(seed, region_id))`, so the result
/// depends only on the inputs, not on the thread that runs it. Refit rungs (up to
/// `opts.max_refit`, only while the region is unreliable): each moves to the next larger
/// family (mean-field -> structured -> coupled), warm-starts from the previous q with a
/// quartered tolerance and a halved step size, and takes new draws; the last rung's result
/// is reported (docs/model.md, "The verdict").
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
    data.check_theta(theta)?;
    if opts.delta0.is_nan() || opts.delta0 < 0.0 || opts.n_draws < 100 {
        return Err(ModelError::Options(
            "need delta0 >= 0 and n_draws >= 100".into(),
        ));
    }
    if opts.reference >= data.n_groups {
        return Err(ModelError::Options(format!(
            "reference group {} is not below the number of groups {}",
            opts.reference, data.n_groups
        )));
    }
    let wide = wide_theta(theta);
    let mut rng = StdRng::seed_from_u64(region_seed(seed, region_id));
    let mut vb = opts.vb.clone();
    let n = opts.n_draws as usize;
    let reliable = |d: &ImportanceDraws, s: &Summaries| {
        verdict(
            d.khat,
            khat_threshold(d.weight.len()),
            d.ess,
            s.delta_shift,
            s.prob_dm_shift,
        )
    };
    // The draws of one fit and their summaries. With `opts.screen` the first half of the
    // systematic positions is drawn first; a clear null it settles is reported from them.
    let draw = |fit: &VbFit, rng: &mut StdRng| {
        let mut sampler =
            ImportanceSampler::new(data, theta, &fit.q, n, rng).ok_or(ModelError::Shape {
                what: "degenerate covariance of b in the variational fit",
            })?;
        let summarised = |draws: ImportanceDraws| {
            let sums = summarise(data, &draws, opts.delta0, opts.reference);
            (draws, sums)
        };
        if !opts.screen {
            sampler.draw_stage(0, 1, rng);
            return Ok(summarised(sampler.into_draws()));
        }
        sampler.draw_stage(0, SCREEN_STAGES, rng);
        let first = summarised(sampler.draws());
        if reliable(&first.0, &first.1) && settles(&first.1) {
            return Ok(first);
        }
        for stage in 1..SCREEN_STAGES {
            sampler.draw_stage(stage, SCREEN_STAGES, rng);
        }
        Ok::<_, ModelError>(summarised(sampler.into_draws()))
    };
    let start = opts
        .start
        .as_ref()
        .map(|m| m.start(data, &init_q(data, &wide, vb.family)));
    let mut fit = fit_vb(data, &wide, &vb, start.as_ref(), &mut rng);
    let (mut draws, mut sums) = draw(&fit, &mut rng)?;
    let mut rung = 0u8;
    while !reliable(&draws, &sums) && rung < opts.max_refit {
        rung += 1;
        vb.family = match vb.family {
            Family::MeanField => Family::Structured,
            Family::Structured | Family::Coupled => Family::Coupled,
        };
        vb.rel_tol *= 0.25;
        vb.lr *= 0.5;
        // The latest (largest family, longest run) rung is reported, not the best k-hat, so
        // that k-hat is not biased low by selecting the minimum of noisy estimates.
        fit = fit_vb(data, &wide, &vb, Some(&fit.q), &mut rng);
        (draws, sums) = draw(&fit, &mut rng)?;
    }
    let ppc = predictive_check(data, &draws);
    let thr = khat_threshold(draws.weight.len());
    let reliable = reliable(&draws, &sums);
    Ok(RegionFit {
        family: fit.q.family,
        theta: sums.theta,
        reference: opts.reference,
        delta: sums.delta,
        prob_dm: sums.prob_dm,
        pep: 1.0 - sums.prob_dm,
        p_null: sums.p_null,
        phi_mean: sums.phi.0,
        phi_sd: sums.phi.1,
        block: sums.block,
        mu: fit.q.mu().to_vec(),
        sd: fit.q.marginal_sd(),
        cov_block: fit.q.covariance_block(),
        elbo: draws.elbo,
        expected_loglik: draws.expected_loglik,
        kl: draws.kl,
        iterations: fit.iterations,
        converged: fit.converged,
        khat: draws.khat,
        khat_threshold: thr,
        ess: draws.ess,
        reliable,
        refit: rung,
        delta_shift: sums.delta_shift,
        prob_dm_shift: sums.prob_dm_shift,
        misfit: ppc.misfit(),
        ppc,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beta_binomial_moments_match_direct_sums() {
        use crate::likelihood::beta_binomial_ln_pmf;
        for (n, pi, kappa) in [
            (10u32, 0.3, 4.0),
            (25, 0.9, 50.0),
            (3, 0.5, 0.7),
            (40, 0.05, 1e3),
        ] {
            let (mean, var, v_r2) = beta_binomial_moments(f64::from(n), pi, kappa);
            let (a, b) = (pi * kappa, (1.0 - pi) * kappa);
            let p: Vec<f64> = (0..=n)
                .map(|m| beta_binomial_ln_pmf(m, n, a, b).0.exp())
                .collect();
            let m1: f64 = p.iter().enumerate().map(|(m, p)| m as f64 * p).sum();
            let m2: f64 = p
                .iter()
                .enumerate()
                .map(|(m, p)| (m as f64 - m1).powi(2) * p)
                .sum();
            let m4: f64 = p
                .iter()
                .enumerate()
                .map(|(m, p)| (m as f64 - m1).powi(4) * p)
                .sum();
            assert!((mean - m1).abs() < 1e-9 * (1.0 + m1));
            assert!((var - m2).abs() < 1e-9 * (1.0 + m2));
            let want = m4 / (m2 * m2) - 1.0;
            assert!(
                (v_r2 - want).abs() < 1e-7 * (1.0 + want),
                "{n} {pi} {kappa}: {v_r2} vs {want}"
            );
        }
    }
}
