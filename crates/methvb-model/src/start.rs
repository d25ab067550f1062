//! An amortised start of the variational fit (MODEL.md allows one when its amortisation gap is
//! reported; docs/model.md, "Speed"): a recognition model, ridge regressions from a region's
//! summaries to the correction that the fit makes to [`init_q`]'s start, learned on default
//! fits of a sample of regions under the final Theta.
//!
//! It moves only coordinates that relabelling the groups leaves alone: the means and log sds of
//! `a`, `w`, `k` and of every site effect `v_j`. The start of `b` and every correlation stay
//! `init_q`'s, and the features are invariant too (`b` enters through its norm), so the fit
//! stays equivariant under relabelling.

use rand::SeedableRng;
use rand::rngs::StdRng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::Theta;
use crate::likelihood::{RegionData, ZLayout};
use crate::linalg::{cholesky, cholesky_solve};
use crate::vb::{GaussianQ, START_LOG_SD, VbOptions, fit_vb, init_q, region_seed};

/// Fewest fitted regions a start model is learned from.
pub const MIN_TRAINING_REGIONS: usize = 100;
/// Most regions fitted to learn a start model.
pub const MAX_TRAINING_REGIONS: usize = 1000;
/// Largest correction of a mean, and of a log sd, the model may make: a region far outside
/// the training data is not moved further than this.
const MAX_CORRECTION: (f64, f64) = (3.0, 2.0);

/// Number of region features ([`region_features`]).
const N_REGION: usize = 11;
/// Number of site features ([`site_features`]).
const N_SITE: usize = 11;

/// The recognition model: per target, its coefficients over the features. Read from JSON only
/// with the shapes [`StartModel::start`] indexes and finite coefficients.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "StartModelJson")]
pub struct StartModel {
    /// Corrections of the means of `a`, `w`, `k`, then of their log sds, over
    /// [`region_features`].
    pub region: Vec<Vec<f64>>,
    /// Corrections of a site effect's mean and log sd, over [`site_features`].
    pub site: Vec<Vec<f64>>,
    /// Regions the model was learned from.
    pub regions: usize,
}

/// [`StartModel`] as written, before its shapes are checked.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StartModelJson {
    region: Vec<Vec<f64>>,
    site: Vec<Vec<f64>>,
    regions: usize,
}

impl TryFrom<StartModelJson> for StartModel {
    type Error = String;

    fn try_from(j: StartModelJson) -> Result<Self, String> {
        let shaped = |rows: &[Vec<f64>], n: usize, width: usize| {
            rows.len() == n
                && rows
                    .iter()
                    .all(|r| r.len() == width && r.iter().all(|x| x.is_finite()))
        };
        if !shaped(&j.region, 6, N_REGION) || !shaped(&j.site, 2, N_SITE) {
            return Err(format!(
                "a start model has 6 rows of {N_REGION} finite region coefficients and 2 rows of \
                 {N_SITE} finite site coefficients; this one has {} and {} rows, or a row of \
                 another length, or a coefficient not finite (learn it again with `methvb \
                 hyper`, or delete `start` to fit from the data)",
                j.region.len(),
                j.site.len()
            ));
        }
        Ok(Self {
            region: j.region,
            site: j.site,
            regions: j.regions,
        })
    }
}

/// The region-level coordinates the model moves, in `z`.
fn region_coordinates(lay: ZLayout) -> [usize; 3] {
    [ZLayout::A, lay.w(), lay.k()]
}

/// Summaries of a region and of its start `init` (from [`init_q`]): intercept, the start's
/// `a` and `a^2`, the norm of its `b`, log total reads, log sites, the log Pearson
/// overdispersion of samples within groups at a site, the log mean square of the start's site
/// effects, and the start's log sds of `a`, `w`, `k`.
fn region_features(data: &RegionData, init: &GaussianQ) -> [f64; N_REGION] {
    let lay = data.layout();
    let (j_n, s_n) = (data.n_sites, data.n_samples);
    let (mu, ls) = (init.mu(), init.log_sd());
    let total: f64 = data.coverage.iter().map(|&n| f64::from(n)).sum();
    let (mut x2, mut df) = (0.0_f64, 0.0_f64);
    for j in 0..j_n {
        let cells = |g: usize| {
            (0..s_n)
                .filter(move |&s| data.sample_group[s] == g)
                .map(move |s| {
                    (
                        f64::from(data.methylated[j * s_n + s]),
                        f64::from(data.coverage[j * s_n + s]),
                    )
                })
                .filter(|&(_, n)| n > 0.0)
        };
        for g in 0..data.n_groups {
            let (m, n, count) = cells(g).fold((0.0, 0.0, 0.0), |(m, n, c), (mi, ni)| {
                (m + mi, n + ni, c + 1.0)
            });
            if count < 2.0 {
                continue;
            }
            let p = (m + 0.5) / (n + 1.0);
            x2 += cells(g)
                .map(|(mi, ni)| (mi - ni * p).powi(2) / (ni * p * (1.0 - p)))
                .sum::<f64>();
            df += count - 1.0;
        }
    }
    let b_norm = (1..data.n_groups)
        .map(|h| mu[lay.b(h)] * mu[lay.b(h)])
        .sum::<f64>()
        .sqrt();
    let v_square = (0..j_n).map(|j| mu[lay.v(j)] * mu[lay.v(j)]).sum::<f64>() / j_n.max(1) as f64;
    let [ia, iw, ik] = region_coordinates(lay);
    [
        1.0,
        mu[ia],
        mu[ia] * mu[ia],
        b_norm,
        (total + 1.0).ln(),
        (j_n.max(1) as f64).ln(),
        (x2 / df.max(1.0)).max(0.05).ln(),
        (v_square + 0.01).ln(),
        ls[ia],
        ls[iw],
        ls[ik],
    ]
}

/// Summaries of site `j`: intercept, the start's mean and log sd of `v_j`, log reads at the
/// site, and the region's features 1-7 (`region`).
fn site_features(
    data: &RegionData,
    init: &GaussianQ,
    region: &[f64; N_REGION],
    j: usize,
) -> [f64; N_SITE] {
    let lay = data.layout();
    let s_n = data.n_samples;
    let reads: f64 = data.coverage[j * s_n..(j + 1) * s_n]
        .iter()
        .map(|&n| f64::from(n))
        .sum();
    let mut f = [0.0; N_SITE];
    f[..4].copy_from_slice(&[
        1.0,
        init.mu()[lay.v(j)],
        init.log_sd()[lay.v(j)],
        (reads + 1.0).ln(),
    ]);
    f[4..].copy_from_slice(&region[1..8]);
    f
}

/// Ridge least squares with a tiny ridge (numerical safety only): each target column's
/// coefficients. `None` if the normal equations are singular.
fn ridge<const P: usize>(x: &[[f64; P]], y: &[Vec<f64>]) -> Option<Vec<Vec<f64>>> {
    let targets = y.first()?.len();
    let mut xtx = vec![0.0; P * P];
    let mut xty = vec![vec![0.0; P]; targets];
    for (xi, yi) in x.iter().zip(y) {
        for a in 0..P {
            for b in 0..P {
                xtx[a * P + b] += xi[a] * xi[b];
            }
            for (c, yc) in yi.iter().enumerate() {
                xty[c][a] += xi[a] * yc;
            }
        }
    }
    for a in 0..P {
        xtx[a * P + a] += 1e-6 * x.len() as f64;
    }
    let l = cholesky(&xtx, P)?;
    Some(
        xty.into_iter()
            .map(|mut b| {
                cholesky_solve(&l, P, &mut b);
                b
            })
            .collect(),
    )
}

fn predict(beta: &[f64], x: &[f64]) -> f64 {
    beta.iter().zip(x).map(|(b, x)| b * x).sum()
}

impl StartModel {
    /// Learns the model from default fits (`vb`, under `theta`'s wide prior as [`fit_region`]
    /// fits) of up to [`MAX_TRAINING_REGIONS`] of `regions` (evenly spaced), each seeded by
    /// `(seed, region id)`. `None` with fewer than [`MIN_TRAINING_REGIONS`] regions with sites
    /// and finite fits.
    ///
    /// [`fit_region`]: crate::fit_region
    pub fn learn(
        regions: &[(&str, RegionData)],
        theta: &Theta,
        vb: &VbOptions,
        seed: u64,
    ) -> Option<Self> {
        let wide = crate::posterior::wide_theta(theta);
        let usable: Vec<&(&str, RegionData)> =
            regions.iter().filter(|(_, d)| d.n_sites > 0).collect();
        if usable.len() < MIN_TRAINING_REGIONS {
            return None;
        }
        let step = usable.len().div_ceil(MAX_TRAINING_REGIONS);
        let chosen: Vec<&(&str, RegionData)> = usable.into_iter().step_by(step).collect();
        let fits: Vec<(GaussianQ, GaussianQ)> = chosen
            .par_iter()
            .map(|(id, data)| {
                let start = init_q(data, &wide, vb.family);
                let mut rng = StdRng::seed_from_u64(region_seed(seed, id));
                let fit = fit_vb(data, &wide, vb, Some(&start), &mut rng);
                (start, fit.q)
            })
            .collect();
        let finite = |v: &[f64]| v.iter().all(|x| x.is_finite());
        let (mut xr, mut yr, mut xs, mut ys) = (vec![], vec![], vec![], vec![]);
        for ((_, data), (start, q)) in chosen.iter().zip(&fits) {
            let lay = data.layout();
            let d = lay.dim();
            let f = region_features(data, start);
            let coords = region_coordinates(lay);
            let mut y: Vec<f64> = coords
                .iter()
                .map(|&c| q.params[c] - start.params[c])
                .collect();
            y.extend(
                coords
                    .iter()
                    .map(|&c| q.params[d + c] - start.params[d + c]),
            );
            // A fit that failed numerically teaches nothing (and would poison the regression).
            if !finite(&f) || !finite(&y) || !finite(&q.params) {
                continue;
            }
            for j in 0..data.n_sites {
                let c = lay.v(j);
                xs.push(site_features(data, start, &f, j));
                ys.push(vec![
                    q.params[c] - start.params[c],
                    q.params[d + c] - start.params[d + c],
                ]);
            }
            xr.push(f);
            yr.push(y);
        }
        if xr.len() < MIN_TRAINING_REGIONS {
            return None;
        }
        Some(Self {
            region: ridge(&xr, &yr)?,
            site: ridge(&xs, &ys)?,
            regions: xr.len(),
        })
    }

    /// The start of `data`'s fit: `init` ([`init_q`]'s start) with the model's corrections of
    /// the means and log sds of `a`, `w`, `k` and the site effects.
    pub fn start(&self, data: &RegionData, init: &GaussianQ) -> GaussianQ {
        let lay = data.layout();
        let d = lay.dim();
        let f = region_features(data, init);
        let mut q = init.clone();
        let (max_mu, max_ls) = MAX_CORRECTION;
        let mut correct = |c: usize, mu: f64, ls: f64| {
            if !(mu.is_finite() && ls.is_finite()) {
                return;
            }
            q.params[c] += mu.clamp(-max_mu, max_mu);
            q.params[d + c] =
                (q.params[d + c] + ls.clamp(-max_ls, max_ls)).clamp(START_LOG_SD.0, START_LOG_SD.1);
        };
        let coords = region_coordinates(lay);
        for (t, &c) in coords.iter().enumerate() {
            correct(
                c,
                predict(&self.region[t], &f),
                predict(&self.region[coords.len() + t], &f),
            );
        }
        for j in 0..data.n_sites {
            let x = site_features(data, init, &f, j);
            correct(
                lay.v(j),
                predict(&self.site[0], &x),
                predict(&self.site[1], &x),
            );
        }
        q
    }
}
