//! Records that cannot be used are skipped and counted by reason; records without usable tags
//! still count as no-calls (modkit semantics). Hand-written SAM records on a toy contig.

use std::io::Write;

use methvb_bam::{BamOptions, FilterChoice, PileupOptions, PileupRow, SkipReason, pileup_file};

const SEQ: &str = "ACGTACGTACGTACGTACGT"; // C at 1,5,9,13,17
const QUAL: &str = "IIIIIIIIIIIIIIIIIIII";

fn rec(name: &str, flag: u16, mapq: u8, cigar: &str, seq: &str, tags: &str) -> String {
    let qual = &QUAL[..seq.len()];
    format!("{name}\t{flag}\tc1\t1\t{mapq}\t{cigar}\t*\t0\t0\t{seq}\t{qual}\t{tags}\n")
}

fn run(records: &[String], pileup: PileupOptions) -> (Vec<PileupRow>, methvb_bam::PileupStats) {
    let mut f = tempfile::Builder::new().suffix(".sam").tempfile().unwrap();
    write!(f, "@HD\tVN:1.6\tSO:coordinate\n@SQ\tSN:c1\tLN:100\n").unwrap();
    for r in records {
        f.write_all(r.as_bytes()).unwrap();
    }
    f.flush().unwrap();
    let opts = BamOptions {
        pileup,
        filter: FilterChoice::NoFiltering,
        ..BamOptions::default()
    };
    let mut rows = Vec::new();
    let stats = pileup_file(f.path(), &opts, |r, _| {
        rows.push(*r);
        Ok(())
    })
    .unwrap();
    (rows, stats)
}

#[test]
fn skip_reasons_are_counted() {
    let good = "MM:Z:C+m?,0,0,0,0,0;\tML:B:C,250,250,10,10,250";
    let recs = vec![
        rec("ok", 0, 60, "20M", SEQ, good),
        rec(
            "ml_short",
            0,
            60,
            "20M",
            SEQ,
            "MM:Z:C+m?,0,0,0,0,0;\tML:B:C,250,250",
        ),
        rec("mn_bad", 0, 60, "20M", SEQ, &format!("{good}\tMN:i:21")),
        rec("oob", 0, 60, "20M", SEQ, "MM:Z:C+m?,5;\tML:B:C,250"),
        rec("no_ml", 0, 60, "20M", SEQ, "MM:Z:C+m?,0;"),
        rec("bad_mm", 0, 60, "20M", SEQ, "MM:Z:C*m?,0;\tML:B:C,250"),
        rec("no_tags", 0, 60, "20M", SEQ, "NM:i:0"),
        rec("hard", 0, 60, "2H20M", SEQ, good),
        rec("secondary", 256, 60, "20M", SEQ, good),
        rec("supp", 2048, 60, "20M", SEQ, good),
        rec("dup", 1024, 60, "20M", SEQ, good),
        rec("qcfail", 512, 60, "20M", SEQ, good),
        rec("lowq", 0, 3, "20M", SEQ, good),
    ];
    let (rows, stats) = run(
        &recs,
        PileupOptions {
            min_mapq: 10,
            ..PileupOptions::default()
        },
    );
    let s = &stats.skipped;
    for (reason, n) in [
        (SkipReason::MlLengthMismatch, 1),
        (SkipReason::MnMismatch, 1),
        (SkipReason::MmOutOfBounds, 1),
        (SkipReason::MissingMl, 1),
        (SkipReason::MalformedMm, 1),
        (SkipReason::NoModTags, 1),
        (SkipReason::HardClippedWithoutMn, 1),
        (SkipReason::Secondary, 1),
        (SkipReason::Supplementary, 1),
        (SkipReason::Duplicate, 1),
        (SkipReason::QcFail, 1),
        (SkipReason::LowMapq, 1),
    ] {
        assert_eq!(s.get(reason), n, "{reason:?}: {}", s.summary());
    }
    assert_eq!(stats.records, 13);
    assert_eq!(stats.records_with_calls, 1);
    // Only "ok" gives calls: m at 1, 5, 17, canonical at 9, 13 (ML 10 -> p = 0.041).
    // The 7 tag-less/broken records that passed the flag filters are no-calls at every C.
    let m: Vec<(u64, u32, u32, u32)> = rows
        .iter()
        .map(|r| (r.pos, r.n_mod, r.n_canonical, r.n_nocall))
        .collect();
    assert_eq!(
        m,
        vec![
            (1, 1, 0, 7),
            (5, 1, 0, 7),
            (9, 0, 1, 7),
            (13, 0, 1, 7),
            (17, 1, 0, 7)
        ]
    );
}

#[test]
fn implicit_mode_and_reverse_reads() {
    // Implicit: unlisted Cs canonical. Reverse read: SEQ stored on the reference strand; the
    // original read is the reverse complement, its Cs are the reference Gs (rows on '-').
    let recs = vec![
        rec("imp", 0, 60, "20M", SEQ, "MM:Z:C+m.,1;\tML:B:C,255"),
        rec("rev", 16, 60, "20M", SEQ, "MM:Z:C+m?,0;\tML:B:C,255"),
    ];
    let (rows, _) = run(&recs, PileupOptions::default());
    let plus: Vec<(u64, u32, u32)> = rows
        .iter()
        .filter(|r| r.strand == methvb_bam::RowStrand::Plus)
        .map(|r| (r.pos, r.n_mod, r.n_canonical))
        .collect();
    assert_eq!(
        plus,
        vec![(1, 0, 1), (5, 1, 0), (9, 0, 1), (13, 0, 1), (17, 0, 1)]
    );
    // Original read of "rev" = revcomp(SEQ) = ACGTACGT...; its first C is the complement of the
    // last G of SEQ (G at 18, 14, 10, 6, 2), i.e. reference position 18 on '-'.
    let minus: Vec<(u64, u32, u32, u32)> = rows
        .iter()
        .filter(|r| r.strand == methvb_bam::RowStrand::Minus)
        .map(|r| (r.pos, r.n_mod, r.n_canonical, r.n_nocall))
        .collect();
    assert_eq!(minus, vec![(18, 1, 0, 0)]);
}

#[test]
fn deletions_and_insertions_shift_positions() {
    // 4M2D4M4I8M: read bases 0-3 -> ref 0-3, deletion at ref 4-5, bases 4-7 -> ref 6-9,
    // bases 8-11 inserted, bases 12-19 -> ref 10-17.
    let recs = vec![
        rec(
            "indel",
            0,
            60,
            "4M2D4M4I8M",
            SEQ,
            "MM:Z:C+m?,0,0,0,0,0;\tML:B:C,255,255,255,255,255",
        ),
        rec(
            "plain",
            0,
            60,
            "20M",
            SEQ,
            "MM:Z:C+m?,0,0,0,0,0;\tML:B:C,0,0,0,0,0",
        ),
    ];
    let (rows, _) = run(&recs, PileupOptions::default());
    let got: Vec<(u64, u32, u32, u32, u32)> = rows
        .iter()
        .map(|r| (r.pos, r.n_mod, r.n_canonical, r.n_delete, r.n_diff))
        .collect();
    // indel read: C@1 -> ref 1 (m), C@5 -> ref 7, C@9 inserted (dropped), C@13 -> ref 11,
    // C@17 -> ref 15. plain read: canonical at 1, 5, 9, 13, 17.
    // At ref 5 the indel read has a deletion; at ref 9, 13, 17 it has a non-C base and at ref 7,
    // 11, 15 the plain read has one (T, A... of SEQ): n_diff 1 there.
    assert_eq!(
        got,
        vec![
            (1, 1, 1, 0, 0),
            (5, 0, 1, 1, 0),
            (7, 1, 0, 0, 1),
            (9, 0, 1, 0, 1),
            (11, 1, 0, 0, 1),
            (13, 0, 1, 0, 1),
            (15, 1, 0, 0, 1),
            (17, 0, 1, 0, 1),
        ]
    );
}

/// `run` without unwrapping: the pileup's result.
fn try_run(
    records: &[String],
    pileup: PileupOptions,
) -> Result<methvb_bam::PileupStats, methvb_io::ReadError> {
    let mut f = tempfile::Builder::new().suffix(".sam").tempfile().unwrap();
    write!(f, "@HD\tVN:1.6\tSO:coordinate\n@SQ\tSN:c1\tLN:100\n").unwrap();
    for r in records {
        f.write_all(r.as_bytes()).unwrap();
    }
    f.flush().unwrap();
    let opts = BamOptions {
        pileup,
        filter: FilterChoice::NoFiltering,
        ..BamOptions::default()
    };
    pileup_file(f.path(), &opts, |_, _| Ok(()))
}

/// Issue 7: with `BadModTags::Error` a malformed tag stops the pileup with the record named.
#[test]
fn strict_mode_names_the_record_with_malformed_tags() {
    let good = "MM:Z:C+m?,0,0,0,0,0;\tML:B:C,250,250,10,10,250";
    let strict = PileupOptions {
        bad_mod_tags: methvb_bam::BadModTags::Error,
        ..PileupOptions::default()
    };
    for (name, tags, words) in [
        (
            "ml_short",
            "MM:Z:C+m?,0,0,0,0,0;\tML:B:C,250,250",
            "ML has 2 values but MM lists 5 calls",
        ),
        ("bad_mm", "MM:Z:C*m?,0;\tML:B:C,250", "malformed MM tag"),
        ("oob", "MM:Z:C+m?,5;\tML:B:C,250", "runs past the end"),
        ("no_ml", "MM:Z:C+m?,0;", "MM tag without ML tag"),
    ] {
        let recs = vec![
            rec("ok", 0, 60, "20M", SEQ, good),
            rec(name, 0, 60, "20M", SEQ, tags),
        ];
        let err = try_run(&recs, strict.clone()).unwrap_err().to_string();
        assert!(
            err.contains(&format!("record 2 (read {name} at c1:1)")) && err.contains(words),
            "{name}: {err}"
        );
        assert!(err.contains(".sam: "), "the file is named: {err}");
        // The default (modkit's rule) skips and counts it.
        let stats = try_run(&recs, PileupOptions::default()).unwrap();
        assert_eq!(stats.skipped.total(), 1, "{name}");
    }
    // Records the SAM specification says to ignore are still skipped in strict mode.
    let recs = vec![
        rec("ok", 0, 60, "20M", SEQ, good),
        rec("mn_bad", 0, 60, "20M", SEQ, &format!("{good}\tMN:i:21")),
        rec("hard", 0, 60, "2H20M", SEQ, good),
    ];
    let stats = try_run(&recs, strict).unwrap();
    assert_eq!(stats.skipped.get(SkipReason::MnMismatch), 1);
    assert_eq!(stats.skipped.get(SkipReason::HardClippedWithoutMn), 1);
}

/// Issue 7: with `require_calls` a file without modification tags is an error, not an empty
/// result; a file whose records were all dropped by the flag filters is not.
#[test]
fn require_calls_rejects_a_file_without_modification_tags() {
    let require = PileupOptions {
        require_calls: true,
        ..PileupOptions::default()
    };
    let tagless = vec![
        rec("a", 0, 60, "20M", SEQ, "NM:i:0"),
        rec("b", 16, 60, "20M", SEQ, "NM:i:0"),
    ];
    let err = try_run(&tagless, require.clone()).unwrap_err().to_string();
    assert!(
        err.contains("none of the 2 records read carries usable MM/ML tags")
            && err.contains("no_mod_tags=2"),
        "{err}"
    );
    assert!(try_run(&tagless, PileupOptions::default()).is_ok());
    let secondary = vec![rec("s", 256, 60, "20M", SEQ, "NM:i:0")];
    assert!(try_run(&secondary, require.clone()).is_ok());
    assert!(try_run(&[], require).is_ok());
}
