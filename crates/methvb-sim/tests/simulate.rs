//! Properties of in-memory simulation: determinism, structure, and Monte-Carlo moments.
//!
//! Tolerances are 4 to 5 Monte-Carlo standard errors (computed in each test from the
//! distribution being sampled), so a correct simulator fails a given check with probability
//! well below 1e-4; the draws are seeded, so the outcome is fixed anyway.

use std::sync::OnceLock;

use methvb_sim::{SimConfig, SimData, SimMode, Theta, simulate, try_simulate};

fn logistic(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// 4000 regions, simulated once per mode and shared by the tests of this file.
fn big(mode: SimMode) -> (SimConfig, &'static SimData) {
    static MODEL: OnceLock<SimData> = OnceLock::new();
    static REALISTIC: OnceLock<SimData> = OnceLock::new();
    let cfg = SimConfig {
        n_regions: 4000,
        sites_per_region: (3, 12),
        mode,
        seed: 42,
        ..SimConfig::default()
    };
    let cell = match mode {
        SimMode::Model => &MODEL,
        SimMode::Realistic => &REALISTIC,
    };
    let data = cell.get_or_init(|| simulate(&cfg));
    (cfg, data)
}

fn mean_sd(x: impl Iterator<Item = f64>) -> (f64, f64, usize) {
    let v: Vec<f64> = x.collect();
    let n = v.len();
    let mean = v.iter().sum::<f64>() / n as f64;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n as f64 - 1.0);
    (mean, var.sqrt(), n)
}

#[test]
fn same_seed_same_data_different_seed_different_data() {
    let cfg = SimConfig {
        n_regions: 60,
        ..SimConfig::default()
    };
    let a = simulate(&cfg);
    let b = simulate(&cfg);
    assert_eq!(a, b);
    for mode in [SimMode::Model, SimMode::Realistic] {
        let c1 = SimConfig {
            mode,
            seed: 7,
            ..cfg.clone()
        };
        let c2 = SimConfig {
            mode,
            seed: 8,
            ..cfg.clone()
        };
        let (d1, d2) = (simulate(&c1), simulate(&c2));
        assert_eq!(d1, simulate(&c1));
        assert_ne!(d1.regions[0].positions, d2.regions[0].positions);
        assert_ne!(d1.regions[0].true_a, d2.regions[0].true_a);
        assert_ne!(d1.regions[0].coverage, d2.regions[0].coverage);
    }
}

#[test]
fn a_region_depends_only_on_seed_and_index() {
    // Fewer regions or more samples must not change the parameters of region i.
    let cfg = SimConfig {
        n_regions: 30,
        ..SimConfig::default()
    };
    let full = simulate(&cfg);
    let more_samples = simulate(&SimConfig {
        samples_per_group: vec![4, 5],
        ..cfg.clone()
    });
    for (r, q) in full.regions.iter().zip(&more_samples.regions) {
        assert_eq!(r.positions, q.positions);
        assert_eq!(
            (r.true_a, r.is_dmr, &r.true_b, r.true_w, r.true_k),
            (q.true_a, q.is_dmr, &q.true_b, q.true_w, q.true_k)
        );
        assert_eq!(r.true_delta, q.true_delta);
    }
}

#[test]
fn structure_is_valid() {
    for mode in [SimMode::Model, SimMode::Realistic] {
        let cfg = SimConfig {
            n_regions: 500,
            mode,
            ..SimConfig::default()
        };
        let data = simulate(&cfg);
        let s_count = 6;
        assert_eq!(data.samples.len(), s_count);
        let names: Vec<&str> = data.samples.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "control_1",
                "control_2",
                "control_3",
                "treated_1",
                "treated_2",
                "treated_3"
            ]
        );
        assert_eq!(
            data.samples.iter().map(|s| s.group).collect::<Vec<_>>(),
            [0, 0, 0, 1, 1, 1]
        );
        assert_eq!(data.regions.len(), 500);
        let mut per_contig = [0usize; 3];
        let mut prev: Option<(usize, u64)> = None;
        for r in &data.regions {
            let c = cfg
                .contigs
                .iter()
                .position(|(n, _)| *n == r.chrom)
                .expect("known contig");
            per_contig[c] += 1;
            let j = r.positions.len();
            assert!((5..=30).contains(&j));
            assert_eq!(r.methylated.len(), j * s_count);
            assert_eq!(r.coverage.len(), j * s_count);
            assert_eq!(r.start, r.positions[0]);
            assert_eq!(r.end, r.positions[j - 1] + 2);
            assert!(
                r.positions
                    .windows(2)
                    .all(|w| w[1] >= w[0] + 2 && w[1] <= w[0] + 60)
            );
            assert!(r.methylated.iter().zip(&r.coverage).all(|(m, n)| m <= n));
            assert!(r.end <= cfg.contigs[c].1);
            // Sorted by contig order then position, non-overlapping, gap in range.
            if let Some((pc, pend)) = prev {
                assert!(c >= pc);
                if c == pc {
                    assert!(
                        r.start >= pend + 200 && r.start <= pend + 2000,
                        "{} {}",
                        r.start,
                        pend
                    );
                }
            }
            prev = Some((c, r.end));
            assert_eq!(r.true_theta.len(), 2);
            assert_eq!(r.true_delta.len(), 1);
            assert_eq!(r.true_b.len(), 1);
            assert_eq!(r.true_site_prob.len(), 2 * j);
            assert_eq!(r.true_delta[0], r.true_theta[1] - r.true_theta[0]);
        }
        assert_eq!(per_contig, [167, 167, 166]);
        let ids: std::collections::HashSet<&str> =
            data.regions.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids.len(), 500);
    }
}

#[test]
fn model_mode_truth_matches_model_definition() {
    let cfg = SimConfig {
        n_regions: 300,
        ..SimConfig::default()
    };
    let data = simulate(&cfg);
    for r in &data.regions {
        let j_count = r.positions.len();
        for g in 0..2 {
            // Symmetric offsets of MODEL.md: -b/2 for the reference, +b/2 for the other.
            let b = if g == 0 { -0.5 } else { 0.5 } * r.true_b[0];
            let theta = r
                .true_v
                .iter()
                .map(|v| logistic(r.true_a + b + r.true_w.exp() * v))
                .sum::<f64>()
                / j_count as f64;
            assert!((theta - r.true_theta[g]).abs() < 1e-12);
        }
    }
}

#[test]
fn parameter_moments_match_theta() {
    let (cfg, data) = big(SimMode::Model);
    let t = cfg.theta.clone();
    let (sd_b0, sd_b1) = (t.b_prior.sd[0], t.b_prior.sd[1]);
    let r = data.regions.len() as f64;
    for (name, mu, sd, pick) in [
        (
            "a",
            t.mu_a,
            t.sd_a,
            (|x: &methvb_sim::SimRegion| x.true_a) as fn(&_) -> f64,
        ),
        ("w", t.mu_w, t.sd_w, |x| x.true_w),
        ("k", t.mu_k, t.sd_k, |x| x.true_k),
    ] {
        let (m, s, _) = mean_sd(data.regions.iter().map(pick));
        // SE(mean) = sd / sqrt(R); SE(sd) ~ sd / sqrt(2R).
        assert!(
            (m - mu).abs() < 4.5 * sd / r.sqrt(),
            "mean of {name}: {m} vs {mu}"
        );
        assert!(
            (s - sd).abs() < 4.5 * sd / (2.0 * r).sqrt(),
            "sd of {name}: {s} vs {sd}"
        );
    }
    let frac = data.regions.iter().filter(|x| x.is_dmr).count() as f64 / r;
    let p = cfg.dmr_fraction;
    assert!(
        (frac - p).abs() < 4.5 * (p * (1.0 - p) / r).sqrt(),
        "dmr fraction {frac}"
    );
    // b from the spike for nulls, the slab for DMRs.
    let (_, sd0, _) = mean_sd(
        data.regions
            .iter()
            .filter(|x| !x.is_dmr)
            .map(|x| x.true_b[0]),
    );
    let (_, sd1, n1) = mean_sd(
        data.regions
            .iter()
            .filter(|x| x.is_dmr)
            .map(|x| x.true_b[0]),
    );
    assert!((sd0 - sd_b0).abs() < 0.1 * sd_b0, "spike sd {sd0}");
    assert!(
        (sd1 - sd_b1).abs() < 4.5 * sd_b1 / (2.0 * n1 as f64).sqrt(),
        "slab sd {sd1}"
    );
    // v_j ~ N(0, 1) iid: mean, sd and lag-1 correlation.
    let v: Vec<f64> = data
        .regions
        .iter()
        .flat_map(|x| x.true_v.iter().copied())
        .collect();
    let nv = v.len() as f64;
    let (mv, sv, _) = mean_sd(v.iter().copied());
    assert!(mv.abs() < 4.5 / nv.sqrt() && (sv - 1.0).abs() < 4.5 / (2.0 * nv).sqrt());
    assert!(lag1_corr(data).abs() < 4.5 / nv.sqrt());
}

fn lag1_corr(data: &SimData) -> f64 {
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for r in &data.regions {
        for w in r.true_v.windows(2) {
            sxy += w[0] * w[1];
            sxx += w[0] * w[0];
            syy += w[1] * w[1];
        }
    }
    sxy / (sxx * syy).sqrt()
}

#[test]
fn coverage_is_negative_binomial_with_missingness() {
    let (cfg, data) = big(SimMode::Model);
    let n: Vec<f64> = data
        .regions
        .iter()
        .flat_map(|r| r.coverage.iter().map(|&n| f64::from(n)))
        .collect();
    let cells = n.len() as f64;
    let (mu, size, miss) = (cfg.mean_coverage, cfg.coverage_size, cfg.missing_rate);
    // Mixture of a point mass at 0 (prob. miss) and NegBin(mu, size).
    let mean = (1.0 - miss) * mu;
    let nb_var = mu + mu * mu / size;
    let var = (1.0 - miss) * (nb_var + mu * mu) - mean * mean;
    let (m, s, _) = mean_sd(n.iter().copied());
    assert!(
        (m - mean).abs() < 4.5 * (var / cells).sqrt(),
        "mean coverage {m} vs {mean}"
    );
    // The variance estimate of a heavy-tailed count: allow 3 % (about 5 SE here).
    assert!(
        (s * s / var - 1.0).abs() < 0.03,
        "coverage variance {} vs {var}",
        s * s
    );
    let p0 = miss + (1.0 - miss) * (size / (size + mu)).powf(size);
    let f0 = n.iter().filter(|&&x| x == 0.0).count() as f64 / cells;
    assert!(
        (f0 - p0).abs() < 4.5 * (p0 * (1.0 - p0) / cells).sqrt(),
        "zeros {f0} vs {p0}"
    );
}

#[test]
fn methylated_counts_are_beta_binomial() {
    // Standardised residuals against the true pi and kappa: their sum is ~N(0, 1) scaled by
    // sqrt(cells) and their mean square is ~1 if the mean and the overdispersion are right.
    let (_, data) = big(SimMode::Model);
    let s_count = data.samples.len();
    let (mut z_sum, mut z2_sum, mut cells, mut binom_z2) = (0.0, 0.0, 0.0f64, 0.0);
    for r in &data.regions {
        let phi = 1.0 / (1.0 + r.true_k.exp());
        for j in 0..r.positions.len() {
            for (s, sample) in data.samples.iter().enumerate() {
                let n = f64::from(r.coverage[j * s_count + s]);
                if n == 0.0 {
                    continue;
                }
                let m = f64::from(r.methylated[j * s_count + s]);
                let pi = r.true_site_prob[j * 2 + sample.group];
                if pi == 1.0 {
                    // logistic(eta) rounds to 1 for eta > 36.7: all reads methylated.
                    assert_eq!(m, n);
                    continue;
                }
                let var = n * pi * (1.0 - pi) * (1.0 + (n - 1.0) * phi);
                let z = (m - n * pi) / var.sqrt();
                z_sum += z;
                z2_sum += z * z;
                binom_z2 += (m - n * pi).powi(2) / (n * pi * (1.0 - pi));
                cells += 1.0;
            }
        }
    }
    assert!(
        (z_sum / cells.sqrt()).abs() < 4.5,
        "mean residual z = {}",
        z_sum / cells.sqrt()
    );
    let ms = z2_sum / cells;
    assert!(
        (ms - 1.0).abs() < 0.05,
        "mean squared standardised residual {ms}"
    );
    // A plain binomial would not be overdispersed: the binomial-scaled residuals are.
    assert!(
        binom_z2 / cells > 1.3,
        "no overdispersion: {}",
        binom_z2 / cells
    );
}

#[test]
fn null_regions_have_small_true_delta() {
    let (cfg, data) = big(SimMode::Model);
    let (mut null_abs, mut n_null, mut dmr_abs, mut n_dmr) = (0.0, 0.0, 0.0, 0.0);
    for r in &data.regions {
        let d = r.true_delta[0].abs();
        // Mean-value theorem: logistic' <= 1/4, so |delta| <= |b| / 4 site by site.
        assert!(d <= r.true_b[0].abs() / 4.0 + 1e-12);
        if r.is_dmr {
            dmr_abs += d;
            n_dmr += 1.0;
        } else {
            null_abs += d;
            n_null += 1.0;
            // 6 sd_b0 bound on b (p < 2e-9 per region) => |delta| < 1.5 sd_b0.
            assert!(d < 1.5 * cfg.theta.b_prior.sd[0], "null delta {d}");
        }
    }
    let (null_mean, dmr_mean) = (null_abs / n_null, dmr_abs / n_dmr);
    assert!(null_mean < 0.02, "null mean |delta| {null_mean}");
    assert!(
        dmr_mean > 4.0 * null_mean,
        "dmr {dmr_mean} vs null {null_mean}"
    );
}

#[test]
fn min_dmr_effect_is_respected() {
    let cfg = SimConfig {
        n_regions: 1000,
        min_dmr_logit_effect: 1.5,
        ..SimConfig::default()
    };
    let data = simulate(&cfg);
    let dmrs: Vec<_> = data.regions.iter().filter(|r| r.is_dmr).collect();
    assert!(dmrs.len() > 50);
    assert!(dmrs.iter().all(|r| r.true_b[0].abs() >= 1.5));
    assert!(dmrs.iter().any(|r| r.true_b[0] > 0.0) && dmrs.iter().any(|r| r.true_b[0] < 0.0));
    assert!(
        data.regions
            .iter()
            .filter(|r| !r.is_dmr)
            .all(|r| r.true_b[0].abs() < 1.0)
    );
}

#[test]
fn one_group_and_three_groups_work() {
    let one = simulate(&SimConfig {
        n_regions: 50,
        group_names: vec!["all".into()],
        samples_per_group: vec![4],
        ..SimConfig::default()
    });
    assert!(
        one.regions
            .iter()
            .all(|r| !r.is_dmr && r.true_delta.is_empty() && r.true_b.is_empty())
    );
    assert!(one.regions.iter().all(|r| r.true_theta.len() == 1));
    let three = simulate(&SimConfig {
        n_regions: 50,
        group_names: vec!["a".into(), "b".into(), "c".into()],
        samples_per_group: vec![2, 2, 1],
        ..SimConfig::default()
    });
    assert_eq!(three.samples.len(), 5);
    assert!(
        three
            .regions
            .iter()
            .all(|r| r.true_delta.len() == 2 && r.true_b.len() == 2)
    );
}

#[test]
fn invalid_configs_are_rejected() {
    let base = SimConfig::default();
    let bad = [
        SimConfig {
            samples_per_group: vec![3],
            ..base.clone()
        },
        SimConfig {
            group_names: vec!["a".into(), "a".into()],
            ..base.clone()
        },
        SimConfig {
            group_names: vec!["a b".into(), "c".into()],
            ..base.clone()
        },
        SimConfig {
            dmr_fraction: 1.5,
            ..base.clone()
        },
        SimConfig {
            sites_per_region: (0, 3),
            ..base.clone()
        },
        SimConfig {
            sites_per_region: (5, 3),
            ..base.clone()
        },
        SimConfig {
            cpg_spacing: (1, 3),
            ..base.clone()
        },
        SimConfig {
            coverage_size: 0.0,
            ..base.clone()
        },
        SimConfig {
            missing_rate: -0.1,
            ..base.clone()
        },
        SimConfig {
            contigs: vec![],
            ..base.clone()
        },
        SimConfig {
            theta: Theta {
                sd_a: f64::NAN,
                ..base.theta.clone()
            },
            ..base.clone()
        },
    ];
    for cfg in bad {
        assert!(
            matches!(
                try_simulate(&cfg),
                Err(methvb_sim::SimError::InvalidConfig(_))
            ),
            "{cfg:?}"
        );
    }
    let short = SimConfig {
        contigs: vec![("c".into(), 10_000)],
        ..base.clone()
    };
    assert!(matches!(
        try_simulate(&short),
        Err(methvb_sim::SimError::ContigTooShort { .. })
    ));
}

#[test]
fn zero_coverage_and_full_missingness_give_empty_counts() {
    for cfg in [
        SimConfig {
            n_regions: 20,
            mean_coverage: 0.0,
            ..SimConfig::default()
        },
        SimConfig {
            n_regions: 20,
            missing_rate: 1.0,
            ..SimConfig::default()
        },
    ] {
        let data = simulate(&cfg);
        assert!(
            data.regions
                .iter()
                .all(|r| r.coverage.iter().all(|&n| n == 0))
        );
        assert!(
            data.regions
                .iter()
                .all(|r| r.methylated.iter().all(|&m| m == 0))
        );
    }
}

#[test]
fn realistic_mode_departs_from_the_model_as_documented() {
    let (cfg, model) = big(SimMode::Model);
    let (_, real) = big(SimMode::Realistic);
    let rp = &cfg.realistic;
    let s_count = model.samples.len();
    // Same layout, DMR status and draws of b and w; different site effects, baseline and
    // dispersion.
    for (m, r) in model.regions.iter().zip(&real.regions) {
        assert_eq!(m.positions, r.positions);
        assert_eq!(
            (m.is_dmr, &m.true_b, m.true_w),
            (r.is_dmr, &r.true_b, r.true_w)
        );
    }
    let n_regions = real.regions.len() as f64;
    // 5. Bimodal baseline: Beta(1.5, 15) (below 0.35 with probability > 0.999) for a share
    // low_fraction of regions, Beta(10, 2.5) (below 0.35 with probability < 0.001) otherwise.
    let low = real
        .regions
        .iter()
        .filter(|r| 1.0 / (1.0 + (-r.true_a).exp()) < 0.35)
        .count() as f64
        / n_regions;
    let p_low = rp.low_fraction;
    assert!(
        (low - p_low).abs() < 4.5 * (p_low * (1.0 - p_low) / n_regions).sqrt() + 0.002,
        "low-baseline share {low}"
    );
    // 6. Log-normal dispersion: ln phi ~ N(ln median, sd^2) (clamped far in the tails).
    let (m_phi, s_phi, _) = mean_sd(
        real.regions
            .iter()
            .map(|r| (1.0 / (1.0 + r.true_k.exp())).ln()),
    );
    let sd = rp.dispersion_log_sd;
    assert!(
        (m_phi - rp.dispersion_median.ln()).abs() < 4.5 * sd / n_regions.sqrt(),
        "mean ln phi {m_phi}"
    );
    assert!(
        (s_phi - sd).abs() < 4.5 * sd / (2.0 * n_regions).sqrt(),
        "sd ln phi {s_phi}"
    );
    // 1. Smooth site effects: strong lag-1 correlation (model: none, tested above).
    let rho = lag1_corr(real);
    assert!(rho > 0.5, "realistic lag-1 correlation {rho}");

    // 3. Outliers: pi exactly 0 or 1 in both groups, counts all or nothing. An exact 0 can
    // only come from an outlier (logistic underflows to 0 below -745), so the unmethylated
    // half of the outliers measures the rate; an exact 1 also arises (rarely) for eta > 36.7.
    let (mut n_zero, mut n_one, mut n_sites) = (0.0, 0.0, 0.0);
    for r in &real.regions {
        for j in 0..r.positions.len() {
            n_sites += 1.0;
            let p = &r.true_site_prob[j * 2..j * 2 + 2];
            for (value, count) in [(0.0, &mut n_zero), (1.0, &mut n_one)] {
                if p[0] == value && p[1] == value {
                    *count += 1.0;
                    for s in 0..s_count {
                        let (m, n) = (r.methylated[j * s_count + s], r.coverage[j * s_count + s]);
                        assert!(if value == 1.0 { m == n } else { m == 0 });
                    }
                }
            }
        }
    }
    let q = rp.outlier_rate / 2.0;
    for (f, what) in [
        (n_zero / n_sites, "unmethylated"),
        (n_one / n_sites, "methylated"),
    ] {
        assert!(
            (f - q).abs() < 4.5 * (q * (1.0 - q) / n_sites).sqrt(),
            "{what} outlier rate {f} vs {q}"
        );
    }
    assert!(
        model
            .regions
            .iter()
            .all(|r| r.true_site_prob.iter().all(|&p| p > 0.0))
    );

    // 2. Partial effect on the probability scale: the sites where group 1 differs from group 0
    // form one contiguous window covering about effect_fraction of the region (outliers
    // excepted), and the difference is the same at every window site not clamped at
    // [0.001, 0.999].
    let mut fractions = Vec::new();
    for r in real
        .regions
        .iter()
        .filter(|r| r.is_dmr && r.positions.len() >= 8)
    {
        let j_count = r.positions.len();
        let differs: Vec<usize> = (0..j_count)
            .filter(|&j| r.true_site_prob[j * 2] != r.true_site_prob[j * 2 + 1])
            .collect();
        // (Both window sites may be outliers in a short window.)
        let (Some(&lo), Some(&hi)) = (differs.first(), differs.last()) else {
            continue;
        };
        for j in lo..=hi {
            let (p, p1) = (r.true_site_prob[j * 2], r.true_site_prob[j * 2 + 1]);
            // Outliers, and sites whose level is at the clamp already.
            let at_bound = (p1 - 0.001).abs() < 1e-12 || (p1 - 0.999).abs() < 1e-12;
            assert!(
                differs.contains(&j) || p == 0.0 || p == 1.0 || at_bound,
                "window not contiguous"
            );
        }
        let diffs: Vec<f64> = differs
            .iter()
            .map(|&j| (r.true_site_prob[j * 2], r.true_site_prob[j * 2 + 1]))
            .filter(|(_, p1)| (0.001 + 1e-12..0.999 - 1e-12).contains(p1))
            .map(|(p0, p1)| p1 - p0)
            .collect();
        for d in &diffs {
            assert!((d - diffs[0]).abs() < 1e-12, "{diffs:?}");
            let (lo, hi) = rp.effect_size;
            assert!((lo - 1e-12..=hi + 1e-12).contains(&d.abs()), "effect {d}");
        }
        fractions.push((hi - lo + 1) as f64 / j_count as f64);
    }
    let (mf, _, _) = mean_sd(fractions.iter().copied());
    assert!(fractions.len() > 100);
    let (flo, fhi) = rp.effect_fraction;
    assert!(fractions.iter().all(|&f| f >= flo - 0.07), "{fractions:?}");
    assert!(
        (mf - 0.5 * (flo + fhi)).abs() < 0.05,
        "mean effect fraction {mf}"
    );
    // In the model every site of a region differs.
    for r in model.regions.iter().filter(|r| r.is_dmr) {
        assert!(
            (0..r.positions.len()).all(|j| r.true_site_prob[j * 2] != r.true_site_prob[j * 2 + 1]
                || r.true_site_prob[j * 2] == 1.0)
        );
    }
    // true_theta is still the mean of the true per-site probabilities.
    for r in &real.regions {
        let j_count = r.positions.len() as f64;
        for g in 0..2 {
            let t = (0..r.positions.len())
                .map(|j| r.true_site_prob[j * 2 + g])
                .sum::<f64>();
            assert!((t / j_count - r.true_theta[g]).abs() < 1e-12);
        }
    }

    // 4. Library sizes: per-sample mean coverage follows the depth multipliers.
    assert!(model.depth_multipliers.iter().all(|&d| d == 1.0));
    let d = &real.depth_multipliers;
    let spread =
        d.iter().cloned().fold(f64::MIN, f64::max) / d.iter().cloned().fold(f64::MAX, f64::min);
    assert!(spread > 1.2, "depth multipliers {d:?}");
    for (s, &ds) in d.iter().enumerate() {
        let (mut sum, mut cells) = (0.0, 0.0);
        for r in &real.regions {
            for j in 0..r.positions.len() {
                sum += f64::from(r.coverage[j * s_count + s]);
                cells += 1.0;
            }
        }
        let expect = (1.0 - cfg.missing_rate) * cfg.mean_coverage * ds;
        let mu = cfg.mean_coverage * ds;
        let var = (1.0 - cfg.missing_rate) * (mu + mu * mu / cfg.coverage_size + mu * mu)
            - expect * expect;
        assert!(
            (sum / cells - expect).abs() < 4.5 * (var / cells).sqrt(),
            "sample {s}"
        );
    }
}

#[test]
fn config_json_fills_defaults_and_rejects_unknown_keys() {
    let cfg: SimConfig = serde_json::from_str(
        r#"{"n_regions": 10, "mode": "realistic", "realistic": {"outlier_rate": 0.1}}"#,
    )
    .unwrap();
    let mut expect = SimConfig {
        n_regions: 10,
        mode: SimMode::Realistic,
        ..SimConfig::default()
    };
    expect.realistic.outlier_rate = 0.1;
    assert_eq!(cfg, expect);
    let round: SimConfig = serde_json::from_str(&serde_json::to_string(&expect).unwrap()).unwrap();
    assert_eq!(round, expect);
    assert!(serde_json::from_str::<SimConfig>(r#"{"n_region": 10}"#).is_err());
}

/// Issue #17: a DMR's effect window is exactly the CpGs whose true level differs between the
/// groups (outlier CpGs aside, which no effect moves: exactly 0 or 1 in every group), and a
/// non-DMR has none. Model mode's window is the whole region.
#[test]
fn effect_window_is_where_the_groups_differ() {
    for mode in [SimMode::Realistic, SimMode::Model] {
        let (_, data) = big(mode);
        let g = data.group_names.len();
        let (mut dmrs, mut partial) = (0, 0);
        for r in &data.regions {
            let Some(w) = &r.effect_sites else {
                assert!(!r.is_dmr, "{}: a DMR without a window", r.id);
                assert_eq!(r.effect_span(), None);
                continue;
            };
            assert!(r.is_dmr, "{}: a window on a non-DMR", r.id);
            assert!(!w.is_empty() && w.end <= r.n_sites(), "{}: {w:?}", r.id);
            dmrs += 1;
            partial += usize::from(w.len() < r.n_sites());
            for j in 0..r.n_sites() {
                let p = &r.true_site_prob[j * g..(j + 1) * g];
                let outlier = p.iter().all(|&x| x == p[0] && (x == 0.0 || x == 1.0));
                let differs = p.iter().any(|&x| x != p[0]);
                if outlier {
                    assert!(!differs);
                    continue;
                }
                assert_eq!(differs, w.contains(&j), "{} site {j}, window {w:?}", r.id);
            }
            let (start, end) = r.effect_span().unwrap();
            assert_eq!(start, r.positions[w.start]);
            assert_eq!(end, r.positions[w.end - 1] + 2);
            assert!(r.start <= start && end <= r.end);
        }
        assert!(dmrs > 300, "{mode:?}: {dmrs} DMRs");
        match mode {
            SimMode::Model => assert_eq!(partial, 0),
            SimMode::Realistic => assert!(partial > dmrs / 2, "{partial} of {dmrs} partial"),
        }
    }
}

/// A region serialised before `effect_sites` existed still reads (as no window).
#[test]
fn region_json_without_effect_sites_reads() {
    let (_, data) = big(SimMode::Realistic);
    let r = data.regions.iter().find(|r| r.is_dmr).unwrap();
    let mut json = serde_json::to_value(r).unwrap();
    assert!(json.get("effect_sites").is_some());
    json.as_object_mut().unwrap().remove("effect_sites");
    let back: methvb_sim::SimRegion = serde_json::from_value(json).unwrap();
    assert_eq!(back.effect_sites, None);
    assert_eq!(back.positions, r.positions);
}
