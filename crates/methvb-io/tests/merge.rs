//! Multi-sample merge against a peer tool (DSS / bsseq `makeBSseqData`) and against a naive
//! in-memory merge.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;

use methvb_io::SiteSource;
use methvb_io::batch::SiteBatchView;
use methvb_io::contigs::{ContigOrder, natural_cmp};
use methvb_io::format::Format;
use methvb_io::merge::{SiteMerger, VecSource};
use methvb_io::regions::{RegionBuilder, RegionFilters, RegionSpec, RegionStream};
use methvb_io::sample::{ReaderOptions, SampleReader};
use methvb_io::sheet::SampleSheet;
use proptest::prelude::*;

fn dss_dir() -> PathBuf {
    let p = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/data/dss"
    ));
    assert!(
        p.join("cond1_1.txt").exists(),
        "test data missing: {} (see /work/shared/data/README.md)",
        p.display()
    );
    p
}

/// (chrom, 1-based pos, [N_C1..N_N2], [X_C1..X_N2]) rows of the expected table.
type Expected = Vec<(String, u64, [u32; 4], [u32; 4])>;

fn expected() -> Expected {
    let f = std::fs::File::open(dss_dir().join("expected/makeBSseqData_merged.tsv.gz")).unwrap();
    let r = BufReader::new(flate2::read::MultiGzDecoder::new(f));
    let mut out = Vec::new();
    for (i, line) in r.lines().enumerate() {
        let line = line.unwrap();
        let f: Vec<&str> = line.split('\t').collect();
        if i == 0 {
            assert_eq!(
                f,
                [
                    "chr", "pos", "N_C1", "N_C2", "N_N1", "N_N2", "X_C1", "X_C2", "X_N1", "X_N2"
                ]
            );
            continue;
        }
        let num = |k: usize| f[k].parse::<u32>().unwrap();
        out.push((
            f[0].to_string(),
            f[1].parse().unwrap(),
            [num(2), num(3), num(4), num(5)],
            [num(6), num(7), num(8), num(9)],
        ));
    }
    out
}

fn rows_of(mg: &mut SiteMerger, batch: usize) -> Expected {
    let mut got = Vec::new();
    while let Some(b) = mg.next_batch(batch).unwrap() {
        let v = SiteBatchView::new(&b).unwrap();
        for r in 0..b.num_rows() {
            let n = [v.n[0][r], v.n[1][r], v.n[2][r], v.n[3][r]];
            let m = [v.m[0][r], v.m[1][r], v.m[2][r], v.m[3][r]];
            got.push((v.chrom(r).to_string(), v.pos[r] + 1, n, m));
        }
    }
    got
}

const FILES: [(&str, &str, &str); 4] = [
    ("C1", "C", "cond1_1.txt"),
    ("C2", "C", "cond1_2.txt"),
    ("N1", "N", "cond2_1.txt"),
    ("N2", "N", "cond2_2.txt"),
];

#[test]
fn dss_merge_equals_make_bsseq_data() {
    let want = expected();
    assert_eq!(want.len(), 34_739);
    let opts = ReaderOptions {
        format: Some(Format::Dss),
        ..Default::default()
    };
    let sources: Vec<Box<dyn SiteSource + Send>> = FILES
        .iter()
        .map(|(_, _, f)| {
            Box::new(SampleReader::open(&dss_dir().join(f), &opts).unwrap())
                as Box<dyn SiteSource + Send>
        })
        .collect();
    let mut mg = SiteMerger::new(sources, ContigOrder::Learned)
        .unwrap()
        .with_samples(
            FILES.iter().map(|s| s.0.to_string()).collect(),
            FILES.iter().map(|s| s.1.to_string()).collect(),
        );
    assert_eq!(mg.sample_names(), ["C1", "C2", "N1", "N2"]);
    let got = rows_of(&mut mg, 4096);
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g, w, "row {} differs", i + 1);
    }
    assert_eq!(mg.stats().sites_per_sample, vec![20_000; 4]);
    assert_eq!(mg.stats().rows, 34_739);
    assert_eq!(mg.stats().rows_dropped_all_zero, 0);
}

#[test]
fn dss_via_sample_sheet_with_detection_and_regions() {
    let dir = tempfile::tempdir().unwrap();
    let sheet = dir.path().join("samples.tsv");
    let mut text = String::from("sample\tgroup\tpath\n");
    for (s, g, f) in FILES {
        text.push_str(&format!("{s}\t{g}\t{}\n", dss_dir().join(f).display()));
    }
    std::fs::write(&sheet, text).unwrap();
    let sheet = SampleSheet::from_path(&sheet).unwrap();
    let mut mg = sheet
        .merger(&ReaderOptions::default(), ContigOrder::Learned)
        .unwrap();
    let got = rows_of(&mut mg, 1000);
    assert_eq!(got, expected());

    // Regions straight from the merge: every site accounted for, regions in order.
    let mg = sheet
        .merger(&ReaderOptions::default(), ContigOrder::Learned)
        .unwrap();
    let builder = RegionBuilder::new(
        RegionSpec::default(),
        RegionFilters::default(),
        sheet.group_of_samples(),
    )
    .unwrap();
    let mut stream = RegionStream::new(mg, builder, 5000);
    let mut last = 0;
    let mut n_regions = 0u64;
    let mut n_sites = 0u64;
    for r in stream.by_ref() {
        let r = r.unwrap();
        assert!(r.start >= last && r.n_sites() >= 3);
        assert_eq!(r.coverage.len(), 4 * r.n_sites());
        for w in r.positions.windows(2) {
            assert!(w[1] - w[0] <= 100);
        }
        last = r.end;
        n_regions += 1;
        n_sites += r.n_sites() as u64;
    }
    let st = stream.region_stats().clone();
    assert_eq!(st.sites_read, 34_739);
    assert_eq!(st.regions_emitted, n_regions);
    assert_eq!(st.sites_in_emitted_regions, n_sites);
    // Independent count of the per-group filter from the expected table.
    let fail_group = expected()
        .iter()
        .filter(|r| (r.2[0] == 0 && r.2[1] == 0) || (r.2[2] == 0 && r.2[3] == 0))
        .count() as u64;
    assert_eq!(st.sites_dropped_min_samples_per_group, fail_group);
    assert!(n_regions > 100, "{st:?}");
}

/// (chrom, 0-based pos, per-sample (m, n)).
type MergedRow = (String, u64, Vec<(u32, u32)>);
type Sample = BTreeMap<(usize, u64), (u32, u32)>;
const CONTIGS: [&str; 4] = ["chr1", "chr2", "chr10", "chrX"];

fn sample_strategy() -> impl Strategy<Value = Sample> {
    prop::collection::btree_map(
        (0usize..4, 0u64..300),
        (0u32..5, 0u32..5).prop_map(|(a, b)| (a.min(b), b)),
        0..80,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn merge_equals_naive_btreemap(samples in prop::collection::vec(sample_strategy(), 1..6), batch in 1usize..40) {
        // Each sample in natural contig order (what the learned order picks).
        let mut ranked: Vec<usize> = (0..CONTIGS.len()).collect();
        ranked.sort_by(|&a, &b| natural_cmp(CONTIGS[a], CONTIGS[b]));
        let rank = |c: usize| ranked.iter().position(|&x| x == c).unwrap();
        let sources: Vec<Box<dyn SiteSource + Send>> = samples
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let mut rows: Vec<(&str, u64, u32, u32)> =
                    s.iter().map(|(&(c, p), &(m, n))| (CONTIGS[c], p, m, n)).collect();
                rows.sort_by_key(|r| (rank(CONTIGS.iter().position(|c| *c == r.0).unwrap()), r.1));
                Box::new(VecSource::new(format!("s{i}"), &rows)) as Box<dyn SiteSource + Send>
            })
            .collect();
        let k = samples.len();
        // Naive merge.
        let mut naive: BTreeMap<(usize, u64), Vec<(u32, u32)>> = BTreeMap::new();
        for (i, s) in samples.iter().enumerate() {
            for (&(c, p), &v) in s {
                naive.entry((rank(c), p)).or_insert_with(|| vec![(0, 0); k])[i] = v;
            }
        }
        let total = naive.len() as u64;
        let want: Vec<MergedRow> = naive
            .into_iter()
            .filter(|(_, v)| v.iter().any(|x| x.1 > 0))
            .map(|((c, p), v)| (CONTIGS[ranked[c]].to_string(), p, v))
            .collect();

        let mut mg = SiteMerger::new(sources, ContigOrder::Learned).unwrap();
        let mut got = Vec::new();
        while let Some(b) = mg.next_batch(batch).unwrap() {
            prop_assert!(b.num_rows() <= batch);
            let v = SiteBatchView::new(&b).unwrap();
            for r in 0..b.num_rows() {
                let cells = (0..k).map(|s| (v.m[s][r], v.n[s][r])).collect();
                got.push((v.chrom(r).to_string(), v.pos[r], cells));
            }
        }
        prop_assert_eq!(&got, &want);
        prop_assert_eq!(mg.stats().rows, want.len() as u64);
        prop_assert_eq!(mg.stats().rows + mg.stats().rows_dropped_all_zero, total);
    }
}

#[test]
fn dss_files_disagreeing_names_are_reported() {
    // Same DSS file twice, once renamed chr18 -> 18 in memory: the alias is suggested.
    let opts = ReaderOptions {
        format: Some(Format::Dss),
        ..Default::default()
    };
    let a = SampleReader::open(&dss_dir().join("cond1_1.txt"), &opts).unwrap();
    let b = VecSource::new("renamed.txt", &[("18", 3014903, 1, 2)]);
    let e = SiteMerger::new(vec![Box::new(a), Box::new(b)], ContigOrder::Learned).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("cond1_1.txt has chr18"), "{msg}");
    assert!(msg.starts_with("renamed.txt"), "{msg}");
}

/// modkit `dmr pair` region counts (`test_output_chr20-2.bed`, columns 7-10) equal the sums of
/// the two lung bedMethyl files (code `C`, both strands kept apart) over the space-separated
/// CpG-island BED: merge + BED regions against a peer tool's numbers.
#[test]
fn modkit_dmr_region_counts_from_merged_bed_regions() {
    let dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/data/modkit"
    ));
    let bed = dir.join("cpg_chr20_with_orig_names_selection.bed");
    assert!(
        bed.exists(),
        "test data missing: {} (see /work/shared/data/README.md)",
        bed.display()
    );
    let opts = ReaderOptions {
        format: Some(Format::BedMethyl),
        mod_code: "C".into(),
        any_mod: false,
        merge_strands: false,
    };
    let files = [
        "lung_00733-m_adjacent-normal_5mc-5hmc_chr20_cpg_pileup.bed.gz",
        "lung_00733-m_primary-tumour_5mc-5hmc_chr20_cpg_pileup.bed.gz",
    ];
    let sources: Vec<Box<dyn SiteSource + Send>> = files
        .iter()
        .map(|f| {
            Box::new(SampleReader::open(&dir.join(f), &opts).unwrap()) as Box<dyn SiteSource + Send>
        })
        .collect();
    let mg = SiteMerger::new(sources, ContigOrder::Learned).unwrap();
    let spec = RegionSpec::Bed(methvb_io::regions::BedRegions::from_path(&bed).unwrap());
    let filters = RegionFilters {
        min_cov: 1,
        min_samples_per_group: 0,
        min_sites: 1,
    };
    let builder = RegionBuilder::new(spec, filters, vec![0, 1]).unwrap();
    let mut got = Vec::new();
    for r in RegionStream::new(mg, builder, 3000) {
        let r = r.unwrap();
        let sum = |v: &[u32], s: usize| {
            v.iter()
                .skip(s)
                .step_by(2)
                .map(|&x| u64::from(x))
                .sum::<u64>()
        };
        got.push((
            r.id.clone(),
            r.start,
            sum(&r.methylated, 0),
            sum(&r.coverage, 0),
            sum(&r.methylated, 1),
            sum(&r.coverage, 1),
        ));
    }
    let text = std::fs::read_to_string(dir.join("test_output_chr20-2.bed")).unwrap();
    let names: Vec<&str> = text
        .lines()
        .map(|l| l.split('\t').nth(3).unwrap())
        .collect();
    let want: Vec<(String, u64, u64, u64, u64, u64)> = text
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let k = |s: &str| s.trim_start_matches("C:").parse::<u64>().unwrap();
            // modkit keeps a name that two islands share ("CpG: 35"); region ids are unique,
            // so such regions carry their coordinates.
            let shared = names.iter().filter(|&&n| n == f[3]).count() > 1;
            (
                if shared {
                    format!("{}@{}:{}-{}", f[3], f[0], f[1], f[2])
                } else {
                    f[3].to_string()
                },
                f[1].parse().unwrap(),
                k(f[6]),
                k(f[7]),
                k(f[8]),
                k(f[9]),
            )
        })
        .collect();
    assert_eq!(want.len(), 6);
    assert_eq!(got, want);
}
