//! Times `fit_region` on regions of J = 10 sites, S = 6 samples drawn from the model, per family
//! and optimiser setting.
#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Instant;

use methvb_model::{Family, FitOptions, VbOptions, fit_region};

fn main() {
    let theta = common::truth_theta();
    let regions = common::simulate(&theta, 300, 2, 3, 10, 15.0, 0.1, 1);
    let args: Vec<String> = std::env::args().collect();
    let fams: Vec<Family> = vec![Family::MeanField, Family::Structured, Family::Coupled];
    let refit: u8 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(0);
    let base = VbOptions::default();
    let variants = [
        ("default", base.clone()),
        (
            "min50",
            VbOptions {
                min_iter: 50,
                ..base.clone()
            },
        ),
    ];
    for family in fams {
        for (name, vb) in &variants {
            let o = FitOptions {
                vb: VbOptions {
                    family,
                    ..vb.clone()
                },
                max_refit: refit,
                ..FitOptions::default()
            };
            let t = Instant::now();
            let (mut iters, mut conv, mut unrel, mut cover, mut refitted) = (0u64, 0, 0, 0, 0);
            for r in &regions {
                let f = fit_region(&r.data(), &theta, &o, 7, &r.id).unwrap();
                iters += u64::from(f.iterations);
                conv += usize::from(f.converged);
                unrel += usize::from(!f.reliable);
                refitted += usize::from(f.refit > 0);
                let d = f.delta[0].summary;
                cover += usize::from(d.q025 <= r.true_delta[0] && r.true_delta[0] <= d.q975);
            }
            let el = t.elapsed().as_secs_f64() / regions.len() as f64;
            println!(
                "{family:?} {name} max_refit {refit}: {:.3} ms/region, mean iterations {:.0}, converged {conv}, unreliable {unrel}, refitted {refitted}, delta covered {cover}/300",
                el * 1e3,
                iters as f64 / regions.len() as f64
            );
        }
    }
}
