//! Indexed, parallel pileup: a BAM with a `.bai`/`.csi` index is cut into fixed-size regions per
//! contig, regions are piled up in parallel (rayon, in batches of a few regions per thread) and
//! their rows are emitted in contig and position order, so memory stays bounded by one batch.
//!
//! Each region `[start, end)` reads the records overlapping `[start, end]` (one base more, for
//! strand combining) and keeps the rows with `start <= pos < end`; a record is counted in the
//! stats by the region it starts in. Results equal the sequential single pass (tested).

use std::fs::File;
use std::path::Path;
use std::sync::{Arc, Mutex};

use methvb_io::{ErrorKind, ReadError};
use noodles::bam;
use noodles::core::{Position, Region};
use noodles::csi;
use noodles::sam;
use rayon::prelude::*;

use crate::pileup::{Pileup, PileupError, PileupOptions, PileupRow, PileupStats};
use crate::record::{self, ReadBuf};
use crate::{BamOptions, pileup_err, resolve_filter};

#[derive(Clone)]
enum AnyIndex {
    Bai(bam::bai::Index),
    Csi(csi::Index),
}

type Reader = bam::io::Reader<noodles::bgzf::io::Reader<File>>;

impl AnyIndex {
    fn read(path: &Path) -> std::io::Result<AnyIndex> {
        let mut bai = path.as_os_str().to_owned();
        bai.push(".bai");
        let mut csi_p = path.as_os_str().to_owned();
        csi_p.push(".csi");
        if Path::new(&bai).exists() {
            Ok(AnyIndex::Bai(bam::bai::fs::read(bai)?))
        } else if Path::new(&csi_p).exists() {
            Ok(AnyIndex::Csi(csi::fs::read(csi_p)?))
        } else {
            Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no .bai or .csi index beside the BAM",
            ))
        }
    }

    /// Whether the index has any bins (records) for reference `tid`.
    fn has_records(&self, tid: usize) -> bool {
        match self {
            AnyIndex::Bai(i) => i
                .reference_sequences()
                .get(tid)
                .is_some_and(|r| !r.bins().is_empty()),
            AnyIndex::Csi(i) => i
                .reference_sequences()
                .get(tid)
                .is_some_and(|r| !r.bins().is_empty()),
        }
    }

    /// Opens a plain reader positioned after the header.
    fn open(path: &Path) -> std::io::Result<(Reader, sam::Header)> {
        let mut r = bam::io::Reader::new(File::open(path)?);
        let header = r.read_header()?;
        Ok((r, header))
    }

    fn query<'r>(
        &self,
        reader: &'r mut Reader,
        header: &sam::Header,
        region: &Region,
    ) -> std::io::Result<bam::io::reader::Query<'r, noodles::bgzf::io::Reader<File>>> {
        match self {
            AnyIndex::Bai(i) => reader.query(header, i, region),
            AnyIndex::Csi(i) => reader.query(header, i, region),
        }
    }
}

/// Whether a `.bai` or `.csi` file exists beside `path`.
pub fn has_index(path: &Path) -> bool {
    ["bai", "csi"].iter().any(|ext| {
        let mut p = path.as_os_str().to_owned();
        p.push(".");
        p.push(ext);
        Path::new(&p).exists()
    })
}

struct Worker {
    reader: Reader,
    record: bam::Record,
    buf: ReadBuf,
}

fn run_region(
    w: &mut Worker,
    index: &AnyIndex,
    header: &sam::Header,
    opts: &PileupOptions,
    contigs: &Arc<Vec<String>>,
    (tid, start, end, len): (usize, u64, u64, u64),
) -> Result<(Vec<PileupRow>, PileupStats), PileupError> {
    let to_pos = |x: u64| {
        Position::try_from(x as usize + 1)
            .map_err(|e| PileupError::Io(std::io::Error::new(std::io::ErrorKind::InvalidInput, e)))
    };
    let region = Region::new(
        contigs[tid].as_str(),
        to_pos(start)?..=to_pos(end.min(len - 1))?,
    );
    let mut rows = Vec::new();
    let mut pileup: Option<Pileup> = None;
    let mut query = index.query(&mut w.reader, header, &region)?;
    while query.read_record(&mut w.record)? != 0 {
        w.buf.load_bam(&w.record)?;
        let p = match pileup.as_mut() {
            Some(p) => p,
            None => {
                let mut p = Pileup::new(opts.clone(), Arc::clone(contigs), true)?;
                p.set_region(tid, start, end)?;
                pileup.insert(p)
            }
        };
        p.push(&w.buf, &mut rows)?;
    }
    let Some(mut p) = pileup else {
        return Ok((rows, PileupStats::default()));
    };
    p.finish(&mut rows)?;
    rows.retain(|r| r.pos >= start && r.pos < end);
    let mut stats = p.stats().clone();
    stats.rows = rows.len() as u64;
    Ok((rows, stats))
}

fn add_stats(total: &mut PileupStats, s: &PileupStats) {
    total.records += s.records;
    total.records_with_calls += s.records_with_calls;
    total.calls += s.calls;
    total.rows += s.rows;
    total.skipped.add_all(&s.skipped);
}

/// The pileup of an indexed, coordinate-sorted BAM, regions of `chunk` bases processed in
/// parallel on the current rayon pool; rows reach `on_row` in order. Unmapped records are not
/// read (they carry no positions).
pub fn pileup_file_indexed(
    path: &Path,
    opts: &BamOptions,
    chunk: u64,
    mut on_row: impl FnMut(&PileupRow, &str) -> std::io::Result<()>,
) -> Result<PileupStats, ReadError> {
    let io_err = |e: std::io::Error| ReadError::new(path, 0, ErrorKind::Io(e));
    let filter = resolve_filter(path, opts)?;
    let popts = PileupOptions {
        filter,
        ..opts.pileup.clone()
    };
    let index = AnyIndex::read(path).map_err(io_err)?;
    let (_, header) = AnyIndex::open(path).map_err(io_err)?;
    let contigs = Arc::new(record::contig_names(&header));
    let lengths: Vec<u64> = header
        .reference_sequences()
        .values()
        .map(|r| usize::from(r.length()) as u64)
        .collect();
    let chunk = chunk.max(1_000);
    let regions: Vec<(usize, u64, u64, u64)> = lengths
        .iter()
        .enumerate()
        .filter(|&(tid, &len)| len > 0 && index.has_records(tid))
        .flat_map(|(tid, &len)| {
            (0..len.div_ceil(chunk)).map(move |i| (tid, i * chunk, ((i + 1) * chunk).min(len), len))
        })
        .collect();
    let threads = rayon::current_num_threads().max(1);
    let batch = threads * 8;
    // One reader per pool thread, opened once; the index is shared.
    let workers: Vec<Mutex<Option<Worker>>> = (0..threads).map(|_| Mutex::new(None)).collect();
    let mut total = PileupStats::default();
    for group in regions.chunks(batch) {
        let results: Vec<Result<(Vec<PileupRow>, PileupStats), PileupError>> = group
            .par_iter()
            .map(|&reg| {
                let slot = rayon::current_thread_index().unwrap_or(0) % threads;
                let mut guard = workers[slot].lock().unwrap_or_else(|e| e.into_inner());
                if guard.is_none() {
                    *guard = Some(Worker {
                        reader: AnyIndex::open(path)?.0,
                        record: bam::Record::default(),
                        buf: ReadBuf::default(),
                    });
                }
                // Invariant: just filled above.
                let w = guard
                    .as_mut()
                    .ok_or_else(|| PileupError::Io(std::io::Error::other("worker")))?;
                run_region(w, &index, &header, &popts, &contigs, reg)
            })
            .collect();
        for r in results {
            let (rows, stats) = r.map_err(|e| pileup_err(path, e))?;
            for row in &rows {
                on_row(row, &contigs[row.tid]).map_err(io_err)?;
            }
            add_stats(&mut total, &stats);
        }
    }
    Ok(total)
}
