//! `BamSampleReader` as a `SiteSource`, against the expected files (strand-combined CpG sites).

use std::collections::BTreeMap;
use std::path::PathBuf;

use methvb_bam::{BamOptions, BamSampleReader, CpgFilter, FilterChoice, PileupOptions};
use methvb_io::{SiteSource, Strand};

fn data(rel: &str) -> PathBuf {
    let p = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/data/"
    ))
    .join(rel);
    assert!(
        p.exists(),
        "test data missing: {} (see /work/shared/data/README.md)",
        p.display()
    );
    p
}

/// (contig, 0-based pos) -> (methylated, coverage), checking order and strand on the way.
fn collect(r: &mut BamSampleReader, merged: bool) -> BTreeMap<(String, u64), (u32, u32)> {
    let mut out = BTreeMap::new();
    let mut last: Option<(usize, u64)> = None;
    while let Some(s) = r.next_site().unwrap() {
        if let Some(l) = last {
            assert!((s.contig, s.pos) > l || !merged, "not increasing at {s:?}");
        }
        last = Some((s.contig, s.pos));
        if merged {
            assert_eq!(s.strand, Strand::Unknown);
        }
        assert!(s.methylated <= s.coverage);
        out.insert(
            (r.contig_name(s.contig).to_string(), s.pos),
            (s.methylated, s.coverage),
        );
    }
    out
}

#[test]
fn bismark_single_end_merged_cpgs_equal_cov_merged_by_hand() {
    let path = data("methylkit/test.bismark_single_end.sorted.bam");
    let mut r = BamSampleReader::open(&path, &BamOptions::default()).unwrap();
    let got = collect(&mut r, true);
    // Expected: the extractor .cov (1-based, per strand C), + C at p and - C at p+1 summed at p.
    let text = std::fs::read_to_string(data(
        "methylkit/expected_bismark_extractor/test.bismark_single_end.sorted.bismark.cov",
    ))
    .unwrap();
    let mut per_pos: BTreeMap<u64, (u32, u32)> = BTreeMap::new();
    for l in text.lines() {
        let f: Vec<&str> = l.split('\t').collect();
        let m: u32 = f[4].parse().unwrap();
        let u: u32 = f[5].parse().unwrap();
        per_pos.insert(f[1].parse::<u64>().unwrap() - 1, (m, m + u));
    }
    // Which strand each .cov position is comes from the reference, which we do not have; the
    // unmerged reader tells (its own strand column), and merging must then pair + p with - p+1.
    let mut un = BamSampleReader::open(
        &path,
        &BamOptions {
            pileup: PileupOptions {
                combine_strands: false,
                ..BamOptions::default().pileup
            },
            ..BamOptions::default()
        },
    )
    .unwrap();
    let mut want: BTreeMap<(String, u64), (u32, u32)> = BTreeMap::new();
    let mut n_unmerged = 0;
    while let Some(s) = un.next_site().unwrap() {
        n_unmerged += 1;
        assert_eq!(
            per_pos.get(&s.pos),
            Some(&(s.methylated, s.coverage)),
            "{s:?}"
        );
        let p = if s.strand == Strand::Reverse {
            s.pos - 1
        } else {
            s.pos
        };
        let e = want
            .entry((un.contig_name(s.contig).to_string(), p))
            .or_insert((0, 0));
        e.0 += s.methylated;
        e.1 += s.coverage;
    }
    assert_eq!(n_unmerged, per_pos.len());
    assert_eq!(n_unmerged, 38);
    assert_eq!(got, want);
    assert!(got.len() < 38);
}

#[test]
fn modkit_cpg_strand_combined_sites_equal_modkit_rows() {
    let opts = BamOptions {
        pileup: PileupOptions {
            cpg: CpgFilter::Reference(data("modkit/CGI_ladder_3.6kb_ref.fa")),
            combine_strands: true,
            ..PileupOptions::default()
        },
        filter: FilterChoice::NoFiltering,
        ..BamOptions::default()
    };
    let mut r =
        BamSampleReader::open(&data("modkit/bc_anchored_10_reads.sorted.bam"), &opts).unwrap();
    let got = collect(&mut r, true);
    let text = std::fs::read_to_string(data(
        "modkit/bc_anchored_10_reads_nofilt_cg_motif_strand_combine.bed",
    ))
    .unwrap();
    let mut want = BTreeMap::new();
    for l in text.lines() {
        let f: Vec<&str> = l.split(['\t', ' ']).collect();
        if f[3] == "m" {
            want.insert(
                (f[0].to_string(), f[1].parse().unwrap()),
                (f[11].parse().unwrap(), f[9].parse().unwrap()),
            );
        }
    }
    assert_eq!(want.len(), 11);
    assert_eq!(got, want);
    assert_eq!(r.stats().records, 10);
}

#[test]
fn any_mod_counts_h_as_methylated() {
    let opts = BamOptions {
        pileup: PileupOptions {
            cpg: CpgFilter::Any,
            combine_strands: false,
            ..PileupOptions::default()
        },
        filter: FilterChoice::NoFiltering,
        any_mod: true,
        ..BamOptions::default()
    };
    let mut r =
        BamSampleReader::open(&data("modkit/bc_anchored_10_reads.sorted.bam"), &opts).unwrap();
    let first = r.next_site().unwrap().unwrap();
    // modbam.modpileup_nofilt.methyl.bed line 2: 9 + m: N_valid 4, N_mod 1, N_other_mod 2.
    assert_eq!(
        (first.pos, first.strand, first.methylated, first.coverage),
        (9, Strand::Forward, 3, 4)
    );
}

#[test]
fn estimated_threshold_reproduces_modkit_filt025() {
    let opts = BamOptions {
        pileup: PileupOptions::default(),
        filter: FilterChoice::Estimate {
            reads: 10_042,
            percentile: 0.25,
        },
        ..BamOptions::default()
    };
    let mut got = Vec::new();
    let mut line = String::new();
    methvb_bam::pileup_file(
        &data("modkit/bc_anchored_10_reads.sorted.bam"),
        &opts,
        |row, c| {
            methvb_bam::bedmethyl::format_row(row, c, false, &mut line);
            got.push(line.clone());
            Ok(())
        },
    )
    .unwrap();
    let want: Vec<String> =
        std::fs::read_to_string(data("modkit/modbam.modpileup_filt025.methyl.bed"))
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
    assert_eq!(want.len(), 50);
    assert_eq!(got, want);
}

#[test]
fn missing_file_is_a_typed_error() {
    let err = BamSampleReader::open(
        std::path::Path::new("/nonexistent.bam"),
        &BamOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(err.kind, methvb_io::ErrorKind::Io(_)), "{err}");
}

/// `stop_after(n)`: the first n records only, their sites flushed, `truncated` set when records
/// were left and the no-calls rule not applied to the head; the header's contigs and the file
/// kind are known before any record is read.
#[test]
fn stop_after_reads_the_head_only() {
    let path = data("methylkit/test.bismark_single_end.sorted.bam");
    let opts = BamOptions {
        pileup: PileupOptions {
            require_calls: true,
            ..BamOptions::default().pileup
        },
        ..BamOptions::default()
    };
    let mut whole = BamSampleReader::open(&path, &opts).unwrap();
    assert!(whole.is_bam());
    assert!(whole.header_contigs().contains(&"GK000010.2".to_string()));
    let all = collect(&mut whole, true);
    let records = whole.stats().records;
    assert!(!whole.truncated() && records > 2);
    let mut head = BamSampleReader::open(&path, &opts).unwrap().stop_after(2);
    let some = collect(&mut head, true);
    assert!(head.truncated());
    assert_eq!(head.stats().records, 2);
    assert!(!some.is_empty() && some.len() < all.len());
    // Sites of the head are counted from its two records: never more than the whole file's.
    for (k, (m, n)) in &some {
        assert!(*n <= all[k].1 && *m <= all[k].0, "{k:?}");
    }
    // A limit beyond the file: read to its end, not truncated.
    let mut beyond = BamSampleReader::open(&path, &opts)
        .unwrap()
        .stop_after(records);
    assert_eq!(collect(&mut beyond, true), all);
    assert!(!beyond.truncated());
}
