//! The bad-input corpus (`test-data/bad/`, cases listed in `test-data/bad/EXPECTED.tsv`) through
//! the real binary. Every failing case must exit with code 1 (no panic, no signal), say on stderr
//! what is wrong (the expected substring), name the offending file (and line, where the case
//! gives one), and leave no output file behind; the accepted cases (`ok`, `sheet-ok`,
//! `check-ok`, `pileup-ok`) must succeed. See the header of `EXPECTED.tsv` for the command kinds.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_methvb");

fn corpus_dir() -> PathBuf {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../test-data/bad");
    std::fs::canonicalize(dir).unwrap_or_else(|e| panic!("corpus folder {dir} missing: {e}"))
}

/// One line of `EXPECTED.tsv`.
#[derive(Debug, Clone)]
struct Case {
    file: String,
    command: String,
    args: Vec<String>,
    expected: String,
    line: Option<u64>,
    names: String,
}

fn dash(s: &str) -> Option<&str> {
    (s != "-").then_some(s)
}

fn cases(dir: &Path) -> Vec<Case> {
    let text = std::fs::read_to_string(dir.join("EXPECTED.tsv")).expect("EXPECTED.tsv");
    let mut out = Vec::new();
    let mut header_seen = false;
    for (i, line) in text.lines().enumerate() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(f.len(), 6, "EXPECTED.tsv line {}: {line:?}", i + 1);
        if !header_seen {
            assert_eq!(f, ["file", "command", "args", "expected", "line", "names"]);
            header_seen = true;
            continue;
        }
        let d = dir.to_str().expect("UTF-8 corpus path");
        out.push(Case {
            file: f[0].to_string(),
            command: f[1].to_string(),
            args: dash(f[2])
                .map(|a| {
                    a.split_whitespace()
                        .map(|x| x.replace("{dir}", d))
                        .collect()
                })
                .unwrap_or_default(),
            expected: f[3].replace("{dir}", d),
            line: dash(f[4]).map(|l| l.parse().expect("line number")),
            names: dash(f[5]).unwrap_or(f[0]).to_string(),
        });
    }
    out
}

fn files_in(dir: &Path) -> BTreeSet<String> {
    match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .map(|e| {
                e.expect("dir entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect(),
        Err(_) => BTreeSet::new(),
    }
}

fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 test paths")
}

/// Runs one case; returns a description of every broken expectation.
fn run_case(dir: &Path, case: &Case) -> Vec<String> {
    let tmp = tempfile::tempdir().expect("temp dir");
    let file = dir.join(&case.file);
    let out_parquet = tmp.path().join("sites.parquet");
    let out_bed = tmp.path().join("pileup.bed");
    let run_dir = tmp.path().join("run_out");
    let mut args: Vec<String> = Vec::new();
    match case.command.as_str() {
        "sites" | "ok" => {
            let sheet = tmp.path().join("sheet.tsv");
            std::fs::write(&sheet, format!("sample\tgroup\tpath\nA\tg\t{}\n", s(&file)))
                .expect("write sheet");
            args.extend(
                ["sites", "--samples", s(&sheet), "--out", s(&out_parquet)].map(String::from),
            );
        }
        "sheet" | "sheet-ok" => {
            args.extend(
                ["sites", "--samples", s(&file), "--out", s(&out_parquet)].map(String::from),
            );
        }
        "check" | "check-ok" => {
            args.extend(["check", "--samples", s(&file)].map(String::from));
        }
        "pileup" | "pileup-ok" => {
            args.extend(["pileup", s(&file), "--out", s(&out_bed)].map(String::from));
        }
        "regions" => {
            let sheet = dir.join("sheet_good.tsv");
            args.extend(["check", "--samples", s(&sheet), "--regions", s(&file)].map(String::from));
        }
        "run" | "run-regions" => {
            // run-regions: the corpus file is the regions BED of a good sheet.
            let (sheet, regions) = if case.command == "run" {
                (file.clone(), None)
            } else {
                (dir.join("sheet_good.tsv"), Some(&file))
            };
            args.extend(
                [
                    "--threads",
                    "1",
                    "run",
                    "--samples",
                    s(&sheet),
                    "--out",
                    s(&run_dir),
                    "--draws",
                    "100",
                ]
                .map(String::from),
            );
            if let Some(bed) = regions {
                args.extend(["--regions", s(bed)].map(String::from));
            }
        }
        other => return vec![format!("unknown command kind {other:?}")],
    }
    args.extend(case.args.iter().cloned());
    let before_corpus = files_in(dir);
    let before_tmp = files_in(tmp.path());
    let out: Output = Command::new(BIN)
        .args(&args)
        .output()
        .unwrap_or_else(|e| panic!("cannot start {BIN}: {e}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut bad = Vec::new();
    let mut fail = |msg: String| bad.push(msg);
    if stderr.contains("panicked") || out.status.code() == Some(101) {
        fail("panicked".into());
    }
    if out.status.code().is_none() {
        fail(format!("killed by a signal ({})", out.status));
    }
    match case.command.as_str() {
        "ok" | "sheet-ok" => {
            if !out.status.success() {
                fail(format!("failed: {}", out.status));
            }
            if !out_parquet.is_file() {
                fail("no output written".into());
            }
            if !stderr.contains(&case.expected) {
                fail(format!("stderr lacks {:?}", case.expected));
            }
        }
        "pileup-ok" => {
            if !out.status.success() {
                fail(format!("failed: {}", out.status));
            }
            if !out_bed.is_file() {
                fail("no output written".into());
            }
            if !stderr.contains(&case.expected) {
                fail(format!("stderr lacks {:?}", case.expected));
            }
        }
        "check-ok" => {
            if !out.status.success() {
                fail(format!("failed: {}", out.status));
            }
            if !stdout.contains(&case.expected) {
                fail(format!("stdout lacks {:?}", case.expected));
            }
        }
        _ => {
            if out.status.code() != Some(1) {
                fail(format!("exit code {:?}, want 1", out.status.code()));
            }
            if !stderr.starts_with("methvb: error: ") {
                fail("stderr does not start with the error line".into());
            }
            if !stderr.contains(&case.expected) {
                fail(format!("stderr lacks {:?}", case.expected));
            }
            let named = if case.names.starts_with('<') {
                case.names.clone()
            } else {
                s(&dir.join(&case.names)).to_string()
            };
            let named = match case.line {
                Some(l) => format!("{named}:{l}:"),
                None => named,
            };
            if !stderr.contains(&named) {
                fail(format!("stderr does not name {named:?}"));
            }
            // Nothing published, no temporary left behind (`run` may create its output
            // directory, which must stay empty).
            let mut after_tmp = files_in(tmp.path());
            after_tmp.remove("run_out");
            if after_tmp != before_tmp {
                fail(format!(
                    "files left behind: {after_tmp:?} (before {before_tmp:?})"
                ));
            }
            let left = files_in(&run_dir);
            if !left.is_empty() {
                fail(format!("run output left behind: {left:?}"));
            }
        }
    }
    if files_in(dir) != before_corpus {
        fail("the corpus folder changed".into());
    }
    if bad.is_empty() {
        return bad;
    }
    vec![format!(
        "{} [{}] methvb {}: {}\n  stdout: {}\n  stderr: {}",
        case.file,
        case.command,
        args.join(" "),
        bad.join("; "),
        stdout.trim_end(),
        stderr.trim_end()
    )]
}

#[test]
fn every_corpus_case_fails_as_expected() {
    let dir = corpus_dir();
    let cases = cases(&dir);
    let mut problems = Vec::new();
    for case in &cases {
        problems.extend(run_case(&dir, case));
    }
    assert!(
        problems.is_empty(),
        "{} of {} corpus cases broke:\n{}",
        problems.len(),
        cases.len(),
        problems.join("\n")
    );
}

#[test]
fn corpus_is_complete_and_every_file_is_used() {
    let dir = corpus_dir();
    let cases = cases(&dir);
    let files: BTreeSet<String> = cases.iter().map(|c| c.file.clone()).collect();
    assert!(
        files.len() >= 30,
        "only {} distinct case files",
        files.len()
    );
    // Each file is a case, or referenced by a sheet or an argument of the corpus.
    let mut referenced = String::new();
    for name in files_in(&dir) {
        if name.ends_with(".tsv") || name.ends_with(".csv") {
            referenced.push_str(&std::fs::read_to_string(dir.join(&name)).unwrap_or_default());
        }
    }
    for c in &cases {
        referenced.push_str(&c.args.join(" "));
        referenced.push('\n');
        referenced.push_str(&c.names);
        referenced.push('\n');
    }
    for name in files_in(&dir) {
        if name == "EXPECTED.tsv" || name.ends_with(".py") {
            continue;
        }
        assert!(
            files.contains(&name) || referenced.contains(&name),
            "{name} is in test-data/bad/ but no case uses it"
        );
    }
    for c in &cases {
        assert!(dir.join(&c.file).is_file(), "{} listed but missing", c.file);
    }
    // Every file is small and hand-written.
    for name in files_in(&dir) {
        let len = std::fs::metadata(dir.join(&name))
            .map(|m| m.len())
            .unwrap_or(0);
        assert!(
            len < 8 * 1024,
            "{name} is {len} bytes: the corpus holds small files only"
        );
    }
}
