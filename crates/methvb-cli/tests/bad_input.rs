//! Bad inputs through the real binary: every case must fail with a non-zero exit code, name the
//! offending file (and line, where there is one) on stderr, not panic, and leave no output file
//! (nor temporary) behind — for `methvb sites` and for `methvb run`.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};

use common::{files_in, run_methvb, s};

/// One bedMethyl (modkit 18-column) line: `n` valid calls of which `m` modified.
fn bed_line(chrom: &str, pos: u64, n: u32, m: u32) -> String {
    let canonical = n.saturating_sub(m);
    let pct = if n > 0 {
        100.0 * f64::from(m) / f64::from(n)
    } else {
        0.0
    };
    format!(
        "{chrom}\t{pos}\t{}\tm\t{n}\t.\t{pos}\t{}\t255,0,0\t{n}\t{pct:.2}\t{m}\t{canonical}\t0\t0\t0\t0\t0\n",
        pos + 1,
        pos + 1
    )
}

/// A good bedMethyl sample: 40 CpGs on chr1.
fn good_bed() -> String {
    (0..40)
        .map(|i| bed_line("chr1", 100 + 20 * i, 10, (i % 7) as u32))
        .collect()
}

/// One case: its own temporary directory holding the inputs and the outputs.
struct Case {
    dir: tempfile::TempDir,
}

impl Case {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    /// Writes `sheet.tsv` with a header and `rows` (relative paths, resolved against the sheet).
    fn sheet(&self, header: &str, rows: &[&str]) -> PathBuf {
        let mut text = format!("{header}\n");
        for r in rows {
            text.push_str(r);
            text.push('\n');
        }
        self.write("sheet.tsv", text)
    }

    /// Runs `methvb sites` and `methvb run` on `sheet` and checks the failure contract; every
    /// string of `expect` must occur in stderr. Returns the stderr of `sites`.
    fn assert_fails(&self, sheet: &Path, expect: &[String]) -> String {
        let before = files_in(self.dir.path());
        let out_parquet = self.path("sites.parquet");
        let run_dir = self.path("run_out");
        let mut first = String::new();
        let commands: [Vec<&str>; 2] = [
            vec!["sites", "--samples", s(sheet), "--out", s(&out_parquet)],
            vec![
                "--threads",
                "1",
                "run",
                "--samples",
                s(sheet),
                "--out",
                s(&run_dir),
                "--draws",
                "100",
            ],
        ];
        for args in &commands {
            let out = run_methvb(args);
            let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
            let what = format!("methvb {}\nstderr:\n{stderr}", args.join(" "));
            let code = out.status.code();
            assert!(code.is_some(), "killed by a signal: {what}");
            assert_ne!(code, Some(0), "exit code 0 on bad input: {what}");
            assert_ne!(code, Some(101), "exit code 101 (panic): {what}");
            assert!(!stderr.contains("panicked"), "panic on bad input: {what}");
            assert!(
                stderr.starts_with("methvb: error: "),
                "no error line: {what}"
            );
            for e in expect {
                assert!(
                    stderr.contains(e.as_str()),
                    "stderr does not mention {e:?}: {what}"
                );
            }
            // Nothing published, no temporary left: the directory holds the inputs only, and
            // `run` left its output directory empty (it may create the directory itself).
            assert_eq!(
                files_in(self.dir.path()),
                before,
                "files left behind by {what}"
            );
            assert_eq!(
                files_in(&run_dir),
                Vec::<String>::new(),
                "run output left by {what}"
            );
            if first.is_empty() {
                first = stderr;
            }
        }
        first
    }
}

const HEADER: &str = "sample\tgroup\tpath";

fn path_line(p: &Path, line: u64) -> String {
    format!("{}:{line}:", p.display())
}

#[test]
fn malformed_line_too_few_columns() {
    let c = Case::new();
    c.write("A.bed", good_bed());
    let bad = c.write(
        "B.bed",
        format!(
            "{}chr1\t120\t121\tm\t10\n{}",
            bed_line("chr1", 100, 10, 5),
            bed_line("chr1", 160, 10, 4)
        ),
    );
    let sheet = c.sheet(HEADER, &["A\tg1\tA.bed", "B\tg2\tB.bed"]);
    c.assert_fails(&sheet, &[path_line(&bad, 2), "columns".into()]);
}

#[test]
fn malformed_field_not_a_number() {
    let c = Case::new();
    c.write("A.bed", good_bed());
    let bad = c.write(
        "B.txt",
        "chr\tpos\tN\tX\nchr1\t101\t10\t5\nchr1\t121\tabc\t7\n",
    );
    let sheet = c.sheet(HEADER, &["A\tg1\tA.bed", "B\tg2\tB.txt"]);
    c.assert_fails(&sheet, &[path_line(&bad, 3), "\"abc\"".into()]);
}

#[test]
fn unsorted_positions() {
    let c = Case::new();
    c.write("A.bed", good_bed());
    let text: String = [(100, 5), (120, 5), (110, 5), (160, 4)]
        .iter()
        .map(|&(p, m)| bed_line("chr1", p, 10, m))
        .collect();
    let bad = c.write("B.bed", text);
    let sheet = c.sheet(HEADER, &["A\tg1\tA.bed", "B\tg2\tB.bed"]);
    c.assert_fails(&sheet, &[path_line(&bad, 3), "unsorted".into()]);
}

#[test]
fn methylated_above_coverage_dss() {
    let c = Case::new();
    c.write("A.bed", good_bed());
    let bad = c.write(
        "B.txt",
        "chr\tpos\tN\tX\nchr1\t101\t10\t5\nchr1\t121\t5\t7\n",
    );
    let sheet = c.sheet(HEADER, &["A\tg1\tA.bed", "B\tg2\tB.txt"]);
    c.assert_fails(&sheet, &[path_line(&bad, 3), "exceeds coverage".into()]);
}

#[test]
fn methylated_above_coverage_bedmethyl() {
    let c = Case::new();
    c.write("A.bed", good_bed());
    let bad = c.write(
        "B.bed",
        format!(
            "{}{}",
            bed_line("chr1", 100, 10, 5),
            // n_valid 5 but 9 modified calls.
            "chr1\t120\t121\tm\t5\t.\t120\t121\t255,0,0\t5\t100.00\t9\t0\t0\t0\t0\t0\t0\n"
        ),
    );
    let sheet = c.sheet(HEADER, &["A\tg1\tA.bed", "B\tg2\tB.bed"]);
    c.assert_fails(&sheet, &[path_line(&bad, 2)]);
}

#[test]
fn truncated_gzip() {
    let c = Case::new();
    c.write("A.bed", good_bed());
    let text: String = (0..400)
        .map(|i| bed_line("chr1", 100 + 20 * i, 12, (i % 5) as u32))
        .collect();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(text.as_bytes()).unwrap();
    let full = gz.finish().unwrap();
    let bad = c.write("B.bed.gz", &full[..full.len() * 2 / 3]);
    let sheet = c.sheet(HEADER, &["A\tg1\tA.bed", "B\tg2\tB.bed.gz"]);
    c.assert_fails(&sheet, &[format!("{}", bad.display()), "truncated".into()]);
}

#[test]
fn unknown_format_named_in_sheet() {
    let c = Case::new();
    c.write("A.bed", good_bed());
    let sheet = c.sheet(
        "sample\tgroup\tpath\tformat",
        &["A\tg1\tA.bed\tbedmethyl", "B\tg2\tA.bed\tvcf"],
    );
    c.assert_fails(&sheet, &[path_line(&sheet, 3), "vcf".into()]);
}

#[test]
fn unknown_format_detected_from_content() {
    let c = Case::new();
    c.write("A.bed", good_bed());
    let bad = c.write("B.txt", "hello world\nfoo bar baz\n1 2 3\n");
    let sheet = c.sheet(HEADER, &["A\tg1\tA.bed", "B\tg2\tB.txt"]);
    c.assert_fails(&sheet, &[path_line(&bad, 2), "format".into()]);
}

#[test]
fn missing_input_file() {
    let c = Case::new();
    c.write("A.bed", good_bed());
    let sheet = c.sheet(HEADER, &["A\tg1\tA.bed", "B\tg2\tnot_there.bed"]);
    c.assert_fails(&sheet, &[format!("{}", c.path("not_there.bed").display())]);
}

#[test]
fn missing_sample_sheet() {
    let c = Case::new();
    let sheet = c.path("no_sheet.tsv");
    c.assert_fails(&sheet, &[format!("{}", sheet.display())]);
}

#[test]
fn sample_sheet_with_duplicate_sample() {
    let c = Case::new();
    c.write("A.bed", good_bed());
    c.write("B.bed", good_bed());
    let sheet = c.sheet(HEADER, &["A\tg1\tA.bed", "A\tg2\tB.bed"]);
    c.assert_fails(&sheet, &[path_line(&sheet, 3), "duplicate sample".into()]);
}

#[test]
fn contig_naming_mismatch_chr1_vs_1() {
    let c = Case::new();
    let good = c.write("A.bed", good_bed());
    let text: String = (0..40)
        .map(|i| bed_line("1", 100 + 20 * i, 10, 3))
        .collect();
    let bad = c.write("B.bed", text);
    let sheet = c.sheet(HEADER, &["A\tg1\tA.bed", "B\tg2\tB.bed"]);
    let stderr = c.assert_fails(&sheet, &[path_line(&bad, 1), "naming".into()]);
    // The message points at the other file too, so the user sees both spellings.
    assert!(stderr.contains(&format!("{}", good.display())), "{stderr}");
}

/// The reader's message must appear once: `methvb: error: FILE:LINE: reason`, not the reason
/// repeated for every link of the error chain.
#[test]
fn error_reason_is_printed_once() {
    let c = Case::new();
    c.write("A.bed", good_bed());
    c.write(
        "B.txt",
        "chr\tpos\tN\tX\nchr1\t101\t10\t5\nchr1\t121\t5\t7\n",
    );
    let sheet = c.sheet(HEADER, &["A\tg1\tA.bed", "B\tg2\tB.txt"]);
    let stderr = c.assert_fails(&sheet, &[]);
    assert_eq!(
        stderr
            .matches("methylated count 7 exceeds coverage 5")
            .count(),
        1,
        "reason repeated in: {stderr}"
    );
}
