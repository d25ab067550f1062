//! Bismark `XM` BAM/SAM inputs against Bismark's extractor `.cov` and methylKit's table.

use std::collections::BTreeMap;
use std::path::PathBuf;

use methvb_bam::{BamOptions, FilterChoice, PileupOptions, pileup_file};

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

/// (contig, 1-based pos) -> (methylated, unmethylated)
type Cov = BTreeMap<(String, u64), (u32, u32)>;

fn run(rel: &str, pileup: PileupOptions) -> Cov {
    let opts = BamOptions {
        pileup,
        filter: FilterChoice::NoFiltering,
        ..BamOptions::default()
    };
    let mut out = Cov::new();
    pileup_file(&data(rel), &opts, |row, contig| {
        assert_eq!(row.code.to_string(), "m");
        assert_eq!(row.n_valid, row.n_mod + row.n_canonical);
        assert_eq!(
            (
                row.n_other_mod,
                row.n_delete,
                row.n_fail,
                row.n_diff,
                row.n_nocall
            ),
            (0, 0, 0, 0, 0)
        );
        let prev = out.insert(
            (contig.to_string(), row.pos + 1),
            (row.n_mod, row.n_canonical),
        );
        assert!(prev.is_none(), "two rows at {contig}:{}", row.pos);
        Ok(())
    })
    .unwrap();
    out
}

fn read_cov(rel: &str) -> Cov {
    std::fs::read_to_string(data(rel))
        .unwrap()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (
                (f[0].to_string(), f[1].parse().unwrap()),
                (f[4].parse().unwrap(), f[5].parse().unwrap()),
            )
        })
        .collect()
}

fn diff(got: &Cov, want: &Cov) -> Vec<String> {
    let mut d = Vec::new();
    for k in got
        .keys()
        .chain(want.keys())
        .collect::<std::collections::BTreeSet<_>>()
    {
        if got.get(k) != want.get(k) {
            d.push(format!(
                "{}:{} got {:?} want {:?}",
                k.0,
                k.1,
                got.get(k),
                want.get(k)
            ));
        }
    }
    d
}

/// The 203rd record of tiny_pe_bismark.bam is a read 1 whose mate was cut off; Bismark's `-p`
/// mode silently drops it (PROVENANCE.md) while we count it. Its calls, derived here
/// independently with noodles (XM `z`/`Z` walked along the CIGAR), are added to Bismark's
/// expectation before comparing.
fn with_orphan(mut want: Cov) -> Cov {
    use noodles::bam;
    use noodles::sam::alignment::record::cigar::op::Kind;
    use noodles::sam::alignment::record::data::field::{Tag, Value};
    let mut reader =
        bam::io::Reader::new(std::fs::File::open(data("bismark/tiny_pe_bismark.bam")).unwrap());
    let header = reader.read_header().unwrap();
    let last = reader.records().map(Result::unwrap).last().unwrap();
    assert!(last.flags().is_first_segment());
    let contig = String::from_utf8(
        header
            .reference_sequences()
            .get_index(0)
            .unwrap()
            .0
            .to_vec(),
    )
    .unwrap();
    let Some(Ok(Value::String(xm))) = last.data().get(&Tag::new(b'X', b'M')) else {
        panic!("no XM")
    };
    let mut r = usize::from(last.alignment_start().unwrap().unwrap()) as u64;
    let mut q = 0usize;
    for op in last.cigar().iter() {
        let op = op.unwrap();
        match op.kind() {
            Kind::Match => {
                for k in 0..op.len() {
                    let c = xm[q + k];
                    if c == b'z' || c == b'Z' {
                        let e = want.entry((contig.clone(), r + k as u64)).or_insert((0, 0));
                        if c == b'Z' { e.0 += 1 } else { e.1 += 1 }
                    }
                }
                r += op.len() as u64;
                q += op.len();
            }
            Kind::Deletion => r += op.len() as u64,
            Kind::Insertion | Kind::SoftClip => q += op.len(),
            _ => {}
        }
    }
    want
}

#[test]
fn tiny_pe_no_overlap_matches_bismark() {
    let got = run("bismark/tiny_pe_bismark.bam", PileupOptions::default());
    let want = read_cov("bismark/expected/tiny_pe_bismark.no_overlap.bismark.cov");
    assert_eq!(want.len(), 1362);
    let d = diff(&got, &with_orphan(want));
    assert!(d.is_empty(), "{} diffs:\n{}", d.len(), d.join("\n"));
}

#[test]
fn tiny_pe_include_overlap_matches_bismark() {
    let got = run(
        "bismark/tiny_pe_bismark.bam",
        PileupOptions {
            no_overlap: false,
            ..PileupOptions::default()
        },
    );
    let want = read_cov("bismark/expected/tiny_pe_bismark.include_overlap.bismark.cov");
    assert_eq!(want.len(), 1369);
    let d = diff(&got, &with_orphan(want));
    assert!(d.is_empty(), "{} diffs:\n{}", d.len(), d.join("\n"));
}

#[test]
fn single_end_strand_from_xg() {
    let got = run(
        "methylkit/test.bismark_single_end.sorted.bam",
        PileupOptions::default(),
    );
    let want =
        read_cov("methylkit/expected_bismark_extractor/test.bismark_single_end.sorted.bismark.cov");
    let d = diff(&got, &want);
    assert!(d.is_empty(), "{} diffs:\n{}", d.len(), d.join("\n"));
}

#[test]
fn reduced_sam_without_quality_filter_matches_bismark_se_mode() {
    let got = run(
        "methylkit/reduced.sam",
        PileupOptions {
            no_overlap: false,
            ..PileupOptions::default()
        },
    );
    let want = read_cov("methylkit/expected_bismark_extractor/reduced.se_mode.bismark.cov");
    let d = diff(&got, &want);
    assert!(d.is_empty(), "{} diffs:\n{}", d.len(), d.join("\n"));
}

#[test]
fn reduced_sam_with_quality_filter_matches_methylkit() {
    let got = run(
        "methylkit/reduced.sam",
        PileupOptions {
            no_overlap: false,
            min_base_qual: 20,
            ..PileupOptions::default()
        },
    );
    let text = std::fs::read_to_string(data("methylkit/methylkit.1.20.0.csv")).unwrap();
    let mut want = Cov::new();
    for l in text.lines().skip(1) {
        let f: Vec<&str> = l.split(',').collect();
        let cov: u32 = f[4].parse().unwrap();
        let cs: u32 = f[5].parse().unwrap();
        let ts: u32 = f[6].parse().unwrap();
        assert_eq!(cov, cs + ts);
        want.insert(
            (f[0].trim_matches('"').to_string(), f[1].parse().unwrap()),
            (cs, ts),
        );
    }
    let d = diff(&got, &want);
    assert!(d.is_empty(), "{} diffs:\n{}", d.len(), d.join("\n"));
}
