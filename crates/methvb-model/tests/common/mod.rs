//! A small generator of regions from the model itself (MODEL.md), shared by the integration
//! tests; independent of the fitting code apart from `Theta` and the group contrasts.
#![allow(dead_code)]

use methvb_model::Theta;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use rand_distr::{Beta, Binomial, Distribution, Normal, Poisson};

/// One simulated region with its true local parameters.
pub struct SimRegion {
    pub id: String,
    pub groups: Vec<usize>,
    pub n_groups: usize,
    pub n_sites: usize,
    pub methylated: Vec<u32>,
    pub coverage: Vec<u32>,
    /// True `theta_g - theta_0` for g >= 1.
    pub true_delta: Vec<f64>,
    /// True z = (a, b.., w, k, v..).
    pub z: Vec<f64>,
    /// Whether `b` was drawn from an effect component.
    pub is_dmr: bool,
}

impl SimRegion {
    pub fn data(&self) -> methvb_model::RegionData<'_> {
        methvb_model::RegionData {
            n_sites: self.n_sites,
            n_samples: self.groups.len(),
            sample_group: &self.groups,
            n_groups: self.n_groups,
            methylated: &self.methylated,
            coverage: &self.coverage,
            design: None,
        }
    }
}

fn logistic(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

pub fn truth_theta() -> Theta {
    Theta {
        mu_a: 0.5,
        sd_a: 1.5,
        b_prior: methvb_model::ScaleMixture::spike_slab(0.9, 0.05, 1.2),
        mu_w: -0.7,
        sd_w: 0.4,
        mu_k: 3.0,
        sd_k: 0.5,
        design: Default::default(),
    }
}

/// Draws `n` regions from the generative model: `n_sites` sites, samples split evenly over
/// `n_groups` groups (`per_group` each), coverage ~ Poisson(mean_cov), a fraction `missing` of
/// cells set to 0 coverage.
#[allow(clippy::too_many_arguments)] // a test helper: the arguments are the design
pub fn simulate(
    theta: &Theta,
    n: usize,
    n_groups: usize,
    per_group: usize,
    n_sites: usize,
    mean_cov: f64,
    missing: f64,
    seed: u64,
) -> Vec<SimRegion> {
    let mut rng = StdRng::seed_from_u64(seed);
    let groups: Vec<usize> = (0..n_groups)
        .flat_map(|g| std::iter::repeat_n(g, per_group))
        .collect();
    let s_n = groups.len();
    let std = Normal::new(0.0, 1.0).unwrap();
    let pois = Poisson::new(mean_cov).unwrap();
    (0..n)
        .map(|r| {
            let a = theta.mu_a + theta.sd_a * std.sample(&mut rng);
            // One component per region (MODEL.md's shared indicator), then b from it.
            let prior = &theta.b_prior;
            let u: f64 = rng.random();
            let mut acc = 0.0;
            let mut comp = prior.len() - 1;
            for (c, w) in prior.weight.iter().enumerate() {
                acc += w;
                if u < acc {
                    comp = c;
                    break;
                }
            }
            let b: Vec<f64> = (1..n_groups)
                .map(|_| prior.sd[comp] * std.sample(&mut rng))
                .collect();
            let mut offset = vec![0.0; n_groups];
            if n_groups > 1 {
                methvb_model::likelihood::GroupContrasts { n_groups }.offsets(&b, &mut offset);
            }
            let w = theta.mu_w + theta.sd_w * std.sample(&mut rng);
            let k = theta.mu_k + theta.sd_k * std.sample(&mut rng);
            let v: Vec<f64> = (0..n_sites).map(|_| std.sample(&mut rng)).collect();
            let kappa = k.exp();
            let mut methylated = vec![0u32; n_sites * s_n];
            let mut coverage = vec![0u32; n_sites * s_n];
            for j in 0..n_sites {
                for s in 0..s_n {
                    if rng.random::<f64>() < missing {
                        continue;
                    }
                    let cov = pois.sample(&mut rng) as u32;
                    let pi = logistic(a + offset[groups[s]] + w.exp() * v[j]);
                    let p = Beta::new((pi * kappa).max(1e-12), ((1.0 - pi) * kappa).max(1e-12))
                        .unwrap()
                        .sample(&mut rng);
                    let m = if cov == 0 {
                        0
                    } else {
                        Binomial::new(u64::from(cov), p).unwrap().sample(&mut rng) as u32
                    };
                    coverage[j * s_n + s] = cov;
                    methylated[j * s_n + s] = m;
                }
            }
            let level = |g: usize| {
                v.iter()
                    .map(|vj| logistic(a + offset[g] + w.exp() * vj))
                    .sum::<f64>()
                    / n_sites as f64
            };
            let true_delta = (1..n_groups).map(|g| level(g) - level(0)).collect();
            let mut z = vec![a];
            z.extend_from_slice(&b);
            z.push(w);
            z.push(k);
            z.extend_from_slice(&v);
            SimRegion {
                id: format!("sim{r}"),
                groups: groups.clone(),
                n_groups,
                n_sites,
                methylated,
                coverage,
                true_delta,
                z,
                is_dmr: comp > 0,
            }
        })
        .collect()
}
