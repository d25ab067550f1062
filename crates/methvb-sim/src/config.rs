//! Simulation settings: [`SimConfig`], [`SimMode`], [`RealisticParams`] and the optional
//! designs of realistic mode, [`BatchParams`] and [`PairedParams`].

use methvb_model::Theta;
use serde::{Deserialize, Serialize};

use crate::SimError;

/// How the counts are generated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SimMode {
    /// Exactly the generative model of MODEL.md (the fitted model is correctly specified).
    #[default]
    Model,
    /// The model plus the departures seen in real data (see the crate docs and
    /// [`RealisticParams`]).
    Realistic,
}

/// Scale on which a realistic DMR's effect is added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EffectScale {
    /// A difference of methylation probability, `U(effect_size)` with a random sign, added at
    /// every site of the effect window (clamped to `[0.001, 0.999]`): not the model's logit
    /// shift (default).
    #[default]
    Probability,
    /// The model's logit-scale `b` (drawn from `theta.b_prior`), applied in the window only.
    Logit,
}

/// Strength of the departures from the model used in [`SimMode::Realistic`] (ignored in
/// [`SimMode::Model`], where a batch or paired design is refused rather than silently dropped).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RealisticParams {
    /// The group effect covers a contiguous window of sites whose length is this fraction of
    /// the region, drawn uniformly from the inclusive range (default `(0.6, 1.0)`).
    pub effect_fraction: (f64, f64),
    /// Scale of a DMR's effect (default [`EffectScale::Probability`]).
    pub effect_scale: EffectScale,
    /// Range of the absolute methylation difference of a DMR on the probability scale, per
    /// non-reference group (default `(0.1, 0.4)`).
    pub effect_size: (f64, f64),
    /// Share of regions with a low baseline (CpG-island-like, default 0.35): the baseline
    /// methylation of a region is `Beta(low_beta)` for those and `Beta(high_beta)` for the
    /// others, instead of the model's `logistic(N(mu_a, sd_a^2))`.
    pub low_fraction: f64,
    /// Beta parameters of a low baseline (default `(1.5, 15)`, mean 0.09).
    pub low_beta: (f64, f64),
    /// Beta parameters of a high baseline (default `(10, 2.5)`, mean 0.8).
    pub high_beta: (f64, f64),
    /// Median of the region's dispersion `phi = 1 / (1 + kappa)`, which is log-normal
    /// (default 0.05) instead of the model's log-normal `kappa`.
    pub dispersion_median: f64,
    /// Standard deviation of `ln phi` across regions (default 0.7).
    pub dispersion_log_sd: f64,
    /// Correlation length (bp) of the Ornstein-Uhlenbeck process that replaces the iid site
    /// effects `v_j` (default 150).
    pub smooth_length: f64,
    /// Largest amplitude (in units of `exp(w)`) of the sinusoidal trend added to the site
    /// effects; each region draws its amplitude uniformly from `[0, max]` (default 1.0).
    pub trend_amplitude: f64,
    /// Period range (bp) of the sinusoidal trend (default `(300, 2000)`).
    pub trend_period: (f64, f64),
    /// Probability that a site is an outlier: fully methylated or fully unmethylated in every
    /// sample, whatever the region's parameters (default 0.03).
    pub outlier_rate: f64,
    /// Standard deviation of the log of each sample's depth multiplier (library size); the
    /// multipliers are log-normal with mean 1 (default 0.4).
    pub depth_log_sd: f64,
    /// A batch label per sample and a batch effect in some regions (default none). Left out
    /// of `sim.json` when absent, so configs without a design read and write as before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch: Option<BatchParams>,
    /// Paired samples: sample `k` of every group is donor `donor_k`, with a donor effect per
    /// region (default none). Left out of `sim.json` when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paired: Option<PairedParams>,
}

/// A batch effect (realistic mode only; see the crate docs).
///
/// A share `fraction` of the regions, chosen independently of DMR status, has an effect
/// `|e| ~ U(effect)` with a random sign per non-reference batch, added on the probability scale
/// to every non-outlier CpG of the region in the samples of that batch and clamped to
/// `[0.001, 0.999]`, as a DMR's effect is. The truth (`true_theta`, `true_delta`) is that of
/// the reference batch, i.e. without the batch effect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchParams {
    /// One label per sample, in sample order (the groups in `group_names` order, each group's
    /// replicates in turn); the first label is the reference batch. At least two distinct
    /// labels.
    pub labels: Vec<String>,
    /// Share of regions with a batch effect, drawn per region independently of DMR status
    /// (default 0.3).
    #[serde(default = "BatchParams::default_fraction")]
    pub fraction: f64,
    /// Range of the absolute batch effect on the probability scale (default `(0.15, 0.35)`).
    #[serde(default = "BatchParams::default_effect")]
    pub effect: (f64, f64),
}

impl BatchParams {
    fn default_fraction() -> f64 {
        0.3
    }

    fn default_effect() -> (f64, f64) {
        (0.15, 0.35)
    }

    /// A batch design with these labels and the default fraction and effect range.
    pub fn new(labels: Vec<String>) -> Self {
        Self {
            labels,
            fraction: Self::default_fraction(),
            effect: Self::default_effect(),
        }
    }

    /// The batches (the distinct labels in order of first appearance, the reference first)
    /// and each sample's index into them.
    pub fn levels(&self) -> (Vec<String>, Vec<usize>) {
        let mut levels: Vec<String> = Vec::new();
        let index = self
            .labels
            .iter()
            .map(|label| match levels.iter().position(|l| l == label) {
                Some(i) => i,
                None => {
                    levels.push(label.clone());
                    levels.len() - 1
                }
            })
            .collect();
        (levels, index)
    }
}

/// Paired samples (realistic mode only; see the crate docs): sample `k` of every group is
/// donor `donor_k`, and each region draws one effect `u ~ N(0, donor_sd^2)` per donor, added on
/// the logit scale to every non-outlier CpG of that donor's samples. The truth is at `u = 0`.
/// Needs equal group sizes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PairedParams {
    /// Standard deviation of the donor effect on the logit scale (default 0.5).
    pub donor_sd: f64,
}

impl Default for PairedParams {
    fn default() -> Self {
        Self { donor_sd: 0.5 }
    }
}

impl Default for RealisticParams {
    fn default() -> Self {
        Self {
            effect_fraction: (0.6, 1.0),
            effect_scale: EffectScale::Probability,
            effect_size: (0.1, 0.4),
            low_fraction: 0.35,
            low_beta: (1.5, 15.0),
            high_beta: (10.0, 2.5),
            dispersion_median: 0.05,
            dispersion_log_sd: 0.7,
            smooth_length: 150.0,
            trend_amplitude: 1.0,
            trend_period: (300.0, 2000.0),
            outlier_rate: 0.03,
            depth_log_sd: 0.4,
            batch: None,
            paired: None,
        }
    }
}

/// Everything [`crate::simulate`] needs. Serialised as `sim.json` next to a written dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimConfig {
    /// Number of regions (default 500).
    pub n_regions: usize,
    /// Group names; the first is the reference level (default `["control", "treated"]`).
    pub group_names: Vec<String>,
    /// Number of samples in each group, same order as `group_names` (default `[3, 3]`).
    /// Samples are named `<group>_<k>` with `k` from 1.
    pub samples_per_group: Vec<usize>,
    /// The true global hyperparameters. The weights of `theta.b_prior` only choose among its
    /// effect components: the share of DMRs is `dmr_fraction`.
    pub theta: Theta,
    /// Fraction of regions whose contrast vector `b` is drawn from an effect component of
    /// `theta.b_prior` (chosen by the weights of components 1..K, renormalised); the others
    /// draw it from the null component 0 (default 0.1). With a single group there is no `b`
    /// and no region is a DMR.
    pub dmr_fraction: f64,
    /// Smallest absolute logit effect of a DMR (default 0.0). When positive, each contrast
    /// coordinate of a DMR is `sign(x) * (min_dmr_logit_effect + |x|)` with `x` the draw
    /// from its component, so every DMR is at least this large.
    pub min_dmr_logit_effect: f64,
    /// Inclusive range of the number of CpG sites per region (default `(5, 30)`).
    pub sites_per_region: (usize, usize),
    /// Mean reads per (site, sample) before missingness (default 15).
    pub mean_coverage: f64,
    /// Negative-binomial size (dispersion) of per-cell coverage; smaller = more variable
    /// (default 3). Coverage is Gamma-Poisson: `lambda ~ Gamma(size, mean/size)`,
    /// `n ~ Poisson(lambda)`.
    pub coverage_size: f64,
    /// Extra probability that a cell has `n = 0` (default 0.05).
    pub missing_rate: f64,
    /// Model or realistic generation (default [`SimMode::Model`]).
    pub mode: SimMode,
    /// Departures used in realistic mode.
    pub realistic: RealisticParams,
    /// Master seed; each region's draws depend only on `(seed, region index)`.
    pub seed: u64,
    /// Contigs `(name, length)`, in output order. Regions are spread evenly over them
    /// (default `chr1`, `chr2`, `chr3` of 50 Mbp each).
    pub contigs: Vec<(String, u64)>,
    /// Inclusive range of the gap (bp) between the end of one region and the first CpG of the
    /// next (default `(200, 2000)`).
    pub region_gap: (u64, u64),
    /// Inclusive range of the distance (bp) between consecutive CpGs in a region; at least 2
    /// so that the `-` strand C (at `p + 1`) never collides with the next site
    /// (default `(2, 60)`).
    pub cpg_spacing: (u64, u64),
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            n_regions: 500,
            group_names: vec!["control".to_owned(), "treated".to_owned()],
            samples_per_group: vec![3, 3],
            theta: Theta {
                b_prior: methvb_model::ScaleMixture::spike_slab(0.9, 0.1, 1.0),
                ..Theta::default()
            },
            dmr_fraction: 0.1,
            min_dmr_logit_effect: 0.0,
            sites_per_region: (5, 30),
            mean_coverage: 15.0,
            coverage_size: 3.0,
            missing_rate: 0.05,
            mode: SimMode::Model,
            realistic: RealisticParams::default(),
            seed: 1,
            contigs: (1..=3).map(|i| (format!("chr{i}"), 50_000_000)).collect(),
            region_gap: (200, 2000),
            cpg_spacing: (2, 60),
        }
    }
}

fn check(ok: bool, msg: impl FnOnce() -> String) -> Result<(), SimError> {
    if ok {
        Ok(())
    } else {
        Err(SimError::InvalidConfig(msg()))
    }
}

/// A name usable in TSV/BED columns and (for groups) as part of a file name.
fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && !s
            .chars()
            .any(|c| c.is_control() || c == '/' || c == '\\' || c == ' ')
}

fn nonneg(x: f64) -> bool {
    x.is_finite() && x >= 0.0
}

fn prob(x: f64) -> bool {
    (0.0..=1.0).contains(&x)
}

impl SimConfig {
    /// Number of samples (sum of `samples_per_group`).
    pub fn n_samples(&self) -> usize {
        self.samples_per_group.iter().sum()
    }

    /// Checks every field; [`crate::try_simulate`] calls this first.
    pub fn validate(&self) -> Result<(), SimError> {
        let g = self.group_names.len();
        check(g >= 1, || "group_names is empty".into())?;
        for (i, name) in self.group_names.iter().enumerate() {
            check(valid_name(name), || {
                format!(
                    "group name {name:?} must be non-empty, without spaces, slashes or control characters"
                )
            })?;
            check(!self.group_names[..i].contains(name), || {
                format!("group name {name:?} is repeated")
            })?;
        }
        check(self.samples_per_group.len() == g, || {
            format!(
                "samples_per_group has {} entries for {g} groups",
                self.samples_per_group.len()
            )
        })?;
        check(self.samples_per_group.iter().all(|&n| n >= 1), || {
            "every group needs at least one sample".into()
        })?;
        let t = &self.theta;
        for (name, v) in [("mu_a", t.mu_a), ("mu_w", t.mu_w), ("mu_k", t.mu_k)] {
            check(v.is_finite(), || {
                format!("theta.{name} = {v} is not finite")
            })?;
        }
        for (name, v) in [("sd_a", t.sd_a), ("sd_w", t.sd_w), ("sd_k", t.sd_k)] {
            check(nonneg(v), || {
                format!("theta.{name} = {v} must be finite and >= 0")
            })?;
        }
        check(prob(self.dmr_fraction), || {
            format!("dmr_fraction = {} must be in [0, 1]", self.dmr_fraction)
        })?;
        check(nonneg(self.min_dmr_logit_effect), || {
            format!(
                "min_dmr_logit_effect = {} must be finite and >= 0",
                self.min_dmr_logit_effect
            )
        })?;
        let (lo, hi) = self.sites_per_region;
        check(lo >= 1 && lo <= hi, || {
            format!("sites_per_region = ({lo}, {hi}) needs 1 <= min <= max")
        })?;
        check(
            nonneg(self.mean_coverage) && self.mean_coverage < 1e9,
            || format!("mean_coverage = {} must be in [0, 1e9)", self.mean_coverage),
        )?;
        check(
            self.coverage_size.is_finite() && self.coverage_size > 0.0,
            || {
                format!(
                    "coverage_size = {} must be finite and > 0",
                    self.coverage_size
                )
            },
        )?;
        check(prob(self.missing_rate), || {
            format!("missing_rate = {} must be in [0, 1]", self.missing_rate)
        })?;
        check(!self.contigs.is_empty(), || "contigs is empty".into())?;
        for (i, (name, _)) in self.contigs.iter().enumerate() {
            check(valid_name(name), || {
                format!("contig name {name:?} is not usable")
            })?;
            check(!self.contigs[..i].iter().any(|(n, _)| n == name), || {
                format!("contig {name:?} is repeated")
            })?;
        }
        let (lo, hi) = self.region_gap;
        check(lo <= hi, || {
            format!("region_gap = ({lo}, {hi}) needs min <= max")
        })?;
        let (lo, hi) = self.cpg_spacing;
        check(lo >= 2 && lo <= hi, || {
            format!("cpg_spacing = ({lo}, {hi}) needs 2 <= min <= max")
        })?;
        check(hi <= 1 << 32 && self.region_gap.1 <= 1 << 40, || {
            "region_gap / cpg_spacing are implausibly large".into()
        })?;
        check(t.b_prior.validate().is_ok(), || {
            format!("theta.b_prior is not a valid mixture: {:?}", t.b_prior)
        })?;
        check(
            g < 2 || self.dmr_fraction == 0.0 || t.b_prior.len() >= 2,
            || "theta.b_prior needs an effect component (a second sd) when dmr_fraction > 0".into(),
        )?;
        let r = &self.realistic;
        let (elo, ehi) = r.effect_size;
        check(elo >= 0.0 && elo <= ehi && ehi <= 1.0, || {
            format!("realistic.effect_size = ({elo}, {ehi}) needs 0 <= min <= max <= 1")
        })?;
        check(prob(r.low_fraction), || {
            format!(
                "realistic.low_fraction = {} must be in [0, 1]",
                r.low_fraction
            )
        })?;
        for (name, (x, y)) in [("low_beta", r.low_beta), ("high_beta", r.high_beta)] {
            check(x.is_finite() && y.is_finite() && x > 0.0 && y > 0.0, || {
                format!("realistic.{name} = ({x}, {y}) needs finite positive parameters")
            })?;
        }
        check(
            r.dispersion_median > 0.0 && r.dispersion_median < 1.0 && nonneg(r.dispersion_log_sd),
            || {
                format!(
                    "realistic.dispersion_median = {} must be in (0, 1) and dispersion_log_sd = {} >= 0",
                    r.dispersion_median, r.dispersion_log_sd
                )
            },
        )?;
        let (flo, fhi) = r.effect_fraction;
        check(flo > 0.0 && flo <= fhi && fhi <= 1.0, || {
            format!("realistic.effect_fraction = ({flo}, {fhi}) needs 0 < min <= max <= 1")
        })?;
        check(r.smooth_length.is_finite() && r.smooth_length > 0.0, || {
            format!(
                "realistic.smooth_length = {} must be finite and > 0",
                r.smooth_length
            )
        })?;
        check(nonneg(r.trend_amplitude), || {
            format!(
                "realistic.trend_amplitude = {} must be finite and >= 0",
                r.trend_amplitude
            )
        })?;
        let (plo, phi) = r.trend_period;
        check(
            plo.is_finite() && phi.is_finite() && plo > 0.0 && plo <= phi,
            || format!("realistic.trend_period = ({plo}, {phi}) needs 0 < min <= max"),
        )?;
        check(prob(r.outlier_rate), || {
            format!(
                "realistic.outlier_rate = {} must be in [0, 1]",
                r.outlier_rate
            )
        })?;
        check(nonneg(r.depth_log_sd) && r.depth_log_sd <= 5.0, || {
            format!(
                "realistic.depth_log_sd = {} must be in [0, 5]",
                r.depth_log_sd
            )
        })?;
        self.validate_design()
    }

    /// Checks the optional batch and paired designs of realistic mode.
    fn validate_design(&self) -> Result<(), SimError> {
        let r = &self.realistic;
        if (r.batch.is_some() || r.paired.is_some()) && self.mode != SimMode::Realistic {
            return Err(SimError::DesignNeedsRealisticMode);
        }
        if let Some(batch) = &r.batch {
            let samples = self.n_samples();
            if batch.labels.len() != samples {
                return Err(SimError::BatchLabelCount {
                    labels: batch.labels.len(),
                    samples,
                });
            }
            for label in &batch.labels {
                check(valid_name(label), || {
                    format!(
                        "batch label {label:?} must be non-empty, without spaces, slashes or control characters"
                    )
                })?;
            }
            if batch.levels().0.len() < 2 {
                return Err(SimError::SingleBatch {
                    label: batch.labels[0].clone(),
                });
            }
            check(prob(batch.fraction), || {
                format!(
                    "realistic.batch.fraction = {} must be in [0, 1]",
                    batch.fraction
                )
            })?;
            let (lo, hi) = batch.effect;
            check(lo >= 0.0 && lo <= hi && hi <= 1.0, || {
                format!("realistic.batch.effect = ({lo}, {hi}) needs 0 <= min <= max <= 1")
            })?;
        }
        if let Some(paired) = &r.paired {
            let sizes = &self.samples_per_group;
            if sizes.iter().any(|&n| n != sizes[0]) {
                return Err(SimError::UnequalGroupsForPairing {
                    sizes: sizes.clone(),
                });
            }
            check(nonneg(paired.donor_sd) && paired.donor_sd <= 10.0, || {
                format!(
                    "realistic.paired.donor_sd = {} must be in [0, 10]",
                    paired.donor_sd
                )
            })?;
        }
        Ok(())
    }
}
