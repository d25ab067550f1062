//! Scratch: EB sd_b0 under different VB tolerances.
#[path = "../tests/common/mod.rs"]
mod common;
use methvb_model::{EbOptions, Theta, VbOptions, fit_hyper};
fn main() {
    let truth = common::truth_theta();
    let regions = common::simulate(&truth, 500, 2, 3, 10, 15.0, 0.1, 2024);
    let sample: Vec<_> = regions.iter().map(|r| (r.id.as_str(), r.data())).collect();
    for (name, vb) in [
        ("default", VbOptions { max_iter: 1500, ..VbOptions::default() }),
        ("tight", VbOptions { max_iter: 3000, noise_z: 0.0, rel_tol: 1e-5, min_iter: 400, ..VbOptions::default() }),
        ("b-init0", VbOptions { max_iter: 1500, lr: 0.02, ..VbOptions::default() }),
    ] {
        let t = std::time::Instant::now();
        let eb = fit_hyper(&sample, &Theta::default(), &EbOptions { max_epochs: 15, vb, ..EbOptions::default() }, 1).unwrap();
        println!("{name}: {:.1}s sd_b0 {:.3} sd_b1 {:.3} pi0 {:.3} mu_w {:.3} sd_w {:.3}", t.elapsed().as_secs_f64(), eb.theta.sd_b0, eb.theta.sd_b1, eb.theta.pi0, eb.theta.mu_w, eb.theta.sd_w);
    }
}
