//! The posterior of one region under the scale-mixture prior of `b`, built exactly from a
//! Gaussian fit under a wide normal prior, and importance sampling of it against the exact
//! posterior (docs/model.md, "Mixture posterior and importance sampling").
//!
//! Every region is fitted once with `b ~ N(0, WIDE_SD^2 I)` (a unimodal problem a Gaussian q
//! follows well). Writing the mixture prior as the wide prior times the ratio `r(b) =
//! prior_mix(b) / prior_wide(b)`, the exact posterior is `p_mix(z | y) ∝ p_wide(z | y) r(b)`,
//! and the same reweighting of q gives its mixture counterpart in closed form:
//! `q_mix(z) = q(z) r(b) / C` is, per component `k`, a Gaussian (q with the component's
//! precision added in the `b` directions), with weight `w_k Z_k / C`, `Z_k = E_q[N(b; 0,
//! sd_k^2 I) / N(b; 0, WIDE_SD^2 I)]`, `C = sum_k w_k Z_k`. No Gaussian has to choose between
//! the "no difference" and the effect modes: both are carried, with their weights.
//!
//! Importance weights of draws of `q_mix` against the exact mixture posterior reduce to
//! `p_wide(y, z) / q(z)` (the prior ratio cancels), so the correction and its PSIS diagnostic
//! measure only how well q follows the wide-prior posterior, in the region where `q_mix` puts
//! its mass.

use rand::RngExt;
use rand::rngs::StdRng;
use rand_distr::StandardNormal;

use crate::likelihood::{
    GroupContrasts, LANES, RegionData, ZLayout, b_prior_lp, log_joint, log_joint_lanes,
};
use crate::linalg::{cholesky, cholesky_inverse, cholesky_ln_det, cholesky_solve};
use crate::psis::psis_smooth;
use crate::theta::{ScaleMixture, Theta};
use crate::vb::GaussianQ;

/// Standard deviation (logit scale) of the wide normal prior of every contrast coordinate of
/// `b` in the variational fits: at least the widest component of the default grid, so that
/// moving from it to any component only adds precision.
pub const WIDE_SD: f64 = 8.0;

/// Theta with the wide prior of `b` the fits use.
pub fn wide_theta(theta: &Theta) -> Theta {
    theta.with_b_prior(ScaleMixture::single(WIDE_SD))
}

/// The posterior of `b` under each component of the mixture prior, given a Gaussian
/// approximation `N(m, S)` of its posterior under the wide prior.
#[derive(Debug, Clone)]
pub struct ComponentPosteriors {
    /// Number of contrast coordinates `G - 1`.
    pub dim: usize,
    /// Log posterior weight of each component (normalised; `-inf` for a zero prior weight).
    pub log_weight: Vec<f64>,
    /// `ln C = ln sum_k w_k Z_k`: log evidence of the mixture prior relative to the wide one.
    pub log_evidence_ratio: f64,
    /// Posterior mean of `b` per component (`K x dim`).
    mean: Vec<f64>,
    /// Lower Cholesky factor of the posterior covariance per component (`K x dim x dim`).
    chol: Vec<f64>,
}

/// `ln Z_k` of every component: the evidence of `N(0, sd_k^2 I)` relative to the wide prior
/// for data whose wide-prior posterior of `b` is `N(m, S)` (`S` row-major `dim x dim`), with
/// each component's posterior mean and covariance. With `t = 1/sd_k^2 - 1/WIDE_SD^2` and
/// `M = I + t S`: `ln Z_k = dim ln(WIDE_SD / sd_k) - ln|M| / 2 - t m' M^-1 m / 2`, mean
/// `M^-1 m`, covariance `M^-1 S = (S^-1 + t I)^-1`. `None` if `S` is not positive definite.
#[allow(clippy::type_complexity)]
fn per_component(
    m: &[f64],
    s: &[f64],
    prior: &ScaleMixture,
) -> Option<Vec<(f64, Vec<f64>, Vec<f64>)>> {
    let d = m.len();
    cholesky(s, d)?;
    let mut out = Vec::with_capacity(prior.len());
    for &sd in &prior.sd {
        let t = (1.0 / (sd * sd) - 1.0 / (WIDE_SD * WIDE_SD)).max(0.0);
        let mut mm = vec![0.0; d * d];
        for i in 0..d {
            for j in 0..d {
                mm[i * d + j] = t * s[i * d + j] + f64::from(u8::from(i == j));
            }
        }
        let lm = cholesky(&mm, d)?;
        let mut mean = m.to_vec();
        cholesky_solve(&lm, d, &mut mean);
        let quad: f64 = t * m.iter().zip(&mean).map(|(a, b)| a * b).sum::<f64>();
        let ln_z = d as f64 * (WIDE_SD / sd).ln() - 0.5 * cholesky_ln_det(&lm, d) - 0.5 * quad;
        // Covariance M^-1 S, column by column, symmetrised against rounding.
        let mut cov = vec![0.0; d * d];
        let mut col = vec![0.0; d];
        for j in 0..d {
            for i in 0..d {
                col[i] = s[i * d + j];
            }
            cholesky_solve(&lm, d, &mut col);
            for i in 0..d {
                cov[i * d + j] = col[i];
            }
        }
        for i in 0..d {
            for j in 0..i {
                let avg = 0.5 * (cov[i * d + j] + cov[j * d + i]);
                cov[i * d + j] = avg;
                cov[j * d + i] = avg;
            }
        }
        out.push((ln_z, mean, cholesky(&cov, d)?));
    }
    Some(out)
}

/// The posterior of the contrast coordinates `b` under a wide-prior fit: what a region tells
/// empirical Bayes about the prior of `b`.
#[derive(Debug, Clone, PartialEq)]
pub struct BPosterior {
    /// Mean of `b` under q.
    pub mean: Vec<f64>,
    /// Covariance of `b` under q (`dim x dim`, row-major).
    pub cov: Vec<f64>,
}

impl BPosterior {
    /// The `b` block of the wide-prior fit `q` of a region with `n_groups` groups.
    pub fn of(q: &GaussianQ, n_groups: usize) -> Self {
        let (mean, cov) = b_block(q, n_groups);
        Self { mean, cov }
    }

    /// `ln Z_k` for every component of `prior` (see [`ComponentPosteriors`]); `None` if the
    /// covariance is degenerate.
    pub fn log_evidence(&self, prior: &ScaleMixture) -> Option<Vec<f64>> {
        Some(
            per_component(&self.mean, &self.cov, prior)?
                .into_iter()
                .map(|c| c.0)
                .collect(),
        )
    }
}

/// Mean and covariance of the contrast coordinates `b` under `q`.
fn b_block(q: &GaussianQ, n_groups: usize) -> (Vec<f64>, Vec<f64>) {
    let d = n_groups - 1;
    let nb = q.n_block;
    let cov = q.covariance_block();
    let m = q.mu()[1..1 + d].to_vec();
    let mut s = vec![0.0; d * d];
    for i in 0..d {
        for j in 0..d {
            s[i * d + j] = cov[(1 + i) * nb + 1 + j];
        }
    }
    (m, s)
}

impl ComponentPosteriors {
    /// The component posteriors of `b` given the wide-prior fit `q` and the mixture `prior`.
    pub fn new(q: &GaussianQ, n_groups: usize, prior: &ScaleMixture) -> Option<Self> {
        let dim = n_groups.saturating_sub(1);
        if dim == 0 {
            return Some(Self {
                dim,
                log_weight: vec![0.0],
                log_evidence_ratio: 0.0,
                mean: Vec::new(),
                chol: Vec::new(),
            });
        }
        let (m, s) = b_block(q, n_groups);
        let comps = per_component(&m, &s, prior)?;
        let log_joint_w: Vec<f64> = comps
            .iter()
            .zip(&prior.weight)
            .map(|((ln_z, _, _), w)| w.ln() + ln_z)
            .collect();
        let mx = log_joint_w
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max);
        let lse = mx + log_joint_w.iter().map(|l| (l - mx).exp()).sum::<f64>().ln();
        let mut mean = Vec::with_capacity(comps.len() * dim);
        let mut chol = Vec::with_capacity(comps.len() * dim * dim);
        for (_, mk, lk) in comps {
            mean.extend(mk);
            chol.extend(lk);
        }
        Some(Self {
            dim,
            log_weight: log_joint_w.iter().map(|l| l - lse).collect(),
            log_evidence_ratio: lse,
            mean,
            chol,
        })
    }

    /// Posterior weight of component `k`.
    pub fn weight(&self, k: usize) -> f64 {
        self.log_weight[k].exp()
    }

    /// A draw of `b` from component `k` given standard normal `xi` (length `dim`).
    fn draw_b(&self, k: usize, xi: &[f64], out: &mut [f64]) {
        let d = self.dim;
        let (m, l) = (
            &self.mean[k * d..(k + 1) * d],
            &self.chol[k * d * d..(k + 1) * d * d],
        );
        for i in 0..d {
            out[i] = m[i] + (0..=i).map(|j| l[i * d + j] * xi[j]).sum::<f64>();
        }
    }
}

/// Draws of the mixture posterior `q_mix` built from a wide-prior fit `q`.
///
/// A draw of `q_mix` is a draw of `q` whose `b` is replaced by a draw of a component
/// posterior, the other coordinates following `b` as `q`'s conditional law says (Matheron's
/// update in the standard-normal coordinates: `eps' = eps + L_B' S^-1 (b* - b(eps))`, which
/// changes only the block coordinates).
pub struct MixtureSampler<'a> {
    q: &'a GaussianQ,
    /// The component posteriors.
    pub components: ComponentPosteriors,
    sd: Vec<f64>,
    /// Rows of the block Cholesky factor belonging to `b` (`dim x n_block`).
    l_b: Vec<f64>,
    /// `S^-1`, `S` the covariance of `b` under q (`dim x dim`).
    s_inv: Vec<f64>,
    /// Cumulative posterior weights of the components.
    cumulative: Vec<f64>,
}

impl<'a> MixtureSampler<'a> {
    /// A sampler for the wide-prior fit `q` of a region with `n_groups` groups under `prior`;
    /// `None` if q's covariance of `b` is degenerate.
    pub fn new(q: &'a GaussianQ, n_groups: usize, prior: &ScaleMixture) -> Option<Self> {
        let components = ComponentPosteriors::new(q, n_groups, prior)?;
        let d = components.dim;
        let nb = q.n_block;
        let chol = q.cholesky_block();
        let mut l_b = vec![0.0; d * nb];
        for h in 0..d {
            l_b[h * nb..(h + 1) * nb].copy_from_slice(&chol[(1 + h) * nb..(2 + h) * nb]);
        }
        let s_inv = if d > 0 {
            let (_, s) = b_block(q, n_groups);
            cholesky_inverse(&cholesky(&s, d)?, d)
        } else {
            Vec::new()
        };
        let mut acc = 0.0;
        let cumulative = (0..components.log_weight.len())
            .map(|k| {
                acc += components.weight(k);
                acc
            })
            .collect();
        Some(Self {
            q,
            components,
            sd: q.log_sd().iter().map(|l| l.exp()).collect(),
            l_b,
            s_inv,
            cumulative,
        })
    }

    /// The component of the `u`-quantile of the component weights (`u` in `[0, 1)`).
    pub fn component_at(&self, u: f64) -> usize {
        let total = self.cumulative.last().copied().unwrap_or(1.0);
        self.cumulative
            .iter()
            .position(|&c| c > u * total)
            .unwrap_or(self.cumulative.len() - 1)
    }

    /// One draw from component `k` into `z`: `eps` holds D standard normals on entry and the
    /// standard-normal coordinates of `z` under q on exit; `xi` holds `dim` standard normals.
    /// Returns `ln q(z)`.
    pub fn draw(&self, k: usize, eps: &mut [f64], xi: &[f64], z: &mut [f64]) -> f64 {
        let d = self.components.dim;
        if d > 0 {
            let nb = self.q.n_block;
            let mu = self.q.mu();
            let mut b_now = [0.0; crate::likelihood::MAX_GROUPS];
            let mut b_new = [0.0; crate::likelihood::MAX_GROUPS];
            for h in 0..d {
                b_now[h] = mu[1 + h] + (0..nb).map(|t| self.l_b[h * nb + t] * eps[t]).sum::<f64>();
            }
            self.components.draw_b(k, xi, &mut b_new[..d]);
            let mut u = [0.0; crate::likelihood::MAX_GROUPS];
            for (i, ui) in u.iter_mut().enumerate().take(d) {
                *ui = (0..d)
                    .map(|j| self.s_inv[i * d + j] * (b_new[j] - b_now[j]))
                    .sum();
            }
            for (t, e) in eps.iter_mut().enumerate().take(nb) {
                *e += (0..d).map(|h| self.l_b[h * nb + t] * u[h]).sum::<f64>();
            }
        }
        self.q.transform_sd(&self.sd, eps, z);
        self.q.ln_q_at_eps(eps)
    }
}

/// Weighted mean, sd and central 95% interval.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
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

/// Weighted mean and sd of draws `x` with normalised weights `w` (the sd with the
/// small-sample correction `1 / (1 - sum w^2)` of reliability weights).
pub fn weighted_mean_sd(x: &[f64], w: &[f64]) -> (f64, f64) {
    let mean: f64 = x.iter().zip(w).map(|(x, w)| x * w).sum();
    let var: f64 = x
        .iter()
        .zip(w)
        .map(|(x, w)| w * (x - mean) * (x - mean))
        .sum();
    let w2: f64 = w.iter().map(|w| w * w).sum();
    (mean, (var / (1.0 - w2).max(1e-12)).sqrt())
}

/// Summary of draws `x` with normalised weights `w`: the weighted mean, the weighted sd (with
/// the small-sample correction `1 / (1 - sum w^2)` of reliability weights) and quantiles of
/// the weighted empirical distribution, each draw's weight centred on its value (with equal
/// weights this is R's type-5 quantile). `pairs` is scratch space.
///
/// Only the tails are put in order: the smallest and the largest eighth of the draws are
/// selected and sorted (a full sort of 1000 draws took 3-4% of a run); when a quantile is not
/// inside its eighth (weights piled on a few draws), all draws are sorted.
pub fn weighted_summary(x: &[f64], w: &[f64], pairs: &mut Vec<(f64, f64)>) -> PosteriorSummary {
    const LOWER: f64 = 0.025;
    const UPPER: f64 = 0.975;
    let (mean, sd) = weighted_mean_sd(x, w);
    pairs.clear();
    pairs.extend(x.iter().copied().zip(w.iter().copied()));
    let by_value = |a: &(f64, f64), b: &(f64, f64)| a.0.total_cmp(&b.0);
    let n = pairs.len();
    let tail = n / 8;
    let from_tails = if tail > 0 {
        pairs.select_nth_unstable_by(tail, by_value);
        pairs[tail..].select_nth_unstable_by(n - 2 * tail, by_value);
        pairs[..tail].sort_unstable_by(by_value);
        pairs[n - tail..].sort_unstable_by(by_value);
        let below_top: f64 = pairs[..n - tail].iter().map(|p| p.1).sum();
        centred_quantile(&pairs[..tail], 0.0, LOWER, false).zip(centred_quantile(
            &pairs[n - tail..],
            below_top,
            UPPER,
            true,
        ))
    } else {
        None
    };
    let (q025, q975) = from_tails.unwrap_or_else(|| {
        pairs.sort_unstable_by(by_value);
        let q = |p| centred_quantile(pairs, 0.0, p, true).unwrap_or(f64::NAN);
        (q(LOWER), q(UPPER))
    });
    PosteriorSummary {
        mean,
        sd,
        q025,
        q975,
    }
}

/// The `p` quantile of the weighted draws `sorted` (`(value, weight)`, in order of value),
/// which follow draws of total weight `below`: the cumulative weight at each draw's centre,
/// linearly interpolated between the draws on either side of `p`. `None` when `p` is not
/// reached inside `sorted`, or at its first draw while draws of unknown value precede it;
/// with `to_end` (no draw follows `sorted`) a `p` beyond every centre gives the largest draw.
fn centred_quantile(sorted: &[(f64, f64)], mut below: f64, p: f64, to_end: bool) -> Option<f64> {
    let mut prev: Option<(f64, f64)> = None;
    for &(x, w) in sorted {
        let centre = below + 0.5 * w;
        if centre >= p {
            return match prev {
                Some((c0, x0)) if centre > c0 => Some(x0 + (x - x0) * (p - c0) / (centre - c0)),
                Some(_) => Some(x),
                None if below == 0.0 => Some(x),
                None => None,
            };
        }
        prev = Some((centre, x));
        below += w;
    }
    if to_end { prev.map(|(_, x)| x) } else { None }
}

/// What importance sampling of a region's mixture posterior gives.
#[derive(Debug, Clone)]
pub struct ImportanceDraws {
    /// Draws, each `z` (length D) followed by nothing; row-major `S x D`.
    pub z: Vec<f64>,
    /// Pareto-smoothed normalised weights (sum 1).
    pub weight: Vec<f64>,
    /// Posterior null weight given each draw's `b` (`P(component 0 | b)`; 1 when `G = 1`).
    pub null_given_b: Vec<f64>,
    /// Mixture component each draw was taken from.
    pub component: Vec<usize>,
    /// PSIS k-hat of the raw weights.
    pub khat: f64,
    /// Effective sample size `1 / sum w^2` of the smoothed weights.
    pub ess: f64,
    /// ELBO of `q_mix` for the mixture posterior: `E_q[ln p(y, z) - ln q(z)]` (without the data
    /// constant `sum ln C(n, m)`).
    pub elbo: f64,
    /// Expected log-likelihood under `q_mix` (same constant omitted).
    pub expected_loglik: f64,
    /// `KL(q_mix || prior)`.
    pub kl: f64,
}

/// The wide-prior log density of a region's local parameters, `ln p(a) + ln p(b) +
/// ln p(beta) + ln p(u) + ln p(w) + ln p(k) + sum_j ln p(v_j)`: what `log_joint` adds to the
/// log-likelihood. The normalising constant is computed once.
struct WidePrior {
    theta: Theta,
    lay: ZLayout,
    constant: f64,
}

impl WidePrior {
    fn new(wide: &Theta, lay: ZLayout) -> Self {
        let half_ln_2pi = 0.5 * std::f64::consts::TAU.ln();
        let dim_b = lay.n_groups - 1;
        let dim_design = lay.n_covariates + lay.n_pairs;
        let design_ln_sd: f64 = (0..lay.n_covariates)
            .map(|c| wide.design.covariate_sd(c).ln())
            .sum::<f64>()
            + lay.n_pairs as f64 * wide.design.pair_sd.map_or(0.0, f64::ln);
        let constant = -(wide.sd_a * wide.sd_w * wide.sd_k).ln()
            - dim_b as f64 * WIDE_SD.ln()
            - design_ln_sd
            - half_ln_2pi * (3 + dim_b + dim_design + lay.n_sites) as f64;
        Self {
            theta: wide.clone(),
            lay,
            constant,
        }
    }

    fn ln_density(&self, z: &[f64]) -> f64 {
        let (t, lay) = (&self.theta, self.lay);
        let sq = |x: f64, m: f64, s: f64| {
            let r = (x - m) / s;
            r * r
        };
        let mut ss = sq(z[ZLayout::A], t.mu_a, t.sd_a)
            + sq(z[lay.w()], t.mu_w, t.sd_w)
            + sq(z[lay.k()], t.mu_k, t.sd_k);
        ss += z[1..lay.n_groups]
            .iter()
            .map(|b| sq(*b, 0.0, WIDE_SD))
            .sum::<f64>();
        ss += (0..lay.n_covariates)
            .map(|c| sq(z[lay.beta(c)], 0.0, t.design.covariate_sd(c)))
            .sum::<f64>();
        if let Some(sd) = t.design.pair_sd {
            ss += (0..lay.n_pairs)
                .map(|p| sq(z[lay.u(p)], 0.0, sd))
                .sum::<f64>();
        }
        ss += (0..lay.n_sites)
            .map(|j| z[lay.v(j)] * z[lay.v(j)])
            .sum::<f64>();
        self.constant - 0.5 * ss
    }
}

/// Importance draws of the mixture posterior of a region from its wide-prior fit `q`:
/// components chosen by systematic sampling of their weights (every component with weight
/// above `1 / n` gets its share of draws), weights `p_wide(y, z) / q(z)` Pareto-smoothed.
/// The draws may be taken in stages: the `n` systematic positions of the
/// component weights are visited in `stages` interleaved passes (positions `t = stage (mod
/// stages)`), so that every stage is itself a systematic sample of the mixture and the draws
/// so far can be summarised before the next stage is drawn.
pub struct ImportanceSampler<'a> {
    data: &'a RegionData<'a>,
    wide: Theta,
    prior: WidePrior,
    sampler: MixtureSampler<'a>,
    b_prior: &'a ScaleMixture,
    n: usize,
    /// The systematic grid's random offset in `[0, 1)`.
    offset: f64,
    /// Per draw taken so far, in the order taken: `z` (row-major, D each), `ln p_wide(y, z)`,
    /// `ln q(z)`, the wide prior's `ln p(z)`, `P(component 0 | b)` and the component.
    z: Vec<f64>,
    ln_p: Vec<f64>,
    ln_q: Vec<f64>,
    ln_prior: Vec<f64>,
    null_given_b: Vec<f64>,
    component: Vec<usize>,
}

impl<'a> ImportanceSampler<'a> {
    /// A sampler of `n` draws of the mixture posterior of `data` under `theta` from its
    /// wide-prior fit `q` (draws the grid's offset from `rng`); `None` if q's covariance of
    /// `b` is degenerate.
    pub fn new(
        data: &'a RegionData<'a>,
        theta: &'a Theta,
        q: &'a GaussianQ,
        n: usize,
        rng: &mut StdRng,
    ) -> Option<Self> {
        let lay = data.layout();
        let wide = wide_theta(theta);
        let prior = WidePrior::new(&wide, lay);
        let sampler = MixtureSampler::new(q, data.n_groups, &theta.b_prior)?;
        let offset: f64 = rng.random();
        Some(Self {
            data,
            wide,
            prior,
            sampler,
            b_prior: &theta.b_prior,
            n,
            offset,
            z: Vec::with_capacity(n * lay.dim()),
            ln_p: Vec::with_capacity(n),
            ln_q: Vec::with_capacity(n),
            ln_prior: Vec::with_capacity(n),
            null_given_b: Vec::with_capacity(n),
            component: Vec::with_capacity(n),
        })
    }

    /// Draws stage `stage` of `stages` (the positions `t < n` with `t % stages == stage`),
    /// their log joints evaluated [`LANES`] at a time.
    pub fn draw_stage(&mut self, stage: usize, stages: usize, rng: &mut StdRng) {
        let d = self.data.layout().dim();
        let dim = self.sampler.components.dim;
        let positions: Vec<usize> = (stage..self.n).step_by(stages.max(1)).collect();
        let mut eps = vec![0.0; d];
        let mut xi = vec![0.0; dim];
        for chunk_t in positions.chunks(LANES) {
            let lanes = chunk_t.len();
            let first = self.ln_q.len();
            self.z.resize((first + lanes) * d, 0.0);
            for (l, &t) in chunk_t.iter().enumerate() {
                for e in eps.iter_mut() {
                    *e = rng.sample(StandardNormal);
                }
                for x in xi.iter_mut() {
                    *x = rng.sample(StandardNormal);
                }
                let k = self
                    .sampler
                    .component_at((t as f64 + self.offset) / self.n as f64);
                self.component.push(k);
                let row = first + l;
                let lq = self
                    .sampler
                    .draw(k, &mut eps, &xi, &mut self.z[row * d..(row + 1) * d]);
                self.ln_q.push(lq);
            }
            let chunk = &self.z[first * d..(first + lanes) * d];
            let ln_p: [f64; LANES] = if lanes == LANES {
                log_joint_lanes(
                    self.data,
                    &self.wide,
                    std::array::from_fn(|l| &chunk[l * d..(l + 1) * d]),
                )
            } else {
                std::array::from_fn(|l| {
                    if l < lanes {
                        log_joint(self.data, &self.wide, &chunk[l * d..(l + 1) * d])
                    } else {
                        0.0
                    }
                })
            };
            for (l, &lp) in ln_p.iter().enumerate().take(lanes) {
                let zt = &chunk[l * d..(l + 1) * d];
                self.ln_p.push(lp);
                self.ln_prior.push(self.prior.ln_density(zt));
                self.null_given_b.push(if dim > 0 {
                    b_prior_lp(&zt[1..1 + dim], self.b_prior, None).1
                } else {
                    1.0
                });
            }
        }
    }

    /// The draws taken so far, their weights Pareto-smoothed and the ELBO estimated from them
    /// (a copy: more stages may follow).
    pub fn draws(&self) -> ImportanceDraws {
        self.weighted(
            self.z.clone(),
            self.null_given_b.clone(),
            self.component.clone(),
        )
    }

    /// [`Self::draws`] when no stage follows: the draws are moved, not copied.
    pub fn into_draws(mut self) -> ImportanceDraws {
        let (z, null, component) = (
            std::mem::take(&mut self.z),
            std::mem::take(&mut self.null_given_b),
            std::mem::take(&mut self.component),
        );
        self.weighted(z, null, component)
    }

    fn weighted(
        &self,
        z: Vec<f64>,
        null_given_b: Vec<f64>,
        component: Vec<usize>,
    ) -> ImportanceDraws {
        let s = self.ln_q.len();
        let mut lw: Vec<f64> = self
            .ln_p
            .iter()
            .zip(&self.ln_q)
            .map(|(p, q)| p - q)
            .collect();
        let (mut sum_lw, mut sum_loglik, mut sum_kl_part) = (0.0, 0.0, 0.0);
        for (((l, p), q), prior) in lw
            .iter()
            .zip(&self.ln_p)
            .zip(&self.ln_q)
            .zip(&self.ln_prior)
        {
            sum_lw += l;
            sum_loglik += p - prior;
            sum_kl_part += q - prior;
        }
        let nf = s as f64;
        let ln_c = self.sampler.components.log_evidence_ratio;
        let (mut order, mut buf) = (Vec::new(), Vec::new());
        let khat = psis_smooth(&mut lw, &mut order, &mut buf);
        let mut weight: Vec<f64> = lw.iter().map(|l| l.exp()).collect();
        let total: f64 = weight.iter().sum();
        weight.iter_mut().for_each(|w| *w /= total);
        let ess = 1.0 / weight.iter().map(|w| w * w).sum::<f64>();
        ImportanceDraws {
            z,
            weight,
            null_given_b,
            component,
            khat,
            ess,
            elbo: sum_lw / nf + ln_c,
            expected_loglik: sum_loglik / nf,
            kl: sum_kl_part / nf - ln_c,
        }
    }
}

/// `theta_g = mean_j logistic(a + c_g + exp(w) v_j)` of every group for one draw `z` into
/// `out` (length G); `site_neg_exp` is scratch of length J.
pub fn group_levels(z: &[f64], lay: ZLayout, site_neg_exp: &mut [f64], out: &mut [f64]) {
    let g_n = lay.n_groups;
    let j_n = lay.n_sites;
    let a = z[ZLayout::A];
    let ew = z[lay.w()].exp();
    let mut offset = [0.0; crate::likelihood::MAX_GROUPS];
    GroupContrasts { n_groups: g_n }.offsets(&z[1..g_n], &mut offset);
    // logistic(x_j + c_g) = 1 / (1 + e^(-x_j) e^(-c_g)): one exp per site and one per group
    // instead of one per (site, group). Arguments clamped to +-700 keep both factors finite
    // and non-zero, so the product is never 0 * inf.
    let neg_exp = |x: f64| (-x.clamp(-700.0, 700.0)).exp();
    for (j, e) in site_neg_exp.iter_mut().enumerate() {
        *e = neg_exp(a + ew * z[lay.v(j)]);
    }
    for (g, th) in out.iter_mut().enumerate().take(g_n) {
        *th = if j_n > 0 {
            let ec = neg_exp(offset[g]);
            site_neg_exp
                .iter()
                .map(|e| 1.0 / (1.0 + e * ec))
                .sum::<f64>()
                / j_n as f64
        } else {
            crate::likelihood::logistic(a + offset[g])
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vb::Family;
    use rand::SeedableRng;

    #[test]
    fn weighted_summary_with_equal_weights_is_type5() {
        let x = [4.0, 1.0, 5.0, 3.0, 2.0];
        let w = [0.2; 5];
        let mut order = Vec::new();
        let s = weighted_summary(&x, &w, &mut order);
        assert!((s.mean - 3.0).abs() < 1e-12);
        assert!((s.sd - 2.5f64.sqrt()).abs() < 1e-12);
        // Type 5: p = 0.025 is below the first centre (0.1) -> the minimum.
        assert_eq!(s.q025, 1.0);
        assert_eq!(s.q975, 5.0);
        // Unequal weights: centres at 0.495 and 0.995, so the 97.5% point interpolates to
        // (0.975 - 0.495) / 0.5 = 0.96 of the way.
        let s = weighted_summary(&[0.0, 1.0], &[0.99, 0.01], &mut order);
        assert!((s.q975 - 0.96).abs() < 1e-12 && s.q025 == 0.0, "{s:?}");
        assert!((s.mean - 0.01).abs() < 1e-12);
    }

    /// The quantiles read from the sorted tails equal those of a full sort, also when the
    /// weights pile on a few draws and the tails' eighths do not hold the quantiles.
    #[test]
    fn weighted_quantiles_from_the_tails_match_a_full_sort() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut pairs = Vec::new();
        let mut fallbacks = 0;
        for case in 0..200 {
            let n = [1, 2, 7, 8, 9, 100, 1000][case % 7];
            let x: Vec<f64> = (0..n).map(|_| rng.sample(StandardNormal)).collect();
            // Weights from even to a handful of heavy draws.
            let spread = (case % 5) as f64 * 2.0;
            let raw: Vec<f64> = (0..n)
                .map(|_| (spread * rng.sample::<f64, _>(StandardNormal)).exp())
                .collect();
            let total: f64 = raw.iter().sum();
            let w: Vec<f64> = raw.iter().map(|r| r / total).collect();
            let s = weighted_summary(&x, &w, &mut pairs);
            let mut sorted: Vec<(f64, f64)> = x.iter().copied().zip(w.iter().copied()).collect();
            sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
            let tail = n / 8;
            let lower_in_tail = tail > 0 && sorted[..tail].iter().map(|p| p.1).sum::<f64>() > 0.03;
            fallbacks += usize::from(!lower_in_tail);
            for (got, p) in [(s.q025, 0.025), (s.q975, 0.975)] {
                let want = centred_quantile(&sorted, 0.0, p, true).unwrap();
                assert!(
                    (got - want).abs() <= 1e-12 * want.abs().max(1.0),
                    "{case}: {got} {want}"
                );
            }
        }
        assert!(
            fallbacks > 20,
            "the full-sort path was exercised {fallbacks} times"
        );
    }

    /// The evidence, mean and variance of one component against quadrature in one dimension.
    #[test]
    fn component_posteriors_match_quadrature() {
        let prior = ScaleMixture {
            sd: vec![0.05, 0.4, 2.0],
            weight: vec![0.7, 0.2, 0.1],
        };
        for (m, s) in [(0.3, 0.2), (-1.2, 0.5), (0.02, 0.03), (4.0, 1.0)] {
            let q = GaussianQ::new(
                Family::Structured,
                4,
                &[0.0, m, 0.0, 0.0],
                &[0.0, f64::ln(s), 0.0, 0.0],
            );
            let cp = ComponentPosteriors::new(&q, 2, &prior).unwrap();
            let norm = |x: f64, mu: f64, sd: f64| {
                (-0.5 * ((x - mu) / sd).powi(2)).exp() / (sd * std::f64::consts::TAU.sqrt())
            };
            let (lo, hi, n) = (m - 12.0 * s, m + 12.0 * s, 200_000);
            let h = (hi - lo) / n as f64;
            let mut zs = Vec::new();
            for (k, &sdk) in prior.sd.iter().enumerate() {
                let (mut z, mut z1, mut z2) = (0.0, 0.0, 0.0);
                for i in 0..=n {
                    let b = lo + i as f64 * h;
                    let f = norm(b, m, s) * norm(b, 0.0, sdk) / norm(b, 0.0, WIDE_SD) * h;
                    z += f;
                    z1 += f * b;
                    z2 += f * b * b;
                }
                let (mean, var) = (z1 / z, z2 / z - (z1 / z).powi(2));
                let mut out = [0.0];
                cp.draw_b(k, &[0.0], &mut out);
                assert!(
                    (out[0] - mean).abs() < 1e-6 * (1.0 + mean.abs()),
                    "mean {} vs {mean}",
                    out[0]
                );
                let sd_k = cp.chol[k];
                assert!(
                    (sd_k * sd_k / var - 1.0).abs() < 1e-5,
                    "var {} vs {var}",
                    sd_k * sd_k
                );
                zs.push(prior.weight[k] * z);
            }
            let total: f64 = zs.iter().sum();
            assert!((cp.log_evidence_ratio - total.ln()).abs() < 1e-6);
            for (k, zk) in zs.iter().enumerate() {
                assert!((cp.weight(k) - zk / total).abs() < 1e-7);
            }
        }
    }

    /// Draws of the sampler follow q's conditional law: for a q with correlated (a, b), the
    /// mean of `a` given component k shifts by cov(a, b) / var(b) times the shift of b.
    #[test]
    fn matheron_draws_follow_the_conditional_law() {
        use rand::SeedableRng;
        let mut q = GaussianQ::new(
            Family::Structured,
            4,
            &[0.5, 1.0, -1.0, 3.0, 0.2],
            &[-1.0, -1.5, -1.0, -1.0, -0.5],
        );
        // L[1][0] (b on a's eps): corr(a, b) > 0.
        let off_index = 0;
        q.params[2 * 5 + off_index] = 0.15;
        let prior = ScaleMixture::single(0.05);
        let sampler = MixtureSampler::new(&q, 2, &prior).unwrap();
        let cov = q.covariance_block();
        let (var_b, cov_ab) = (cov[5], cov[4]);
        let mut rng = StdRng::seed_from_u64(3);
        let n = 40_000;
        let (mut sa, mut sb) = (0.0, 0.0);
        let mut eps = vec![0.0; 5];
        let mut z = vec![0.0; 5];
        for _ in 0..n {
            for e in eps.iter_mut() {
                *e = rng.sample(StandardNormal);
            }
            let xi = [rng.sample::<f64, _>(StandardNormal)];
            let lq = sampler.draw(0, &mut eps, &xi, &mut z);
            assert!((lq - q.ln_q_at_eps(&eps)).abs() < 1e-12);
            sa += z[0];
            sb += z[1];
        }
        let (ma, mb) = (sa / n as f64, sb / n as f64);
        let mut want_b = [0.0];
        sampler.components.draw_b(0, &[0.0], &mut want_b);
        assert!((mb - want_b[0]).abs() < 0.002, "{mb} vs {}", want_b[0]);
        let want_a = 0.5 + cov_ab / var_b * (want_b[0] - 1.0);
        assert!((ma - want_a).abs() < 0.01, "{ma} vs {want_a}");
    }
}
