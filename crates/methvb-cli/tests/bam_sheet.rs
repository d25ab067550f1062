//! A sample sheet may list BAM files: they are piled up on the fly into the same site stream as
//! the count tables (issue: BAM input).

mod common;

use common::{dss_dir, read_table, run_ok, s};

/// The single-end Bismark BAM and the `.cov` that Bismark's own extractor made from it, as two
/// samples of one sheet, strands kept apart: every merged row must hold the same counts twice.
#[test]
fn bismark_bam_in_a_sheet_equals_the_extractor_cov() {
    let data = dss_dir().join("../methylkit");
    let bam = data.join("test.bismark_single_end.sorted.bam");
    let cov = data.join("expected_bismark_extractor/test.bismark_single_end.sorted.bismark.cov");
    let tmp = tempfile::tempdir().unwrap();
    let sheet = tmp.path().join("sheet.tsv");
    std::fs::write(
        &sheet,
        format!(
            "sample\tgroup\tpath\nbam\ta\t{}\ncov\tb\t{}\n",
            s(&bam),
            s(&cov)
        ),
    )
    .unwrap();
    let out = tmp.path().join("sites.parquet");
    run_ok(&[
        "sites",
        "--samples",
        s(&sheet),
        "--no-strand-merge",
        "--out",
        s(&out),
    ]);
    let table = read_table(&out);
    let rows = table.column("pos").len();
    let expected_rows = std::fs::read_to_string(&cov).unwrap().lines().count();
    assert_eq!(rows, expected_rows, "one merged row per .cov line");
    for name in ["m", "n"] {
        let from_bam = table.column(&format!("bam_{name}"));
        let from_cov = table.column(&format!("cov_{name}"));
        for (i, (b, c)) in from_bam.iter().zip(&from_cov).enumerate() {
            assert_eq!(b.as_int(), c.as_int(), "row {i}: bam_{name} vs cov_{name}");
        }
    }
}
