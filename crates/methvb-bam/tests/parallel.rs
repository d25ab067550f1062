//! The indexed parallel pileup equals the sequential single pass (rows and record counts), with
//! small regions so that reads cross region boundaries.

use std::path::PathBuf;

use methvb_bam::{
    BamOptions, CpgFilter, FilterChoice, PileupOptions, PileupRow, pileup_file, pileup_file_indexed,
};

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

fn both(bam: &str, opts: &BamOptions, chunk: u64) -> (Vec<PileupRow>, Vec<PileupRow>) {
    let path = data(bam);
    let mut seq = Vec::new();
    let s1 = pileup_file(&path, opts, |r, _| {
        seq.push(*r);
        Ok(())
    })
    .unwrap();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    let mut par = Vec::new();
    let s2 = pool
        .install(|| {
            pileup_file_indexed(&path, opts, chunk, |r, _| {
                par.push(*r);
                Ok(())
            })
        })
        .unwrap();
    assert_eq!(s1.records, s2.records, "records");
    assert_eq!(s1.calls, s2.calls, "calls");
    assert_eq!(s1.skipped, s2.skipped, "skips");
    assert_eq!(s1.rows, s2.rows, "rows");
    (seq, par)
}

fn nofilt(pileup: PileupOptions) -> BamOptions {
    BamOptions {
        pileup,
        filter: FilterChoice::NoFiltering,
        ..BamOptions::default()
    }
}

#[test]
fn duplex_parallel_equals_sequential() {
    let (a, b) = both(
        "modkit/duplex_modbam.sorted.bam",
        &nofilt(PileupOptions::default()),
        20_000,
    );
    assert_eq!(a.len(), 2274);
    assert_eq!(a, b);
}

#[test]
fn pacbio_parallel_equals_sequential_with_read_cpg_and_combining() {
    let o = nofilt(PileupOptions {
        cpg: CpgFilter::Read,
        combine_strands: true,
        ..PileupOptions::default()
    });
    let (a, b) = both("modkit/HG002_small.ch20._other.sorted.bam", &o, 20_000);
    assert!(a.len() > 100);
    assert_eq!(a, b);
}

#[test]
fn reference_cpg_combined_parallel_equals_sequential() {
    let o = nofilt(PileupOptions {
        cpg: CpgFilter::Reference(data("modkit/CGI_ladder_3.6kb_ref.fa")),
        combine_strands: true,
        ..PileupOptions::default()
    });
    let (a, b) = both("modkit/bc_anchored_10_reads.sorted.bam", &o, 1_000);
    assert_eq!(a.len(), 22);
    assert_eq!(a, b);
}

/// `pileup_region` gives exactly the rows of the whole-file pileup inside the region, and a
/// missing index is an error that names the files looked for.
#[test]
fn region_query_equals_the_whole_pileup_cut_to_the_region() {
    let path = data("modkit/duplex_modbam.sorted.bam");
    let opts = nofilt(PileupOptions::default());
    let mut all = Vec::new();
    let mut contig_of = Vec::new();
    pileup_file(&path, &opts, |r, c| {
        all.push(*r);
        contig_of.push(c.to_string());
        Ok(())
    })
    .unwrap();
    let contig = contig_of[all.len() / 2].clone();
    let on_contig: Vec<u64> = all
        .iter()
        .zip(&contig_of)
        .filter(|(_, c)| **c == contig)
        .map(|(r, _)| r.pos)
        .collect();
    let (lo, hi) = (
        on_contig[on_contig.len() / 4],
        on_contig[3 * on_contig.len() / 4],
    );
    // 1-based inclusive [lo + 1, hi + 1] = 0-based [lo, hi].
    let region = format!("{contig}:{}-{}", lo + 1, hi + 1);
    let expected: Vec<PileupRow> = all
        .iter()
        .zip(&contig_of)
        .filter(|(r, c)| **c == contig && r.pos >= lo && r.pos <= hi)
        .map(|(r, _)| *r)
        .collect();
    assert!(expected.len() > 10, "{region}: {} rows", expected.len());
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    let mut got = Vec::new();
    pool.install(|| {
        methvb_bam::pileup_region(&path, &opts, &region, 1_000, |r, _| {
            got.push(*r);
            Ok(())
        })
    })
    .unwrap();
    assert_eq!(got, expected, "{region}");

    // The same BAM without its index beside it.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("no_index.bam");
    std::fs::copy(&path, &copy).unwrap();
    let err = methvb_bam::pileup_region(&copy, &opts, &region, 1_000, |_, _| Ok(()))
        .unwrap_err()
        .to_string();
    for name in ["no_index.bam.bai", "no_index.bam.csi", "no_index.bai"] {
        assert!(err.contains(name), "{err}");
    }
    assert!(err.contains("samtools index"), "{err}");
}
