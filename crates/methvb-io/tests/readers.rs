//! Integration tests of the sample readers on the real public data in `/work/shared/data`
//! (see its README.md); expected values come from the peer tools' outputs staged there.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use methvb_io::format::{BedLayout, Format};
use methvb_io::sample::{ReaderOptions, SampleReader};
use methvb_io::{ErrorKind, SiteSource, Strand};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data");

/// Path of a data file; fails loudly when the shared data folder is missing.
fn data(rel: &str) -> PathBuf {
    let p = Path::new(DATA).join(rel);
    assert!(
        p.exists(),
        "test data {} is missing: the shared data folder must sit beside the repository (../shared/data)",
        p.display()
    );
    p
}

/// Reads a whole (possibly gzip) file as text, independently of the readers under test.
fn text(rel: &str) -> String {
    let mut r = methvb_io::input::open(&data(rel)).expect("open");
    let mut s = String::new();
    r.read_to_string(&mut s).expect("read");
    s
}

/// One site as `(contig, 0-based pos, strand, m, n)`.
type Row = (String, u64, Strand, u32, u32);

fn read_all(rel: &str, opts: &ReaderOptions) -> (Vec<Row>, SampleReader) {
    let mut r = SampleReader::open(&data(rel), opts).unwrap_or_else(|e| panic!("{e}"));
    let mut out = Vec::new();
    while let Some(s) = r.next_site().unwrap_or_else(|e| panic!("{e}")) {
        assert!(s.methylated <= s.coverage);
        out.push((
            r.contig_name(s.contig).to_string(),
            s.pos,
            s.strand,
            s.methylated,
            s.coverage,
        ));
    }
    (out, r)
}

fn opts(merge: bool) -> ReaderOptions {
    ReaderOptions {
        merge_strands: merge,
        ..ReaderOptions::default()
    }
}

fn modkit_opts(code: &str, merge: bool) -> ReaderOptions {
    ReaderOptions {
        format: None,
        mod_code: code.to_string(),
        any_mod: false,
        merge_strands: merge,
    }
}

/// Checks positions strictly increase per contig, ordered by (pos, strand) when unmerged.
fn assert_sorted(rows: &[Row]) {
    let rank = |s: Strand| match s {
        Strand::Forward => 0,
        Strand::Reverse => 1,
        Strand::Unknown => 2,
    };
    for w in rows.windows(2) {
        if w[0].0 == w[1].0 {
            assert!(
                (w[0].1, rank(w[0].2)) < (w[1].1, rank(w[1].2)),
                "not increasing: {:?} then {:?}",
                w[0],
                w[1]
            );
        }
    }
}

/// bsseq's expected table: `chr pos strand M Cov` (1-based pos).
fn bsseq_expected(rel: &str) -> Vec<(String, u64, String, u32, u32)> {
    let t = text(rel);
    let mut lines = t.lines();
    assert_eq!(lines.next(), Some("chr\tpos\tstrand\tM\tCov"));
    let mut v: Vec<_> = lines
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (
                f[0].to_string(),
                f[1].parse().unwrap(),
                f[2].to_string(),
                f[3].parse().unwrap(),
                f[4].parse().unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

fn strand_symbol(s: Strand) -> &'static str {
    match s {
        Strand::Forward => "+",
        Strand::Reverse => "-",
        Strand::Unknown => "*",
    }
}

fn as_bsseq(rows: &[Row]) -> Vec<(String, u64, String, u32, u32)> {
    let mut v: Vec<_> = rows
        .iter()
        .map(|(c, p, s, m, n)| (c.clone(), p + 1, strand_symbol(*s).to_string(), *m, *n))
        .collect();
    v.sort();
    v
}

#[test]
fn bsseq_cov_matches_read_bismark() {
    let (rows, r) = read_all("bsseq/test_data.fastq_bismark.bismark.cov.gz", &opts(true));
    assert_eq!(r.format(), Format::BismarkCov);
    assert_eq!(rows.len(), 2013);
    assert_sorted(&rows);
    // Chromosomes in file order (not sorted), including a name with `|`.
    assert_eq!(r.contig_name(0), "chr1");
    assert_eq!(r.contig_name(2), "chr11");
    assert!(
        r.contigs()
            .iter()
            .any(|c| c == "gi|215104|gb|J02459.1|LAMCG")
    );
    let expected =
        bsseq_expected("bsseq/expected/read.bismark_cov_rmZeroCov-F_strandCollapse-F.tsv");
    assert_eq!(as_bsseq(&rows), expected);
}

#[test]
fn bsseq_cytosine_report_matches_read_bismark_both_collapse_settings() {
    let f = "bsseq/test_data.cytosineReport.gz";
    let (rows, r) = read_all(f, &opts(false));
    assert_eq!(r.format(), Format::BismarkCpgReport);
    assert_eq!(rows.len(), 100);
    assert_sorted(&rows);
    assert_eq!(
        as_bsseq(&rows),
        bsseq_expected(
            "bsseq/expected/read.bismark_cytosineReport_rmZeroCov-F_strandCollapse-F.tsv"
        )
    );
    let (rows, _) = read_all(f, &opts(true));
    assert_eq!(rows.len(), 50);
    assert_sorted(&rows);
    assert_eq!(
        as_bsseq(&rows),
        bsseq_expected(
            "bsseq/expected/read.bismark_cytosineReport_rmZeroCov-F_strandCollapse-T.tsv"
        )
    );
    // rmZeroCov = TRUE is the covered subset.
    let covered: Vec<Row> = rows.into_iter().filter(|r| r.4 > 0).collect();
    assert_eq!(
        as_bsseq(&covered),
        bsseq_expected(
            "bsseq/expected/read.bismark_cytosineReport_rmZeroCov-T_strandCollapse-T.tsv"
        )
    );
}

#[test]
fn methylkit_cx_report_keeps_only_cg() {
    let f = "methylkit/bismark_cytosineReport.txt";
    let t = text(f);
    let cg: Vec<&str> = t
        .lines()
        .filter(|l| l.split('\t').nth(5) == Some("CG"))
        .collect();
    let (rows, r) = read_all(f, &opts(false));
    assert_eq!(rows.len(), cg.len());
    assert_eq!(
        r.skipped().non_cg_context,
        (t.lines().count() - cg.len()) as u64
    );
    for (row, line) in rows.iter().zip(&cg) {
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(row.1 + 1, f[1].parse::<u64>().unwrap());
        assert_eq!(row.3, f[3].parse::<u32>().unwrap());
        assert_eq!(
            row.4,
            f[3].parse::<u32>().unwrap() + f[4].parse::<u32>().unwrap()
        );
    }
}

#[test]
fn dss_cond1_1() {
    let (rows, r) = read_all("dss/cond1_1.txt", &opts(true));
    assert_eq!(r.format(), Format::Dss);
    assert_eq!(rows.len(), 20000);
    assert_eq!(r.skipped().header_lines, 1);
    assert_sorted(&rows);
    // File: `chr18 3014904 26 2` first, `chr18 84261668 35 0` last (1-based, N, X).
    assert_eq!(rows[0], ("chr18".into(), 3014903, Strand::Unknown, 2, 26));
    assert_eq!(rows[1], ("chr18".into(), 3031031, Strand::Unknown, 12, 33));
    assert_eq!(
        rows[19998],
        ("chr18".into(), 84261665, Strand::Unknown, 1, 35)
    );
    assert_eq!(
        rows[19999],
        ("chr18".into(), 84261667, Strand::Unknown, 0, 35)
    );
    // Totals against an independent parse of the text.
    let t = text("dss/cond1_1.txt");
    let (mut sn, mut sx) = (0u64, 0u64);
    for l in t.lines().skip(1) {
        let f: Vec<&str> = l.split('\t').collect();
        sn += f[2].parse::<u64>().unwrap();
        sx += f[3].parse::<u64>().unwrap();
    }
    assert_eq!(rows.iter().map(|r| u64::from(r.4)).sum::<u64>(), sn);
    assert_eq!(rows.iter().map(|r| u64::from(r.3)).sum::<u64>(), sx);
}

/// Hand-parses a modkit bedMethyl file: rows with `code` as `(chrom, start, strand, N_mod, N_valid)`,
/// first motif per (chrom, start, strand).
fn modkit_by_hand(rel: &str, code: &str) -> Vec<Row> {
    let t = text(rel);
    let mut out: Vec<Row> = Vec::new();
    for l in t.lines() {
        if l.starts_with("chrom") || l.starts_with("track") || l.starts_with('#') {
            continue;
        }
        let tabs: Vec<&str> = l.split('\t').collect();
        let mut f: Vec<&str> = tabs[..9].to_vec();
        for t in &tabs[9..] {
            f.extend(t.split(' '));
        }
        assert_eq!(f.len(), 18, "{l}");
        if f[3].split(',').next() != Some(code) {
            continue;
        }
        let strand = match f[5] {
            "+" => Strand::Forward,
            "-" => Strand::Reverse,
            _ => Strand::Unknown,
        };
        let row = (
            f[0].to_string(),
            f[1].parse().unwrap(),
            strand,
            f[11].parse().unwrap(),
            f[9].parse().unwrap(),
        );
        if !out
            .iter()
            .any(|r| r.0 == row.0 && r.1 == row.1 && r.2 == row.2)
        {
            out.push(row);
        }
    }
    out
}

#[test]
fn every_modkit_pileup_parses_and_matches_a_hand_parse() {
    let files = [
        ("modkit/modbam.modpileup_nofilt.methyl.bed", "m"),
        ("modkit/modbam.modpileup_nofilt.methyl.bed", "h"),
        ("modkit/pileup_with_header.bed", "m"),
        ("modkit/modbam.modpileup_combined.methyl.bed", "C"),
        ("modkit/modbam.modpileup_filt025.methyl.bed", "m"),
        ("modkit/modbam.modpileup_filt_positions_025.methyl.bed", "h"),
        (
            "modkit/modbam.modpileup_filt_positions_025_traditional.methyl.bed",
            "m",
        ),
        (
            "modkit/modbam.modpileup_nofilt_oligo_1512_adapters_10_50.bed",
            "m",
        ),
        ("modkit/bc_anchored_10_reads_nofilt_cg_motif.bed", "m"),
        (
            "modkit/bc_anchored_10_reads_nofilt_cg_motif_strand_combine.bed",
            "h",
        ),
        ("modkit/bc_anchored_10_reads_edge_filter50.bed", "m"),
        ("modkit/bc_anchored_10_reads_edge_filter50-0.bed", "h"),
        ("modkit/cgcg2_cg0_test1.bed", "m"),
        ("modkit/cgcg2_cg0_test2.bed", "m"),
        ("modkit/cgcg2_cg0_test2.bed", "a"),
        ("modkit/cgcg2_cg0_test1_combine_strands.bed", "m"),
        ("modkit/cgcg2_cg0_test2_combine_strands.bed", "a"),
        ("modkit/duplex_modbam_pileup_nofilt.bed", "m"),
        ("modkit/pileup-old-tags-regressiontest.methyl.bed", "m"),
    ];
    for (f, code) in files {
        let (rows, r) = read_all(f, &modkit_opts(code, false));
        assert_eq!(r.format(), Format::BedMethyl, "{f}");
        assert_eq!(r.bed_layout(), Some(BedLayout::Modkit), "{f}");
        assert_sorted(&rows);
        let mut expected = modkit_by_hand(f, code);
        // The reader orders sites by (pos, strand) within a contig; the file is in that order.
        let mut got = rows.clone();
        got.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
        expected.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
        assert!(!expected.is_empty(), "{f} {code}");
        assert_eq!(got, expected, "{f} code {code}");
    }
    // The header line is skipped and counted.
    let (_, r) = read_all("modkit/pileup_with_header.bed", &modkit_opts("m", false));
    assert_eq!(r.skipped().header_lines, 1);
    assert!(r.skipped().other_mod_code > 0);
    // Repeated motif rows are skipped.
    let (_, r) = read_all("modkit/cgcg2_cg0_test1.bed", &modkit_opts("m", false));
    assert_eq!(r.skipped().repeated_motif_rows, 2);
}

/// Our strand merge of a CpG pileup equals modkit's own `--combine-strands` output.
#[test]
fn modkit_strand_merge_equals_modkit_combine_strands() {
    for (stranded, combined, code) in [
        (
            "modkit/bc_anchored_10_reads_nofilt_cg_motif.bed",
            "modkit/bc_anchored_10_reads_nofilt_cg_motif_strand_combine.bed",
            "m",
        ),
        (
            "modkit/bc_anchored_10_reads_nofilt_cg_motif.bed",
            "modkit/bc_anchored_10_reads_nofilt_cg_motif_strand_combine.bed",
            "h",
        ),
        (
            "modkit/cgcg2_cg0_test1.bed",
            "modkit/cgcg2_cg0_test1_combine_strands.bed",
            "m",
        ),
        (
            "modkit/cgcg2_cg0_test2.bed",
            "modkit/cgcg2_cg0_test2_combine_strands.bed",
            "m",
        ),
    ] {
        let (rows, _) = read_all(stranded, &modkit_opts(code, true));
        assert_sorted(&rows);
        // modkit's combined file: `.` strand, first motif (CG,0) per position.
        let expected = modkit_by_hand(combined, code);
        assert_eq!(rows, expected, "{stranded} code {code}");
    }
}

#[test]
fn non_cpg_modkit_pileup_cannot_be_strand_merged() {
    // `--combine-mods` pileup without `--cpg`: + and − calls at the same position.
    let p = data("modkit/modbam.modpileup_combined.methyl.bed");
    let mut r = SampleReader::open(&p, &modkit_opts("C", true)).unwrap();
    let err = loop {
        match r.next_site() {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("must fail"),
            Err(e) => break e,
        }
    };
    assert!(
        matches!(err.kind, ErrorKind::StrandConflict { .. }),
        "{err}"
    );
    assert_eq!(err.line, 5, "{err}");
}

#[test]
fn lung_files_reproduce_modkit_dmr_region_counts() {
    // Regions: space-separated, names with a space (`CpG: 47`).
    let regions: Vec<(String, u64, u64)> = text("modkit/cpg_chr20_with_orig_names_selection.bed")
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            (
                f[0].to_string(),
                f[1].parse().unwrap(),
                f[2].parse().unwrap(),
            )
        })
        .collect();
    assert_eq!(regions.len(), 6);
    // Expected: columns 7/8 (A) and 9/10 (B) of modkit's dmr output, `C:57` and `1777`.
    let expected: Vec<[u64; 4]> = text("modkit/test_output_chr20-2.bed")
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let k = |s: &str| s.strip_prefix("C:").unwrap().parse::<u64>().unwrap();
            [
                k(f[6]),
                f[7].parse().unwrap(),
                k(f[8]),
                f[9].parse().unwrap(),
            ]
        })
        .collect();
    let files = [
        "modkit/lung_00733-m_adjacent-normal_5mc-5hmc_chr20_cpg_pileup.bed.gz",
        "modkit/lung_00733-m_primary-tumour_5mc-5hmc_chr20_cpg_pileup.bed.gz",
    ];
    let mut sums = vec![[0u64; 4]; regions.len()];
    for (k, f) in files.iter().enumerate() {
        let (rows, r) = read_all(f, &modkit_opts("C", false));
        assert_eq!(r.bed_layout(), Some(BedLayout::Modkit));
        assert_eq!(rows.len(), [17416, 17301][k]);
        assert_sorted(&rows);
        for (i, (c, s, e)) in regions.iter().enumerate() {
            for row in rows.iter().filter(|x| &x.0 == c && x.1 >= *s && x.1 < *e) {
                sums[i][2 * k] += u64::from(row.3);
                sums[i][2 * k + 1] += u64::from(row.4);
            }
        }
        // Merged strands keep the totals and give CpG-level sites.
        let (merged, _) = read_all(f, &modkit_opts("C", true));
        assert_sorted(&merged);
        assert!(merged.len() < rows.len());
        let tot = |v: &[Row]| {
            v.iter().fold((0u64, 0u64), |a, r| {
                (a.0 + u64::from(r.3), a.1 + u64::from(r.4))
            })
        };
        assert_eq!(tot(&merged), tot(&rows));
    }
    assert_eq!(sums, expected);
    // Multithreaded BGZF decoding gives the same stream.
    let p = data(files[0]);
    let o = modkit_opts("C", false);
    let mut r =
        SampleReader::from_reader(&p, methvb_io::input::open_with_threads(&p, 2).unwrap(), &o)
            .unwrap();
    let mut n = 0;
    while r.next_site().unwrap().is_some() {
        n += 1;
    }
    assert_eq!(n, 17416);
    assert_eq!(expected[0], [57, 1777, 601, 2091]);
}

#[test]
fn lung_file_with_default_code_is_no_mod_code() {
    let p = data("modkit/lung_00733-m_primary-tumour_5mc-5hmc_chr20_cpg_pileup.bed.gz");
    let mut r = SampleReader::open(&p, &ReaderOptions::default()).unwrap();
    let err = r.next_site().unwrap_err();
    match &err.kind {
        ErrorKind::NoModCode { wanted, present } => {
            assert_eq!(wanted, "m");
            assert_eq!(present, "C");
        }
        k => panic!("{k}"),
    }
    assert!(err.to_string().contains("lung_00733-m_primary-tumour"));
}

#[test]
fn encode_bedmethyl() {
    let f = "encode/encode_cpg_10e5.bed.gz";
    let (rows, r) = read_all(f, &opts(false));
    assert_eq!(r.format(), Format::BedMethyl);
    assert_eq!(r.bed_layout(), Some(BedLayout::Encode));
    assert_eq!(rows.len(), 99_999);
    assert_eq!(r.skipped().header_lines, 1);
    assert_sorted(&rows);
    // `chr1 10468 10469 ... + ... 1 100` and the last line `chr1 3732733 ... + ... 1 0`.
    assert_eq!(rows[0], ("chr1".into(), 10468, Strand::Forward, 1, 1));
    assert_eq!(
        rows[99_998],
        ("chr1".into(), 3732733, Strand::Forward, 0, 1)
    );
    assert_eq!(
        rows[99_997],
        ("chr1".into(), 3732731, Strand::Reverse, 1, 1)
    );
    // m = round(coverage * percent / 100), checked against an independent parse.
    let t = text(f);
    let mut by_pos = BTreeMap::new();
    for l in t.lines().skip(1) {
        let c: Vec<&str> = l.split('\t').collect();
        let n: u64 = c[9].parse().unwrap();
        let pct: u64 = c[10].parse().unwrap();
        by_pos.insert(
            (c[1].parse::<u64>().unwrap(), c[5] == "+"),
            (n, (n * pct + 50) / 100),
        );
    }
    for row in &rows {
        let (n, m) = by_pos[&(row.1, row.2 == Strand::Forward)];
        assert_eq!((u64::from(row.3), u64::from(row.4)), (m, n), "{row:?}");
    }
    // Strand merging works on this CpG-only file and keeps the totals.
    let (merged, _) = read_all(f, &opts(true));
    assert_sorted(&merged);
    assert!(merged.len() < rows.len() && merged.len() >= rows.len() / 2);
    let sum = |v: &[Row]| v.iter().map(|r| u64::from(r.4)).sum::<u64>();
    assert_eq!(sum(&merged), sum(&rows));
}

#[test]
fn bismark_cov_files_and_zero_based_variant_agree() {
    for cell in ["default", "cutoff3", "cx", "zero"] {
        let (rows, r) = read_all(
            &format!("bismark/bedgraph_fixtures/expected/{cell}/cov"),
            &opts(true),
        );
        assert_eq!(r.format(), Format::BismarkCov);
        assert!(!rows.is_empty());
        assert_eq!(r.contig_name(0), "MT");
        assert_sorted(&rows);
    }
    let (one, _) = read_all("bismark/bedgraph_fixtures/expected/zero/cov", &opts(true));
    let (zero, r) = read_all("bismark/bedgraph_fixtures/expected/zero/zero", &opts(true));
    assert_eq!(r.format(), Format::BismarkCov);
    assert_eq!(one, zero);
    assert_eq!(one[0], ("MT".into(), 49, Strand::Unknown, 1, 3));
    for f in [
        "bismark/expected/tiny_pe_bismark.no_overlap.bismark.cov",
        "bismark/expected/tiny_pe_bismark.include_overlap.bismark.cov",
        "methylkit/bismark_coverage_CpG.bed",
    ] {
        let (rows, _) = read_all(f, &opts(true));
        assert_eq!(rows.len(), text(f).lines().count(), "{f}");
    }
}

#[test]
fn truncated_real_files_are_compression_errors() {
    let dir = tempfile::tempdir().unwrap();
    for (src, name) in [
        ("encode/encode_cpg_10e5.bed.gz", "cut_gzip.bed.gz"),
        (
            "modkit/lung_00733-m_adjacent-normal_5mc-5hmc_chr20_cpg_pileup.bed.gz",
            "cut_bgzf.bed.gz",
        ),
    ] {
        let bytes = std::fs::read(data(src)).unwrap();
        let p = dir.path().join(name);
        std::fs::write(&p, &bytes[..bytes.len() * 2 / 3]).unwrap();
        let o = modkit_opts("C", false);
        let err = match SampleReader::open(&p, &o) {
            Err(e) => e,
            Ok(mut r) => loop {
                match r.next_site() {
                    Ok(Some(_)) => continue,
                    Ok(None) => panic!("{name}: truncation went unnoticed"),
                    Err(e) => break e,
                }
            },
        };
        assert!(
            matches!(err.kind, ErrorKind::Compression(_)),
            "{name}: {err}"
        );
        assert!(err.to_string().contains(name), "{err}");
        eprintln!("{err}");
        if name.starts_with("cut_gzip") {
            // Found while streaming: the line being read is named.
            assert!(err.line > 60_000, "{err}");
        } else {
            // BGZF: the missing end-of-file block is seen when the file is opened.
            assert_eq!(err.line, 0, "{err}");
        }
    }
}
