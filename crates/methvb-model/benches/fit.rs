//! Criterion benchmarks of the per-region hot paths on a typical region (J = 10 sites,
//! S = 2 x 3 samples, ~15x coverage, 10% missing cells), drawn from the model.
#![allow(missing_docs)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use methvb_model::{Family, FitOptions, VbOptions, fit_region, log_joint_grad};

fn bench(c: &mut Criterion) {
    let theta = common::truth_theta();
    let regions = common::simulate(&theta, 16, 2, 3, 10, 15.0, 0.1, 1);
    let mut grad = vec![0.0; regions[0].z.len()];
    c.bench_function("log_joint_grad J10 S6", |b| {
        b.iter(|| {
            let mut acc = 0.0;
            for r in &regions {
                acc += log_joint_grad(&r.data(), &theta, black_box(&r.z), &mut grad);
            }
            acc / regions.len() as f64
        })
    });
    let mut group = c.benchmark_group("fit_region J10 S6 (per 16 regions)");
    group.sample_size(10);
    for (name, family, max_refit) in [
        ("structured, no refit", Family::Structured, 0),
        ("mean-field, no refit", Family::MeanField, 0),
        ("coupled, no refit", Family::Coupled, 0),
        ("structured, default refit ladder", Family::Structured, 2),
    ] {
        let opts = FitOptions {
            vb: VbOptions {
                family,
                ..VbOptions::default()
            },
            max_refit,
            ..FitOptions::default()
        };
        group.bench_function(name, |b| {
            b.iter(|| {
                regions
                    .iter()
                    .map(|r| {
                        fit_region(&r.data(), &theta, &opts, 7, &r.id)
                            .map(|f| f.elbo)
                            .unwrap_or(f64::NAN)
                    })
                    .sum::<f64>()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
