//! Issue 19: outputs a user can put to work. Genome-browser files (`methvb export`) opened with
//! noodles' tabix reader, `pileup -o -`, the BAM filter options of a sheet's BAM samples (equal
//! to `pileup`'s), one flag name per idea with the old names as hidden aliases, and what run.json
//! records of the inputs.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use common::{DRAWS, Table, read_table, run_methvb, run_ok, s};

/// A simulated dataset (3 vs 3 samples, chr1..chr3) and one run on it, in `dir`.
fn simulated_run(dir: &Path) -> (PathBuf, PathBuf) {
    let sim = dir.join("sim");
    assert_eq!(
        common::simulate(dir, "sim", 150, 19),
        sim.join("samples.tsv")
    );
    let out = dir.join("run");
    run_ok(&[
        "-q",
        "run",
        "--samples",
        s(&sim.join("samples.tsv")),
        "--regions",
        s(&sim.join("regions.bed")),
        "--out",
        s(&out),
        "--draws",
        DRAWS,
        "--mcmc-check",
        "0",
        "--seed",
        "3",
    ]);
    (sim, out)
}

fn f64_at(t: &Table, row: usize, col: &str) -> f64 {
    t.rows[row][t.col(col)].as_f64()
}

fn lines_of(text: &str) -> Vec<String> {
    text.lines().map(str::to_string).collect()
}

#[test]
fn issue_19_export_writes_bed9_and_bedgraph_that_tabix_reads() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, out) = simulated_run(tmp.path());
    run_ok(&["-q", "export", s(&out), "--bgzip"]);
    let table = read_table(&out.join("regions.parquet"));
    let called: Vec<usize> = (0..table.rows.len())
        .filter(|&i| table.rows[i][table.col("called")] == common::Cell::Bool(true))
        .collect();
    assert!(
        !called.is_empty(),
        "the simulation has true effects to call"
    );

    // calls.bed: a track line, then BED9 of exactly the called regions in table (genome) order.
    let bed = std::fs::read_to_string(out.join("calls.bed")).unwrap();
    let bed = lines_of(&bed);
    assert!(bed[0].starts_with("track name=") && bed[0].contains("itemRgb=On"));
    assert_eq!(bed.len() - 1, called.len());
    for (line, &i) in bed[1..].iter().zip(&called) {
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(f.len(), 9, "BED9: {line}");
        let row = &table.rows[i];
        assert_eq!(f[0], row[table.col("chrom")].as_str());
        assert_eq!(
            f[1].parse::<i128>().unwrap(),
            row[table.col("start")].as_int()
        );
        assert_eq!(
            f[2].parse::<i128>().unwrap(),
            row[table.col("end")].as_int()
        );
        assert_eq!(f[3], row[table.col("region_id")].as_str());
        let score = (f64_at(&table, i, "prob_dm") * 1000.0).round() as u32;
        assert_eq!(f[4].parse::<u32>().unwrap(), score);
        assert_eq!((f[5], f[6], f[7]), (".", f[1], f[2]));
        let delta = f64_at(&table, i, "delta_mean");
        let rgb = if delta > 0.0 {
            "178,24,43"
        } else {
            "33,102,172"
        };
        assert_eq!(f[8], rgb, "{line}: delta {delta}");
    }

    // delta.bedgraph: every region, its posterior mean delta exactly.
    let graph = lines_of(&std::fs::read_to_string(out.join("delta.bedgraph")).unwrap());
    assert!(graph[0].starts_with("track type=bedGraph"));
    assert_eq!(graph.len() - 1, table.rows.len());
    for (i, line) in graph[1..].iter().enumerate() {
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(f[0], table.rows[i][table.col("chrom")].as_str());
        assert_eq!(
            f[3].parse::<f64>().unwrap().to_bits(),
            f64_at(&table, i, "delta_mean").to_bits()
        );
    }

    // The BGZF copies through noodles' tabix reader: each contig's query gives the plain
    // file's lines of that contig, and a sub-interval only the regions overlapping it.
    for (name, plain) in [("calls.bed", &bed), ("delta.bedgraph", &graph)] {
        let gz = out.join(format!("{name}.gz"));
        assert!(out.join(format!("{name}.gz.tbi")).is_file());
        let mut reader = noodles::tabix::io::indexed_reader::Builder::default()
            .build_from_path(&gz)
            .unwrap_or_else(|e| panic!("{}: {e}", gz.display()));
        // The contigs the file has (a contig without calls is not in the index).
        let mut contigs: Vec<&str> = plain[1..]
            .iter()
            .filter_map(|l| l.split('\t').next())
            .collect();
        contigs.dedup();
        assert!(!contigs.is_empty());
        for chrom in contigs {
            let region: noodles::core::Region = chrom.parse().unwrap();
            let got: Vec<String> = reader
                .query(&region)
                .unwrap()
                .map(|r| r.unwrap().as_ref().to_string())
                .collect();
            let want: Vec<String> = plain[1..]
                .iter()
                .filter(|l| l.starts_with(&format!("{chrom}\t")))
                .cloned()
                .collect();
            assert_eq!(got, want, "{name} {chrom}");
        }
        // A window over the first record's span (1-based inclusive in the query).
        let f: Vec<&str> = plain[1].split('\t').collect();
        let (start, end): (u64, u64) = (f[1].parse().unwrap(), f[2].parse().unwrap());
        let region: noodles::core::Region =
            format!("{}:{}-{}", f[0], start + 1, end).parse().unwrap();
        let got: Vec<String> = reader
            .query(&region)
            .unwrap()
            .map(|r| r.unwrap().as_ref().to_string())
            .collect();
        let want: Vec<String> = plain[1..]
            .iter()
            .filter(|l| {
                let g: Vec<&str> = l.split('\t').collect();
                let (s2, e2): (u64, u64) = (g[1].parse().unwrap(), g[2].parse().unwrap());
                g[0] == f[0] && s2 < end && e2 > start
            })
            .cloned()
            .collect();
        assert_eq!(got, want, "{name} window");
    }
}

#[test]
fn issue_19_export_refuses_a_folder_without_results() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run_methvb(&["export", s(tmp.path())]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("regions.parquet not found"), "{err}");
}

#[test]
fn issue_19_run_json_records_the_input_and_region_options() {
    let tmp = tempfile::tempdir().unwrap();
    let (sim, out) = simulated_run(tmp.path());
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    let opts = &info["input_options"];
    assert_eq!(
        opts["samples"].as_str().unwrap(),
        s(&std::path::absolute(sim.join("samples.tsv")).unwrap())
    );
    assert_eq!(opts["mod_code"], "m");
    assert_eq!(opts["no_combine_strands"], false);
    assert_eq!(opts["bam"]["filter_percentile"], 0.1);
    assert_eq!(opts["bam_thresholds"], serde_json::json!([]));
    assert_eq!(info["region_options"]["min_sites"], 3);
    // hyper.json records the same inputs.
    let hyper: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("hyper.json")).unwrap()).unwrap();
    assert_eq!(&hyper["input_options"], opts);
    // The Parquet metadata holds the same object.
    let builder = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        std::fs::File::open(out.join("regions.parquet")).unwrap(),
    )
    .unwrap();
    let kv = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .unwrap();
    let meta = kv
        .iter()
        .find(|k| k.key == "methvb.input_options")
        .and_then(|k| k.value.clone())
        .unwrap();
    assert_eq!(
        &serde_json::from_str::<serde_json::Value>(&meta).unwrap(),
        opts
    );
}

fn modkit_bam() -> PathBuf {
    common::dss_dir().join("../modkit/bc_anchored_10_reads.sorted.bam")
}

fn bismark_pe_bam() -> PathBuf {
    common::dss_dir().join("../methylkit/ctrl.bismark_paired_end.sorted.bam")
}

#[test]
fn issue_19_pileup_writes_to_stdout_with_dash() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("p.bed");
    run_ok(&["-q", "pileup", s(&modkit_bam()), "--cpg", "-o", s(&file)]);
    let out = common::methvb(&["-q", "pileup", s(&modkit_bam()), "--cpg", "-o", "-"])
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected = std::fs::read(&file).unwrap();
    assert!(!expected.is_empty());
    assert_eq!(out.stdout, expected, "stdout equals the file");
    assert!(!tmp.path().join("-").exists(), "no file named -");
    // The summary goes to stderr, naming standard output.
    let loud = common::methvb(&["pileup", s(&modkit_bam()), "--cpg", "-o", "-"])
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&loud.stderr).contains("-> standard output"));
}

/// (position, N_mod, N_valid) of the `m` rows of a strand-combined CpG pileup.
fn pileup_counts(bam: &Path, flags: &[&str]) -> Vec<(u64, u64, u64)> {
    let mut args = vec![
        "-q",
        "pileup",
        s(bam),
        "--cpg",
        "--combine-strands",
        "-o",
        "-",
    ];
    args.extend_from_slice(flags);
    let out = run_ok(&args);
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f[3] == "m" || f[3] == "C").then(|| {
                (
                    f[1].parse().unwrap(),
                    f[11].parse().unwrap(),
                    f[9].parse().unwrap(),
                )
            })
        })
        .filter(|&(_, _, n)| n > 0)
        .collect()
}

/// (position, m, n) of the one sample of a `methvb sites` run on a sheet listing `bam`, and the
/// `methvb.input_options` it recorded.
fn sites_counts(
    bam: &Path,
    flags: &[&str],
    dir: &Path,
) -> (Vec<(u64, u64, u64)>, serde_json::Value) {
    let sheet = dir.join("sheet.tsv");
    std::fs::write(&sheet, format!("sample\tgroup\tpath\nx\ta\t{}\n", s(bam))).unwrap();
    let out = dir.join("sites.parquet");
    let mut args = vec!["-q", "sites", "--samples", s(&sheet), "--out", s(&out)];
    args.extend_from_slice(flags);
    run_ok(&args);
    let t = read_table(&out);
    let rows = t
        .rows
        .iter()
        .map(|r| {
            (
                r[t.col("pos")].as_int() as u64,
                r[t.col("x_m")].as_int() as u64,
                r[t.col("x_n")].as_int() as u64,
            )
        })
        .collect();
    let builder = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        std::fs::File::open(&out).unwrap(),
    )
    .unwrap();
    let meta = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|k| k.key == "methvb.input_options").cloned())
        .and_then(|k| k.value)
        .unwrap();
    (rows, serde_json::from_str(&meta).unwrap())
}

/// Every BAM filter option of `pileup` is an option of a sheet's BAM samples too, with the same
/// effect: `sites` on a sheet listing the BAM gives `pileup`'s counts with the same flags, and
/// records the flag. Flags that change the counts on this data are checked to change them.
#[test]
fn issue_19_bam_filter_options_of_a_sheet_equal_pileups() {
    let tmp = tempfile::tempdir().unwrap();
    #[rustfmt::skip]
    let cases: &[(&Path, &[&str], &str, serde_json::Value, bool)] = &[
        (&modkit_bam(), &[], "source", serde_json::json!("auto"), false),
        (&modkit_bam(), &["--no-filtering"], "no_filtering", serde_json::json!(true), true),
        (&modkit_bam(), &["--filter-threshold", "0.9"], "filter_threshold", serde_json::json!(0.9), true),
        (&modkit_bam(), &["--filter-percentile", "0.5"], "filter_percentile", serde_json::json!(0.5), true),
        (&modkit_bam(), &["--sample-reads", "2"], "sample_reads", serde_json::json!(2), true),
        (&modkit_bam(), &["--source", "mm"], "source", serde_json::json!("mm"), false),
        (&modkit_bam(), &["--combine-mods"], "combine_mods", serde_json::json!(true), false),
        (&modkit_bam(), &["--legacy-as-explicit"], "legacy_as_explicit", serde_json::json!(true), false),
        (&modkit_bam(), &["--min-mapq", "61"], "min_mapq", serde_json::json!(61), true),
        (&modkit_bam(), &["--include-supplementary"], "include_supplementary", serde_json::json!(true), false),
        (&modkit_bam(), &["--include-duplicates"], "include_duplicates", serde_json::json!(true), false),
        (&modkit_bam(), &["--skip-bad-mod-tags"], "skip_bad_mod_tags", serde_json::json!(true), false),
        (&bismark_pe_bam(), &["--include-overlap"], "include_overlap", serde_json::json!(true), true),
        (&bismark_pe_bam(), &["--min-base-qual", "30"], "min_base_qual", serde_json::json!(30), true),
        (&bismark_pe_bam(), &["--source", "bismark"], "source", serde_json::json!("bismark"), false),
    ];
    let mut default_counts: HashMap<PathBuf, Vec<(u64, u64, u64)>> = HashMap::new();
    for (i, (bam, flags, key, value, changes)) in cases.iter().enumerate() {
        let dir = tmp.path().join(i.to_string());
        std::fs::create_dir(&dir).unwrap();
        let expected = pileup_counts(bam, flags);
        let (got, recorded) = sites_counts(bam, flags, &dir);
        assert!(
            !expected.is_empty() || flags.contains(&"61"),
            "{flags:?}: pileup gave nothing"
        );
        assert_eq!(
            got,
            expected,
            "sites vs pileup with {flags:?} on {}",
            bam.display()
        );
        let recorded_value = &recorded["bam"][key];
        match value.as_f64() {
            Some(x) if value.is_f64() => {
                assert!(
                    (recorded_value.as_f64().unwrap() - x).abs() < 1e-6,
                    "{key}: {recorded}"
                )
            }
            _ => assert_eq!(recorded_value, value, "{key} in {recorded}"),
        }
        let threshold = &recorded["bam_thresholds"][0];
        assert_eq!(threshold["sample"], "x");
        if flags.contains(&"--no-filtering") {
            assert!(threshold["threshold"].is_null());
        }
        if flags.contains(&"--filter-threshold") {
            assert!((threshold["threshold"].as_f64().unwrap() - 0.9).abs() < 1e-6);
        }
        let base = default_counts
            .entry(bam.to_path_buf())
            .or_insert_with(|| pileup_counts(bam, &[]));
        if *changes {
            assert_ne!(&got, base, "{flags:?} should change the counts of this BAM");
        }
    }
}

#[test]
fn issue_19_one_name_per_idea_old_names_are_hidden_aliases() {
    let tmp = tempfile::tempdir().unwrap();
    let fasta = common::dss_dir().join("../modkit/CGI_ladder_3.6kb_ref.fa");
    let bam = common::dss_dir().join(
        "../modkit/CG_5mC_20230207_1700_6A_PAG66026_3c0abf27_oligo_741_adapters_modcalls_0th_sort_10_reads.bam",
    );
    // pileup --fasta, and the old --reference, give the same rows.
    let new = run_ok(&[
        "-q",
        "pileup",
        s(&bam),
        "--cpg",
        "--fasta",
        s(&fasta),
        "-o",
        "-",
    ]);
    let old = run_ok(&[
        "-q",
        "pileup",
        s(&bam),
        "--cpg",
        "--reference",
        s(&fasta),
        "-o",
        "-",
    ]);
    assert!(!new.stdout.is_empty());
    assert_eq!(new.stdout, old.stdout);
    let from_read = run_ok(&["-q", "pileup", s(&bam), "--cpg", "-o", "-"]);
    assert_ne!(
        new.stdout, from_read.stdout,
        "--fasta takes the CpG context from the reference"
    );

    // --reference-group (old: --reference) and --no-combine-strands (old: --no-strand-merge).
    let bismark = common::dss_dir().join("../methylkit/test.bismark_single_end.sorted.bam");
    let sheet = tmp.path().join("sheet.tsv");
    std::fs::write(
        &sheet,
        format!(
            "sample\tgroup\tpath\np\tfirst\t{b}\nq\tsecond\t{b}\n",
            b = s(&bismark)
        ),
    )
    .unwrap();
    let sites = |name: &str, flags: &[&str]| -> Table {
        let out = tmp.path().join(name);
        let mut args = vec!["-q", "sites", "--samples", s(&sheet), "--out", s(&out)];
        args.extend_from_slice(flags);
        run_ok(&args);
        read_table(&out)
    };
    let merged = sites("merged.parquet", &[]);
    let apart = sites("apart.parquet", &["--no-combine-strands"]);
    let apart_old = sites("apart_old.parquet", &["--no-strand-merge"]);
    assert_eq!(apart, apart_old);
    assert!(
        apart.rows.len() > merged.rows.len(),
        "strands kept apart give more sites"
    );
    let group_of_first = |flags: &[&str]| -> String {
        let mut args = vec!["check", "--samples", s(&sheet), "--json"];
        args.extend_from_slice(flags);
        let o = run_methvb(&args);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
            panic!("check --json: {e}: {}", String::from_utf8_lossy(&o.stdout))
        });
        v["groups"][0]["name"].as_str().unwrap().to_string()
    };
    assert_eq!(group_of_first(&[]), "first");
    assert_eq!(group_of_first(&["--reference-group", "second"]), "second");
    assert_eq!(group_of_first(&["--reference", "second"]), "second");

    // The old names are accepted but not advertised.
    for (cmd, old, new) in [
        ("pileup", "--reference ", "--fasta"),
        ("run", "--no-strand-merge", "--no-combine-strands"),
        ("run", "--reference ", "--reference-group"),
        ("check", "--no-strand-merge", "--no-combine-strands"),
    ] {
        let help = String::from_utf8(run_ok(&[cmd, "--help"]).stdout).unwrap();
        assert!(help.contains(new), "{cmd} --help lacks {new}");
        assert!(!help.contains(old), "{cmd} --help still shows {old}");
    }
    // run, fit, hyper and sites share the BAM options under one heading.
    for cmd in ["run", "fit", "hyper", "sites", "pileup"] {
        let help = String::from_utf8(run_ok(&[cmd, "--help"]).stdout).unwrap();
        for flag in [
            "--filter-threshold",
            "--no-filtering",
            "--min-mapq",
            "--combine-mods",
        ] {
            assert!(help.contains(flag), "{cmd} --help lacks {flag}");
        }
    }
}

/// `methvb report` reads the top regions' sites from the run's inputs again: each panel draws
/// one point per covered (site, sample) cell of the region, as `methvb sites` counts them; a
/// moved input is an error that names the way out.
#[test]
fn issue_19_report_draws_the_top_regions_from_the_inputs() {
    let tmp = tempfile::tempdir().unwrap();
    let (sim, out) = simulated_run(tmp.path());
    run_ok(&[
        "-q",
        "report",
        s(&out),
        "--plot-regions",
        "3",
        "--table-regions",
        "4",
    ]);
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    let by_rank = &html[html.find("<tbody class=\"by-rank\">").unwrap()..];
    let by_rank = &by_rank[..by_rank.find("</tbody>").unwrap()];
    let sites = tmp.path().join("sites.parquet");
    run_ok(&[
        "-q",
        "sites",
        "--samples",
        s(&sim.join("samples.tsv")),
        "--out",
        s(&sites),
    ]);
    let sites = read_table(&sites);
    let table = read_table(&out.join("regions.parquet"));
    let called = table
        .column("called")
        .iter()
        .filter(|c| ***c == common::Cell::Bool(true))
        .count();
    assert!(called >= 3, "{called} called");
    assert_eq!(by_rank.matches("<tr data-region=").count(), called.min(4));
    assert_eq!(html.matches("<figure id=\"cpg-").count(), 3);
    let samples: Vec<String> = ["control", "treated"]
        .iter()
        .flat_map(|g| (1..=3).map(move |i| format!("{g}_{i}")))
        .collect();
    for k in 1..=3 {
        let at = html
            .find(&format!("<figure id=\"cpg-{k}\" data-region=\""))
            .unwrap_or_else(|| panic!("no panel {k}"));
        let fig = &html[at..at + html[at..].find("</figure>").unwrap()];
        let id = &fig[fig.find("data-region=\"").unwrap() + 13..];
        let id = &id[..id.find('"').unwrap()];
        let row = table
            .rows
            .iter()
            .find(|r| r[table.col("region_id")].as_str() == id)
            .unwrap();
        assert_eq!(row[table.col("called")], common::Cell::Bool(true));
        let (chrom, start, end) = (
            row[table.col("chrom")].as_str(),
            row[table.col("start")].as_int(),
            row[table.col("end")].as_int(),
        );
        // Cells with reads at the region's sites (a site needs a read in both groups).
        let mut covered = 0;
        for r in &sites.rows {
            let pos = r[sites.col("pos")].as_int();
            if r[sites.col("chrom")].as_str() != chrom || pos < start || pos >= end {
                continue;
            }
            let n: Vec<i128> = samples
                .iter()
                .map(|x| r[sites.col(&format!("{x}_n"))].as_int())
                .collect();
            if n[..3].iter().any(|&v| v > 0) && n[3..].iter().any(|&v| v > 0) {
                covered += n.iter().filter(|&&v| v > 0).count();
            }
        }
        assert_eq!(fig.matches("<circle").count(), covered, "panel of {id}");
    }
    // The inputs moved away: a clear error, and --plot-regions 0 still writes the report.
    std::fs::rename(&sim, tmp.path().join("moved")).unwrap();
    let failed = run_methvb(&["report", s(&out)]);
    assert!(!failed.status.success());
    let err = String::from_utf8_lossy(&failed.stderr);
    assert!(
        err.contains("--plot-regions 0") && err.contains("samples.tsv"),
        "{err}"
    );
    run_ok(&["-q", "report", s(&out), "--plot-regions", "0"]);
}
