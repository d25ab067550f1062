//! Gaussian variational families and the stochastic VB fit of one region (MODEL.md, "Variational
//! family and fitting"; details and defaults in docs/model.md).

use rand::RngExt;
use rand::rngs::StdRng;
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

use crate::Theta;
use crate::likelihood::{
    GroupContrasts, RegionData, ZLayout, log_joint_grad, log_joint_grad_lanes,
};

const LN_2PI: f64 = 1.837_877_066_409_345_3;
/// Bounds on `log sd` of every coordinate of q (sd between 3e-7 and 20 on the logit scale).
const LOG_SD_MIN: f64 = -15.0;
const LOG_SD_MAX: f64 = 3.0;
/// Range of the log sds of a start ([`init_q`], and the amortised start of
/// [`crate::StartModel`]): no start is more certain than e^-7 or vaguer than e^0.7 ~ 2.
pub(crate) const START_LOG_SD: (f64, f64) = (-7.0, 0.7);

/// SplitMix64 finaliser (Steele et al. 2014): a bijective 64-bit mixer.
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// FNV-1a 64-bit hash of bytes (stable across platforms and Rust versions).
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xCBF2_9CE4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01B3);
    }
    h
}

/// Seed of a region's random stream, derived only from the run seed and the region id (never
/// from thread state): `splitmix64(splitmix64(seed) ^ fnv1a64(region_id))`.
///
/// # Examples
/// ```
/// use methvb_model::vb::region_seed;
/// assert_eq!(region_seed(1, "chr1:100-200"), region_seed(1, "chr1:100-200"));
/// assert_ne!(region_seed(1, "chr1:100-200"), region_seed(2, "chr1:100-200"));
/// ```
pub fn region_seed(seed: u64, region_id: &str) -> u64 {
    splitmix64(splitmix64(seed) ^ fnv1a64(region_id.as_bytes()))
}

/// Which Gaussian family q belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    /// Dense lower-triangular Cholesky factor over `(a, b, w, k)`, diagonal over the site
    /// effects `v` (default).
    #[default]
    Structured,
    /// Fully diagonal (mean-field).
    MeanField,
    /// [`Family::Structured`] plus a dense coupling of every site effect `v_j` to the block:
    /// `L = [[L_B, 0], [C, diag]]` with `C` of size `J x (G + 2)`. Captures the strong
    /// posterior correlation of `v` with `a` and `w` created by the non-centred
    /// parameterisation, at `O(J (G + 2))` extra cost per draw.
    Coupled,
}

impl Family {
    /// Stable lowercase name: `"structured"`, `"mean-field"` or `"coupled"`.
    pub fn name(self) -> &'static str {
        match self {
            Family::Structured => "structured",
            Family::MeanField => "mean-field",
            Family::Coupled => "coupled",
        }
    }
}

impl std::fmt::Display for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Family {
    type Err = crate::ModelError;

    /// Parses the names of [`Family::name`] (also `mean_field`, `meanfield`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "structured" => Ok(Family::Structured),
            "mean-field" | "mean_field" | "meanfield" => Ok(Family::MeanField),
            "coupled" => Ok(Family::Coupled),
            other => Err(crate::ModelError::Options(format!(
                "unknown family {other:?}"
            ))),
        }
    }
}

/// Options of the stochastic VB optimiser.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct VbOptions {
    /// Variational family.
    pub family: Family,
    /// Iteration cap.
    pub max_iter: u32,
    /// No convergence is declared before this many iterations.
    pub min_iter: u32,
    /// Window length (iterations) of the smoothed ELBO; convergence is checked once per window.
    pub window: u32,
    /// Relative tolerance on the change of the windowed-mean ELBO between consecutive windows.
    pub rel_tol: f64,
    /// A change smaller than `noise_z` standard errors of the window means also counts as
    /// converged (further progress is not detectable through the Monte Carlo noise).
    pub noise_z: f64,
    /// Adam base step size.
    pub lr: f64,
    /// Step-size decay: `lr_t = lr / sqrt(1 + t / lr_t0)`.
    pub lr_t0: f64,
    /// Antithetic pairs `(eps, -eps)` of Monte Carlo draws per step (2 draws per pair).
    pub antithetic_pairs: u32,
}

impl Default for VbOptions {
    fn default() -> Self {
        Self {
            family: Family::Structured,
            max_iter: 4000,
            min_iter: 100,
            window: 25,
            rel_tol: 1e-4,
            noise_z: 1.0,
            lr: 0.05,
            lr_t0: 100.0,
            antithetic_pairs: 1,
        }
    }
}

/// A Gaussian q over `z`: `z = mu + L eps`, `L` lower triangular with `log diag(L)` as
/// parameters; for [`Family::Structured`] `L` is dense on the block `(a, b, w, k)` (the first
/// `n_block = G + 2` coordinates) and diagonal on the site effects.
///
/// `params` = `mu` (D) ++ `log_sd` = log diag(L) (D) ++ strictly-lower block entries, packed
/// row-major (`(i, j)`, `j < i`, at `i(i-1)/2 + j`; empty for mean-field).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GaussianQ {
    /// Family of q.
    pub family: Family,
    /// Size of the region-level block `G + 2`.
    pub n_block: usize,
    /// Dimension `D`.
    pub dim: usize,
    /// Packed parameters (see type docs).
    pub params: Vec<f64>,
}

impl GaussianQ {
    /// Number of strictly-lower entries of the dense block for this family.
    pub fn n_off(family: Family, n_block: usize) -> usize {
        match family {
            Family::Structured | Family::Coupled => n_block * n_block.saturating_sub(1) / 2,
            Family::MeanField => 0,
        }
    }

    /// Number of coupling entries `C` (site effects x block) for this family.
    pub fn n_coup(family: Family, n_block: usize, dim: usize) -> usize {
        match family {
            Family::Coupled => (dim - n_block) * n_block,
            Family::Structured | Family::MeanField => 0,
        }
    }

    /// A q with the given mean, log standard deviations and no correlation.
    pub fn new(family: Family, n_block: usize, mu: &[f64], log_sd: &[f64]) -> Self {
        let dim = mu.len();
        let np = 2 * dim + Self::n_off(family, n_block) + Self::n_coup(family, n_block, dim);
        let mut params = Vec::with_capacity(np);
        params.extend_from_slice(mu);
        params.extend_from_slice(log_sd);
        params.resize(np, 0.0);
        Self {
            family,
            n_block,
            dim,
            params,
        }
    }

    /// Mean of q.
    pub fn mu(&self) -> &[f64] {
        &self.params[..self.dim]
    }

    /// `log diag(L)`.
    pub fn log_sd(&self) -> &[f64] {
        &self.params[self.dim..2 * self.dim]
    }

    /// Strictly-lower entries of the block Cholesky factor (packed).
    pub fn off(&self) -> &[f64] {
        &self.params[2 * self.dim..2 * self.dim + Self::n_off(self.family, self.n_block)]
    }

    /// Coupling `C` of the site effects to the block, `J x (G + 2)` row-major (empty unless
    /// [`Family::Coupled`]).
    pub fn coupling(&self) -> &[f64] {
        &self.params[2 * self.dim + Self::n_off(self.family, self.n_block)..]
    }

    /// `z = mu + L eps`, with `diag(L)` given as `sd` (= exp(log_sd), precomputed).
    fn transform_with(&self, sd: &[f64], eps: &[f64], sign: f64, z: &mut [f64]) {
        let (mu, off, coup) = (self.mu(), self.off(), self.coupling());
        let nb = self.n_block;
        for i in 0..self.dim {
            let mut acc = sd[i] * eps[i];
            if !off.is_empty() && i < nb {
                let base = i * i.saturating_sub(1) / 2;
                for j in 0..i {
                    acc += off[base + j] * eps[j];
                }
            } else if !coup.is_empty() && i >= nb {
                let row = &coup[(i - nb) * nb..(i - nb + 1) * nb];
                for (c, e) in row.iter().zip(&eps[..nb]) {
                    acc += c * e;
                }
            }
            z[i] = mu[i] + sign * acc;
        }
    }

    /// `z = mu + L eps`.
    pub fn transform(&self, eps: &[f64], z: &mut [f64]) {
        let sd: Vec<f64> = self.log_sd().iter().map(|l| l.exp()).collect();
        self.transform_with(&sd, eps, 1.0, z);
    }

    /// `z = mu + L eps` with `sd = exp(log_sd)` precomputed by the caller (no allocation).
    pub fn transform_sd(&self, sd: &[f64], eps: &[f64], z: &mut [f64]) {
        self.transform_with(sd, eps, 1.0, z);
    }

    /// Adds to `out` (laid out like `params`) the gradient with respect to the parameters of
    /// `f(mu + sign * L eps)`, given `g = grad f` at that point (chain rule of the
    /// reparameterisation; `d/d log L_ii = g_i eps_i L_ii`). `sd = exp(log_sd)`.
    pub fn accumulate_grad(&self, sd: &[f64], eps: &[f64], sign: f64, g: &[f64], out: &mut [f64]) {
        let (d, nb) = (self.dim, self.n_block);
        let (gmu, rest) = out.split_at_mut(d);
        let (glsd, rest) = rest.split_at_mut(d);
        let (goff, gcoup) = rest.split_at_mut(Self::n_off(self.family, nb));
        for i in 0..d {
            gmu[i] += g[i];
            glsd[i] += g[i] * sign * eps[i] * sd[i];
        }
        if !goff.is_empty() {
            for (i, gi) in g.iter().enumerate().take(nb).skip(1) {
                let base = i * (i - 1) / 2;
                for (o, e) in goff[base..base + i].iter_mut().zip(&eps[..i]) {
                    *o += gi * sign * e;
                }
            }
        }
        if !gcoup.is_empty() {
            for i in nb..d {
                let gi = g[i] * sign;
                let row = &mut gcoup[(i - nb) * nb..(i - nb + 1) * nb];
                for (c, e) in row.iter_mut().zip(&eps[..nb]) {
                    *c += gi * e;
                }
            }
        }
    }

    /// Entropy of q in nats: `sum log_sd + D/2 (1 + ln 2 pi)`.
    pub fn entropy(&self) -> f64 {
        self.log_sd().iter().sum::<f64>() + 0.5 * self.dim as f64 * (1.0 + LN_2PI)
    }

    /// `log q(z)` at `z = mu + L eps`.
    pub fn ln_q_at_eps(&self, eps: &[f64]) -> f64 {
        let ss: f64 = eps.iter().map(|e| e * e).sum();
        -0.5 * ss - self.log_sd().iter().sum::<f64>() - 0.5 * self.dim as f64 * LN_2PI
    }

    /// Dense Cholesky factor of the block `(a, b, w, k)`, `n_block x n_block` row-major.
    pub fn cholesky_block(&self) -> Vec<f64> {
        let b = self.n_block;
        let mut l = vec![0.0; b * b];
        let (ls, off) = (self.log_sd(), self.off());
        for i in 0..b {
            l[i * b + i] = ls[i].exp();
            if !off.is_empty() {
                for j in 0..i {
                    l[i * b + j] = off[i * (i - 1) / 2 + j];
                }
            }
        }
        l
    }

    /// Covariance `L L^T` of the block `(a, b, w, k)`, `n_block x n_block` row-major.
    pub fn covariance_block(&self) -> Vec<f64> {
        let b = self.n_block;
        let l = self.cholesky_block();
        let mut c = vec![0.0; b * b];
        for i in 0..b {
            for j in 0..b {
                c[i * b + j] = (0..b).map(|t| l[i * b + t] * l[j * b + t]).sum();
            }
        }
        c
    }

    /// Marginal standard deviations of all `D` coordinates.
    pub fn marginal_sd(&self) -> Vec<f64> {
        let b = self.n_block;
        let cov = self.covariance_block();
        let coup = self.coupling();
        (0..self.dim)
            .map(|i| {
                if i < b {
                    cov[i * b + i].sqrt()
                } else {
                    let c2: f64 = coup
                        .get((i - b) * b..(i - b + 1) * b)
                        .map_or(0.0, |r| r.iter().map(|c| c * c).sum());
                    ((2.0 * self.log_sd()[i]).exp() + c2).sqrt()
                }
            })
            .collect()
    }

    /// The same distribution in another family; to a smaller family, the marginal variances
    /// are kept and the dropped correlations are lost.
    pub fn to_family(&self, family: Family) -> GaussianQ {
        if family == self.family {
            return self.clone();
        }
        let mut log_sd = self.log_sd().to_vec();
        let marg = self.marginal_sd();
        if family == Family::MeanField {
            for (i, s) in marg.iter().take(self.n_block).enumerate() {
                log_sd[i] = s.ln();
            }
        }
        if family != Family::Coupled && self.family == Family::Coupled {
            for (i, s) in marg.iter().enumerate().skip(self.n_block) {
                log_sd[i] = s.ln();
            }
        }
        let mut q = GaussianQ::new(family, self.n_block, self.mu(), &log_sd);
        if family != Family::MeanField && self.family != Family::MeanField {
            let start = 2 * self.dim;
            let n = Self::n_off(family, self.n_block);
            q.params[start..start + n].copy_from_slice(self.off());
        }
        q
    }
}

/// Result of one VB optimisation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VbFit {
    /// Fitted q (Polyak average of the iterates over the last window).
    pub q: GaussianQ,
    /// Final smoothed ELBO estimate (mean over the last window; excludes `sum log C(n, m)`).
    pub elbo: f64,
    /// Iterations run.
    pub iterations: u32,
    /// Whether the convergence rule fired before the cap.
    pub converged: bool,
}

fn logit_pooled(m: f64, n: f64) -> f64 {
    let p = (m + 0.5) / (n + 1.0);
    (p / (1.0 - p)).ln()
}

/// A data-driven starting q: `a` from the mean of the groups' pooled logit methylation, `b`
/// from their deviations (through [`GroupContrasts::coordinates`], so the start is the same
/// whichever group is the reference), `w`, `k` at their prior means, `v_j` from the site's
/// pooled logit deviation, and standard deviations from the diagonal curvature of the log
/// joint at that point.
pub fn init_q(data: &RegionData, theta: &Theta, family: Family) -> GaussianQ {
    let lay = data.layout();
    let (g_n, j_n, s_n) = (data.n_groups, data.n_sites, data.n_samples);
    let d = lay.dim();
    let mut gm = vec![0.0; g_n];
    let mut gn = vec![0.0; g_n];
    for j in 0..j_n {
        for s in 0..s_n {
            let g = data.sample_group[s];
            gm[g] += f64::from(data.methylated[j * s_n + s]);
            gn[g] += f64::from(data.coverage[j * s_n + s]);
        }
    }
    let (tm, tn): (f64, f64) = (gm.iter().sum(), gn.iter().sum());
    let overall = logit_pooled(tm, tn);
    // A group without reads starts at the overall level.
    let level: Vec<f64> = (0..g_n)
        .map(|g| {
            if gn[g] > 0.0 {
                logit_pooled(gm[g], gn[g])
            } else {
                overall
            }
        })
        .collect();
    let a = level.iter().sum::<f64>() / g_n as f64;
    let mut mu = vec![0.0; d];
    mu[ZLayout::A] = a.clamp(-8.0, 8.0);
    if g_n > 1 {
        let offsets: Vec<f64> = level.iter().map(|l| l - a).collect();
        let mut b = vec![0.0; g_n - 1];
        GroupContrasts { n_groups: g_n }.coordinates(&offsets, &mut b);
        for (h, bh) in (1..g_n).zip(b) {
            mu[lay.b(h)] = bh.clamp(-8.0, 8.0);
        }
    }
    mu[lay.w()] = theta.mu_w;
    mu[lay.k()] = theta.mu_k;
    let ew = theta.mu_w.exp();
    for j in 0..j_n {
        let (mut m, mut n) = (0.0, 0.0);
        for s in 0..s_n {
            m += f64::from(data.methylated[j * s_n + s]);
            n += f64::from(data.coverage[j * s_n + s]);
        }
        if n > 0.0 {
            mu[lay.v(j)] = ((logit_pooled(m, n) - overall) / ew).clamp(-3.0, 3.0);
        }
    }
    // Diagonal curvature by forward differences of the analytic gradient.
    let mut g0 = vec![0.0; d];
    let mut g1 = vec![0.0; d];
    let mut z = mu.clone();
    log_joint_grad(data, theta, &z, &mut g0);
    let mut log_sd = vec![0.0; d];
    let h = 1e-4;
    for i in 0..d {
        z[i] += h;
        log_joint_grad(data, theta, &z, &mut g1);
        z[i] = mu[i];
        let curv = -(g1[i] - g0[i]) / h;
        let prec = if curv.is_finite() {
            curv.max(0.25)
        } else {
            1.0
        };
        log_sd[i] = (-0.5 * prec.ln()).clamp(START_LOG_SD.0, START_LOG_SD.1);
    }
    GaussianQ::new(family, lay.n_block(), &mu, &log_sd)
}

/// Preallocated buffers of one fit.
struct Workspace {
    sd: Vec<f64>,
    eps: Vec<f64>,
    z: Vec<f64>,
    z_neg: Vec<f64>,
    /// Gradients at `z` and `z_neg`.
    g: [Vec<f64>; 2],
    grad: Vec<f64>,
    m1: Vec<f64>,
    m2: Vec<f64>,
    avg: Vec<f64>,
    avg_last: Vec<f64>,
}

/// Fits q to `p(z | y, Theta)` by stochastic gradient ascent on the ELBO (reparameterisation
/// gradient, Adam, decaying step size, antithetic draws), starting from `init` or [`init_q`].
///
/// `data` must satisfy [`RegionData::validate`]. All randomness comes from `rng`.
pub fn fit_vb(
    data: &RegionData,
    theta: &Theta,
    opts: &VbOptions,
    init: Option<&GaussianQ>,
    rng: &mut StdRng,
) -> VbFit {
    let lay = data.layout();
    let d = lay.dim();
    let nb = lay.n_block();
    let mut q = match init {
        Some(q0) if q0.dim == d && q0.n_block == nb => q0.to_family(opts.family),
        _ => init_q(data, theta, opts.family),
    };
    let np = q.params.len();
    let mut ws = Workspace {
        sd: vec![0.0; d],
        eps: vec![0.0; d],
        z: vec![0.0; d],
        z_neg: vec![0.0; d],
        g: [vec![0.0; d], vec![0.0; d]],
        grad: vec![0.0; np],
        m1: vec![0.0; np],
        m2: vec![0.0; np],
        avg: vec![0.0; np],
        avg_last: vec![0.0; np],
    };
    let window = opts.window.max(2);
    let pairs = opts.antithetic_pairs.max(1);
    let (b1, b2) = (0.9_f64, 0.999_f64);
    let (mut b1t, mut b2t) = (1.0_f64, 1.0_f64);
    let mut prev: Option<(f64, f64)> = None;
    let (mut wsum, mut wsq, mut wcount) = (0.0, 0.0, 0u32);
    let mut last_mean = f64::NAN;
    let mut have_avg = false;
    let mut last_elbo = f64::NAN;
    let mut converged = false;
    let mut iterations = 0;
    for t in 0..opts.max_iter {
        iterations = t + 1;
        for (s, l) in ws.sd.iter_mut().zip(q.log_sd()) {
            *s = l.exp();
        }
        ws.grad.fill(0.0);
        let mut lp_sum = 0.0;
        let mut good = 0u32;
        for _ in 0..pairs {
            for e in ws.eps.iter_mut() {
                *e = rng.sample(StandardNormal);
            }
            // The pair's two points evaluated together (the same values as one at a time).
            q.transform_with(&ws.sd, &ws.eps, 1.0, &mut ws.z);
            q.transform_with(&ws.sd, &ws.eps, -1.0, &mut ws.z_neg);
            let [g, g_neg] = &mut ws.g;
            let lps = log_joint_grad_lanes(data, theta, [&ws.z, &ws.z_neg], &mut [g, g_neg]);
            for (sign, lp, g) in [(1.0, lps[0], &ws.g[0]), (-1.0, lps[1], &ws.g[1])] {
                if !lp.is_finite() || g.iter().any(|x| !x.is_finite()) {
                    continue;
                }
                good += 1;
                lp_sum += lp;
                q.accumulate_grad(&ws.sd, &ws.eps, sign, g, &mut ws.grad);
            }
        }
        if good == 0 {
            continue;
        }
        let inv = 1.0 / f64::from(good);
        for x in ws.grad.iter_mut() {
            *x *= inv;
        }
        for x in &mut ws.grad[d..2 * d] {
            *x += 1.0; // entropy gradient w.r.t. log_sd
        }
        let elbo_t = lp_sum * inv + q.entropy();
        // Adam ascent step.
        b1t *= b1;
        b2t *= b2;
        let lr = opts.lr / (1.0 + f64::from(t) / opts.lr_t0.max(1.0)).sqrt();
        let c1 = 1.0 / (1.0 - b1t);
        let c2 = 1.0 / (1.0 - b2t);
        for i in 0..np {
            let gi = ws.grad[i];
            ws.m1[i] = b1 * ws.m1[i] + (1.0 - b1) * gi;
            ws.m2[i] = b2 * ws.m2[i] + (1.0 - b2) * gi * gi;
            q.params[i] += lr * (ws.m1[i] * c1) / ((ws.m2[i] * c2).sqrt() + 1e-8);
        }
        for l in &mut q.params[d..2 * d] {
            *l = l.clamp(LOG_SD_MIN, LOG_SD_MAX);
        }
        // Smoothed ELBO and Polyak averaging over the current window.
        wsum += elbo_t;
        wsq += elbo_t * elbo_t;
        wcount += 1;
        for (a, p) in ws.avg.iter_mut().zip(&q.params) {
            *a += p;
        }
        if wcount == window {
            let n = f64::from(wcount);
            let mean = wsum / n;
            let var = (wsq / n - mean * mean).max(0.0);
            if let Some((pm, pv)) = prev
                && iterations >= opts.min_iter
            {
                let change = (mean - pm).abs();
                let se = ((var + pv) / n).sqrt();
                if change <= opts.rel_tol * mean.abs().max(1.0) || change <= opts.noise_z * se {
                    converged = true;
                }
            }
            prev = Some((mean, var));
            last_mean = mean;
            for (l, a) in ws.avg_last.iter_mut().zip(ws.avg.iter_mut()) {
                *l = *a / n;
                *a = 0.0;
            }
            have_avg = true;
            (wsum, wsq, wcount) = (0.0, 0.0, 0);
            if converged {
                break;
            }
        }
        last_elbo = elbo_t;
    }
    if have_avg {
        q.params.copy_from_slice(&ws.avg_last);
    } else {
        last_mean = last_elbo;
    }
    VbFit {
        q,
        elbo: last_mean,
        iterations,
        converged,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// A smooth test function with a known gradient.
    fn f(z: &[f64]) -> (f64, Vec<f64>) {
        let v: f64 = z
            .iter()
            .enumerate()
            .map(|(i, x)| (i as f64 + 1.0) * x.sin() + 0.3 * x * x)
            .sum();
        (
            v,
            z.iter()
                .enumerate()
                .map(|(i, x)| (i as f64 + 1.0) * x.cos() + 0.6 * x)
                .collect(),
        )
    }

    #[test]
    fn reparameterisation_gradient_matches_finite_differences() {
        let mut rng = StdRng::seed_from_u64(9);
        for family in [Family::MeanField, Family::Structured, Family::Coupled] {
            let (nb, dim) = (4, 9);
            let mut q = GaussianQ::new(family, nb, &[0.0; 9], &[0.0; 9]);
            for p in q.params.iter_mut() {
                *p = 0.5 * rng.sample::<f64, _>(StandardNormal);
            }
            let eps: Vec<f64> = (0..dim).map(|_| rng.sample(StandardNormal)).collect();
            for sign in [1.0, -1.0] {
                let sd: Vec<f64> = q.log_sd().iter().map(|l| l.exp()).collect();
                let mut z = vec![0.0; dim];
                q.transform_with(&sd, &eps, sign, &mut z);
                let (_, g) = f(&z);
                let mut grad = vec![0.0; q.params.len()];
                q.accumulate_grad(&sd, &eps, sign, &g, &mut grad);
                for (i, gi) in grad.iter().enumerate() {
                    let h = 1e-6;
                    let eval = |delta: f64| {
                        let mut qq = q.clone();
                        qq.params[i] += delta;
                        let sd: Vec<f64> = qq.log_sd().iter().map(|l| l.exp()).collect();
                        let mut z = vec![0.0; dim];
                        qq.transform_with(&sd, &eps, sign, &mut z);
                        f(&z).0
                    };
                    let fd = (eval(h) - eval(-h)) / (2.0 * h);
                    assert!(
                        (gi - fd).abs() < 1e-6 * (1.0 + fd.abs()),
                        "{family:?} param {i}: {gi} vs {fd}"
                    );
                }
            }
        }
    }

    #[test]
    fn family_names_round_trip() {
        for f in [Family::Structured, Family::MeanField, Family::Coupled] {
            assert_eq!(f.name().parse::<Family>().unwrap(), f);
            assert_eq!(
                serde_json::to_string(&f)
                    .unwrap()
                    .trim_matches('"')
                    .replace('_', "-"),
                f.name()
            );
        }
        assert!("dense".parse::<Family>().is_err());
    }

    #[test]
    fn covariance_and_family_conversion_keep_marginals() {
        let mut rng = StdRng::seed_from_u64(10);
        let mut q = GaussianQ::new(Family::Coupled, 3, &[0.0; 6], &[0.0; 6]);
        for p in q.params.iter_mut() {
            *p = 0.4 * rng.sample::<f64, _>(StandardNormal);
        }
        // Marginal sds against the empirical sd of many draws.
        let sd = q.marginal_sd();
        let n = 40_000;
        let mut ss = [0.0; 6];
        let mut eps = [0.0; 6];
        let mut z = [0.0; 6];
        for _ in 0..n {
            for e in eps.iter_mut() {
                *e = rng.sample(StandardNormal);
            }
            q.transform(&eps, &mut z);
            for i in 0..6 {
                ss[i] += (z[i] - q.mu()[i]).powi(2);
            }
        }
        for i in 0..6 {
            let emp = (ss[i] / n as f64).sqrt();
            assert!(
                (emp / sd[i] - 1.0).abs() < 0.03,
                "coord {i}: {emp} vs {}",
                sd[i]
            );
        }
        for fam in [Family::Structured, Family::MeanField] {
            let r = q.to_family(fam).marginal_sd();
            for i in 0..6 {
                assert!((r[i] - sd[i]).abs() < 1e-12, "{fam:?} {i}");
            }
        }
        // Entropy: sum of log-diagonal plus the constant.
        let h = q.entropy() - 0.5 * 6.0 * (1.0 + LN_2PI);
        assert!((h - q.log_sd().iter().sum::<f64>()).abs() < 1e-12);
    }
}
