//! Where high PSIS k-hat comes from: k-hat quantiles of the first fit (no refits) on 100
//! regions from the model (J = 10, S = 6), for the structured and coupled families, with the
//! default optimiser and with a long, low-noise one, under the spike-and-slab prior of `b` and
//! under a single wide normal prior. Evidence for docs/model.md, "PSIS k-hat in practice".
#[path = "../tests/common/mod.rs"]
mod common;

use methvb_model::{Family, FitOptions, Theta, VbOptions, fit_region};

fn main() {
    let truth = common::truth_theta();
    let regions = common::simulate(&truth, 100, 2, 3, 10, 15.0, 0.1, 1);
    let single_normal = Theta {
        pi0: 0.999,
        sd_b0: 0.5,
        sd_b1: 1.0,
        ..truth
    };
    let default = VbOptions::default();
    let long = VbOptions {
        min_iter: 2000,
        max_iter: 8000,
        antithetic_pairs: 4,
        lr: 0.02,
        rel_tol: 1e-6,
        ..default.clone()
    };
    for (prior, theta) in [("spike-and-slab", truth), ("single normal", single_normal)] {
        for family in [Family::Structured, Family::Coupled] {
            for (run, vb) in [("default", &default), ("long", &long)] {
                let opts = FitOptions {
                    vb: VbOptions {
                        family,
                        ..vb.clone()
                    },
                    max_refit: 0,
                    n_psis_draws: 2000,
                    ..FitOptions::default()
                };
                let mut k: Vec<f64> = regions
                    .iter()
                    .map(|r| fit_region(&r.data(), &theta, &opts, 7, &r.id).unwrap().khat)
                    .collect();
                k.sort_by(f64::total_cmp);
                let q = |p: f64| k[((k.len() - 1) as f64 * p) as usize];
                let over = |t: f64| k.iter().filter(|&&x| x > t).count();
                println!(
                    "{prior}, {family}, {run} run, S' = 2000: k-hat q10 {:.2} q50 {:.2} q90 {:.2}; \
                     > 0.5: {}, > 0.7: {} of {}",
                    q(0.1),
                    q(0.5),
                    q(0.9),
                    over(0.5),
                    over(0.7),
                    k.len()
                );
            }
        }
    }
}
