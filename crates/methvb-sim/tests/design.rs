//! The batch and paired designs of realistic mode: the effects are in the counts where the docs
//! say and nowhere else, the truth is that of the reference batch at donor effect 0, and the
//! designs are written, seeded and validated.
//!
//! Tolerances are 5 standard errors, each derived in the test from the reads behind the
//! estimate (a beta-binomial variance bounded with `pi (1 - pi) <= 1/4`) or from the number of
//! regions (a correlation of independent series has standard error `1 / sqrt(R)`); the draws
//! are seeded, so the outcome is fixed anyway.

use methvb_sim::{
    BatchParams, PairedParams, SimConfig, SimData, SimError, SimMode, SimRegion, WriteOptions,
    simulate, try_simulate, write_dataset,
};

/// The brief's confounded design: batch A,A,A,B (controls) A,B,B,B (cases).
const CONFOUNDED: [&str; 8] = ["A", "A", "A", "B", "A", "B", "B", "B"];

fn labels(l: &[&str]) -> Vec<String> {
    l.iter().map(|s| s.to_string()).collect()
}

/// Realistic 4 vs 4 without a design.
fn four_vs_four(n_regions: usize, seed: u64) -> SimConfig {
    SimConfig {
        n_regions,
        samples_per_group: vec![4, 4],
        mode: SimMode::Realistic,
        seed,
        ..SimConfig::default()
    }
}

fn with_batch(mut cfg: SimConfig, l: &[&str]) -> SimConfig {
    cfg.realistic.batch = Some(BatchParams::new(labels(l)));
    cfg
}

fn with_donors(mut cfg: SimConfig) -> SimConfig {
    cfg.realistic.paired = Some(PairedParams::default());
    cfg
}

/// Outlier sites are exactly 0 or 1 in every group; no effect moves them.
fn is_outlier(r: &SimRegion, j: usize, g_count: usize) -> bool {
    let p = r.true_site_prob[j * g_count];
    p == 0.0 || p == 1.0
}

/// Over the non-outlier sites of `r` and the samples `samples`: the reads `N`, the mean of
/// `m - n pi` per read (the methylation above the design-free truth), the same mean of the
/// expected shift `shift(pi)` and a bound on the standard error of the first, from the
/// beta-binomial variance `n pi (1 - pi) (1 + (n - 1) phi)` with `pi (1 - pi) <= 1/4`.
fn excess(
    data: &SimData,
    r: &SimRegion,
    samples: &[usize],
    shift: impl Fn(f64) -> f64,
) -> (f64, f64, f64, f64) {
    let (s_count, g_count) = (data.samples.len(), data.group_names.len());
    let phi = 1.0 / (1.0 + r.true_k.exp());
    let (mut reads, mut observed, mut expected, mut var) = (0.0, 0.0, 0.0, 0.0);
    for j in 0..r.n_sites() {
        if is_outlier(r, j, g_count) {
            continue;
        }
        for &s in samples {
            let n = f64::from(r.coverage[j * s_count + s]);
            let m = f64::from(r.methylated[j * s_count + s]);
            let pi = r.true_site_prob[j * g_count + data.samples[s].group];
            reads += n;
            observed += m - n * pi;
            expected += n * shift(pi);
            var += n * (1.0 + (n - 1.0).max(0.0) * phi) / 4.0;
        }
    }
    (
        reads,
        observed / reads,
        expected / reads,
        var.sqrt() / reads,
    )
}

#[test]
fn batch_effect_shifts_the_other_batch_in_affected_regions_only() {
    let plain = four_vs_four(1500, 11);
    let cfg = with_batch(plain.clone(), &CONFOUNDED);
    let data = simulate(&cfg);
    let without = simulate(&plain);
    assert_eq!(data.batch_levels, ["A", "B"]);
    let batch_of: Vec<&str> = data
        .samples
        .iter()
        .map(|s| s.batch.as_deref().unwrap())
        .collect();
    assert_eq!(batch_of, CONFOUNDED);
    let a: Vec<usize> = (0..8).filter(|&s| CONFOUNDED[s] == "A").collect();
    let b: Vec<usize> = (0..8).filter(|&s| CONFOUNDED[s] == "B").collect();

    // Per region: batch A (the reference) carries no shift; batch B carries the region's
    // effect, clamped as documented, where the region has one, and none elsewhere.
    let (mut aligned, mut aligned_expected, mut aligned_var, mut affected) = (0.0, 0.0, 0.0, 0);
    let (mut null_sum, mut null_var, mut unaffected) = (0.0, 0.0, 0);
    for (r, q) in data.regions.iter().zip(&without.regions) {
        assert_eq!(r.batch_effect.len(), 1);
        let e = r.batch_effect[0];
        assert_eq!(r.has_batch_effect, e != 0.0);
        if r.has_batch_effect {
            assert!((0.15..=0.35).contains(&e.abs()), "{e}");
        } else {
            // Nothing moved: the counts are those of the same seed without a batch design.
            assert_eq!((&r.coverage, &r.methylated), (&q.coverage, &q.methylated));
        }
        let (reads_a, obs_a, _, se_a) = excess(&data, r, &a, |_| 0.0);
        if reads_a > 0.0 {
            assert!(
                obs_a.abs() <= 5.0 * se_a,
                "{} batch A {obs_a} > 5 x {se_a}",
                r.id
            );
        }
        let shift = |pi: f64| (pi + e).clamp(1e-3, 1.0 - 1e-3) - pi;
        let (reads_b, obs_b, exp_b, se_b) = excess(&data, r, &b, shift);
        if reads_b == 0.0 {
            continue;
        }
        assert!(
            (obs_b - exp_b).abs() <= 5.0 * se_b,
            "{} batch B {obs_b} vs expected {exp_b} (e {e}), se {se_b}",
            r.id
        );
        if r.has_batch_effect {
            aligned += obs_b * e.signum();
            aligned_expected += exp_b * e.signum();
            aligned_var += se_b * se_b;
            affected += 1;
        } else {
            null_sum += obs_b;
            null_var += se_b * se_b;
            unaffected += 1;
        }
    }
    // Over regions: the affected ones move by their effect, far beyond the noise, and the
    // others by nothing.
    let (n_aff, n_null) = (f64::from(affected), f64::from(unaffected));
    let aligned_se = aligned_var.sqrt() / n_aff;
    let (shift, expected) = (aligned / n_aff, aligned_expected / n_aff);
    assert!(
        (shift - expected).abs() <= 5.0 * aligned_se,
        "{shift} {expected}"
    );
    assert!(
        expected > 0.12 && shift > 50.0 * aligned_se,
        "{shift} {aligned_se}"
    );
    let null = null_sum / n_null;
    assert!(null.abs() <= 5.0 * null_var.sqrt() / n_null, "{null}");

    // The affected share is `fraction`, and the same among DMRs and the rest.
    let regions = data.regions.len() as f64;
    let share = n_aff / regions;
    assert!(
        (share - 0.3).abs() <= 5.0 * (0.3f64 * 0.7 / regions).sqrt(),
        "{share}"
    );
    let among = |dmr: bool| {
        let rs: Vec<&SimRegion> = data.regions.iter().filter(|r| r.is_dmr == dmr).collect();
        let hit = rs.iter().filter(|r| r.has_batch_effect).count();
        (hit as f64 / rs.len() as f64, rs.len() as f64)
    };
    let ((p_dmr, n_dmr), (p_rest, n_rest)) = (among(true), among(false));
    let se = (0.3f64 * 0.7 * (1.0 / n_dmr + 1.0 / n_rest)).sqrt();
    assert!((p_dmr - p_rest).abs() <= 5.0 * se, "{p_dmr} {p_rest}");
}

/// The correlation over regions of `x` and `y`.
fn correlation(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        sxy += (a - mx) * (b - my);
        sxx += (a - mx) * (a - mx);
        syy += (b - my) * (b - my);
    }
    sxy / (sxx * syy).sqrt()
}

/// Per sample, per region with reads in every sample: the region's methylation above its
/// design-free truth (mean of `m - n pi` per read over the non-outlier sites).
fn region_excess(data: &SimData) -> Vec<Vec<f64>> {
    let s_count = data.samples.len();
    let mut out = vec![Vec::new(); s_count];
    for r in &data.regions {
        let per: Vec<(f64, f64)> = (0..s_count)
            .map(|s| {
                let (reads, obs, _, _) = excess(data, r, &[s], |_| 0.0);
                (reads, obs)
            })
            .collect();
        if per.iter().all(|&(reads, _)| reads > 0.0) {
            for (s, (_, obs)) in per.into_iter().enumerate() {
                out[s].push(obs);
            }
        }
    }
    out
}

#[test]
fn a_donors_samples_correlate_across_groups() {
    let plain = four_vs_four(1500, 12);
    let cfg = with_donors(plain.clone());
    let data = simulate(&cfg);
    assert_eq!(data.donors, ["donor_1", "donor_2", "donor_3", "donor_4"]);
    let donor_of: Vec<&str> = data
        .samples
        .iter()
        .map(|s| s.donor.as_deref().unwrap())
        .collect();
    assert_eq!(donor_of[..4], donor_of[4..]);
    assert_eq!(donor_of[..4], ["donor_1", "donor_2", "donor_3", "donor_4"]);
    for r in &data.regions {
        assert_eq!(r.donor_effect.len(), 4);
    }
    let (mut sum, mut sum2) = (0.0, 0.0);
    let effects: Vec<f64> = data
        .regions
        .iter()
        .flat_map(|r| r.donor_effect.clone())
        .collect();
    for u in &effects {
        sum += u;
        sum2 += u * u;
    }
    let n = effects.len() as f64;
    let sd = (sum2 / n - (sum / n).powi(2)).sqrt();
    // sd of a sample sd of n normals: sd / sqrt(2n).
    assert!((sd - 0.5).abs() <= 5.0 * 0.5 / (2.0 * n).sqrt(), "{sd}");

    // control_k and treated_k share donor k; every other pair of samples shares nothing.
    for (data, paired) in [(&data, true), (&simulate(&plain), false)] {
        let x = region_excess(data);
        let regions = x[0].len() as f64;
        assert!(regions > 1400.0, "{regions}");
        let noise = 5.0 / regions.sqrt();
        let (mut pairs, mut others) = (Vec::new(), Vec::new());
        for s in 0..8 {
            for t in s + 1..8 {
                let r = correlation(&x[s], &x[t]);
                if paired && t == s + 4 {
                    pairs.push(r);
                } else {
                    assert!(r.abs() <= noise, "samples {s}, {t}: {r} (paired {paired})");
                    others.push(r);
                }
            }
        }
        if paired {
            let top_other = others.iter().copied().fold(f64::MIN, f64::max);
            for r in pairs {
                assert!(r > top_other + noise, "a donor pair: {r} vs {top_other}");
            }
        }
    }
}

#[test]
fn designs_keep_the_truth_and_are_seeded() {
    let plain = four_vs_four(200, 5);
    let cfg = with_donors(with_batch(plain.clone(), &CONFOUNDED));
    let data = simulate(&cfg);
    assert_eq!(data, simulate(&cfg));
    let other_seed = simulate(&SimConfig {
        seed: 6,
        ..cfg.clone()
    });
    let effects = |d: &SimData| -> Vec<f64> {
        d.regions
            .iter()
            .flat_map(|r| r.batch_effect.iter().chain(&r.donor_effect).copied())
            .collect()
    };
    assert_ne!(effects(&data), effects(&other_seed));

    // The truth is the design-free one: the layout, parameters, per-site probabilities,
    // group levels and delta of the same seed without a design.
    let without = simulate(&plain);
    assert!(without.batch_levels.is_empty() && without.donors.is_empty());
    let mut moved = 0;
    for (r, q) in data.regions.iter().zip(&without.regions) {
        assert!(q.batch_effect.is_empty() && q.donor_effect.is_empty() && !q.has_batch_effect);
        assert_eq!(
            (&r.positions, r.is_dmr, &r.true_delta, &r.true_theta),
            (&q.positions, q.is_dmr, &q.true_delta, &q.true_theta)
        );
        assert_eq!(
            (
                r.true_a,
                &r.true_b,
                r.true_w,
                r.true_k,
                &r.true_v,
                &r.true_site_prob
            ),
            (
                q.true_a,
                &q.true_b,
                q.true_w,
                q.true_k,
                &q.true_v,
                &q.true_site_prob
            )
        );
        moved += usize::from(r.methylated != q.methylated);
    }
    // ... and the counts carry the donor effects in every region.
    assert!(moved > 190, "{moved}");

    // Written twice, the same bytes.
    let tmp = tempfile::tempdir().unwrap();
    let opts = WriteOptions::default();
    let (one, two) = (tmp.path().join("one"), tmp.path().join("two"));
    write_dataset(&data, &one, &opts).unwrap();
    write_dataset(&simulate(&cfg), &two, &opts).unwrap();
    let mut names: Vec<_> = std::fs::read_dir(&one)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(names.len(), 8 + 4);
    for name in names {
        let a = std::fs::read(one.join(&name)).unwrap();
        assert_eq!(a, std::fs::read(two.join(&name)).unwrap(), "{name:?}");
    }
}

#[test]
fn the_sheet_and_truth_carry_the_design() {
    let cfg = with_donors(with_batch(four_vs_four(30, 3), &CONFOUNDED));
    let data = simulate(&cfg);
    let tmp = tempfile::tempdir().unwrap();
    let written = write_dataset(&data, tmp.path(), &WriteOptions::default()).unwrap();
    let sheet = std::fs::read_to_string(&written.sample_sheet).unwrap();
    let rows: Vec<Vec<&str>> = sheet.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(rows[0], ["sample", "group", "path", "batch", "donor"]);
    assert_eq!(rows.len(), 9);
    assert_eq!(
        rows[1],
        ["control_1", "control", "control_1.bed", "A", "donor_1"]
    );
    assert_eq!(
        rows[8],
        ["treated_4", "treated", "treated_4.bed", "B", "donor_4"]
    );
    for (row, label) in rows[1..].iter().zip(CONFOUNDED) {
        assert_eq!(row[3], label);
    }
    // methvb reads the sheet as before: the extra columns are not samples' business.
    let read = methvb_io::sheet::SampleSheet::from_path(&written.sample_sheet).unwrap();
    assert_eq!(read.group_sizes(), [("control", 4), ("treated", 4)]);

    let truth = std::fs::read_to_string(&written.truth).unwrap();
    let mut lines = truth.lines();
    let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
    assert_eq!(
        header[6..],
        [
            "true_delta_treated",
            "true_theta_control",
            "true_theta_treated",
            "has_batch_effect",
            "batch_effect_B",
            "donor_effect_donor_1",
            "donor_effect_donor_2",
            "donor_effect_donor_3",
            "donor_effect_donor_4",
            "effect_start",
            "effect_end",
            "effect_sites"
        ]
    );
    for (line, r) in lines.zip(&data.regions) {
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(f.len(), header.len());
        assert_eq!(f[9].parse::<bool>().unwrap(), r.has_batch_effect);
        assert_eq!(f[10].parse::<f64>().unwrap(), r.batch_effect[0]);
        let donors: Vec<f64> = f[11..15].iter().map(|x| x.parse().unwrap()).collect();
        assert_eq!(donors, r.donor_effect);
    }
    let json = std::fs::read_to_string(&written.config_json).unwrap();
    let back: SimConfig = serde_json::from_str(&json).unwrap();
    assert_eq!(back, cfg);

    // Without a design, neither the sheet nor sim.json mentions one.
    let plain = simulate(&four_vs_four(5, 3));
    let dir = tmp.path().join("plain");
    let written = write_dataset(&plain, &dir, &WriteOptions::default()).unwrap();
    let sheet = std::fs::read_to_string(&written.sample_sheet).unwrap();
    assert!(sheet.starts_with("sample\tgroup\tpath\n"));
    let json = std::fs::read_to_string(&written.config_json).unwrap();
    assert!(
        !json.contains("batch") && !json.contains("paired"),
        "{json}"
    );
}

#[test]
fn old_configs_load_and_designs_fill_their_defaults() {
    let old: SimConfig =
        serde_json::from_str(r#"{"mode": "realistic", "realistic": {"outlier_rate": 0.1}}"#)
            .unwrap();
    assert!(old.realistic.batch.is_none() && old.realistic.paired.is_none());
    let cfg: SimConfig = serde_json::from_str(
        r#"{"mode": "realistic", "realistic": {"batch": {"labels": ["x", "x", "x", "y", "y", "y"]},
            "paired": {}}}"#,
    )
    .unwrap();
    let batch = cfg.realistic.batch.as_ref().unwrap();
    assert_eq!((batch.fraction, batch.effect), (0.3, (0.15, 0.35)));
    assert_eq!(cfg.realistic.paired, Some(PairedParams { donor_sd: 0.5 }));
    assert!(try_simulate(&cfg).is_ok());
    for bad in [
        r#"{"realistic": {"batch": {"labels": ["x"], "share": 0.3}}}"#,
        r#"{"realistic": {"paired": {"sd": 0.3}}}"#,
        r#"{"realistic": {"batch": {"fraction": 0.3}}}"#,
    ] {
        assert!(serde_json::from_str::<SimConfig>(bad).is_err(), "{bad}");
    }
}

#[test]
fn bad_designs_are_refused_with_the_fix() {
    let base = four_vs_four(10, 1);
    let error = |cfg: &SimConfig| try_simulate(cfg).expect_err("refused");

    let model = SimConfig {
        mode: SimMode::Model,
        ..with_batch(base.clone(), &CONFOUNDED)
    };
    let e = error(&model);
    assert!(matches!(e, SimError::DesignNeedsRealisticMode), "{e}");
    assert!(e.to_string().contains("--mode realistic"), "{e}");
    let model = SimConfig {
        mode: SimMode::Model,
        ..with_donors(base.clone())
    };
    assert!(matches!(error(&model), SimError::DesignNeedsRealisticMode));

    let e = error(&with_batch(base.clone(), &["A", "B", "A"]));
    assert!(
        matches!(
            e,
            SimError::BatchLabelCount {
                labels: 3,
                samples: 8
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("one label per sample"), "{e}");

    let e = error(&with_batch(base.clone(), &["A"; 8]));
    assert!(
        matches!(&e, SimError::SingleBatch { label } if label == "A"),
        "{e}"
    );
    assert!(e.to_string().contains("at least two batches"), "{e}");

    let unequal = SimConfig {
        samples_per_group: vec![3, 4],
        ..with_donors(base.clone())
    };
    let e = error(&unequal);
    assert!(
        matches!(&e, SimError::UnequalGroupsForPairing { sizes } if sizes == &[3, 4]),
        "{e}"
    );
    assert!(e.to_string().contains("make the group sizes equal"), "{e}");

    let invalid = |mutate: fn(&mut SimConfig), field: &str| {
        let mut cfg = with_donors(with_batch(base.clone(), &CONFOUNDED));
        mutate(&mut cfg);
        let e = error(&cfg);
        assert!(matches!(e, SimError::InvalidConfig(_)), "{e}");
        assert!(e.to_string().contains(field), "{field}: {e}");
    };
    invalid(
        |c| c.realistic.batch.as_mut().unwrap().fraction = 1.5,
        "realistic.batch.fraction = 1.5 must be in [0, 1]",
    );
    invalid(
        |c| c.realistic.batch.as_mut().unwrap().effect = (0.3, 0.2),
        "realistic.batch.effect = (0.3, 0.2) needs 0 <= min <= max <= 1",
    );
    invalid(
        |c| c.realistic.batch.as_mut().unwrap().labels[0] = "a b".into(),
        "batch label \"a b\" must be non-empty",
    );
    invalid(
        |c| c.realistic.paired.as_mut().unwrap().donor_sd = f64::NAN,
        "realistic.paired.donor_sd = NaN must be in [0, 10]",
    );
    // At the edges of their ranges the designs are valid: no region with a batch effect, or
    // donors without an effect.
    let mut edge = with_donors(with_batch(base, &CONFOUNDED));
    edge.realistic.batch.as_mut().unwrap().fraction = 0.0;
    edge.realistic.paired.as_mut().unwrap().donor_sd = 0.0;
    let data = try_simulate(&edge).unwrap();
    assert!(
        data.regions
            .iter()
            .all(|r| !r.has_batch_effect && r.batch_effect == [0.0])
    );
    assert!(data.regions.iter().all(|r| r.donor_effect == [0.0; 4]));
}
