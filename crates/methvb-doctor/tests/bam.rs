//! BAM/SAM samples in the doctor: hand-written SAM files (MM/ML tags on a toy sequence) next
//! to bedMethyl samples, read with the options `run` uses.

use std::path::{Path, PathBuf};

use methvb_bam::{BadModTags, BamOptions, CpgFilter, FilterChoice, PileupOptions};
use methvb_doctor::{CheckOptions, CheckReport, ContigCount, Severity, check};

/// C at 1, 5, 9, 13 and 17, each followed by G: five CpGs from the read start.
const SEQ: &str = "ACGTACGTACGTACGTACGT";
const QUAL: &str = "IIIIIIIIIIIIIIIIIIII";
/// Calls at the five Cs: modified, modified, canonical, canonical, modified.
const TAGS: &str = "MM:Z:C+m?,0,0,0,0,0;\tML:B:C,250,250,10,10,250";

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// A coordinate-sorted SAM with contigs `contigs` (100 bp each) and one record per
/// `(name, contig, 1-based pos, tags)`.
fn sam(dir: &Path, name: &str, contigs: &[&str], records: &[(&str, &str, u64, &str)]) -> PathBuf {
    let mut t = String::from("@HD\tVN:1.6\tSO:coordinate\n");
    for c in contigs {
        t += &format!("@SQ\tSN:{c}\tLN:100\n");
    }
    for (read, contig, pos, tags) in records {
        t += &format!("{read}\t0\t{contig}\t{pos}\t60\t20M\t*\t0\t0\t{SEQ}\t{QUAL}\t{tags}\n");
    }
    write(dir, name, &t)
}

/// Three reads on `c1` at 1 and two on `c2` at 11, with calls: sites at 1, 5, 9, 13, 17 of
/// `c1` (n = 3) and 11, 15, 19, 23, 27 of `c2` (n = 2).
fn good_sam(dir: &Path, name: &str, contigs: &[&str]) -> PathBuf {
    let (c1, c2) = (contigs[0], contigs[1]);
    sam(
        dir,
        name,
        contigs,
        &[
            ("r1", c1, 1, TAGS),
            ("r2", c1, 1, TAGS),
            ("r3", c1, 1, TAGS),
            ("r4", c2, 11, TAGS),
            ("r5", c2, 11, TAGS),
        ],
    )
}

/// A modkit bedMethyl with one `+` row (n = 4, m = 2) per `(contig, 0-based pos)`.
fn bedmethyl(dir: &Path, name: &str, sites: &[(&str, u64)]) -> PathBuf {
    let mut t = String::new();
    for (c, p) in sites {
        t += &format!(
            "{c}\t{p}\t{}\tm\t4\t+\t{p}\t{}\t255,0,0\t4\t50.00\t2\t2\t0\t0\t0\t0\t0\n",
            p + 1,
            p + 1
        );
    }
    write(dir, name, &t)
}

fn sheet(dir: &Path, rows: &[(&str, &str, &Path)]) -> PathBuf {
    let mut t = String::from("sample\tgroup\tpath\n");
    for (s, g, p) in rows {
        t += &format!("{s}\t{g}\t{}\n", p.display());
    }
    write(dir, "samples.tsv", &t)
}

/// The BAM options `methvb check` and `run` use by default, without the estimated threshold
/// (every call counted, so the counts are known).
fn options() -> CheckOptions {
    let defaults = BamOptions::default();
    CheckOptions {
        bam: BamOptions {
            filter: FilterChoice::NoFiltering,
            pileup: PileupOptions {
                require_calls: true,
                bad_mod_tags: BadModTags::Error,
                ..defaults.pileup.clone()
            },
            ..defaults
        },
        ..CheckOptions::default()
    }
}

fn codes(r: &CheckReport, sev: Severity) -> Vec<&'static str> {
    r.issues
        .iter()
        .filter(|i| i.severity == sev)
        .map(|i| i.code)
        .collect()
}

#[test]
fn a_good_sam_gives_its_header_contigs_and_coverage_summary() {
    let dir = tempfile::tempdir().unwrap();
    let reads = good_sam(dir.path(), "reads.sam", &["chr1", "chr2", "chr3"]);
    let bed = bedmethyl(dir.path(), "b.bed", &[("chr1", 1), ("chr2", 11)]);
    let sheet = sheet(dir.path(), &[("S", "x", &reads), ("B", "y", &bed)]);
    let r = check(&sheet, &options());
    assert_eq!(r.n_errors(), 0, "{:?}", r.issues);
    // The only warning is about the design (one sample per group), none about the inputs.
    assert_eq!(codes(&r, Severity::Warning), ["group-of-one"]);
    let s = &r.samples[0];
    assert_eq!(s.format.as_deref(), Some("sam"));
    assert!(s.complete && s.error.is_none());
    assert_eq!((s.lines_read, s.sites, s.covered_sites), (5, 10, 10));
    // Coverages 3 (x5) and 2 (x5): mean 2.5, lower median 2; 9 + 6 of 25 calls modified.
    assert!((s.mean_coverage - 2.5).abs() < 1e-12);
    assert_eq!(s.median_coverage, 2);
    assert_eq!(s.frac_coverage_ge_10, 0.0);
    assert!((s.mean_methylation - 15.0 / 25.0).abs() < 1e-12);
    let contig = |name: &str, sites| ContigCount {
        name: name.into(),
        sites,
    };
    assert_eq!(
        s.contigs,
        [contig("chr1", 5), contig("chr2", 5), contig("chr3", 0)]
    );
    // chr3 is in the header only: read to the end, the file has no data there.
    let table: Vec<(&str, usize)> = r
        .contigs
        .iter()
        .map(|c| (c.name.as_str(), c.samples.len()))
        .collect();
    assert_eq!(table, [("chr1", 2), ("chr2", 2)]);
    let text = r.render();
    assert!(text.contains(" sam "), "{text}");
    assert!(text.contains("OK: 0 errors, 1 warning"), "{text}");

    // The first 2 records only: their sites, and the head is marked.
    let head = check(
        &sheet,
        &CheckOptions {
            max_lines: Some(2),
            ..options()
        },
    );
    let s = &head.samples[0];
    assert!(!s.complete && !head.complete);
    assert_eq!((s.lines_read, s.sites, s.median_coverage), (2, 5, 2));
    assert!(head.render().contains("(head only)"));
}

/// The bedMethyl says `chr1`, the BAM's header `1`: the error a count table with `1` gets,
/// found from the header even when only the first record is read.
#[test]
fn bam_contig_naming_that_differs_is_the_text_sample_error() {
    let dir = tempfile::tempdir().unwrap();
    let bed = bedmethyl(dir.path(), "b.bed", &[("chr1", 1), ("chr2", 11)]);
    let reads = good_sam(dir.path(), "reads.sam", &["1", "2"]);
    let table = bedmethyl(dir.path(), "t.bed", &[("1", 1), ("2", 11)]);
    let with = |first: &Path, other: &Path, max_lines| {
        let sheet = sheet(dir.path(), &[("B", "x", first), ("S", "y", other)]);
        check(
            &sheet,
            &CheckOptions {
                max_lines,
                ..options()
            },
        )
    };
    let from_bam = with(&bed, &reads, None);
    let from_text = with(&bed, &table, None);
    assert_eq!(
        codes(&from_bam, Severity::Error),
        ["contig-naming", "no-shared-contig"]
    );
    let msg = from_bam.error_messages()[0];
    assert_eq!(
        msg,
        format!(
            "contig naming differs: {} vs {}: chr1 ↔ 1, chr2 ↔ 2 — rename one side (add or \
             strip the `chr` prefix; chrM ↔ MT) so both use the same names",
            bed.display(),
            reads.display()
        )
    );
    let text_messages: Vec<String> = from_text
        .error_messages()
        .iter()
        .map(|m| m.replace(&table.display().to_string(), &reads.display().to_string()))
        .collect();
    assert_eq!(from_bam.error_messages(), text_messages);
    // Only the first record (on `1`) read: `2`, named by the header alone, still meets `chr2`.
    let chr2 = bedmethyl(dir.path(), "chr2.bed", &[("chr2", 11)]);
    let head = with(&chr2, &reads, Some(1));
    let read: Vec<(&str, u64)> = head.samples[1]
        .contigs
        .iter()
        .map(|c| (c.name.as_str(), c.sites))
        .collect();
    assert_eq!(read, [("1", 5), ("2", 0)]);
    assert_eq!(
        head.error_messages(),
        [format!(
            "contig naming differs: {} vs {}: chr2 ↔ 2 — rename one side (add or strip the \
             `chr` prefix; chrM ↔ MT) so both use the same names",
            chr2.display(),
            reads.display()
        )],
        "{:?}",
        head.issues
    );
}

/// The header's order enters the merge replay: `chr2` before `chr1` in the BAM, the other way
/// in the bedMethyl.
#[test]
fn bam_contig_order_is_compared_with_the_other_samples() {
    let dir = tempfile::tempdir().unwrap();
    let bed = bedmethyl(dir.path(), "b.bed", &[("chr1", 1), ("chr2", 11)]);
    let reads = good_sam(dir.path(), "reads.sam", &["chr2", "chr1"]);
    let sheet = sheet(dir.path(), &[("B", "x", &bed), ("S", "y", &reads)]);
    let r = check(&sheet, &options());
    assert_eq!(
        codes(&r, Severity::Error),
        ["contig-order"],
        "{:?}",
        r.issues
    );
    assert!(
        r.error_messages()[0].starts_with(&format!(
            "{}: contig chr1 comes after chr2 here",
            reads.display()
        )),
        "{}",
        r.error_messages()[0]
    );
}

/// No MM/ML (or XM) tags: `run`'s error, naming the file, with the fix; a head without calls
/// is only a warning (later records may have them).
#[test]
fn a_bam_without_modification_tags_is_an_error_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let plain = sam(
        dir.path(),
        "plain.sam",
        &["chr1"],
        &[
            ("r1", "chr1", 1, "NM:i:0"),
            ("r2", "chr1", 1, "NM:i:0"),
            ("r3", "chr1", 5, "NM:i:0"),
        ],
    );
    let sheet = sheet(dir.path(), &[("S", "x", &plain)]);
    let r = check(&sheet, &options());
    assert_eq!(codes(&r, Severity::Error), ["read-error"], "{:?}", r.issues);
    let msg = r.error_messages()[0];
    assert!(
        msg.starts_with(&format!(
            "{}: BAM: no base-modification calls: none of the 3 records read carries usable \
             MM/ML tags",
            plain.display()
        )),
        "{msg}"
    );
    assert!(
        msg.contains("make the BAM with modified-base calling")
            && msg.contains("samtools fastq -T MM,ML"),
        "{msg}"
    );
    assert!(!r.samples[0].complete);

    let head = check(
        &sheet,
        &CheckOptions {
            max_lines: Some(2),
            ..options()
        },
    );
    assert_eq!(head.n_errors(), 0, "{:?}", head.issues);
    let warning = head
        .issues
        .iter()
        .find(|i| i.code == "no-mod-tags")
        .expect("a warning about the head");
    assert_eq!(warning.severity, Severity::Warning);
    assert!(
        warning
            .message
            .contains("(in the first 2 records; the rest was not read)"),
        "{}",
        warning.message
    );
}

/// Malformed tags and records out of coordinate order stop `run`: errors naming the file and
/// the record.
#[test]
fn bam_reader_errors_are_errors_naming_the_record() {
    let dir = tempfile::tempdir().unwrap();
    let bad_ml = sam(
        dir.path(),
        "bad_ml.sam",
        &["chr1"],
        &[
            ("r1", "chr1", 1, TAGS),
            ("r2", "chr1", 3, "MM:Z:C+m?,0,0,0,0,0;\tML:B:C,250,250"),
        ],
    );
    let unsorted = sam(
        dir.path(),
        "unsorted.sam",
        &["chr1"],
        &[("r1", "chr1", 9, TAGS), ("r2", "chr1", 1, TAGS)],
    );
    let sheet = sheet(dir.path(), &[("A", "x", &bad_ml), ("U", "y", &unsorted)]);
    let r = check(&sheet, &options());
    let msgs = r.error_messages();
    assert_eq!(
        codes(&r, Severity::Error),
        ["read-error", "read-error"],
        "{msgs:?}"
    );
    assert!(
        msgs[0].starts_with(&format!(
            "{}: BAM: record 2 (read r2 at chr1:3): ML has 2 values but MM lists 5 calls",
            bad_ml.display()
        )),
        "{}",
        msgs[0]
    );
    assert!(
        msgs[1].starts_with(&format!(
            "{}: BAM: record r2 at chr1:0 comes after position 8: the BAM is not \
             coordinate-sorted",
            unsorted.display()
        )),
        "{}",
        msgs[1]
    );
    // CpG context from a FASTA without its .fai: `run` cannot open the reference either.
    let fasta = write(dir.path(), "g.fa", ">chr1\nACGT\n");
    let mut opts = options();
    opts.bam.pileup.cpg = CpgFilter::Reference(fasta.clone());
    let r = check(&sheet, &opts);
    let msg = r.error_messages()[0];
    assert!(
        msg.starts_with(&format!(
            "{}: BAM: reference: {}",
            bad_ml.display(),
            fasta.display()
        )),
        "{msg}"
    );
}

/// Regions on contigs the BAM has no data on: every region would be dropped, so an error —
/// also for a contig the header lists but no record covers; a BED named the other way is the
/// naming error. With only the head read, the header contig may still get data: a note.
#[test]
fn bam_sample_with_regions_on_other_contigs() {
    let dir = tempfile::tempdir().unwrap();
    let reads = good_sam(dir.path(), "reads.sam", &["chr1", "chr2", "chr3"]);
    let sheet = sheet(dir.path(), &[("S", "x", &reads)]);
    let with_bed = |name: &str, text: &str, max_lines| {
        let opts = CheckOptions {
            regions: Some(write(dir.path(), name, text)),
            max_lines,
            ..options()
        };
        check(&sheet, &opts)
    };
    let r = with_bed("other.bed", "chrX\t0\t100\nchr3\t0\t50\n", None);
    let msgs = r.error_messages();
    assert_eq!(msgs.len(), 1, "{:?}", r.issues);
    assert!(
        msgs[0].ends_with(
            "other.bed: all regions on contigs no sample has: chrX (1 regions), chr3 (1 \
             regions) — every region would be dropped and the run stop; use a BED made for \
             the samples' reference"
        ),
        "{}",
        msgs[0]
    );
    assert_eq!(
        r.contigs
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>(),
        ["chr1", "chr2", "chrX", "chr3"]
    );
    // The head: chr3 may hold records further on, chrX cannot (not in the header).
    let head = with_bed("other.bed", "chrX\t0\t100\nchr3\t0\t50\n", Some(1));
    assert_eq!(head.n_errors(), 0, "{:?}", head.issues);
    let note = head
        .issues
        .iter()
        .find(|i| i.code == "regions-without-sites")
        .unwrap();
    assert_eq!(note.severity, Severity::Note);
    assert!(
        note.message.contains(": chrX (1 regions) —"),
        "{}",
        note.message
    );
    // A BED naming the BAM's chr1 as 1.
    let r = with_bed("named.bed", "1\t0\t100\nchr2\t0\t100\n", None);
    assert_eq!(
        codes(&r, Severity::Error),
        ["contig-naming"],
        "{:?}",
        r.issues
    );
    let msg = r.error_messages()[0];
    assert!(
        msg.contains(&format!("{} vs ", reads.display()))
            && msg.contains("named.bed: chr1 ↔ 1 — rename one side"),
        "{msg}"
    );
}
