//! Times `fit_region` on regions of J = 10 sites, S = 6 samples drawn from the model.
#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Instant;

use methvb_model::{FitOptions, fit_region};

fn main() {
    let theta = common::truth_theta();
    let regions = common::simulate(&theta, 300, 2, 3, 10, 15.0, 0.1, 1);
    let opts = FitOptions::default();
    for (name, o) in [
        ("default", opts.clone()),
        (
            "no-psis-refit",
            FitOptions {
                max_refit: 0,
                ..opts.clone()
            },
        ),
    ] {
        let t = Instant::now();
        let mut iters = 0u64;
        let mut conv = 0;
        let mut unrel = 0;
        let mut refit = 0;
        for r in &regions {
            let f = fit_region(&r.data(), &theta, &o, 7, &r.id).unwrap();
            iters += u64::from(f.iterations);
            conv += usize::from(f.converged);
            unrel += usize::from(!f.reliable);
            refit += usize::from(f.refit > 0);
        }
        let el = t.elapsed().as_secs_f64() / regions.len() as f64;
        println!(
            "{name}: {:.3} ms/region, mean iterations {:.0}, converged {conv}, unreliable {unrel}, refitted {refit}",
            el * 1e3,
            iters as f64 / regions.len() as f64
        );
    }
}
