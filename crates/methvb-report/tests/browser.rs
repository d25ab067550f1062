//! Opens the report of a real small run (with a synthetic MCMC audit and per-CpG data for the
//! top regions) in headless Chromium: the DOM Chromium builds holds the sortable top table and
//! the per-CpG panels, and a full-height screenshot of the page is taken. Skipped, with a message, when /usr/bin/chromium is not installed (CI
//! installs it). Set `METHVB_REPORT_SCREENSHOT=path.png` to keep the screenshot.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use methvb_report::{ReportOptions, write_report};

const CHROMIUM: &str = "/usr/bin/chromium";

/// Width and height from a PNG's IHDR chunk, after checking the signature.
fn png_size(bytes: &[u8]) -> Option<(u32, u32)> {
    const SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n'];
    if bytes.len() < 24 || bytes[..8] != SIGNATURE || &bytes[12..16] != b"IHDR" {
        return None;
    }
    let be = |i: usize| u32::from_be_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    Some((be(16), be(20)))
}

/// Headless Chromium on `page` with `extra` flags, no network, its output captured.
fn chromium(profile: &Path, extra: &[&str], page: &Path) -> std::process::Output {
    Command::new(CHROMIUM)
        .args(FLAGS)
        .args(extra)
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .output()
        .expect("start chromium")
}

const FLAGS: [&str; 9] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    // Any network request would fail: the page must not need one.
    "--host-resolver-rules=MAP * ~NOTFOUND",
];

#[test]
fn report_renders_in_headless_chromium() {
    if !Path::new(CHROMIUM).exists() {
        // Written to the stderr handle itself, which the test harness does not capture, so
        // the skip shows in every `cargo test` log.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED report_renders_in_headless_chromium: {CHROMIUM} is not installed \
             (apt-get install -y chromium)"
        );
        return;
    }
    let dir = common::copy_small_run();
    common::write_audit(
        &dir.path().join("mcmc_check.parquet"),
        &common::synthetic_audit(40),
    );
    let options = ReportOptions {
        sites: Some(common::synthetic_sites(dir.path(), 4)),
        ..ReportOptions::default()
    };
    let report = write_report(dir.path(), &options).expect("report").path;
    let work = tempfile::tempdir().expect("temp dir");

    // The page as Chromium parsed it: the table's four orders, one shown (the checked radio
    // button), and four per-CpG figures with their SVGs.
    let dom = chromium(&work.path().join("dom-profile"), &["--dump-dom"], &report);
    assert!(dom.status.success(), "chromium --dump-dom failed");
    let dom = String::from_utf8_lossy(&dom.stdout);
    for class in ["by-rank", "by-pos", "by-delta", "by-lfsr"] {
        assert!(
            dom.contains(&format!("<tbody class=\"{class}\">")),
            "{class}"
        );
    }
    assert!(dom.contains("id=\"sort-rank\" checked"));
    for k in 1..=4 {
        assert!(
            dom.contains(&format!("<figure id=\"cpg-{k}\"")),
            "panel {k}"
        );
    }
    assert!(dom.contains("VB vs MCMC prob_dm plot"));

    let shot = work.path().join("shot.png");
    let mut child = Command::new(CHROMIUM)
        .args(FLAGS)
        .arg(format!(
            "--user-data-dir={}",
            work.path().join("profile").display()
        ))
        .arg(format!("--screenshot={}", shot.display()))
        .arg("--window-size=1280,4800")
        .arg(format!("file://{}", report.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chromium");
    // A guard against a hung browser, not a timing assertion.
    let deadline = Instant::now() + Duration::from_secs(180);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for chromium") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium did not finish within 180 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stderr = child
        .wait_with_output()
        .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
        .unwrap_or_default();
    assert!(status.success(), "chromium failed ({status}):\n{stderr}");
    let png = std::fs::read(&shot).unwrap_or_else(|e| panic!("no screenshot ({e}):\n{stderr}"));
    assert_eq!(png_size(&png), Some((1280, 4800)), "not a 1280×4800 PNG");
    // A blank page compresses to a few KB; the plots, tables and panels make it far larger.
    assert!(
        png.len() > 200_000,
        "screenshot of only {} bytes: the page looks empty",
        png.len()
    );
    if let Some(keep) = std::env::var_os("METHVB_REPORT_SCREENSHOT") {
        std::fs::copy(&shot, &keep).expect("copy screenshot");
    }
}
