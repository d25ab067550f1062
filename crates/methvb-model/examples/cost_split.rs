//! Splits the cost of `fit_region` (J sites, S = 2 x per-group samples, 300 regions from the
//! model): the default refit ladder, one rung, no refits, and with fewer importance draws.
//! Usage: `cargo run --release -p methvb-model --example cost_split [J] [per-group samples]`.
#[path = "../tests/common/mod.rs"]
mod common;
use methvb_model::{Family, FitOptions, VbOptions, fit_region};
use std::time::Instant;
fn main() {
    let truth = common::truth_theta();
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().unwrap())
        .collect();
    let (j, per) = (
        args.first().copied().unwrap_or(10),
        args.get(1).copied().unwrap_or(3),
    );
    let regions = common::simulate(&truth, 300, 2, per, j, 15.0, 0.1, 1);
    for (name, draws, refit) in [
        ("default (max_refit 2)", 1000, 2u8),
        ("max_refit 1", 1000, 1),
        ("no refit", 1000, 0),
        ("no refit, 400 draws", 400, 0),
        ("no refit, 100 draws (fit + minimal draws)", 100, 0),
    ] {
        let o = FitOptions {
            vb: VbOptions {
                family: Family::Structured,
                ..VbOptions::default()
            },
            max_refit: refit,
            n_draws: draws,
            ..FitOptions::default()
        };
        let t = Instant::now();
        let mut it = 0u64;
        for r in &regions {
            it += u64::from(
                fit_region(&r.data(), &truth, &o, 7, &r.id)
                    .unwrap()
                    .iterations,
            );
        }
        println!(
            "J={j} S={} {name}: {:.3} ms/region, iters {:.0}",
            2 * per,
            t.elapsed().as_secs_f64() * 1e3 / 300.0,
            it as f64 / 300.0
        );
    }
}
