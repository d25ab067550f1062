//! modkit BAMs against modkit's own expected pileup bedMethyl files (research-only fixtures in
//! /work/shared/data/modkit; see its PROVENANCE.md for the exact commands).

use std::path::PathBuf;

use methvb_bam::bedmethyl::format_row;
use methvb_bam::{BamOptions, CpgFilter, FilterChoice, PileupOptions, pileup_file};

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

fn nofilt(pileup: PileupOptions) -> BamOptions {
    BamOptions {
        pileup,
        filter: FilterChoice::NoFiltering,
        ..BamOptions::default()
    }
}

fn run(bam: &str, opts: &BamOptions, mixed: bool) -> Vec<String> {
    let mut out = Vec::new();
    let mut line = String::new();
    pileup_file(&data(bam), opts, |row, contig| {
        format_row(row, contig, mixed, &mut line);
        out.push(line.clone());
        Ok(())
    })
    .unwrap();
    out
}

fn expected(rel: &str) -> Vec<String> {
    std::fs::read_to_string(data(rel))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn assert_same(got: &[String], want: &[String]) {
    let mut diffs = Vec::new();
    for i in 0..got.len().max(want.len()) {
        let g = got.get(i).map_or("<none>", String::as_str);
        let w = want.get(i).map_or("<none>", String::as_str);
        if g != w {
            diffs.push(format!("line {}:\n  got  {g}\n  want {w}", i + 1));
        }
    }
    assert!(
        diffs.is_empty(),
        "{} of {} lines differ:\n{}",
        diffs.len(),
        want.len(),
        diffs[..diffs.len().min(20)].join("\n")
    );
}

#[test]
fn bc_anchored_nofilt() {
    let got = run(
        "modkit/bc_anchored_10_reads.sorted.bam",
        &nofilt(PileupOptions::default()),
        false,
    );
    assert_same(&got, &expected("modkit/modbam.modpileup_nofilt.methyl.bed"));
}

#[test]
fn bc_anchored_cpg_motif() {
    let o = nofilt(PileupOptions {
        cpg: CpgFilter::Reference(data("modkit/CGI_ladder_3.6kb_ref.fa")),
        ..PileupOptions::default()
    });
    let got = run("modkit/bc_anchored_10_reads.sorted.bam", &o, true);
    assert_same(
        &got,
        &expected("modkit/bc_anchored_10_reads_nofilt_cg_motif.bed"),
    );
}

#[test]
fn bc_anchored_cpg_motif_strand_combine() {
    let o = nofilt(PileupOptions {
        cpg: CpgFilter::Reference(data("modkit/CGI_ladder_3.6kb_ref.fa")),
        combine_strands: true,
        ..PileupOptions::default()
    });
    let got = run("modkit/bc_anchored_10_reads.sorted.bam", &o, true);
    assert_same(
        &got,
        &expected("modkit/bc_anchored_10_reads_nofilt_cg_motif_strand_combine.bed"),
    );
}

#[test]
fn duplex_nofilt() {
    let got = run(
        "modkit/duplex_modbam.sorted.bam",
        &nofilt(PileupOptions::default()),
        true,
    );
    assert_same(&got, &expected("modkit/duplex_modbam_pileup_nofilt.bed"));
}

#[test]
fn empty_tags_yield_nothing() {
    let got = run(
        "modkit/empty-tags.sorted.bam",
        &nofilt(PileupOptions::default()),
        false,
    );
    assert!(got.is_empty(), "{got:?}");
}

#[test]
fn pacbio_legacy_tags_as_explicit() {
    let o = nofilt(PileupOptions {
        legacy_as_explicit: true,
        ..PileupOptions::default()
    });
    let got = run("modkit/HG002_small.ch20._other.sorted.bam", &o, false);
    assert_same(
        &got,
        &expected("modkit/pileup-old-tags-regressiontest.methyl.bed"),
    );
}

#[test]
fn bc_anchored_combine_mods() {
    let o = nofilt(PileupOptions {
        combine_mods: true,
        ..PileupOptions::default()
    });
    let got = run("modkit/bc_anchored_10_reads.sorted.bam", &o, false);
    assert_same(
        &got,
        &expected("modkit/modbam.modpileup_combined.methyl.bed"),
    );
}
