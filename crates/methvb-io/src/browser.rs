//! Genome-browser files of per-region results (what `methvb export` writes): a BED9 file of
//! called regions with a track line (name = region id, score = 1000 × prob_dm, colour by the
//! sign of Δ) and a bedGraph of the posterior mean Δ, both in genome order, and their BGZF copies
//! with tabix indexes (noodles), which IGV, the UCSC browser and `tabix` read.

use std::fmt::Write as _;
use std::io::{self, Write as _};

use noodles::bgzf;
use noodles::core::Position;
use noodles::csi::binning_index::index::header;
use noodles::csi::binning_index::index::reference_sequence::bin::Chunk;
use noodles::tabix;

/// RGB of a region whose Δ is above zero (red).
pub const RGB_UP: &str = "178,24,43";
/// RGB of a region whose Δ is below zero (blue).
pub const RGB_DOWN: &str = "33,102,172";
/// RGB of a region whose Δ is zero (grey).
pub const RGB_ZERO: &str = "128,128,128";

/// One region of the results table.
#[derive(Debug, Clone)]
pub struct Row {
    /// Region id.
    pub id: String,
    /// Index into [`Table::contigs`].
    pub contig: usize,
    /// 0-based start.
    pub start: u64,
    /// 0-based end (exclusive).
    pub end: u64,
    /// Called at the FDR target.
    pub called: bool,
    /// P(|Δ| > δ₀).
    pub prob_dm: f64,
    /// Posterior mean of each contrast (`delta_mean`, or `delta_<g>_mean` per group).
    pub delta: Vec<f64>,
}

/// The table's rows in genome order (contig order of the table, then start, end) and its
/// contigs.
#[derive(Debug)]
pub struct Table {
    /// Contig names, in genome order.
    pub contigs: Vec<String>,
    /// The regions.
    pub rows: Vec<Row>,
    /// Contrast names: `delta` (two groups) or `delta_<g>`.
    pub contrasts: Vec<String>,
}

impl Table {
    /// Sorts the rows into genome order: contig order of [`Table::contigs`], then start, end.
    pub fn sort(&mut self) {
        self.rows.sort_by_key(|r| (r.contig, r.start, r.end));
    }
}

/// The contrast of largest |Δ| of a row (two groups: the one contrast).
fn main_delta(row: &Row) -> f64 {
    row.delta
        .iter()
        .copied()
        .filter(|d| d.is_finite())
        .max_by(|a, b| a.abs().total_cmp(&b.abs()))
        .unwrap_or(f64::NAN)
}

/// BED score (0-1000) of a region: 1000 × prob_dm, rounded.
fn score(prob_dm: f64) -> u32 {
    if prob_dm.is_finite() {
        (prob_dm.clamp(0.0, 1.0) * 1000.0).round() as u32
    } else {
        0
    }
}

/// A track-line value: no double quotes inside.
fn quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "'"))
}

/// One browser file: a track line and the records (contig index, 0-based start and end, line).
#[derive(Debug, Clone)]
pub struct BrowserFile {
    header: String,
    records: Vec<(usize, u64, u64, String)>,
}

impl BrowserFile {
    /// Record lines (the track line not counted).
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether there is no record.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The plain text: the track line, then the records.
    pub fn text(&self) -> String {
        let mut s = self.header.clone();
        for (_, _, _, line) in &self.records {
            s.push_str(line);
        }
        s
    }

    /// BGZF bytes of `lines` and their tabix index (0-based BED coordinates; the track line is
    /// skipped as a header line, `tabix -S 1`).
    pub fn bgzip_with_index(&self, contigs: &[String]) -> io::Result<(Vec<u8>, Vec<u8>)> {
        let mut writer = bgzf::io::Writer::new(Vec::new());
        writer.write_all(self.header.as_bytes())?;
        let mut indexer = tabix::index::Indexer::default();
        indexer.set_header(header::Builder::bed().set_line_skip_count(1).build());
        let mut start_position = writer.virtual_position();
        for (contig, start, end, line) in &self.records {
            writer.write_all(line.as_bytes())?;
            let end_position = writer.virtual_position();
            // BED [start, end) 0-based is [start + 1, end] 1-based; an empty interval indexes its
            // start.
            let position = |x: u64| {
                usize::try_from(x)
                    .ok()
                    .and_then(|x| Position::try_from(x).ok())
                    .ok_or_else(|| {
                        io::Error::new(io::ErrorKind::InvalidData, "position out of range")
                    })
            };
            indexer.add_record(
                &contigs[*contig],
                position(*start + 1)?,
                position((*end).max(*start + 1))?,
                Chunk::new(start_position, end_position),
            )?;
            start_position = end_position;
        }
        let data = writer.finish()?;
        let index = indexer.build();
        let mut index_writer = tabix::io::Writer::new(Vec::new());
        index_writer.write_index(&index)?;
        let index_bytes = index_writer.into_inner().finish()?;
        Ok((data, index_bytes))
    }
}

/// `calls.bed`: BED9 of the called regions, track line naming `label`.
pub fn calls_bed(table: &Table, label: &str) -> BrowserFile {
    let header = format!(
        "track name={} description={} itemRgb=On useScore=0\n",
        quoted(&format!("methvb calls {label}")),
        quoted(&format!(
            "methvb called regions of {label}: score 1000 x prob_dm, red delta > 0, blue delta < 0"
        ))
    );
    let records = table
        .rows
        .iter()
        .filter(|r| r.called)
        .map(|r| {
            let d = main_delta(r);
            let rgb = if d > 0.0 {
                RGB_UP
            } else if d < 0.0 {
                RGB_DOWN
            } else {
                RGB_ZERO
            };
            let line = format!(
                "{}\t{}\t{}\t{}\t{}\t.\t{}\t{}\t{rgb}\n",
                table.contigs[r.contig],
                r.start,
                r.end,
                r.id,
                score(r.prob_dm),
                r.start,
                r.end
            );
            (r.contig, r.start, r.end, line)
        })
        .collect();
    BrowserFile { header, records }
}

/// The bedGraph of contrast `k` (posterior mean Δ of every region with a finite one).
pub fn delta_bedgraph(table: &Table, k: usize, label: &str) -> BrowserFile {
    let contrast = &table.contrasts[k];
    let header = format!(
        "track type=bedGraph name={} description={} visibility=full color={RGB_UP} \
         altColor={RGB_DOWN} autoScale=on alwaysZero=on\n",
        quoted(&format!("methvb {contrast} {label}")),
        quoted(&format!(
            "methvb posterior mean {contrast} per region of {label}"
        ))
    );
    let mut records = Vec::with_capacity(table.rows.len());
    for r in &table.rows {
        let d = r.delta[k];
        if !d.is_finite() {
            continue;
        }
        let mut line = String::new();
        let _ = writeln!(
            line,
            "{}\t{}\t{}\t{d}",
            table.contigs[r.contig], r.start, r.end
        );
        records.push((r.contig, r.start, r.end, line));
    }
    BrowserFile { header, records }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(contig: usize, start: u64, called: bool, delta: f64, prob: f64) -> Row {
        Row {
            id: format!("r{contig}_{start}"),
            contig,
            start,
            end: start + 100,
            called,
            prob_dm: prob,
            delta: vec![delta],
        }
    }

    #[test]
    fn bed9_lines_score_and_colour() {
        let table = Table {
            contigs: vec!["chr2".into(), "chr1".into()],
            rows: vec![
                row(0, 10, true, 0.3, 0.9996),
                row(0, 500, false, 0.01, 0.2),
                row(1, 5, true, -0.2, 0.95),
            ],
            contrasts: vec!["delta".into()],
        };
        let text = calls_bed(&table, "x").text();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("track name=\"methvb calls x\""));
        assert!(lines[0].contains("itemRgb=On"));
        assert_eq!(
            lines[1..],
            [
                "chr2\t10\t110\tr0_10\t1000\t.\t10\t110\t178,24,43",
                "chr1\t5\t105\tr1_5\t950\t.\t5\t105\t33,102,172",
            ]
        );
        let graph = delta_bedgraph(&table, 0, "x").text();
        assert_eq!(
            graph.lines().skip(1).collect::<Vec<_>>(),
            [
                "chr2\t10\t110\t0.3",
                "chr2\t500\t600\t0.01",
                "chr1\t5\t105\t-0.2"
            ]
        );
        assert!(graph.starts_with("track type=bedGraph "));
    }

    #[test]
    fn scores_are_clamped_and_rounded() {
        assert_eq!(score(0.0), 0);
        assert_eq!(score(0.4996), 500);
        assert_eq!(score(1.2), 1000);
        assert_eq!(score(f64::NAN), 0);
    }
}
