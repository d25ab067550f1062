//! In-memory generation of a dataset: [`simulate`] / [`try_simulate`].

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use rand_distr::{Beta, Binomial, Distribution, Gamma, Poisson, StandardNormal};
use serde::{Deserialize, Serialize};

use crate::{SimConfig, SimError, SimMode};

/// One simulated sample (a column of every region's count matrices).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimSample {
    /// Sample name, `<group>_<k>` with `k` from 1.
    pub name: String,
    /// Index into [`SimData::group_names`].
    pub group: usize,
    /// Batch label (with [`crate::RealisticParams::batch`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<String>,
    /// Donor, `donor_<k>` for replicate `k` of every group (with
    /// [`crate::RealisticParams::paired`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub donor: Option<String>,
}

/// One simulated region with its counts and its truth.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimRegion {
    /// Region identifier, `region_<index>` with the 0-based index zero-padded to 6 digits.
    pub id: String,
    /// Contig name.
    pub chrom: String,
    /// 0-based start (the first CpG).
    pub start: u64,
    /// 0-based half-open end: last CpG + 2 (the whole dinucleotide).
    pub end: u64,
    /// 0-based positions of the `+` strand C of each CpG, strictly increasing.
    pub positions: Vec<u64>,
    /// Methylated reads, `J x S` row-major: site `j`, sample `s` at `j * S + s`.
    pub methylated: Vec<u32>,
    /// Covering reads (same layout); 0 = missing.
    pub coverage: Vec<u32>,
    /// Whether the region's group effects were drawn from the slab.
    pub is_dmr: bool,
    /// Per group `g >= 1` (length `G - 1`): `true_theta[g] - true_theta[0]`, the group
    /// difference alone (no batch or donor effect).
    pub true_delta: Vec<f64>,
    /// Per group (length `G`): mean over sites of the true methylation probability of the
    /// group, i.e. MODEL.md's `theta_g = mean_j logistic(a + b_g + exp(w) v_j)` at the true
    /// `z` (in realistic mode, the mean of the true per-site probabilities; with a design, at
    /// the reference batch without its batch effect and at donor effect 0).
    pub true_theta: Vec<f64>,
    /// True baseline `a` (logit scale; the mid-point of the groups' levels in model mode, the
    /// reference's baseline in realistic mode).
    pub true_a: f64,
    /// True contrast vector `b` (length `G - 1`; logit scale, group offsets
    /// `GroupContrasts::offsets(b)`). In realistic mode with probability-scale effects the
    /// counts do not depend on it.
    pub true_b: Vec<f64>,
    /// True log scale of site-to-site variation `w`.
    pub true_w: f64,
    /// True log concentration `k` (`kappa = exp(k)`).
    pub true_k: f64,
    /// True standardised site effects `v_j` (length `J`). In realistic mode these are the
    /// smooth process plus trend, so `eta = a + b + exp(w) * v_j` still holds away from
    /// outlier sites and outside the effect window.
    pub true_v: Vec<f64>,
    /// True methylation probability of each (site, group), `J x G` row-major: site `j`,
    /// group `g` at `j * G + g` (exactly 0 or 1 at realistic-mode outlier sites). With a batch
    /// design these are the reference batch's, with paired donors those at donor effect 0; the
    /// counts of other batches and of each donor add the effects below.
    pub true_site_prob: Vec<f64>,
    /// Whether the region has a batch effect (always `false` without a batch design).
    pub has_batch_effect: bool,
    /// Per non-reference batch ([`SimData::batch_levels`] from index 1): the batch effect
    /// added on the probability scale to the non-outlier CpGs of that batch's samples (0 when
    /// [`Self::has_batch_effect`] is false; empty without a batch design).
    pub batch_effect: Vec<f64>,
    /// Per donor ([`SimData::donors`]): the donor effect added on the logit scale to the
    /// non-outlier CpGs of that donor's samples (empty without paired donors).
    pub donor_effect: Vec<f64>,
    /// The sites the group effect covers, as indices into [`Self::positions`] (half-open),
    /// for a DMR only (`None` otherwise). In realistic mode the contiguous effect window
    /// (outlier sites inside it included, though no effect moves them); in model mode every
    /// site. Outside it every group is at the reference's level. Absent in JSON written
    /// before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effect_sites: Option<std::ops::Range<usize>>,
}

impl SimRegion {
    /// Number of CpG sites `J`.
    pub fn n_sites(&self) -> usize {
        self.positions.len()
    }

    /// The region's counts as the model reads them, without a design: `sample_group[s]` is
    /// sample `s`'s group (as in [`SimData::samples`]) among `n_groups`.
    pub fn data<'a>(
        &'a self,
        sample_group: &'a [usize],
        n_groups: usize,
    ) -> methvb_model::RegionData<'a> {
        methvb_model::RegionData {
            n_sites: self.n_sites(),
            n_samples: sample_group.len(),
            sample_group,
            n_groups,
            methylated: &self.methylated,
            coverage: &self.coverage,
            design: None,
        }
    }

    /// Genomic span of [`Self::effect_sites`] like the region's own: 0-based start (the
    /// window's first CpG) and half-open end (its last CpG + 2); `None` for a non-DMR.
    pub fn effect_span(&self) -> Option<(u64, u64)> {
        let w = self.effect_sites.as_ref()?;
        // Invariant: a window holds at least one site (draw_truth clamps its length to >= 1).
        Some((self.positions[w.start], self.positions[w.end - 1] + 2))
    }
}

/// A simulated dataset: samples, groups and regions (sorted by contig order and position).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimData {
    /// Samples, ordered by group then replicate.
    pub samples: Vec<SimSample>,
    /// Group names; index 0 is the reference level.
    pub group_names: Vec<String>,
    /// Regions in output order.
    pub regions: Vec<SimRegion>,
    /// The configuration that produced the data (written as `sim.json`).
    pub config: SimConfig,
    /// Per-sample depth multipliers (all 1 in model mode).
    pub depth_multipliers: Vec<f64>,
    /// Batch levels in order of first appearance; the first is the reference (empty without
    /// a batch design).
    pub batch_levels: Vec<String>,
    /// Donor names `donor_1..` (empty without paired donors).
    pub donors: Vec<String>,
}

// Domains of the independent random streams.
const LAYOUT: u64 = 0x4C41_594F_5554;
const PARAMS: u64 = 0x5041_5241_4D53;
const COUNTS: u64 = 0x434F_554E_5453;
const SAMPLE: u64 = 0x5341_4D50_4C45;
// The designs draw from streams of their own, so that turning them on changes no other draw
// (and the batch effect is independent of DMR status).
const BATCH: u64 = 0x0042_4154_4348;
const DONOR: u64 = 0x0044_4F4E_4F52;
pub(crate) const SPLIT: u64 = 0x0053_504C_4954;

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A random stream that depends only on `(seed, domain, keys)`.
pub(crate) fn stream(seed: u64, domain: u64, keys: &[u64]) -> StdRng {
    let mut h = splitmix64(seed ^ splitmix64(domain));
    for &k in keys {
        h = splitmix64(h ^ splitmix64(k.wrapping_add(0x632B_E59B_D9B4_E019)));
    }
    StdRng::seed_from_u64(h)
}

fn logistic(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

fn logit(p: f64) -> f64 {
    (p / (1.0 - p)).ln()
}

fn normal(rng: &mut StdRng) -> f64 {
    rng.sample(StandardNormal)
}

fn dist_err<E: std::fmt::Display>(distribution: &'static str) -> impl FnOnce(E) -> SimError {
    move |e| SimError::Distribution {
        distribution,
        message: e.to_string(),
    }
}

/// Simulates a dataset.
///
/// # Panics
/// If `cfg` is invalid (see [`SimConfig::validate`]); use [`try_simulate`] for untrusted
/// configurations.
pub fn simulate(cfg: &SimConfig) -> SimData {
    match try_simulate(cfg) {
        Ok(data) => data,
        Err(e) => panic!("methvb-sim: {e}"),
    }
}

/// Simulates a dataset, validating the configuration first.
///
/// The random draws of region `i` (its gap and sites, its parameters, its counts) come from
/// three streams derived from `(cfg.seed, i)` only: the thread count, the other regions and
/// (for the parameters) the number of samples do not change them. Its coordinates also depend
/// on the regions before it on its contig; regions are dealt to contigs in order, `n_regions /
/// n_contigs` each (the first contigs take the remainder).
///
/// # Examples
/// ```
/// use methvb_sim::{SimConfig, SimMode, try_simulate};
///
/// let cfg = SimConfig { n_regions: 20, mode: SimMode::Realistic, ..SimConfig::default() };
/// let data = try_simulate(&cfg)?;
/// assert_eq!(data.regions.len(), 20);
/// let r = &data.regions[0];
/// let s = data.samples.len(); // 6: control_1..3, treated_1..3
/// let (n, m) = (r.coverage[2 * s + 4], r.methylated[2 * s + 4]); // site 2, sample treated_2
/// assert!(m <= n);
/// assert_eq!(r.true_delta[0], r.true_theta[1] - r.true_theta[0]);
/// # Ok::<(), methvb_sim::SimError>(())
/// ```
pub fn try_simulate(cfg: &SimConfig) -> Result<SimData, SimError> {
    cfg.validate()?;
    let g_count = cfg.group_names.len();
    let mut samples = Vec::with_capacity(cfg.n_samples());
    for (g, (name, &n)) in cfg
        .group_names
        .iter()
        .zip(&cfg.samples_per_group)
        .enumerate()
    {
        for k in 1..=n {
            samples.push(SimSample {
                name: format!("{name}_{k}"),
                group: g,
                batch: None,
                donor: None,
            });
        }
    }
    let sample_layout = SampleLayout::new(cfg, &mut samples);
    let depth_multipliers: Vec<f64> = (0..samples.len())
        .map(|s| match cfg.mode {
            SimMode::Model => 1.0,
            SimMode::Realistic => {
                let sd = cfg.realistic.depth_log_sd;
                let mut rng = stream(cfg.seed, SAMPLE, &[s as u64]);
                (sd * normal(&mut rng) - 0.5 * sd * sd).exp()
            }
        })
        .collect();
    // One negative-binomial coverage distribution per sample.
    let coverage: Vec<Option<Gamma<f64>>> = depth_multipliers
        .iter()
        .map(|&d| {
            let mean = cfg.mean_coverage * d;
            if mean > 0.0 {
                Gamma::new(cfg.coverage_size, mean / cfg.coverage_size)
                    .map(Some)
                    .map_err(dist_err("Gamma"))
            } else {
                Ok(None)
            }
        })
        .collect::<Result<_, _>>()?;

    let mut regions = Vec::with_capacity(cfg.n_regions);
    let n_contigs = cfg.contigs.len();
    let mut index = 0usize;
    for (c, (chrom, length)) in cfg.contigs.iter().enumerate() {
        let n_here = cfg.n_regions / n_contigs + usize::from(c < cfg.n_regions % n_contigs);
        let mut cursor = 0u64;
        for _ in 0..n_here {
            let mut layout = stream(cfg.seed, LAYOUT, &[index as u64]);
            let start = cursor + layout.random_range(cfg.region_gap.0..=cfg.region_gap.1);
            let j_count = layout.random_range(cfg.sites_per_region.0..=cfg.sites_per_region.1);
            let mut positions = Vec::with_capacity(j_count);
            let mut p = start;
            for j in 0..j_count {
                if j > 0 {
                    p += layout.random_range(cfg.cpg_spacing.0..=cfg.cpg_spacing.1);
                }
                positions.push(p);
            }
            let end = p + 2;
            if end > *length {
                return Err(SimError::ContigTooShort {
                    contig: chrom.clone(),
                    length: *length,
                    n_regions: n_here,
                });
            }
            cursor = end;
            let region = simulate_region(
                cfg,
                index,
                chrom,
                positions,
                g_count,
                &sample_layout,
                &coverage,
            )?;
            regions.push(region);
            index += 1;
        }
    }
    Ok(SimData {
        samples,
        group_names: cfg.group_names.clone(),
        regions,
        config: cfg.clone(),
        depth_multipliers,
        batch_levels: sample_layout.batch_levels,
        donors: sample_layout.donors,
    })
}

/// What the samples are: their groups and the optional designs of realistic mode.
struct SampleLayout {
    /// Per sample: its group.
    groups: Vec<usize>,
    /// Batch levels, the reference first (empty without a batch design).
    batch_levels: Vec<String>,
    /// Per sample: index into `batch_levels` (empty without a batch design).
    sample_batch: Vec<usize>,
    /// Donor names (empty without paired donors).
    donors: Vec<String>,
    /// Per sample: index into `donors` (empty without paired donors).
    sample_donor: Vec<usize>,
}

impl SampleLayout {
    /// The layout of `cfg` (already validated), with each sample's batch and donor set.
    fn new(cfg: &SimConfig, samples: &mut [SimSample]) -> Self {
        let r = &cfg.realistic;
        let (batch_levels, sample_batch) = match &r.batch {
            Some(batch) => {
                let (levels, index) = batch.levels();
                for (sample, label) in samples.iter_mut().zip(&batch.labels) {
                    sample.batch = Some(label.clone());
                }
                (levels, index)
            }
            None => (Vec::new(), Vec::new()),
        };
        let (donors, sample_donor) = match &r.paired {
            Some(_) => {
                let per_group = cfg.samples_per_group[0];
                let donors = (1..=per_group).map(|k| format!("donor_{k}")).collect();
                // Samples are grouped, replicates in order: replicate k of each group is donor k.
                let index: Vec<usize> = cfg.samples_per_group.iter().flat_map(|&n| 0..n).collect();
                for (sample, &d) in samples.iter_mut().zip(&index) {
                    sample.donor = Some(format!("donor_{}", d + 1));
                }
                (donors, index)
            }
            None => (Vec::new(), Vec::new()),
        };
        Self {
            groups: samples.iter().map(|s| s.group).collect(),
            batch_levels,
            sample_batch,
            donors,
            sample_donor,
        }
    }

    /// Region `index`'s batch effects (whether it has one, and one effect per non-reference
    /// batch) and donor effects. All are drawn whether or not they apply, so that changing
    /// the fraction of affected regions keeps each region's effect sizes.
    fn draw(&self, cfg: &SimConfig, index: usize) -> (bool, Vec<f64>, Vec<f64>) {
        let r = &cfg.realistic;
        let (has_batch, batch_effect) = match &r.batch {
            Some(batch) => {
                let mut rng = stream(cfg.seed, BATCH, &[index as u64]);
                let has = rng.random::<f64>() < batch.fraction;
                let (lo, hi) = batch.effect;
                let effect = (1..self.batch_levels.len())
                    .map(|_| {
                        let size = lo + (hi - lo) * rng.random::<f64>();
                        let sign = if rng.random::<bool>() { 1.0 } else { -1.0 };
                        if has { sign * size } else { 0.0 }
                    })
                    .collect();
                (has, effect)
            }
            None => (false, Vec::new()),
        };
        let donor_effect = match &r.paired {
            Some(paired) => {
                let mut rng = stream(cfg.seed, DONOR, &[index as u64]);
                self.donors
                    .iter()
                    .map(|_| paired.donor_sd * normal(&mut rng))
                    .collect()
            }
            None => Vec::new(),
        };
        (has_batch, batch_effect, donor_effect)
    }
}

/// What is true about one region: per (site, group) methylation probabilities.
struct Truth {
    a: f64,
    b: Vec<f64>,
    w: f64,
    k: f64,
    v: Vec<f64>,
    is_dmr: bool,
    /// `J x G` row-major probabilities.
    pi: Vec<f64>,
    /// Per site: whether it is a realistic-mode outlier (which no effect moves).
    outlier: Vec<bool>,
    /// The sites the group effect covers (all of them in model mode).
    window: std::ops::Range<usize>,
}

/// A draw of the contrast vector `b` (length `G - 1`): from the null component of
/// `theta.b_prior` for a null region, else from an effect component chosen by the renormalised
/// weights of components `1..K`.
fn draw_b(cfg: &SimConfig, is_dmr: bool, g_count: usize, rng: &mut StdRng) -> Vec<f64> {
    let prior = &cfg.theta.b_prior;
    let sd = if is_dmr {
        let total: f64 = prior.weight[1..].iter().sum();
        let u = rng.random::<f64>() * total;
        let mut acc = 0.0;
        let mut pick = prior.len() - 1;
        for k in 1..prior.len() {
            acc += prior.weight[k];
            if u < acc {
                pick = k;
                break;
            }
        }
        prior.sd[pick]
    } else {
        prior.sd[0]
    };
    (1..g_count)
        .map(|_| {
            let x = sd * normal(rng);
            if is_dmr && cfg.min_dmr_logit_effect > 0.0 {
                (cfg.min_dmr_logit_effect + x.abs()).copysign(x)
            } else {
                x
            }
        })
        .collect()
}

fn draw_truth(cfg: &SimConfig, index: usize, positions: &[u64], g_count: usize) -> Truth {
    let t = &cfg.theta;
    let j_count = positions.len();
    let mut rng = stream(cfg.seed, PARAMS, &[index as u64]);
    let mut a = t.mu_a + t.sd_a * normal(&mut rng);
    let is_dmr = rng.random::<f64>() < cfg.dmr_fraction && g_count > 1;
    let b = if g_count > 1 {
        draw_b(cfg, is_dmr, g_count, &mut rng)
    } else {
        Vec::new()
    };
    let w = t.mu_w + t.sd_w * normal(&mut rng);
    let mut k = t.mu_k + t.sd_k * normal(&mut rng);
    let mut v: Vec<f64> = (0..j_count).map(|_| normal(&mut rng)).collect();
    let scale = w.exp();
    // Group offsets of the model: symmetric contrasts of b (MODEL.md; for two groups
    // -b/2 and +b/2 around a).
    let mut offset = vec![0.0; g_count];
    if g_count > 1 {
        methvb_model::likelihood::GroupContrasts { n_groups: g_count }.offsets(&b, &mut offset);
    }
    // Realistic extras, drawn after the model draws so that both modes share b, w and the
    // innovations of v.
    let mut window = 0..j_count;
    let mut outlier: Vec<Option<f64>> = vec![None; j_count];
    let mut prob_effect = vec![0.0; g_count];
    let realistic = cfg.mode == SimMode::Realistic;
    if realistic {
        let r = &cfg.realistic;
        // Smooth site effects: a stationary Ornstein-Uhlenbeck process in genomic position
        // driven by the same innovations (marginally N(0, 1) like v_j), plus a sinusoid.
        let amp = r.trend_amplitude * rng.random::<f64>();
        let period = r.trend_period.0 + (r.trend_period.1 - r.trend_period.0) * rng.random::<f64>();
        let phase = std::f64::consts::TAU * rng.random::<f64>();
        let mut prev = 0.0;
        for j in 0..j_count {
            let u = if j == 0 {
                v[0]
            } else {
                let d = (positions[j] - positions[j - 1]) as f64;
                let rho = (-d / r.smooth_length).exp();
                rho * prev + (1.0 - rho * rho).sqrt() * v[j]
            };
            prev = u;
            let x = (positions[j] - positions[0]) as f64;
            v[j] = u + amp * (std::f64::consts::TAU * x / period + phase).sin();
        }
        // Partial effect: a contiguous window of sites.
        let (flo, fhi) = r.effect_fraction;
        let frac = flo + (fhi - flo) * rng.random::<f64>();
        let len = ((frac * j_count as f64).round() as usize).clamp(1, j_count);
        let lo = rng.random_range(0..=j_count - len);
        window = lo..lo + len;
        // Outlier sites.
        for o in outlier.iter_mut() {
            if rng.random::<f64>() < r.outlier_rate {
                *o = Some(if rng.random::<bool>() { 1.0 } else { 0.0 });
            }
        }
        // Bimodal baseline (island-like low or high methylation) and a log-normal dispersion.
        let (ba, bb) = if rng.random::<f64>() < r.low_fraction {
            r.low_beta
        } else {
            r.high_beta
        };
        let base = Beta::new(ba, bb)
            .map(|d| d.sample(&mut rng))
            .unwrap_or(0.5)
            .clamp(1e-3, 1.0 - 1e-3);
        a = (base / (1.0 - base)).ln();
        let phi = (r.dispersion_median.ln() + r.dispersion_log_sd * normal(&mut rng))
            .exp()
            .clamp(1e-4, 0.5);
        k = (1.0 / phi - 1.0).ln();
        if r.effect_scale == crate::EffectScale::Probability {
            for effect in prob_effect.iter_mut().skip(1) {
                let size =
                    r.effect_size.0 + (r.effect_size.1 - r.effect_size.0) * rng.random::<f64>();
                let sign = if rng.random::<bool>() { 1.0 } else { -1.0 };
                *effect = if is_dmr { sign * size } else { 0.0 };
            }
        }
    }
    let logit_effect = !realistic || cfg.realistic.effect_scale == crate::EffectScale::Logit;
    let mut pi = vec![0.0; j_count * g_count];
    for j in 0..j_count {
        let in_window = window.contains(&j);
        for g in 0..g_count {
            pi[j * g_count + g] = match outlier[j] {
                Some(p) => p,
                None if logit_effect => {
                    // Outside a realistic effect window every group is at the reference's
                    // level; the model (and a full window) shifts each group by its offset.
                    let og = if realistic && !in_window {
                        offset[0]
                    } else {
                        offset[g]
                    };
                    logistic(a + og + scale * v[j])
                }
                None => {
                    let p0 = logistic(a + scale * v[j]);
                    if in_window && prob_effect[g] != 0.0 {
                        (p0 + prob_effect[g]).clamp(1e-3, 1.0 - 1e-3)
                    } else {
                        p0
                    }
                }
            };
        }
    }
    Truth {
        a,
        b,
        w,
        k,
        v,
        is_dmr,
        pi,
        outlier: outlier.iter().map(Option::is_some).collect(),
        window,
    }
}

fn simulate_region(
    cfg: &SimConfig,
    index: usize,
    chrom: &str,
    positions: Vec<u64>,
    g_count: usize,
    layout: &SampleLayout,
    coverage: &[Option<Gamma<f64>>],
) -> Result<SimRegion, SimError> {
    let truth = draw_truth(cfg, index, &positions, g_count);
    let sample_groups = &layout.groups;
    let (has_batch_effect, batch_effect, donor_effect) = layout.draw(cfg, index);
    // Per sample: the batch effect on its probabilities and the donor effect on their logits
    // (None where nothing applies, so that without a design the probabilities are used as they
    // are, bit for bit).
    let batch_shift: Vec<Option<f64>> = (0..sample_groups.len())
        .map(|s| match layout.sample_batch.get(s) {
            Some(&level) if has_batch_effect && level > 0 => Some(batch_effect[level - 1]),
            _ => None,
        })
        .collect();
    let donor_shift: Vec<Option<f64>> = (0..sample_groups.len())
        .map(|s| layout.sample_donor.get(s).map(|&d| donor_effect[d]))
        .collect();
    let j_count = positions.len();
    let s_count = sample_groups.len();
    let kappa = truth.k.exp();
    let mut rng = stream(cfg.seed, COUNTS, &[index as u64]);
    let mut methylated = vec![0u32; j_count * s_count];
    let mut cov = vec![0u32; j_count * s_count];
    for j in 0..j_count {
        for (s, &g) in sample_groups.iter().enumerate() {
            let missing = rng.random::<f64>() < cfg.missing_rate;
            let lambda = match &coverage[s] {
                Some(gamma) => gamma.sample(&mut rng),
                None => 0.0,
            };
            if missing || lambda <= 0.0 {
                continue;
            }
            let n = Poisson::new(lambda.min(1e12))
                .map_err(dist_err("Poisson"))?
                .sample(&mut rng)
                .min(f64::from(u32::MAX)) as u32;
            if n == 0 {
                continue;
            }
            let mut pi = truth.pi[j * g_count + g];
            if !truth.outlier[j] {
                if let Some(e) = batch_shift[s] {
                    pi = (pi + e).clamp(1e-3, 1.0 - 1e-3);
                }
                if let Some(u) = donor_shift[s] {
                    pi = logistic(logit(pi) + u);
                }
            }
            let p = if pi <= 0.0 || pi >= 1.0 || kappa > 1e10 {
                // Outlier sites (exactly 0 or 1) and a degenerate concentration are binomial.
                pi
            } else {
                let alpha = (pi * kappa).max(1e-300);
                let beta = ((1.0 - pi) * kappa).max(1e-300);
                let p = Beta::new(alpha, beta)
                    .map_err(dist_err("Beta"))?
                    .sample(&mut rng);
                if p.is_finite() { p.clamp(0.0, 1.0) } else { pi }
            };
            let m = Binomial::new(u64::from(n), p)
                .map_err(dist_err("Binomial"))?
                .sample(&mut rng) as u32;
            cov[j * s_count + s] = n;
            methylated[j * s_count + s] = m;
        }
    }
    let true_theta: Vec<f64> = (0..g_count)
        .map(|g| (0..j_count).map(|j| truth.pi[j * g_count + g]).sum::<f64>() / j_count as f64)
        .collect();
    let true_delta = true_theta[1..].iter().map(|t| t - true_theta[0]).collect();
    let start = positions[0];
    // Invariant: validate() guarantees at least one site per region.
    let end = positions[j_count - 1] + 2;
    Ok(SimRegion {
        id: format!("region_{index:06}"),
        chrom: chrom.to_owned(),
        start,
        end,
        positions,
        methylated,
        coverage: cov,
        is_dmr: truth.is_dmr,
        true_delta,
        true_theta,
        true_a: truth.a,
        true_b: truth.b,
        true_w: truth.w,
        true_k: truth.k,
        true_v: truth.v,
        true_site_prob: truth.pi,
        has_batch_effect,
        batch_effect,
        donor_effect,
        effect_sites: truth.is_dmr.then_some(truth.window),
    })
}
