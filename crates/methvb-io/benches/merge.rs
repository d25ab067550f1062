//! Plain throughput benchmark of parse + merge (+ regions): `cargo bench -p methvb-io --bench merge`.
//!
//! Synthetic DSS tables held in memory (no disk I/O): `S` samples, each covering ~70 % of a grid
//! of CpG positions on three contigs. Prints sites/s for parsing alone, the merge alone (from
//! in-memory sources), parse + merge into Arrow batches, and parse + merge + clustering.

use std::io::Cursor;
use std::path::Path;
use std::time::Instant;

use methvb_io::SiteSource;
use methvb_io::contigs::ContigOrder;
use methvb_io::format::Format;
use methvb_io::merge::{SiteMerger, VecSource};
use methvb_io::regions::{RegionBuilder, RegionFilters, RegionSpec, RegionStream};
use methvb_io::sample::{ReaderOptions, SampleReader};

const CONTIGS: [&str; 3] = ["chr1", "chr2", "chr3"];

/// Deterministic xorshift so the benchmark needs no RNG crate.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

type Rows = Vec<(&'static str, u64, u32, u32)>;

fn sample_rows(seed: u64, sites_per_contig: u64) -> Rows {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut rows = Vec::new();
    for c in CONTIGS {
        let mut pos = 10_000;
        for _ in 0..sites_per_contig {
            pos += 2 + rng.next() % 60;
            if rng.next() % 10 < 7 {
                let n = 1 + (rng.next() % 40) as u32;
                let m = (rng.next() % (n as u64 + 1)) as u32;
                rows.push((c, pos, m, n));
            }
        }
    }
    rows
}

fn dss_text(rows: &Rows) -> Vec<u8> {
    let mut s = String::from("chr\tpos\tN\tX\n");
    for (c, p, m, n) in rows {
        s.push_str(&format!("{c}\t{}\t{n}\t{m}\n", p + 1));
    }
    s.into_bytes()
}

fn readers(texts: &[Vec<u8>]) -> Vec<Box<dyn SiteSource + Send>> {
    let opts = ReaderOptions {
        format: Some(Format::Dss),
        ..Default::default()
    };
    texts
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let r = SampleReader::from_reader(
                Path::new(&format!("s{i}.txt")),
                Box::new(Cursor::new(t.clone())),
                &opts,
            )
            .expect("open");
            Box::new(r) as Box<dyn SiteSource + Send>
        })
        .collect()
}

fn report(what: &str, sites: u64, secs: f64) {
    println!(
        "{what:<48} {:>8.2} M sites/s ({sites} sites in {secs:.3} s)",
        sites as f64 / secs / 1e6
    );
}

fn main() {
    let per_contig: u64 = std::env::var("METHVB_BENCH_SITES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(400_000);
    for n_samples in [4usize, 16] {
        let rows: Vec<Rows> = (0..n_samples)
            .map(|i| sample_rows(i as u64 + 1, per_contig))
            .collect();
        let texts: Vec<Vec<u8>> = rows.iter().map(dss_text).collect();
        let input_sites: u64 = rows.iter().map(|r| r.len() as u64).sum();
        let mb: f64 = texts.iter().map(|t| t.len() as f64).sum::<f64>() / 1e6;
        println!("-- {n_samples} samples, {input_sites} input sites, {mb:.1} MB of DSS text");

        let t = Instant::now();
        let mut n = 0u64;
        for mut r in readers(&texts) {
            while r.next_site().expect("parse").is_some() {
                n += 1;
            }
        }
        report("parse only", n, t.elapsed().as_secs_f64());

        let sources: Vec<Box<dyn SiteSource + Send>> = rows
            .iter()
            .enumerate()
            .map(|(i, r)| {
                Box::new(VecSource::new(format!("s{i}"), r)) as Box<dyn SiteSource + Send>
            })
            .collect();
        let t = Instant::now();
        let mut mg = SiteMerger::new(sources, ContigOrder::Learned).expect("merge");
        let mut merged = 0u64;
        while let Some(b) = mg.next_batch(65_536).expect("batch") {
            merged += b.num_rows() as u64;
        }
        report(
            "merge only (in-memory sources), input sites",
            input_sites,
            t.elapsed().as_secs_f64(),
        );

        let t = Instant::now();
        let mut mg = SiteMerger::new(readers(&texts), ContigOrder::Learned).expect("merge");
        let mut m2 = 0u64;
        while let Some(b) = mg.next_batch(65_536).expect("batch") {
            m2 += b.num_rows() as u64;
        }
        assert_eq!(m2, merged);
        report(
            "parse + merge, input sites",
            input_sites,
            t.elapsed().as_secs_f64(),
        );
        println!("{:<48} {merged} merged rows", "");

        let t = Instant::now();
        let mg = SiteMerger::new(readers(&texts), ContigOrder::Learned).expect("merge");
        let groups = (0..n_samples).map(|i| i % 2).collect();
        let rb = RegionBuilder::new(RegionSpec::default(), RegionFilters::default(), groups)
            .expect("rb");
        let mut stream = RegionStream::new(mg, rb, 65_536);
        let mut regions = 0u64;
        for r in stream.by_ref() {
            r.expect("region");
            regions += 1;
        }
        report(
            "parse + merge + clusters, input sites",
            input_sites,
            t.elapsed().as_secs_f64(),
        );
        println!("{:<48} {regions} regions", "");
    }
}
