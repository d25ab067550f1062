//! modkit-style 18-column bedMethyl output, written atomically (temporary file + rename);
//! `.gz` / `.bgz` paths are BGZF-compressed (readable by gzip, indexable by tabix). Or to
//! standard output ([`BedMethylWriter::stdout`]), like `modkit pileup ... -`.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use noodles::bgzf;

use crate::pileup::PileupRow;

/// Formats one row: `chrom start end code score strand start end 255,0,0 N_valid pct N_mod
/// N_canonical N_other_mod N_delete N_fail N_diff N_nocall`, all tab-separated (modkit
/// `--only-tabs`), or with single spaces between fields 10-18 when `mixed_delim` (modkit default).
/// The percentage is `100 * N_mod / N_valid` computed in `f32` and printed with two decimals, as
/// modkit does.
pub fn format_row(row: &PileupRow, contig: &str, mixed_delim: bool, line: &mut String) {
    use std::fmt::Write as _;
    line.clear();
    let pct = row.n_mod as f32 / row.n_valid as f32 * 100f32;
    let d = if mixed_delim { ' ' } else { '\t' };
    // Writing to a String cannot fail.
    let _ = write!(
        line,
        "{contig}\t{s}\t{e}\t{code}\t{v}\t{strand}\t{s}\t{e}\t255,0,0\t{v}{d}{pct:.2}{d}{m}{d}{c}{d}{o}{d}{del}{d}{f}{d}{diff}{d}{nc}",
        s = row.pos,
        e = row.pos + 1,
        code = row.code,
        v = row.n_valid,
        strand = row.strand.as_char(),
        m = row.n_mod,
        c = row.n_canonical,
        o = row.n_other_mod,
        del = row.n_delete,
        f = row.n_fail,
        diff = row.n_diff,
        nc = row.n_nocall,
    );
}

enum Sink {
    Plain(BufWriter<File>),
    Bgzf(Box<bgzf::io::Writer<File>>),
    Stdout(BufWriter<io::Stdout>),
}

/// A bedMethyl writer that only appears at its final path on [`BedMethylWriter::finish`].
pub struct BedMethylWriter {
    sink: Option<Sink>,
    tmp: PathBuf,
    dest: PathBuf,
    mixed_delim: bool,
    line: String,
}

impl std::fmt::Debug for BedMethylWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BedMethylWriter")
            .field("dest", &self.dest)
            .finish_non_exhaustive()
    }
}

impl BedMethylWriter {
    /// Creates `dest.tmp.<pid>` beside `dest`.
    pub fn create(dest: &Path, mixed_delim: bool) -> io::Result<BedMethylWriter> {
        let mut tmp = dest.as_os_str().to_owned();
        tmp.push(format!(".tmp.{}", std::process::id()));
        let tmp = PathBuf::from(tmp);
        let file = File::create(&tmp)?;
        let name = dest.to_string_lossy();
        let sink = if name.ends_with(".gz") || name.ends_with(".bgz") {
            Sink::Bgzf(Box::new(bgzf::io::Writer::new(file)))
        } else {
            Sink::Plain(BufWriter::new(file))
        };
        Ok(BedMethylWriter {
            sink: Some(sink),
            tmp,
            dest: dest.to_path_buf(),
            mixed_delim,
            line: String::new(),
        })
    }

    /// Writes plain text to standard output (no temporary file, nothing to rename).
    pub fn stdout(mixed_delim: bool) -> BedMethylWriter {
        BedMethylWriter {
            sink: Some(Sink::Stdout(BufWriter::with_capacity(
                1 << 16,
                io::stdout(),
            ))),
            tmp: PathBuf::new(),
            dest: PathBuf::from("-"),
            mixed_delim,
            line: String::new(),
        }
    }

    /// Writes one row.
    pub fn write(&mut self, row: &PileupRow, contig: &str) -> io::Result<()> {
        format_row(row, contig, self.mixed_delim, &mut self.line);
        self.line.push('\n');
        match self.sink.as_mut() {
            Some(Sink::Plain(w)) => w.write_all(self.line.as_bytes()),
            Some(Sink::Bgzf(w)) => w.write_all(self.line.as_bytes()),
            Some(Sink::Stdout(w)) => w.write_all(self.line.as_bytes()),
            None => Err(io::Error::other("writer already finished")),
        }
    }

    /// Flushes, closes and renames the file into place.
    pub fn finish(mut self) -> io::Result<()> {
        match self.sink.take() {
            Some(Sink::Plain(mut w)) => {
                w.flush()?;
                w.get_ref().sync_all()?;
            }
            Some(Sink::Bgzf(w)) => {
                let f = w.finish()?;
                f.sync_all()?;
            }
            Some(Sink::Stdout(mut w)) => return w.flush(),
            None => {}
        }
        std::fs::rename(&self.tmp, &self.dest)
    }
}

impl Drop for BedMethylWriter {
    fn drop(&mut self) {
        if let Some(sink) = self.sink.take()
            && !matches!(sink, Sink::Stdout(_))
        {
            drop(sink);
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}
