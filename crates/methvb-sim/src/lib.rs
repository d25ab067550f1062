//! Simulator of DNA-methylation counts for methvb.
//!
//! [`simulate`] draws regions, samples and counts either from the generative model of
//! MODEL.md ([`SimMode::Model`]) or from the model with the departures seen in real data
//! ([`SimMode::Realistic`]); [`write_dataset`] writes the result as per-sample modkit
//! bedMethyl files plus a sample sheet, the regions, the truth and the config.
//!
//! # Model mode
//! Per region `r` (all draws from random streams seeded by `(seed, r)` only):
//! - layout: a gap `~ U{region_gap}` after the previous region, `J ~ U{sites_per_region}`
//!   CpGs spaced `~ U{cpg_spacing}` apart; regions are spread evenly over the contigs;
//! - `a ~ N(mu_a, sd_a^2)`; the region is a DMR with probability `dmr_fraction` (needs at
//!   least two groups); `b_g` (`g >= 1`) from the slab `N(0, sd_b1^2)` for a DMR (optionally
//!   pushed away from 0 by `min_dmr_logit_effect`), else from the spike `N(0, sd_b0^2)`;
//!   `w ~ N(mu_w, sd_w^2)`, `k ~ N(mu_k, sd_k^2)`, `v_j ~ N(0, 1)`;
//! - `pi_js = logistic(a + b_{g(s)} + exp(w) v_j)`, `kappa = exp(k)`;
//! - per cell: with probability `missing_rate` `n = 0`, else `n ~ NegBin(mean_coverage,
//!   coverage_size)` drawn as `Poisson(Gamma(size, mean/size))`; `p ~ Beta(pi kappa,
//!   (1 - pi) kappa)`, `m ~ Binomial(n, p)`.
//!
//! `theta.pi0` is not used: the share of DMRs is `dmr_fraction`. DMR status is per region
//! (with more than two groups, all `b_g` of a DMR come from the slab), whereas MODEL.md's prior
//! mixes each `b_g` independently; with two groups the two agree.
//!
//! # Realistic mode: departures from the model
//! Same layout and the same draws of `a`, `b`, `w`, `k` and the innovations `v_j` as model mode
//! (for the same seed), then:
//! 1. **Smooth methylation along the region.** The iid `v_j` are replaced by a stationary
//!    Ornstein-Uhlenbeck process in genomic position (correlation `exp(-d / smooth_length)`
//!    between CpGs `d` bp apart, marginal `N(0, 1)`, driven by the same innovations) plus a
//!    sinusoidal trend of random amplitude `U(0, trend_amplitude)`, period
//!    `U(trend_period)` and phase; the sum is scaled by `exp(w)` as in the model.
//! 2. **Partial effect.** `b_g` applies only to a contiguous window of sites covering a
//!    fraction `U(effect_fraction)` of the region (at least one site); outside it group `g`
//!    equals the reference. A DMR's window is kept as [`SimRegion::effect_sites`] (in model
//!    mode every site), the truth of de-novo DMR boundaries.
//! 3. **Outlier sites.** Each site with probability `outlier_rate` is fully methylated or
//!    fully unmethylated (`pi = 1` or `0`, equal odds) in every sample, so `m = n` or `m = 0`.
//! 4. **Library sizes.** Sample `s` has its mean coverage multiplied by a log-normal
//!    `d_s = exp(depth_log_sd * N(0,1) - depth_log_sd^2 / 2)` (mean 1), seeded by
//!    `(seed, s)`.
//!
//! In both modes `true_theta[g]` is the mean over the region's sites of the true per-site
//! methylation probability of group `g` (MODEL.md "What is reported", evaluated at the true
//! parameters), and `true_delta[g - 1] = true_theta[g] - true_theta[0]`.
//!
//! # Realistic mode: designs
//! Two optional design effects, each from a random stream of its own seeded by
//! `(seed, region index)`, so that turning one on changes no other draw (and, without them, the
//! output is what it was before they existed):
//! 1. **Batch** ([`BatchParams`], `realistic.batch`): a label per sample, the first label's
//!    batch the reference. Each region has a batch effect with probability `fraction`,
//!    independently of DMR status, and then draws, per non-reference batch, `|e| ~ U(effect)`
//!    with a random sign. `e` is added on the probability scale to every non-outlier CpG of
//!    the region in that batch's samples, clamped to `[0.001, 0.999]` as a DMR's effect is.
//! 2. **Paired donors** ([`PairedParams`], `realistic.paired`): sample `k` of every group
//!    belongs to donor `donor_k` (equal group sizes). Each region draws one effect per donor,
//!    `u ~ N(0, donor_sd^2)`, added to the logit of every non-outlier CpG's probability in that
//!    donor's samples (after the batch effect, when both are on).
//!
//! Outlier sites stay fully methylated or unmethylated in every sample, as under a DMR effect.
//! The truth is unchanged by the designs: `true_theta`, `true_delta` and `true_site_prob` are
//! those of the reference batch without its batch effect, at donor effect `u = 0` (so the true
//! delta is the group difference alone); [`SimRegion::batch_effect`] and
//! [`SimRegion::donor_effect`] hold the effects that the counts also carry.

mod bgzf;
mod config;
mod error;
mod simulate;
mod write;

pub use config::{BatchParams, EffectScale, PairedParams, RealisticParams, SimConfig, SimMode};
pub use error::SimError;
pub use methvb_model::Theta;
pub use simulate::{SimData, SimRegion, SimSample, simulate, try_simulate};
pub use write::{WriteOptions, WrittenDataset, write_dataset};
