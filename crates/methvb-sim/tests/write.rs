//! Written datasets parse back (by hand) to the in-memory counts and truth.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use methvb_sim::{SimConfig, SimData, SimMode, WriteOptions, simulate, write_dataset};

/// (chrom, pos, strand) -> (n, m), checking every column of the modkit layout on the way.
fn read_bedmethyl(
    path: &Path,
    contigs: &[(String, u64)],
) -> HashMap<(String, u64, char), (u32, u32)> {
    let text = if path.extension().is_some_and(|e| e == "gz") {
        let mut text = String::new();
        let file = std::fs::File::open(path).unwrap();
        noodles::bgzf::io::Reader::new(file)
            .read_to_string(&mut text)
            .expect("valid BGZF");
        text
    } else {
        std::fs::read_to_string(path).expect("bedMethyl readable")
    };
    let mut out = HashMap::new();
    let mut prev: Option<(usize, u64)> = None;
    for line in text.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(f.len(), 18, "{line}");
        let start: u64 = f[1].parse().unwrap();
        let end: u64 = f[2].parse().unwrap();
        assert_eq!(end, start + 1);
        assert_eq!(f[3], "m");
        let strand = f[5].chars().next().unwrap();
        assert!(matches!(strand, '.' | '+' | '-') && f[5].len() == 1);
        assert_eq!((f[6], f[7], f[8]), (f[1], f[2], "255,0,0"));
        let n: u32 = f[9].parse().unwrap();
        assert_eq!(f[4], f[9], "score = N_valid_cov");
        let m: u32 = f[11].parse().unwrap();
        let canonical: u32 = f[12].parse().unwrap();
        assert!(n > 0 && m + canonical == n);
        assert_eq!(f[10], format!("{:.2}", 100.0 * f64::from(m) / f64::from(n)));
        assert!(f[13..].iter().all(|&x| x == "0"));
        // Sorted by contig (config order) then position.
        let c = contigs
            .iter()
            .position(|(name, _)| name == f[0])
            .expect("known contig");
        if let Some(p) = prev {
            assert!((c, start) > p, "unsorted at {line}");
        }
        prev = Some((c, start));
        assert!(
            out.insert((f[0].to_owned(), start, strand), (n, m))
                .is_none()
        );
    }
    out
}

fn check_counts(data: &SimData, dir: &Path, split: bool, ext: &str) {
    let s_count = data.samples.len();
    for (s, sample) in data.samples.iter().enumerate() {
        let recs = read_bedmethyl(
            &dir.join(format!("{}.{ext}", sample.name)),
            &data.config.contigs,
        );
        let mut seen = 0;
        for r in &data.regions {
            for (j, &p) in r.positions.iter().enumerate() {
                let (n, m) = (r.coverage[j * s_count + s], r.methylated[j * s_count + s]);
                let get = |pos, strand| recs.get(&(r.chrom.clone(), pos, strand)).copied();
                let (wn, wm, k) = if split {
                    let plus = get(p, '+');
                    let minus = get(p + 1, '-');
                    let k = usize::from(plus.is_some()) + usize::from(minus.is_some());
                    let (pn, pm) = plus.unwrap_or((0, 0));
                    let (qn, qm) = minus.unwrap_or((0, 0));
                    (pn + qn, pm + qm, k)
                } else {
                    let (wn, wm) = get(p, '.').unwrap_or((0, 0));
                    (wn, wm, usize::from(wn > 0))
                };
                assert_eq!((wn, wm), (n, m), "{} {} {p}", sample.name, r.chrom);
                seen += k;
            }
        }
        // Nothing else in the file (sites with n = 0 omitted, no stray records).
        assert_eq!(seen, recs.len());
    }
}

#[test]
fn written_dataset_parses_back_to_the_same_counts() {
    let cfg = SimConfig {
        n_regions: 200,
        seed: 3,
        ..SimConfig::default()
    };
    let data = simulate(&cfg);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ds");
    let written = write_dataset(&data, &dir, &WriteOptions::default()).unwrap();
    check_counts(&data, &dir, false, "bed");
    // Some sites were omitted because n = 0.
    let cells_with_reads: u64 = data
        .regions
        .iter()
        .flat_map(|r| r.coverage.iter())
        .filter(|&&n| n > 0)
        .count() as u64;
    let total_cells: u64 = data.regions.iter().map(|r| r.coverage.len() as u64).sum();
    assert_eq!(
        written.records_per_sample.iter().sum::<u64>(),
        cells_with_reads
    );
    assert!(cells_with_reads < total_cells);

    // samples.tsv
    let sheet = std::fs::read_to_string(&written.sample_sheet).unwrap();
    let rows: Vec<Vec<&str>> = sheet.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(rows[0], ["sample", "group", "path"]);
    assert_eq!(rows.len(), 7);
    for (row, sample) in rows[1..].iter().zip(&data.samples) {
        assert_eq!(row[0], sample.name);
        assert_eq!(row[1], data.group_names[sample.group]);
        assert!(dir.join(row[2]).is_file());
    }
    assert_eq!(rows[4][..2], ["treated_1", "treated"]);

    // regions.bed
    let bed = std::fs::read_to_string(&written.regions_bed).unwrap();
    let lines: Vec<&str> = bed.lines().collect();
    assert_eq!(lines.len(), data.regions.len());
    for (line, r) in lines.iter().zip(&data.regions) {
        assert_eq!(
            *line,
            format!("{}\t{}\t{}\t{}", r.chrom, r.start, r.end, r.id)
        );
    }

    // truth.tsv: values round-trip exactly.
    let truth = std::fs::read_to_string(&written.truth).unwrap();
    let mut lines = truth.lines();
    assert_eq!(
        lines.next().unwrap(),
        "region_id\tchrom\tstart\tend\tn_sites\tis_dmr\ttrue_delta_treated\ttrue_theta_control\ttrue_theta_treated\teffect_start\teffect_end\teffect_sites"
    );
    for (line, r) in lines.zip(&data.regions) {
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(f[0], r.id);
        assert_eq!(f[4].parse::<usize>().unwrap(), r.positions.len());
        assert_eq!(f[5].parse::<bool>().unwrap(), r.is_dmr);
        assert_eq!(f[6].parse::<f64>().unwrap(), r.true_delta[0]);
        assert_eq!(f[7].parse::<f64>().unwrap(), r.true_theta[0]);
        assert_eq!(f[8].parse::<f64>().unwrap(), r.true_theta[1]);
        match &r.effect_sites {
            Some(w) => {
                assert_eq!(f[9].parse::<u64>().unwrap(), r.positions[w.start]);
                assert_eq!(f[10].parse::<u64>().unwrap(), r.positions[w.end - 1] + 2);
                assert_eq!(f[11].parse::<usize>().unwrap(), w.len());
            }
            None => assert_eq!(f[9..], ["NA", "NA", "0"]),
        }
        assert_eq!(f.len(), 12);
    }

    // sim.json is the config.
    let json = std::fs::read_to_string(&written.config_json).unwrap();
    let back: SimConfig = serde_json::from_str(&json).unwrap();
    assert_eq!(back, cfg);
    assert_eq!(simulate(&back), data);

    // No temporary files left behind.
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.starts_with('.')), "{names:?}");
    assert_eq!(names.len(), 6 + 4);
}

#[test]
fn split_strands_sum_to_the_site_counts() {
    let cfg = SimConfig {
        n_regions: 150,
        mode: SimMode::Realistic,
        ..SimConfig::default()
    };
    let data = simulate(&cfg);
    let tmp = tempfile::tempdir().unwrap();
    let opts = WriteOptions {
        split_strands: true,
        split_seed: 9,
        ..WriteOptions::default()
    };
    let written = write_dataset(&data, tmp.path(), &opts).unwrap();
    check_counts(&data, tmp.path(), true, "bed");
    // Both strands are used and the split is random, not even.
    let text = std::fs::read_to_string(&written.sample_files[0]).unwrap();
    let plus = text
        .lines()
        .filter(|l| l.split('\t').nth(5) == Some("+"))
        .count();
    let minus = text
        .lines()
        .filter(|l| l.split('\t').nth(5) == Some("-"))
        .count();
    assert!(plus > 100 && minus > 100);
    // Deterministic given the seed.
    let again = tempfile::tempdir().unwrap();
    write_dataset(&data, again.path(), &opts).unwrap();
    let a = std::fs::read(&written.sample_files[3]).unwrap();
    let b = std::fs::read(again.path().join("treated_1.bed")).unwrap();
    assert_eq!(a, b);
}

#[test]
fn rewriting_replaces_files_and_bad_names_are_rejected() {
    let small = simulate(&SimConfig {
        n_regions: 5,
        ..SimConfig::default()
    });
    let big = simulate(&SimConfig {
        n_regions: 40,
        ..SimConfig::default()
    });
    let tmp = tempfile::tempdir().unwrap();
    write_dataset(&big, tmp.path(), &WriteOptions::default()).unwrap();
    write_dataset(&small, tmp.path(), &WriteOptions::default()).unwrap();
    check_counts(&small, tmp.path(), false, "bed");

    let mut bad = small.clone();
    bad.samples[0].name = "../escape".into();
    let err = write_dataset(&bad, tmp.path(), &WriteOptions::default()).unwrap_err();
    assert!(
        matches!(err, methvb_sim::SimError::BadSampleName(_)),
        "{err}"
    );
}

#[test]
fn a_failed_write_names_the_file_and_leaves_no_temporary() {
    let data = simulate(&SimConfig {
        n_regions: 5,
        ..SimConfig::default()
    });
    let tmp = tempfile::tempdir().unwrap();
    // A non-empty directory where the first sample's file goes: its rename fails.
    let taken = tmp.path().join("control_1.bed");
    std::fs::create_dir(&taken).unwrap();
    std::fs::write(taken.join("inside"), "x").unwrap();
    let err = write_dataset(&data, tmp.path(), &WriteOptions::default()).unwrap_err();
    let methvb_sim::SimError::Io { path, source } = &err else {
        panic!("{err}");
    };
    assert_eq!(path, &taken);
    assert!(source.to_string().contains("control_1.bed"), "{source}");
    let names: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["control_1.bed"]);
}

#[test]
fn bundled_size_dataset_is_small() {
    // The shape of the project's test-data: 500 regions x 6 samples, BGZF-compressed.
    let data = simulate(&SimConfig::default());
    let tmp = tempfile::tempdir().unwrap();
    let opts = WriteOptions {
        bgzip: true,
        ..WriteOptions::default()
    };
    let written = write_dataset(&data, tmp.path(), &opts).unwrap();
    let mut total = 0;
    for p in written
        .sample_files
        .iter()
        .chain([&written.truth, &written.regions_bed])
    {
        let len = std::fs::metadata(p).unwrap().len();
        assert!(len < 200_000, "{} is {len} bytes", p.display());
        total += len;
    }
    eprintln!("500 x 6 dataset: {total} bytes");
}

/// Walks the BGZF blocks (SAMtools spec 4.1): every member carries a `BC` field whose BSIZE
/// is the member length, and the file ends with the 28-byte EOF block.
fn check_bgzf_framing(bytes: &[u8]) -> usize {
    let mut at = 0;
    let mut blocks = 0;
    while at < bytes.len() {
        let h = &bytes[at..];
        assert_eq!(
            h[..4],
            [0x1f, 0x8b, 8, 4],
            "gzip header with FEXTRA at {at}"
        );
        assert_eq!(u16::from_le_bytes([h[10], h[11]]), 6);
        assert_eq!(h[12..16], [b'B', b'C', 2, 0]);
        let bsize = usize::from(u16::from_le_bytes([h[16], h[17]])) + 1;
        let isize = u32::from_le_bytes(h[bsize - 4..bsize].try_into().unwrap());
        assert!(isize <= 0xff00);
        at += bsize;
        blocks += 1;
        if at == bytes.len() {
            assert_eq!((bsize, isize), (28, 0), "EOF block last");
        }
    }
    assert_eq!(at, bytes.len());
    blocks
}

#[test]
fn bgzip_output_is_valid_bgzf_and_gzip() {
    let cfg = SimConfig {
        n_regions: 300,
        ..SimConfig::default()
    };
    let data = simulate(&cfg);
    let tmp = tempfile::tempdir().unwrap();
    let plain = tmp.path().join("plain");
    let gz = tmp.path().join("gz");
    write_dataset(&data, &plain, &WriteOptions::default()).unwrap();
    let opts = WriteOptions {
        bgzip: true,
        ..WriteOptions::default()
    };
    let written = write_dataset(&data, &gz, &opts).unwrap();
    // noodles' BGZF reader decodes the same records.
    check_counts(&data, &gz, false, "bed.gz");
    let sheet = std::fs::read_to_string(&written.sample_sheet).unwrap();
    assert!(
        sheet
            .lines()
            .nth(1)
            .unwrap()
            .ends_with("\tcontrol_1.bed.gz")
    );
    for sample in &data.samples {
        let bytes = std::fs::read(gz.join(format!("{}.bed.gz", sample.name))).unwrap();
        // Several 64 KiB blocks plus the EOF block.
        assert!(check_bgzf_framing(&bytes) >= 3);
        // A plain multi-member gzip decoder (CRC and size checked) gives the plain file.
        let mut text = Vec::new();
        flate2::read::MultiGzDecoder::new(&bytes[..])
            .read_to_end(&mut text)
            .unwrap();
        let expect = std::fs::read(plain.join(format!("{}.bed", sample.name))).unwrap();
        assert_eq!(text, expect);
        assert!(
            bytes.len() * 3 < expect.len(),
            "{} vs {}",
            bytes.len(),
            expect.len()
        );
    }
}
