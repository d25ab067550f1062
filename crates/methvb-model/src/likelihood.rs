//! Beta-binomial likelihood and the log joint density of one region (MODEL.md, "Likelihood and
//! local priors").
//!
//! The unconstrained local parameters of a region are laid out as
//! `z = (a, b_1..b_{G-1}, beta_1..beta_P, u_1..u_Q, w, k, v_1..v_J)`, dimension
//! `D = G + P + Q + 2 + J` (see [`ZLayout`]; `P = Q = 0` without a design). The group offsets are
//! symmetric contrasts of `b` ([`GroupContrasts`]): `eta_js = a + c_g(s) + x_s beta + u_pair(s)
//! + exp(w) v_j` with `c = C b`, so that no group is special (for two groups
//! `c = (-b/2, b/2)`: `a` is the mid-point of the two levels and `b` their difference).
//!
//! [`log_joint_grad`] is the single implementation of `log p(y, z | Theta)` used by the VB fit,
//! importance sampling and the NUTS cross-check. It omits only the data constant
//! `sum_js log C(n_js, m_js)`, which depends on neither `z` nor `Theta`.

use statrs::function::gamma::{digamma, ln_gamma};

use crate::Theta;
use crate::design::{Design, MAX_CLASSES};
use crate::error::ModelError;
use crate::theta::ScaleMixture;

/// Counts below this use the finite-sum form of `log Gamma(x + c) - log Gamma(x)`; counts at or
/// above it use `ln_gamma`/`digamma` (or Stirling's series). The finite sum costs one
/// multiply-add chain per read, run for several points at once ([`log_joint_lanes`]), and no
/// logarithm ([`LogProduct`]); a count at or above the cutoff costs two `ln_gamma` and two
/// `digamma` calls per point (~90 ns), more than 60 reads of the chain. 64 keeps the products
/// of [`rising_direct`] below `1e253` (see [`DIRECT_KAPPA_MAX`]) and covers the upper tail of
/// 15-20x libraries (at 40, 3% of the cells of the realistic simulations took the slow path
/// and cost more than all the others together).
pub const SMALL_COUNT_CUTOFF: u32 = 64;

const LN_2PI: f64 = 1.837_877_066_409_345_3;

/// Most groups a region may have (the group offsets live in stack arrays of this size).
pub const MAX_GROUPS: usize = 64;

/// Observed counts of one region, borrowed from the caller.
#[derive(Debug, Clone, Copy)]
pub struct RegionData<'a> {
    /// Number of CpG sites `J`.
    pub n_sites: usize,
    /// Number of samples `S`.
    pub n_samples: usize,
    /// Group of each sample (length `S`, values `0..n_groups`; group 0 is the reference).
    pub sample_group: &'a [usize],
    /// Number of groups `G >= 1`.
    pub n_groups: usize,
    /// Methylated read counts, `J x S` row-major (site `j`, sample `s` at `j * S + s`).
    pub methylated: &'a [u32],
    /// Read coverage, same layout as `methylated`; `0` means missing.
    pub coverage: &'a [u32],
    /// Covariates and pairs of the samples (`None`: the groups alone).
    pub design: Option<&'a Design>,
}

impl RegionData<'_> {
    /// Checks the shapes and counts; every fitting entry point calls this first.
    pub fn validate(&self) -> Result<(), ModelError> {
        let cells = self
            .n_sites
            .checked_mul(self.n_samples)
            .ok_or(ModelError::Shape {
                what: "n_sites * n_samples overflows",
            })?;
        if self.n_groups == 0 || self.n_groups > MAX_GROUPS {
            return Err(ModelError::Shape {
                what: "n_groups must be between 1 and 64",
            });
        }
        if self.sample_group.len() != self.n_samples {
            return Err(ModelError::Shape {
                what: "sample_group length != n_samples",
            });
        }
        if self.methylated.len() != cells || self.coverage.len() != cells {
            return Err(ModelError::Shape {
                what: "count arrays must have n_sites * n_samples entries",
            });
        }
        if let Some(s) = self.sample_group.iter().position(|&g| g >= self.n_groups) {
            return Err(ModelError::GroupOutOfRange {
                sample: s,
                n_groups: self.n_groups,
            });
        }
        if let Some(d) = self.design {
            let same_groups = d
                .sample_class()
                .iter()
                .zip(self.sample_group)
                .all(|(&c, &g)| self.sample_group[d.class_sample()[c]] == g);
            if d.n_samples() != self.n_samples || !same_groups {
                return Err(ModelError::Shape {
                    what: "the design must be built on the region's samples and groups",
                });
            }
        }
        if let Some(i) = self
            .methylated
            .iter()
            .zip(self.coverage)
            .position(|(m, n)| m > n)
        {
            return Err(ModelError::CountExceedsCoverage {
                site: i / self.n_samples,
                sample: i % self.n_samples,
            });
        }
        Ok(())
    }

    /// The layout of `z` for this region.
    pub fn layout(&self) -> ZLayout {
        ZLayout {
            n_groups: self.n_groups,
            n_covariates: self.design.map_or(0, Design::n_covariates),
            n_pairs: self.design.map_or(0, Design::n_pairs),
            n_sites: self.n_sites,
        }
    }

    /// The sample classes of the likelihood (samples sharing every term but their counts):
    /// the design's, or the groups without one. Returns the class of each sample and the
    /// number of classes.
    pub fn classes(&self) -> (&[usize], usize) {
        match self.design {
            Some(d) => (d.sample_class(), d.class_sample().len()),
            None => (self.sample_group, self.n_groups),
        }
    }

    /// Writes each class's offset `c_g + x beta + u_pair` (see [`Self::classes`]) at `z` into
    /// `out`, given the group offsets `group_offset` of `z`'s `b`.
    pub fn class_offsets(&self, z: &[f64], group_offset: &[f64], out: &mut [f64]) {
        let lay = self.layout();
        match self.design {
            Some(d) => {
                let (beta, u) = (lay.beta_of(z), lay.u_of(z));
                for (o, &s) in out.iter_mut().zip(d.class_sample()) {
                    *o = group_offset[self.sample_group[s]] + d.offset(s, beta, u);
                }
            }
            None => out[..self.n_groups].copy_from_slice(&group_offset[..self.n_groups]),
        }
    }

    /// Checks that `theta`'s design prior is the one of this region's design.
    pub fn check_theta(&self, theta: &Theta) -> Result<(), ModelError> {
        theta.design.check_matches(self.design)
    }
}

/// Index layout of the unconstrained vector
/// `z = (a, b_1..b_{G-1}, beta_1..beta_P, u_1..u_Q, w, k, v_1..v_J)`: the region-level block
/// `(a, b, beta, u, w, k)` first, then the site effects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZLayout {
    /// Number of groups `G`.
    pub n_groups: usize,
    /// Number of design-matrix columns `P` (0 without a design).
    pub n_covariates: usize,
    /// Number of pair levels `Q` (0 without pairing).
    pub n_pairs: usize,
    /// Number of sites `J`.
    pub n_sites: usize,
}

impl ZLayout {
    /// Index of `a`.
    pub const A: usize = 0;
    /// Index of the contrast coordinate `b_h` for `h` in `1..G` (see [`GroupContrasts`]).
    pub fn b(&self, h: usize) -> usize {
        h
    }
    /// Index of the coefficient `beta_c` of design-matrix column `c` in `0..P`.
    pub fn beta(&self, c: usize) -> usize {
        self.n_groups + c
    }
    /// Index of the effect `u_p` of pair level `p` in `0..Q`.
    pub fn u(&self, p: usize) -> usize {
        self.n_groups + self.n_covariates + p
    }
    /// The coefficients `beta` of `z`.
    pub fn beta_of<'z>(&self, z: &'z [f64]) -> &'z [f64] {
        &z[self.n_groups..self.n_groups + self.n_covariates]
    }
    /// The pair effects `u` of `z`.
    pub fn u_of<'z>(&self, z: &'z [f64]) -> &'z [f64] {
        &z[self.u(0)..self.u(0) + self.n_pairs]
    }
    /// Index of `w`.
    pub fn w(&self) -> usize {
        self.n_groups + self.n_covariates + self.n_pairs
    }
    /// Index of `k`.
    pub fn k(&self) -> usize {
        self.w() + 1
    }
    /// Index of `v_j`.
    pub fn v(&self, j: usize) -> usize {
        self.w() + 2 + j
    }
    /// Size of the region-level block `(a, b, beta, u, w, k)`, i.e. `G + P + Q + 2`.
    pub fn n_block(&self) -> usize {
        self.w() + 2
    }
    /// Total dimension `D = G + P + Q + 2 + J`.
    pub fn dim(&self) -> usize {
        self.n_block() + self.n_sites
    }
}

/// The symmetric group offsets `c_g = sum_h C[g][h] b_h` of MODEL.md's "symmetric in the groups":
/// `C = H / sqrt(2)` with `H` the orthonormal Helmert contrasts (column `h` compares group `h`
/// with the mean of groups `0..h`). Because `H` has orthonormal columns orthogonal to the
/// constant vector, a prior `b ~ N(0, sd^2 I)` gives the offsets the exchangeable prior
/// `Cov(c) = sd^2 / 2 (I - 11'/G)`: relabelling the groups (choosing another reference, or
/// reordering the sample sheet) rotates `b` and leaves the prior, the likelihood and every
/// Gaussian q over the block unchanged, and `c_g - c_h` has prior sd `sd` for any two groups.
/// For two groups `c = (-b/2, b/2)`, so `b` is the logit difference of group 1 from group 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupContrasts {
    /// Number of groups `G`.
    pub n_groups: usize,
}

impl GroupContrasts {
    /// `C[g][h - 1]`: the weight of `b_h` (`h` in `1..G`) in the offset of group `g`.
    #[inline]
    pub fn coef(&self, g: usize, h: usize) -> f64 {
        use std::cmp::Ordering;
        let hf = h as f64;
        let norm = (2.0 * hf * (hf + 1.0)).sqrt();
        match g.cmp(&h) {
            Ordering::Less => -1.0 / norm,
            Ordering::Equal => hf / norm,
            Ordering::Greater => 0.0,
        }
    }

    /// Offsets `c_0..c_{G-1}` of the contrast coordinates `b` (length `G - 1`) into `c`.
    #[inline]
    pub fn offsets(&self, b: &[f64], c: &mut [f64]) {
        for (g, cg) in c.iter_mut().enumerate().take(self.n_groups) {
            // Only b_h with h >= g enter c_g.
            *cg = (g.max(1)..self.n_groups)
                .map(|h| self.coef(g, h) * b[h - 1])
                .sum();
        }
    }

    /// Contrast coordinates `b = 2 C' c` of offsets `c` (the least-squares inverse of
    /// [`Self::offsets`], exact when `c` sums to zero).
    pub fn coordinates(&self, c: &[f64], b: &mut [f64]) {
        for (h, bh) in (1..self.n_groups).zip(b.iter_mut()) {
            *bh = 2.0 * (0..=h).map(|g| self.coef(g, h) * c[g]).sum::<f64>();
        }
    }
}

/// `(sum_{i<c} ln(x+i), x * sum_{i<c} 1/(x+i))` given `x > 0` and `ln_x = ln x` (passed
/// separately so that `x` may underflow to 0 without losing precision).
#[inline]
fn ln_rising(c: u32, x: f64, ln_x: f64) -> (f64, f64) {
    let (lin, prod, d) = ln_rising_parts(c, x, ln_x);
    (lin + prod.ln(), d)
}

/// [`ln_rising`] with its logarithm left partly untaken: returns `(lin, prod, d)` with
/// `sum_{i<c} ln(x+i) = lin + ln(prod)` and `prod` in `[1, 1e88)`, so that the caller can
/// multiply the `prod`s of many cells and take one logarithm (see [`LogProduct`]).
#[inline]
fn ln_rising_parts(c: u32, x: f64, ln_x: f64) -> (f64, f64, f64) {
    if c == 0 {
        (0.0, 1.0, 0.0)
    } else if c < SMALL_COUNT_CUTOFF {
        ln_rising_small(c, x, ln_x)
    } else {
        let (l, d) = ln_rising_large(c, x, ln_x);
        (l, 1.0, d)
    }
}

/// Finite-sum path. For `x >= 1` the factors are normalised as `1 + i/x <= c`; for `x < 1` they
/// are `x + i < c`; either way the running product stays below `c! < 1e88` (no overflow) and
/// at or above 1 (no underflow). `q / p` accumulates `sum 1/u_i` by the product rule.
#[inline]
fn ln_rising_small(c: u32, x: f64, ln_x: f64) -> (f64, f64, f64) {
    if x >= 1.0 {
        let (p, r) = prod_recip_sum(c, 1.0, 1.0 / x);
        (f64::from(c) * ln_x, p, 1.0 + r)
    } else {
        let (p, r) = prod_recip_sum(c, x, 1.0);
        (ln_x, p, 1.0 + x * r)
    }
}

/// A product of many positive factors kept as `mantissa * 2^exponent`, so that a whole region's
/// finite-sum products need a single `ln` instead of one per cell (the logarithms were the
/// largest cost of the log joint).
struct LogProduct {
    mantissa: f64,
    exponent: i64,
}

impl LogProduct {
    const EXP_MASK: u64 = 0x7ff << 52;
    const ONE_EXP: u64 = 1023 << 52;

    fn new() -> Self {
        Self {
            mantissa: 1.0,
            exponent: 0,
        }
    }

    /// Multiplies by `p` in `[1e-300, 1e300)` and moves the binary exponent out of the
    /// mantissa, which stays in `[1, 2)` (finite, normal, positive: the exponent bits are
    /// exact).
    #[inline]
    fn mul(&mut self, p: f64) {
        Self::fold(&mut self.mantissa, &mut self.exponent, p);
    }

    /// [`Self::mul`] on the parts of a product (for arrays of them, one per lane).
    #[inline(always)]
    fn fold(mantissa: &mut f64, exponent: &mut i64, p: f64) {
        let bits = (*mantissa * p).to_bits();
        *exponent += ((bits & Self::EXP_MASK) >> 52) as i64 - 1023;
        *mantissa = f64::from_bits((bits & !Self::EXP_MASK) | Self::ONE_EXP);
    }

    fn ln(&self) -> f64 {
        self.mantissa.ln() + self.exponent as f64 * std::f64::consts::LN_2
    }
}

/// `(prod u_i, sum 1/u_i)` over `u_i = offset + i * scale`, `i = 1..c`, as two interleaved
/// product-rule chains (`q <- q u + p`, `p <- p u`, so `q / p = sum 1/u`) for instruction-level
/// parallelism; one division at the end.
#[inline]
fn prod_recip_sum(c: u32, offset: f64, scale: f64) -> (f64, f64) {
    let (mut p0, mut q0, mut p1, mut q1) = (1.0_f64, 0.0_f64, 1.0_f64, 0.0_f64);
    let mut i = 1u32;
    while i + 1 < c {
        let u0 = offset + f64::from(i) * scale;
        let u1 = u0 + scale;
        q0 = q0 * u0 + p0;
        p0 *= u0;
        q1 = q1 * u1 + p1;
        p1 *= u1;
        i += 2;
    }
    if i < c {
        let u0 = offset + f64::from(i) * scale;
        q0 = q0 * u0 + p0;
        p0 *= u0;
    }
    let p = p0 * p1;
    (p, (q0 * p1 + q1 * p0) / p)
}

/// lgamma/digamma path, written with `Gamma(x) = Gamma(x+1)/x`, `psi(x) = psi(x+1) - 1/x` so
/// that tiny `x` does not produce `inf - inf`. For `x >= ASYMPTOTIC_FROM` the differences
/// `lnGamma(x+c) - lnGamma(x)` and `psi(x+c) - psi(x)` are taken from Stirling's series instead:
/// subtracting two lgamma values of size `x ln x` cancels catastrophically once `x` is large
/// (at `kappa = e^40` the log-pmf was off by hundreds of nats).
#[inline]
fn ln_rising_large(c: u32, x: f64, ln_x: f64) -> (f64, f64) {
    if x >= ASYMPTOTIC_FROM {
        return ln_rising_asymptotic(c, x);
    }
    let xc = x + f64::from(c);
    let l = ln_gamma(xc) - ln_gamma(x + 1.0) + ln_x;
    let d = 1.0 + x * (digamma(xc) - digamma(x + 1.0));
    (l, d)
}

/// Smallest `x` for which [`ln_rising_large`] uses Stirling's series (truncation error below
/// `1e-11` there).
const ASYMPTOTIC_FROM: f64 = 10.0;

/// `(lnGamma(x+c) - lnGamma(x), x (psi(x+c) - psi(x)))` for `x >= 10` from Stirling's series
/// `lnGamma(z) = (z - 1/2) ln z - z + ln(2 pi)/2 + S(z)` and `psi(z) = ln z - 1/(2z) - T(z)`,
/// with the differences of the logarithms formed through `ln_1p(c / x)`, which stays exact.
#[inline]
fn ln_rising_asymptotic(c: u32, x: f64) -> (f64, f64) {
    let cf = f64::from(c);
    let xc = x + cf;
    let log_ratio = (cf / x).ln_1p();
    let stirling = |z: f64| {
        let r = 1.0 / (z * z);
        (1.0 / 12.0 - r * (1.0 / 360.0 - r / 1260.0)) / z
    };
    let digamma_tail = |z: f64| {
        let r = 1.0 / (z * z);
        r * (1.0 / 12.0 - r * (1.0 / 120.0 - r / 252.0))
    };
    let l = (x - 0.5) * log_ratio + cf * xc.ln() - cf + stirling(xc) - stirling(x);
    let psi_diff = log_ratio - 0.5 * (1.0 / xc - 1.0 / x) - (digamma_tail(xc) - digamma_tail(x));
    (l, x * psi_diff)
}

/// Log of `C(n, m)`.
fn ln_binomial(n: u32, m: u32) -> f64 {
    ln_gamma(f64::from(n) + 1.0) - ln_gamma(f64::from(m) + 1.0) - ln_gamma(f64::from(n - m) + 1.0)
}

/// Beta-binomial log-pmf `log P(m | n, alpha, beta)` (including the binomial coefficient) and
/// its partial derivatives with respect to `alpha` and `beta`: returns `(logp, d_alpha, d_beta)`.
///
/// Requires `m <= n`, `alpha > 0`, `beta > 0`.
///
/// # Examples
/// ```
/// let (lp, _, _) = methvb_model::likelihood::beta_binomial_ln_pmf(1, 1, 1.0, 1.0);
/// assert!((lp - 0.5f64.ln()).abs() < 1e-12);
/// ```
pub fn beta_binomial_ln_pmf(m: u32, n: u32, alpha: f64, beta: f64) -> (f64, f64, f64) {
    let (la, da) = ln_rising(m, alpha, alpha.ln());
    let (lb, db) = ln_rising(n - m, beta, beta.ln());
    let s = alpha + beta;
    let (ls, ds) = ln_rising(n, s, s.ln());
    (
        ln_binomial(n, m) + la + lb - ls,
        da / alpha - ds / s,
        db / beta - ds / s,
    )
}

/// Numerically stable `(pi, 1 - pi, ln pi, ln(1 - pi))` for `pi = logistic(eta)`.
#[inline]
pub(crate) fn logistic_parts(eta: f64) -> (f64, f64, f64, f64) {
    let e = (-eta.abs()).exp();
    let l = e.ln_1p();
    let big = 1.0 / (1.0 + e);
    let small = e * big;
    if eta >= 0.0 {
        (big, small, -l, -eta - l)
    } else {
        (small, big, eta - l, -l)
    }
}

/// Logistic function.
#[inline]
pub fn logistic(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// The parts of a cell's likelihood that depend only on `eta` and `k`: shared by all samples of
/// one group at one site, so computed once per (site, group) rather than once per cell.
#[derive(Debug, Clone, Copy, Default)]
struct EtaParts {
    pi: f64,
    pi_c: f64,
    alpha: f64,
    beta: f64,
    /// `ln alpha`, `ln beta`: only set (and only needed) when `direct` is false.
    ln_alpha: f64,
    ln_beta: f64,
    /// The rising factorials of `alpha` and `beta` may be multiplied out unnormalised (see
    /// [`rising_direct`]), which needs no logarithm of `alpha` or `beta`.
    direct: bool,
}

/// Largest `kappa` for [`rising_direct`]: a cell with fewer than [`SMALL_COUNT_CUTOFF`] reads
/// multiplies at most 63 factors `<= kappa + 63`, which stays below `1e253`.
const DIRECT_KAPPA_MAX: f64 = 1e4;
/// Smallest `alpha`, `beta` for [`rising_direct`], so that a cell's product stays above
/// `1e-200` (a normal number, as [`LogProduct`] needs).
const DIRECT_SHAPE_MIN: f64 = 1e-100;

impl EtaParts {
    /// `(pi, 1 - pi, alpha, beta, direct)`: the fields every path needs.
    #[inline(always)]
    fn shapes(eta: f64, kappa: f64) -> (f64, f64, f64, f64, bool) {
        let e = (-eta.abs()).exp();
        let big = 1.0 / (1.0 + e);
        let small = e * big;
        let (pi, pi_c) = if eta >= 0.0 {
            (big, small)
        } else {
            (small, big)
        };
        let (alpha, beta) = (pi * kappa, pi_c * kappa);
        let direct = kappa <= DIRECT_KAPPA_MAX && alpha.min(beta) >= DIRECT_SHAPE_MIN;
        (pi, pi_c, alpha, beta, direct)
    }

    #[inline]
    fn new(eta: f64, k: f64, kappa: f64) -> Self {
        let (pi, pi_c, alpha, beta, direct) = Self::shapes(eta, kappa);
        let (ln_alpha, ln_beta) = if direct {
            (0.0, 0.0)
        } else {
            let (_, _, ln_pi, ln_pi_c) = logistic_parts(eta);
            (ln_pi + k, ln_pi_c + k)
        };
        Self {
            pi,
            pi_c,
            alpha,
            beta,
            ln_alpha,
            ln_beta,
            direct,
        }
    }
}

/// [`ln_rising_parts`] without normalisation: `(0, prod_{i<c} (x+i), x * sum_{i<c} 1/(x+i))`.
/// Callers keep the product finite and normal (see [`DIRECT_KAPPA_MAX`], [`DIRECT_SHAPE_MIN`]).
#[inline]
fn rising_direct(c: u32, x: f64) -> (f64, f64, f64) {
    if c == 0 {
        (0.0, 1.0, 0.0)
    } else {
        let (p, r) = prod_recip_sum(c, x, 1.0);
        (0.0, x * p, 1.0 + x * r)
    }
}

/// The `kappa` term of a cell with `n` reads, `sum_{i<n} ln(kappa + i) = lin + ln(1 / inv_prod)`,
/// and its derivative in `k`, `d = kappa sum_{i<n} 1 / (kappa + i)`.
#[derive(Debug, Clone, Copy)]
struct KappaTerm {
    lin: f64,
    inv_prod: f64,
    d: f64,
}

/// The `kappa` terms of every count below [`SMALL_COUNT_CUTOFF`] up to a region's largest, for
/// the `k` of each of `L` lanes. The rising factorial of `n + 1` is that of `n` times one factor,
/// so all counts of a region together cost one chain of at most 63 steps, and the cells fold
/// `inv_prod` into the region's [`LogProduct`] instead of taking a logarithm each; this was the
/// largest remaining cost of the log joint after the per-cell terms. The factors are normalised
/// as in [`ln_rising_small`]: `1 + i / kappa` for `kappa >= 1` (with `lin = n k`), `kappa + i`
/// otherwise (with `lin = k`). Without `GRAD`, `d` is left 0.
struct KappaTerms<const L: usize, const GRAD: bool> {
    lin: [[f64; L]; SMALL_COUNT_CUTOFF as usize],
    inv_prod: [[f64; L]; SMALL_COUNT_CUTOFF as usize],
    d: [[f64; L]; SMALL_COUNT_CUTOFF as usize],
}

impl<const L: usize, const GRAD: bool> KappaTerms<L, GRAD> {
    #[inline(always)]
    fn new(k: &[f64; L], kappa: &[f64; L], max_count: usize) -> Self {
        let mut out = Self {
            lin: [[0.0; L]; SMALL_COUNT_CUTOFF as usize],
            inv_prod: [[1.0; L]; SMALL_COUNT_CUTOFF as usize],
            d: [[0.0; L]; SMALL_COUNT_CUTOFF as usize],
        };
        let normalised = kappa.map(|kappa| kappa >= 1.0);
        let (mut prod, mut recip_sum) = ([1.0; L], [0.0; L]);
        for c in 1..=max_count {
            // Term of c reads: the factors u_1..u_{c-1} are those of c - 1 plus one.
            let i = (c - 1) as f64;
            for l in 0..L {
                if c >= 2 {
                    let u = if normalised[l] {
                        1.0 + i / kappa[l]
                    } else {
                        kappa[l] + i
                    };
                    prod[l] *= u;
                    if GRAD {
                        recip_sum[l] += 1.0 / u;
                    }
                }
                out.inv_prod[c][l] = 1.0 / prod[l];
                if normalised[l] {
                    out.lin[c][l] = c as f64 * k[l];
                    if GRAD {
                        out.d[c][l] = 1.0 + recip_sum[l];
                    }
                } else {
                    out.lin[c][l] = k[l];
                    if GRAD {
                        out.d[c][l] = 1.0 + kappa[l] * recip_sum[l];
                    }
                }
            }
        }
        out
    }

    /// Lane `l`'s term of `n` reads; beyond the cutoff, from [`ln_rising_large`].
    #[inline]
    fn get(&self, n: u32, l: usize, k: f64, kappa: f64) -> KappaTerm {
        let c = n as usize;
        if c < self.lin.len() {
            KappaTerm {
                lin: self.lin[c][l],
                inv_prod: self.inv_prod[c][l],
                d: self.d[c][l],
            }
        } else {
            let (lin, d) = ln_rising(n, kappa, k);
            KappaTerm {
                lin,
                inv_prod: 1.0,
                d,
            }
        }
    }
}

/// Log-likelihood of one cell, as `lin + ln(prod)` (see [`ln_rising_parts`]), and its
/// derivatives with respect to `eta` and `k`: returns `(lin, prod, d_eta, d_k)`. `kterm` is the
/// cell's `kappa` term, which depends only on `(n, k)` (see [`KappaTerms`]).
#[inline(always)]
fn cell<const GRAD: bool>(m: u32, n: u32, e: &EtaParts, kterm: KappaTerm) -> (f64, f64, f64, f64) {
    let ((lin_a, pa, da), (lin_b, pb, db)) = if e.direct && n < SMALL_COUNT_CUTOFF {
        (rising_direct(m, e.alpha), rising_direct(n - m, e.beta))
    } else {
        let (ln_alpha, ln_beta) = if e.direct {
            (e.alpha.ln(), e.beta.ln())
        } else {
            (e.ln_alpha, e.ln_beta)
        };
        (
            ln_rising_parts(m, e.alpha, ln_alpha),
            ln_rising_parts(n - m, e.beta, ln_beta),
        )
    };
    cell_terms::<GRAD>((lin_a, pa, da), (lin_b, pb, db), e.pi, e.pi_c, kterm)
}

/// A cell's `(lin, prod, d_eta, d_k)` from the parts `(lin, prod, d)` of its two rising
/// factorials (of `alpha` over `m`, of `beta` over `n - m`), `pi`, `1 - pi` and its `kappa`
/// term.
#[inline(always)]
fn cell_terms<const GRAD: bool>(
    (lin_a, pa, da): (f64, f64, f64),
    (lin_b, pb, db): (f64, f64, f64),
    pi: f64,
    pi_c: f64,
    kterm: KappaTerm,
) -> (f64, f64, f64, f64) {
    let lin = lin_a + lin_b - kterm.lin;
    let prod = pa * pb * kterm.inv_prod;
    if GRAD {
        // d alpha / d eta = alpha (1 - pi), d beta / d eta = -beta pi; d/dk scales all by 1.
        (lin, prod, pi_c * da - pi * db, da + db - kterm.d)
    } else {
        (lin, prod, 0.0, 0.0)
    }
}

/// The part of the log density of `Normal(mean, sd^2)` at `x` that depends on `x`,
/// `-(x - mean)^2 / (2 sd^2)`, and its derivative; the caller adds `-ln sd - ln(2 pi) / 2`.
#[inline]
fn normal_kernel(x: f64, mean: f64, sd: f64) -> (f64, f64) {
    let r = (x - mean) / sd;
    (-0.5 * r * r, -r / sd)
}

/// Log density of the scale-mixture prior of the contrast vector `b` (length `G - 1`),
/// `log sum_k w_k N(b; 0, sd_k^2 I)`, its gradient (written into `grad`) and the posterior
/// weight of the null component given `b`.
pub fn b_prior_lp(b: &[f64], prior: &ScaleMixture, grad: Option<&mut [f64]>) -> (f64, f64) {
    let dim = b.len() as f64;
    let ss: f64 = b.iter().map(|x| x * x).sum();
    if prior.len() == 1 {
        let sd = prior.sd[0];
        let prec = 1.0 / (sd * sd);
        if let Some(g) = grad {
            for (gi, bi) in g.iter_mut().zip(b) {
                *gi = -bi * prec;
            }
        }
        return (-0.5 * ss * prec - dim * (sd.ln() + 0.5 * LN_2PI), 1.0);
    }
    // Direct sum of w_k sd_k^-dim exp(-ss / (2 sd_k^2)) (one exp per component, no
    // logarithm but the last); if every term underflows, the same in log-sum-exp form.
    let (mut total, mut null, mut prec_mean) = (0.0, 0.0, 0.0);
    for k in 0..prior.len() {
        let (w, sd) = (prior.weight[k], prior.sd[k]);
        if w == 0.0 {
            continue;
        }
        let prec = 1.0 / (sd * sd);
        let e = w * sd.powi(-(b.len() as i32)) * (-0.5 * ss * prec).exp();
        total += e;
        if k == 0 {
            null = e;
        }
        prec_mean += e * prec;
    }
    let ln_total = if total > 1e-300 && total.is_finite() {
        total.ln()
    } else {
        let comp = |k: usize| {
            let sd = prior.sd[k];
            prior.weight[k].ln() - dim * sd.ln() - 0.5 * ss / (sd * sd)
        };
        let mx = (0..prior.len()).map(comp).fold(f64::NEG_INFINITY, f64::max);
        (total, null, prec_mean) = (0.0, 0.0, 0.0);
        for k in 0..prior.len() {
            let e = (comp(k) - mx).exp();
            total += e;
            if k == 0 {
                null = e;
            }
            prec_mean += e / (prior.sd[k] * prior.sd[k]);
        }
        mx + total.ln()
    };
    if let Some(g) = grad {
        let p = prec_mean / total;
        for (gi, bi) in g.iter_mut().zip(b) {
            *gi = -bi * p;
        }
    }
    (ln_total - 0.5 * dim * LN_2PI, null / total)
}

/// The local priors of `log_joint_impl`: `(lp, prods)` with the kernels summed into `lp`
/// (the `-v_j^2 / 2` of the site effects excepted: they are added site by site) and the
/// normalising constants `1 / sd` as factors of the region's log-product (no logarithm per
/// evaluation), the `ln(2 pi)` terms as one constant. With `GRAD`, writes the priors' gradient
/// into `grad` (zeroing the rest of `grad[..D]`).
#[inline]
fn prior_terms<const GRAD: bool>(
    data: &RegionData,
    theta: &Theta,
    z: &[f64],
    grad: &mut [f64],
) -> (f64, LogProduct) {
    let lay = data.layout();
    let (g_n, j_n) = (data.n_groups, data.n_sites);
    let d = lay.dim();
    let a = z[ZLayout::A];
    let w = z[lay.w()];
    let k = z[lay.k()];
    if GRAD {
        grad[..d].fill(0.0);
    }
    let mut prods = LogProduct::new();
    let (mut lp, da) = normal_kernel(a, theta.mu_a, theta.sd_a);
    let (lw, dw) = normal_kernel(w, theta.mu_w, theta.sd_w);
    let (lk, dk) = normal_kernel(k, theta.mu_k, theta.sd_k);
    lp += lw + lk - 0.5 * LN_2PI * (3 + j_n) as f64;
    prods.mul(1.0 / (theta.sd_a * theta.sd_w * theta.sd_k));
    if GRAD {
        grad[ZLayout::A] = da;
        grad[lay.w()] = dw;
        grad[lay.k()] = dk;
    }
    let b = &z[lay.b(1)..lay.b(1) + g_n - 1];
    if g_n > 1 {
        let g = if GRAD {
            Some(&mut grad[lay.b(1)..lay.b(1) + g_n - 1])
        } else {
            None
        };
        if let [sd] = theta.b_prior.sd[..] {
            // One normal (the wide prior of the fits): its kernel, `1 / sd` per coordinate.
            let prec = 1.0 / (sd * sd);
            lp +=
                -0.5 * prec * b.iter().map(|x| x * x).sum::<f64>() - 0.5 * LN_2PI * b.len() as f64;
            prods.mul(sd.powi(-(b.len() as i32)));
            if let Some(g) = g {
                for (gi, bi) in g.iter_mut().zip(b) {
                    *gi = -bi * prec;
                }
            }
        } else {
            lp += b_prior_lp(b, &theta.b_prior, g).0;
        }
    }
    if let Some(design) = data.design {
        // Zero-centred normal priors of the design coordinates, their `1 / sd` as factors.
        let mut inv_sd = 1.0;
        for c in 0..design.n_covariates() {
            let sd = theta.design.covariate_sd(c);
            let (l, dl) = normal_kernel(z[lay.beta(c)], 0.0, sd);
            lp += l;
            inv_sd /= sd;
            if GRAD {
                grad[lay.beta(c)] = dl;
            }
        }
        if design.n_pairs() > 0 {
            // `check_theta` guarantees the sd of a paired design; NaN makes a skipped check
            // visible instead of silently using some default.
            let sd = theta.design.pair_sd.unwrap_or(f64::NAN);
            for p in 0..design.n_pairs() {
                let (l, dl) = normal_kernel(z[lay.u(p)], 0.0, sd);
                lp += l;
                inv_sd /= sd;
                if GRAD {
                    grad[lay.u(p)] = dl;
                }
            }
        }
        lp -= 0.5 * LN_2PI * (design.n_covariates() + design.n_pairs()) as f64;
        prods.mul(inv_sd);
    }
    (lp, prods)
}

/// Number of draws whose log joints [`log_joint_lanes`] evaluates together.
pub const LANES: usize = 4;

/// [`rising_direct`] for `L` values of `x` and one count: the same operations in the same order
/// per lane (so bit-identical to it), with the loop shared by the lanes. Returns the products
/// and (with `GRAD`) the derivative terms `1 + x sum 1/(x+i)`.
#[inline(always)]
fn rising_direct_lanes<const L: usize, const GRAD: bool>(
    c: u32,
    x: &[f64; L],
) -> ([f64; L], [f64; L]) {
    if c == 0 {
        return ([1.0; L], [0.0; L]);
    }
    let (mut p0, mut q0, mut p1, mut q1) = ([1.0_f64; L], [0.0_f64; L], [1.0_f64; L], [0.0_f64; L]);
    let mut i = 1u32;
    while i + 1 < c {
        let fi = f64::from(i);
        for l in 0..L {
            let u0 = x[l] + fi;
            let u1 = u0 + 1.0;
            if GRAD {
                q0[l] = q0[l] * u0 + p0[l];
                q1[l] = q1[l] * u1 + p1[l];
            }
            p0[l] *= u0;
            p1[l] *= u1;
        }
        i += 2;
    }
    if i < c {
        let fi = f64::from(i);
        for l in 0..L {
            let u0 = x[l] + fi;
            if GRAD {
                q0[l] = q0[l] * u0 + p0[l];
            }
            p0[l] *= u0;
        }
    }
    let p: [f64; L] = std::array::from_fn(|l| p0[l] * p1[l]);
    let d = if GRAD {
        std::array::from_fn(|l| 1.0 + x[l] * ((q0[l] * p1[l] + q1[l] * p0[l]) / p[l]))
    } else {
        [0.0; L]
    };
    (std::array::from_fn(|l| x[l] * p[l]), d)
}

/// The single implementation of the log joint and its gradient, for `L` points `z` of one
/// region at once (`L = 1` for [`log_joint`] and [`log_joint_grad`]). Each lane's value (and
/// gradient, written into `grad[l][..D]` with `GRAD`) is the same bit for bit whatever `L`: the
/// lanes share the region's counts, so the cells' rising-factorial loops run once for all of
/// them (most of the loop control and its mispredicted exits per point go, and the lanes'
/// products run side by side). A cell not on the direct path in every lane ([`rising_direct`])
/// is computed lane by lane.
#[inline(always)]
fn log_joint_impl<const L: usize, const GRAD: bool>(
    data: &RegionData,
    theta: &Theta,
    z: [&[f64]; L],
    grad: &mut [&mut [f64]; L],
) -> [f64; L] {
    // The per-class arrays live on the stack and are zeroed at every call: sized for the
    // common case unless the design has more classes.
    if data.classes().1 <= FEW_CLASSES {
        log_joint_classes::<L, GRAD, FEW_CLASSES>(data, theta, z, grad)
    } else {
        log_joint_classes::<L, GRAD, MAX_CLASSES>(data, theta, z, grad)
    }
}

/// Up to this many sample classes (the groups, without a design), [`log_joint_impl`] sizes its
/// per-class arrays for them rather than for [`MAX_CLASSES`].
const FEW_CLASSES: usize = 16;

/// [`log_joint_impl`] for regions with at most `C` sample classes.
#[inline(always)]
fn log_joint_classes<const L: usize, const GRAD: bool, const C: usize>(
    data: &RegionData,
    theta: &Theta,
    z: [&[f64]; L],
    grad: &mut [&mut [f64]; L],
) -> [f64; L] {
    let lay = data.layout();
    let (g_n, j_n, s_n) = (data.n_groups, data.n_sites, data.n_samples);
    let (sample_class, n_classes) = data.classes();
    let z = z.map(|z| &z[..lay.dim()]);
    let a = z.map(|z| z[ZLayout::A]);
    let k = z.map(|z| z[lay.k()]);
    let ew = z.map(|z| z[lay.w()].exp());
    let kappa = k.map(f64::exp);
    let mut lp = [0.0; L];
    let (mut mantissa, mut exponent) = ([0.0; L], [0i64; L]);
    let mut class_offset = [[0.0; C]; L];
    let contrasts = GroupContrasts { n_groups: g_n };
    for l in 0..L {
        let (lpl, prods) = prior_terms::<GRAD>(data, theta, z[l], grad[l]);
        (lp[l], mantissa[l], exponent[l]) = (lpl, prods.mantissa, prods.exponent);
        let mut offset = [0.0; MAX_GROUPS];
        contrasts.offsets(&z[l][lay.b(1)..lay.b(1) + g_n - 1], &mut offset);
        data.class_offsets(z[l], &offset, &mut class_offset[l]);
    }
    let max_count = data
        .coverage
        .iter()
        .filter(|&&n| n < SMALL_COUNT_CUTOFF)
        .max()
        .map_or(0, |&n| n as usize);
    let kappa_terms = KappaTerms::<L, GRAD>::new(&k, &kappa, max_count);
    // d log p / d eta summed over the cells of each class, for the gradients of b, beta, u.
    let mut g_eta_class = [[0.0; L]; C];
    let (mut gk, mut gw) = ([0.0; L], [0.0; L]);
    // Per class at the current site: each lane's eta, logistic parts and shapes, and whether
    // every lane is on the direct path (the rest of `EtaParts` is made only when one is not).
    let mut eta = [[0.0; L]; C];
    let mut pi = [[0.0; L]; C];
    let mut pi_c = [[0.0; L]; C];
    let mut alpha = [[0.0; L]; C];
    let mut beta = [[0.0; L]; C];
    let mut all_direct = [false; C];
    for j in 0..j_n {
        let vj = z.map(|z| z[lay.v(j)]);
        let mut site = [0.0; L];
        for l in 0..L {
            lp[l] += -0.5 * vj[l] * vj[l];
            site[l] = a[l] + ew[l] * vj[l];
        }
        for c in 0..n_classes {
            let mut direct = true;
            for l in 0..L {
                eta[c][l] = site[l] + class_offset[l][c];
                let (p, p_c, al, be, d) = EtaParts::shapes(eta[c][l], kappa[l]);
                (pi[c][l], pi_c[c][l], alpha[c][l], beta[c][l]) = (p, p_c, al, be);
                direct &= d;
            }
            all_direct[c] = direct;
        }
        let mut g_eta_site = [0.0; L];
        let row = j * s_n;
        for (s, &class) in sample_class.iter().enumerate() {
            let n = data.coverage[row + s];
            if n == 0 {
                continue;
            }
            let m = data.methylated[row + s];
            let mut cells = [(0.0, 0.0, 0.0, 0.0); L];
            if all_direct[class] && n < SMALL_COUNT_CUTOFF {
                // `cell`'s direct path, with the chains run for all lanes at once.
                let (pa, da) = rising_direct_lanes::<L, GRAD>(m, &alpha[class]);
                let (pb, db) = rising_direct_lanes::<L, GRAD>(n - m, &beta[class]);
                for (l, out) in cells.iter_mut().enumerate() {
                    *out = cell_terms::<GRAD>(
                        (0.0, pa[l], da[l]),
                        (0.0, pb[l], db[l]),
                        pi[class][l],
                        pi_c[class][l],
                        kappa_terms.get(n, l, k[l], kappa[l]),
                    );
                }
            } else {
                for (l, out) in cells.iter_mut().enumerate() {
                    let parts = EtaParts::new(eta[class][l], k[l], kappa[l]);
                    let kterm = kappa_terms.get(n, l, k[l], kappa[l]);
                    *out = cell::<GRAD>(m, n, &parts, kterm);
                }
            }
            for (l, &(lin, prod, d_eta, d_k)) in cells.iter().enumerate() {
                lp[l] += lin;
                LogProduct::fold(&mut mantissa[l], &mut exponent[l], prod);
                if GRAD {
                    g_eta_site[l] += d_eta;
                    gk[l] += d_k;
                    g_eta_class[class][l] += d_eta;
                }
            }
        }
        if GRAD {
            for l in 0..L {
                grad[l][ZLayout::A] += g_eta_site[l];
                gw[l] += g_eta_site[l] * ew[l] * vj[l];
                grad[l][lay.v(j)] += -vj[l] + g_eta_site[l] * ew[l];
            }
        }
    }
    for l in 0..L {
        let prods = LogProduct {
            mantissa: mantissa[l],
            exponent: exponent[l],
        };
        lp[l] += prods.ln();
        if GRAD {
            let g_class: [f64; C] = std::array::from_fn(|c| g_eta_class[c][l]);
            finish_gradient(data, &g_class, gw[l], gk[l], grad[l]);
        }
    }
    lp
}

/// The gradient's terms of `w`, `k` and the class offsets' coordinates (`b`, `beta`, `u`),
/// from the sums `gw`, `gk` and `g_eta_class` of the cells.
fn finish_gradient(data: &RegionData, g_eta_class: &[f64], gw: f64, gk: f64, grad: &mut [f64]) {
    let lay = data.layout();
    let g_n = data.n_groups;
    grad[lay.w()] += gw;
    grad[lay.k()] += gk;
    // Without a design the classes are the groups.
    let mut g_eta_group = [0.0; MAX_GROUPS];
    match data.design {
        Some(design) => {
            for (&s, &ge) in design.class_sample().iter().zip(g_eta_class) {
                g_eta_group[data.sample_group[s]] += ge;
                for (c, x) in design.row(s).iter().enumerate() {
                    grad[lay.beta(c)] += x * ge;
                }
                if let Some(p) = design.pair(s) {
                    grad[lay.u(p)] += ge;
                }
            }
        }
        None => g_eta_group[..g_n].copy_from_slice(&g_eta_class[..g_n]),
    }
    let contrasts = GroupContrasts { n_groups: g_n };
    for h in 1..g_n {
        grad[lay.b(h)] += (0..=h)
            .map(|g| contrasts.coef(g, h) * g_eta_group[g])
            .sum::<f64>();
    }
}

/// Log joint `log p(y, z | Theta)` of one region (up to the constant `sum log C(n, m)`) and its
/// gradient with respect to `z`, written into `grad[..D]`.
///
/// `z` and `grad` must have at least `D = G + 2 + J` entries and `data` must satisfy
/// [`RegionData::validate`] (otherwise this may panic on an out-of-range index). Allocation-free.
pub fn log_joint_grad(data: &RegionData, theta: &Theta, z: &[f64], grad: &mut [f64]) -> f64 {
    log_joint_impl::<1, true>(data, theta, [z], &mut [grad])[0]
}

/// Log joint only (same value as [`log_joint_grad`], without the gradient work).
pub fn log_joint(data: &RegionData, theta: &Theta, z: &[f64]) -> f64 {
    log_joint_impl::<1, false>(data, theta, [z], &mut [&mut []])[0]
}

/// [`log_joint_grad`] of `L` points of one region at once: the same values and gradients, bit
/// for bit, faster per point (see `log_joint_impl`).
pub fn log_joint_grad_lanes<const L: usize>(
    data: &RegionData,
    theta: &Theta,
    z: [&[f64]; L],
    grad: &mut [&mut [f64]; L],
) -> [f64; L] {
    log_joint_impl::<L, true>(data, theta, z, grad)
}

/// [`log_joint`] of `L` points of one region at once: the same values, bit for bit, faster per
/// point (see `log_joint_impl`).
pub fn log_joint_lanes<const L: usize>(
    data: &RegionData,
    theta: &Theta,
    z: [&[f64]; L],
) -> [f64; L] {
    log_joint_impl::<L, false>(data, theta, z, &mut std::array::from_fn(|_| &mut [][..]))
}

#[cfg(test)]
mod tests {
    #[test]
    fn rising_factorial_paths_agree_for_large_arguments() {
        // Reference: direct sums, exact for any x (ln(x + i) = ln x + ln_1p(i / x)).
        for &c in &[40u32, 100, 1000] {
            for &x in &[10.0, 12.5, 1e3, 1e8, 1e20, 1e43] {
                let (l, d) = super::ln_rising_large(c, x, f64::ln(x));
                let l_ref: f64 = (0..c).map(|i| x.ln() + (f64::from(i) / x).ln_1p()).sum();
                let d_ref: f64 = (0..c).map(|i| x / (x + f64::from(i))).sum();
                assert!(
                    (l - l_ref).abs() < 1e-9 * l_ref.abs().max(1.0),
                    "c {c} x {x}: {l} vs {l_ref}"
                );
                assert!(
                    (d - d_ref).abs() < 1e-9 * d_ref.max(1.0),
                    "c {c} x {x}: {d} vs {d_ref}"
                );
            }
        }
    }

    #[test]
    fn huge_concentration_tends_to_the_binomial() {
        // kappa = e^100: the beta-binomial is the binomial(45, 1/2) to machine precision.
        let kappa = 100f64.exp();
        let (lp, _, _) = beta_binomial_ln_pmf(20, 45, kappa / 2.0, kappa / 2.0);
        let binom = super::ln_binomial(45, 20) - 45.0 * std::f64::consts::LN_2;
        assert!((lp - binom).abs() < 1e-9, "{lp} vs {binom}");
    }

    use super::*;
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};
    use rand_distr::StandardNormal;

    fn direct_lp(m: u32, n: u32, a: f64, b: f64) -> f64 {
        let lbeta = |x: f64, y: f64| ln_gamma(x) + ln_gamma(y) - ln_gamma(x + y);
        ln_binomial(n, m) + lbeta(f64::from(m) + a, f64::from(n - m) + b) - lbeta(a, b)
    }

    #[test]
    fn log_pmf_matches_direct_lgamma_formula() {
        for &(m, n) in &[
            (0, 0),
            (0, 5),
            (5, 5),
            (3, 7),
            (17, 39),
            (20, 40),
            (1, 120),
            (900, 1000),
        ] {
            for &(a, b) in &[
                (0.3, 2.0),
                (1.0, 1.0),
                (15.0, 4.0),
                (250.0, 700.0),
                (1e-3, 0.5),
            ] {
                let (lp, _, _) = beta_binomial_ln_pmf(m, n, a, b);
                let want = direct_lp(m, n, a, b);
                assert!(
                    (lp - want).abs() < 1e-9 * (1.0 + want.abs()),
                    "{m} {n} {a} {b}: {lp} vs {want}"
                );
            }
        }
        // Beta(1,1) mixing gives the discrete uniform on 0..=n.
        for m in 0..=10 {
            let (lp, _, _) = beta_binomial_ln_pmf(m, 10, 1.0, 1.0);
            assert!((lp + 11f64.ln()).abs() < 1e-12);
        }
    }

    #[test]
    fn pmf_derivatives_match_finite_differences() {
        for &(m, n) in &[(3, 7), (0, 12), (30, 60), (2, 100)] {
            for &(a, b) in &[(0.4, 2.0), (12.0, 30.0)] {
                let (_, da, db) = beta_binomial_ln_pmf(m, n, a, b);
                let h = 1e-6;
                let fa = (direct_lp(m, n, a + h, b) - direct_lp(m, n, a - h, b)) / (2.0 * h);
                let fb = (direct_lp(m, n, a, b + h) - direct_lp(m, n, a, b - h)) / (2.0 * h);
                assert!((da - fa).abs() < 1e-5 * (1.0 + fa.abs()), "{da} {fa}");
                assert!((db - fb).abs() < 1e-5 * (1.0 + fb.abs()), "{db} {fb}");
            }
        }
    }

    #[test]
    fn small_and_large_count_paths_agree() {
        for c in [1u32, 2, 5, 17, 39, 40, 45, 80] {
            for x in [1e-300, 1e-8, 0.01, 0.7, 1.0, 3.5, 80.0, 1e4, 1e6, 1e9] {
                let (lin, prod, ds) = ln_rising_small(c, x, x.ln());
                let ls = lin + prod.ln();
                let (ll, dl) = ln_rising_large(c, x, x.ln());
                // The lgamma difference cancels ~x ln x against a value ~c ln x: allow for it.
                let tol = 1e-10 * (1.0 + ls.abs()) + 1e-15 * x * x.ln().abs().max(1.0) * 4.0;
                assert!((ls - ll).abs() < tol, "value c={c} x={x}: {ls} vs {ll}");
                assert!(
                    (ds - dl).abs() < 1e-8 * (1.0 + ds.abs()) + 1e-15 * x * x.ln().abs().max(1.0),
                    "deriv c={c} x={x}: {ds} vs {dl}"
                );
            }
        }
    }

    fn random_region(
        rng: &mut StdRng,
        g: usize,
        j: usize,
        s: usize,
    ) -> (Vec<usize>, Vec<u32>, Vec<u32>) {
        let groups: Vec<usize> = (0..s).map(|i| i % g).collect();
        let mut mth = vec![0u32; j * s];
        let mut cov = vec![0u32; j * s];
        for i in 0..j * s {
            let u: f64 = rng.random();
            let n = if u < 0.2 {
                0
            } else if u < 0.3 {
                rng.random_range(40..300u32)
            } else {
                rng.random_range(1..35u32)
            };
            cov[i] = n;
            mth[i] = if n == 0 { 0 } else { rng.random_range(0..=n) };
        }
        (groups, mth, cov)
    }

    /// Asserts that `grad`, the analytic gradient at `z`, matches central differences of the
    /// log joint in every coordinate.
    fn assert_gradient_is_central_difference(
        data: &RegionData,
        theta: &Theta,
        z: &[f64],
        grad: &[f64],
        what: &str,
    ) {
        let mut scratch = vec![0.0; z.len()];
        for i in 0..z.len() {
            let h = 1e-5;
            let (mut zp, mut zm) = (z.to_vec(), z.to_vec());
            zp[i] += h;
            zm[i] -= h;
            let fd = (log_joint_grad(data, theta, &zp, &mut scratch)
                - log_joint_grad(data, theta, &zm, &mut scratch))
                / (2.0 * h);
            assert!(
                (grad[i] - fd).abs() < 1e-5 * (1.0 + fd.abs()),
                "{what} coord {i}: analytic {} vs fd {fd}",
                grad[i]
            );
        }
    }

    #[test]
    fn gradient_matches_central_finite_differences() {
        let mut rng = StdRng::seed_from_u64(7);
        let theta = Theta {
            mu_a: 0.3,
            sd_a: 1.5,
            b_prior: ScaleMixture::spike_slab(0.8, 0.1, 1.2),
            mu_w: -0.5,
            sd_w: 0.7,
            mu_k: 2.5,
            sd_k: 0.9,
            design: Default::default(),
        };
        for &(g, j, s) in &[(1, 1, 1), (2, 5, 4), (3, 7, 6), (2, 1, 8), (4, 12, 9)] {
            let (groups, mth, cov) = random_region(&mut rng, g, j, s);
            let data = RegionData {
                n_sites: j,
                n_samples: s,
                sample_group: &groups,
                n_groups: g,
                methylated: &mth,
                coverage: &cov,
                design: None,
            };
            data.validate().unwrap();
            let d = data.layout().dim();
            // kappa mostly above 1, once below (the two forms of the kappa terms).
            for k_shift in [2.0, 2.0, -1.5] {
                let z: Vec<f64> = (0..d)
                    .map(|_| 0.8 * rng.sample::<f64, _>(StandardNormal))
                    .collect();
                let mut z = z;
                z[data.layout().k()] += k_shift;
                let mut grad = vec![0.0; d];
                let lp = log_joint_grad(&data, &theta, &z, &mut grad);
                assert!((lp - log_joint(&data, &theta, &z)).abs() < 1e-12 * (1.0 + lp.abs()));
                assert_gradient_is_central_difference(
                    &data,
                    &theta,
                    &z,
                    &grad,
                    &format!("G={g} J={j} S={s}"),
                );
            }
        }
    }

    #[test]
    fn contrasts_are_orthogonal_and_exchangeable() {
        for g_n in 2..=6 {
            let c = GroupContrasts { n_groups: g_n };
            // C'C = I / 2 and every column sums to zero.
            for h in 1..g_n {
                let col_sum: f64 = (0..g_n).map(|g| c.coef(g, h)).sum();
                assert!(col_sum.abs() < 1e-12);
                for h2 in 1..g_n {
                    let dot: f64 = (0..g_n).map(|g| c.coef(g, h) * c.coef(g, h2)).sum();
                    let want = if h == h2 { 0.5 } else { 0.0 };
                    assert!((dot - want).abs() < 1e-12, "G={g_n} {h} {h2}: {dot}");
                }
            }
            // Offsets and coordinates invert each other.
            let b: Vec<f64> = (1..g_n).map(|h| 0.3 * h as f64 - 0.7).collect();
            let mut off = vec![0.0; g_n];
            c.offsets(&b, &mut off);
            assert!(off.iter().sum::<f64>().abs() < 1e-12);
            let mut back = vec![0.0; g_n - 1];
            c.coordinates(&off, &mut back);
            for (x, y) in b.iter().zip(&back) {
                assert!((x - y).abs() < 1e-12);
            }
        }
        let two = GroupContrasts { n_groups: 2 };
        let mut off = [0.0; 2];
        two.offsets(&[1.0], &mut off);
        assert_eq!(off, [-0.5, 0.5]);
    }

    #[test]
    fn b_prior_matches_the_mixture_density_and_its_derivative() {
        let prior = ScaleMixture::grid(0.05, 0.7);
        for b in [[0.0, 0.0], [0.03, -0.02], [0.8, 1.9], [-4.0, 0.5]] {
            let direct = |x: &[f64]| {
                (0..prior.len())
                    .map(|c| {
                        let s = prior.sd[c];
                        let ss: f64 = x.iter().map(|v| v * v).sum();
                        prior.weight[c] * (-0.5 * ss / (s * s)).exp()
                            / (2.0 * std::f64::consts::PI * s * s)
                    })
                    .sum::<f64>()
                    .ln()
            };
            let mut g = [0.0; 2];
            let (lp, null) = b_prior_lp(&b, &prior, Some(&mut g));
            assert!(
                (lp - direct(&b)).abs() < 1e-10,
                "{b:?}: {lp} vs {}",
                direct(&b)
            );
            for i in 0..2 {
                let h = 1e-6;
                let (mut p, mut m) = (b, b);
                p[i] += h;
                m[i] -= h;
                let fd = (direct(&p) - direct(&m)) / (2.0 * h);
                assert!((g[i] - fd).abs() < 1e-5 * (1.0 + fd.abs()), "{g:?} vs {fd}");
            }
            assert!((0.0..=1.0).contains(&null));
        }
        // At b = 0 the null component dominates; far out it has no weight.
        assert!(b_prior_lp(&[0.0, 0.0], &prior, None).1 > 0.7);
        assert!(b_prior_lp(&[2.0, 0.0], &prior, None).1 < 1e-10);
    }

    #[test]
    fn log_joint_matches_direct_formula() {
        // Independent re-computation with lgamma-based pmf and explicit priors.
        let theta = Theta::default();
        let groups = [0usize, 1, 1];
        let mth = [3u32, 0, 9, 1, 4, 0];
        let cov = [5u32, 0, 12, 2, 50, 1];
        let data = RegionData {
            n_sites: 2,
            n_samples: 3,
            sample_group: &groups,
            n_groups: 2,
            methylated: &mth,
            coverage: &cov,
            design: None,
        };
        // The first z takes the unnormalised product path of the cells; the second (kappa
        // above DIRECT_KAPPA_MAX) and the third (alpha below DIRECT_SHAPE_MIN) the logarithmic
        // one; the fourth has kappa < 1 (unnormalised factors of the kappa terms). lgamma
        // differences lose ~x ln x * 1e-16 at x = kappa, hence the tolerances.
        let cases = [
            ([0.2, -0.4, -1.1, 2.7, 0.5, -1.3], 1e-10),
            ([0.2, -0.4, -1.1, -1.5, 0.5, -1.3], 1e-10),
            ([0.2, -0.4, -1.1, 14.5, 0.5, -1.3], 1e-7),
            ([-235.0, -0.4, -1.1, 2.7, 0.5, -1.3], 1e-10),
        ];
        for (z, tol) in cases {
            let (a, b1, w, k, v) = (z[0], z[1], z[2], z[3], [z[4], z[5]]);
            let norm =
                |x: f64, m: f64, s: f64| -0.5 * ((x - m) / s).powi(2) - s.ln() - 0.5 * LN_2PI;
            let mut want = norm(a, theta.mu_a, theta.sd_a)
                + norm(w, theta.mu_w, theta.sd_w)
                + norm(k, theta.mu_k, theta.sd_k);
            let bp = &theta.b_prior;
            want += (0..bp.len())
                .map(|c| bp.weight[c] * norm(b1, 0.0, bp.sd[c]).exp())
                .sum::<f64>()
                .ln();
            for j in 0..2 {
                want += norm(v[j], 0.0, 1.0);
                for s in 0..3 {
                    let n = cov[j * 3 + s];
                    if n == 0 {
                        continue;
                    }
                    let m = mth[j * 3 + s];
                    // Two groups: offsets -b/2 (reference) and +b/2.
                    let eta = a + if groups[s] == 1 { 0.5 } else { -0.5 } * b1 + w.exp() * v[j];
                    let p = 1.0 / (1.0 + (-eta).exp());
                    want += direct_lp(m, n, p * k.exp(), (1.0 - p) * k.exp()) - ln_binomial(n, m);
                }
            }
            let got = log_joint(&data, &theta, &z);
            assert!(
                (got - want).abs() < tol * (1.0 + want.abs()),
                "z {z:?}: {got} vs {want}"
            );
        }
    }

    /// Two groups of `groups`' samples with counts `mth`, `cov` (sites x samples) and `design`.
    fn with_design<'a>(
        groups: &'a [usize],
        mth: &'a [u32],
        cov: &'a [u32],
        design: &'a Design,
    ) -> RegionData<'a> {
        RegionData {
            n_sites: mth.len() / groups.len(),
            n_samples: groups.len(),
            sample_group: groups,
            n_groups: 2,
            methylated: mth,
            coverage: cov,
            design: Some(design),
        }
    }

    /// A 3 vs 3 design with a numeric covariate, a two-level batch and three pairs, and its
    /// prior.
    fn design_of(groups: &[usize]) -> (Design, Theta) {
        let x = vec![
            -1.0, 0.0, 0.5, 1.0, 0.0, 0.0, //
            1.5, 1.0, -1.0, 1.0, 0.0, 0.0,
        ];
        // Row-major S x P with P = 2 (age, batch=B).
        let x: Vec<f64> = (0..6).flat_map(|s| [x[s], x[6 + s]]).collect();
        let design = Design::new(
            vec!["age".into(), "batch=B".into()],
            x,
            vec!["d1".into(), "d2".into(), "d3".into()],
            vec![0, 1, 2, 0, 1, 2],
            groups,
        )
        .unwrap();
        let mut theta = Theta {
            design: crate::design::DesignPrior::initial(Some(&design)),
            ..Theta::default()
        };
        theta.design.covariates[0].sd = 0.6;
        theta.design.pair_sd = Some(0.4);
        (design, theta)
    }

    #[test]
    fn design_gradient_matches_central_finite_differences() {
        let mut rng = StdRng::seed_from_u64(11);
        let (groups, mth, cov) = random_region(&mut rng, 2, 6, 6);
        let (design, theta) = design_of(&groups);
        let data = with_design(&groups, &mth, &cov, &design);
        data.validate().unwrap();
        data.check_theta(&theta).unwrap();
        let lay = data.layout();
        assert_eq!((lay.n_block(), lay.dim()), (2 + 2 + 3 + 2, 15));
        let d = lay.dim();
        let mut z: Vec<f64> = (0..d)
            .map(|_| 0.7 * rng.sample::<f64, _>(StandardNormal))
            .collect();
        z[lay.k()] += 2.0;
        let mut grad = vec![0.0; d];
        log_joint_grad(&data, &theta, &z, &mut grad);
        assert_gradient_is_central_difference(&data, &theta, &z, &grad, "design");
    }

    #[test]
    fn design_log_joint_matches_direct_formula() {
        // The design terms against an explicit eta per cell and explicit normal priors; the
        // rest of the log joint is the one without a design at the same (a, b, w, k, v).
        let mut rng = StdRng::seed_from_u64(5);
        let (groups, mth, cov) = random_region(&mut rng, 2, 4, 6);
        let (design, theta) = design_of(&groups);
        let data = with_design(&groups, &mth, &cov, &design);
        let lay = data.layout();
        let z: Vec<f64> = (0..lay.dim())
            .map(|i| 0.3 * (i as f64).sin() + if i == lay.k() { 2.5 } else { 0.0 })
            .collect();
        let (beta, u) = ([z[lay.beta(0)], z[lay.beta(1)]], &z[lay.u(0)..lay.u(0) + 3]);
        let norm = |x: f64, s: f64| -0.5 * (x / s).powi(2) - s.ln() - 0.5 * LN_2PI;
        let mut want = norm(beta[0], 0.6) + norm(beta[1], 1.0);
        want += u.iter().map(|&x| norm(x, 0.4)).sum::<f64>();
        let (a, b1, w, k) = (z[0], z[1], z[lay.w()], z[lay.k()]);
        let prior = |x: f64, m: f64, s: f64| norm(x - m, s);
        let bp = &theta.b_prior;
        want += prior(a, theta.mu_a, theta.sd_a)
            + prior(w, theta.mu_w, theta.sd_w)
            + prior(k, theta.mu_k, theta.sd_k)
            + (0..bp.len())
                .map(|c| bp.weight[c] * norm(b1, bp.sd[c]).exp())
                .sum::<f64>()
                .ln();
        for j in 0..4 {
            let v = z[lay.v(j)];
            want += norm(v, 1.0);
            for s in 0..6 {
                let n = cov[j * 6 + s];
                if n == 0 {
                    continue;
                }
                let row = design.row(s);
                let eta = a
                    + if groups[s] == 1 { 0.5 } else { -0.5 } * b1
                    + row[0] * beta[0]
                    + row[1] * beta[1]
                    + u[design.pair(s).unwrap()]
                    + w.exp() * v;
                let p = 1.0 / (1.0 + (-eta).exp());
                let m = mth[j * 6 + s];
                want += direct_lp(m, n, p * k.exp(), (1.0 - p) * k.exp()) - ln_binomial(n, m);
            }
        }
        let got = log_joint(&data, &theta, &z);
        assert!(
            (got - want).abs() < 1e-9 * (1.0 + want.abs()),
            "{got} vs {want}"
        );
        // A prior for another design is refused before any evaluation.
        assert!(data.check_theta(&Theta::default()).is_err());
    }

    /// Every lane of `log_joint_lanes` and `log_joint_grad_lanes` is the one-point value and
    /// gradient bit for bit, whatever the other lanes hold: cells on the direct path in some
    /// lanes only (kappa above DIRECT_KAPPA_MAX, alpha below DIRECT_SHAPE_MIN, kappa < 1),
    /// counts at and beyond SMALL_COUNT_CUTOFF, three groups, and designs with few classes and
    /// with more than FEW_CLASSES.
    #[test]
    fn lanes_equal_one_point_at_a_time() {
        fn check<const L: usize>(data: &RegionData, theta: &Theta, rng: &mut StdRng) {
            let lay = data.layout();
            let d = lay.dim();
            for round in 0..20 {
                let zs: Vec<Vec<f64>> = (0..L)
                    .map(|l| {
                        let mut z: Vec<f64> = (0..d)
                            .map(|_| 0.8 * rng.sample::<f64, _>(StandardNormal))
                            .collect();
                        // Odd rounds: every lane on the direct path (but for counts at or
                        // beyond the cutoff); even rounds: some lanes off it.
                        if round % 2 == 1 {
                            z[lay.k()] += [2.7, -1.5, 3.0][l % 3];
                        } else {
                            z[lay.k()] += [2.7, 14.5, -1.5, 3.0][(l + round / 2) % 4];
                            if (l + round / 2) % 5 == 4 {
                                z[ZLayout::A] = -235.0;
                            }
                        }
                        z
                    })
                    .collect();
                let z: [&[f64]; L] = std::array::from_fn(|l| &zs[l][..]);
                let values = log_joint_lanes(data, theta, z);
                let mut grads = vec![vec![0.0; d]; L];
                let mut refs: [&mut [f64]; L] = {
                    let mut it = grads.iter_mut();
                    std::array::from_fn(|_| &mut it.next().unwrap()[..])
                };
                let with_grad = log_joint_grad_lanes(data, theta, z, &mut refs);
                let mut one = vec![0.0; d];
                for l in 0..L {
                    let want = log_joint_grad(data, theta, z[l], &mut one);
                    assert_eq!(values[l].to_bits(), want.to_bits(), "lane {l} of {L}");
                    assert_eq!(with_grad[l].to_bits(), want.to_bits(), "lane {l} of {L}");
                    assert_eq!(log_joint(data, theta, z[l]).to_bits(), want.to_bits());
                    for (i, (g, w)) in grads[l].iter().zip(&one).enumerate() {
                        assert_eq!(g.to_bits(), w.to_bits(), "lane {l} of {L}, coordinate {i}");
                    }
                }
            }
        }
        let mut rng = StdRng::seed_from_u64(21);
        for g in [2, 3] {
            let (groups, mth, cov) = random_region(&mut rng, g, 7, 6);
            let data = RegionData {
                n_sites: 7,
                n_samples: 6,
                sample_group: &groups,
                n_groups: g,
                methylated: &mth,
                coverage: &cov,
                design: None,
            };
            check::<LANES>(&data, &Theta::default(), &mut rng);
            check::<2>(&data, &Theta::default(), &mut rng);
        }
        let (groups, mth, cov) = random_region(&mut rng, 2, 5, 6);
        let (design, theta) = design_of(&groups);
        check::<LANES>(&with_design(&groups, &mth, &cov, &design), &theta, &mut rng);
        // 20 samples with distinct covariate values: 20 classes.
        let (groups, mth, cov) = random_region(&mut rng, 2, 4, 20);
        let x: Vec<f64> = (0..20).map(|s| s as f64 / 10.0 - 1.0).collect();
        let design = Design::new(vec!["age".into()], x, Vec::new(), Vec::new(), &groups).unwrap();
        assert!(design.class_sample().len() > FEW_CLASSES);
        let theta = Theta {
            design: crate::design::DesignPrior::initial(Some(&design)),
            ..Theta::default()
        };
        check::<LANES>(&with_design(&groups, &mth, &cov, &design), &theta, &mut rng);
    }

    #[test]
    fn extreme_inputs_stay_finite() {
        let groups = [0usize, 1];
        let mth = [100_000u32, 0];
        let cov = [100_000u32, 100_000];
        let data = RegionData {
            n_sites: 1,
            n_samples: 2,
            sample_group: &groups,
            n_groups: 2,
            methylated: &mth,
            coverage: &cov,
            design: None,
        };
        let mut grad = [0.0; 5];
        for z in [
            [40.0, -80.0, 3.0, 12.0, 5.0],
            [-40.0, 0.0, -5.0, -10.0, 0.0],
            [0.0; 5],
        ] {
            let lp = log_joint_grad(&data, &Theta::default(), &z, &mut grad);
            assert!(
                lp.is_finite() && grad.iter().all(|g| g.is_finite()),
                "{z:?}: {lp} {grad:?}"
            );
        }
    }
}
