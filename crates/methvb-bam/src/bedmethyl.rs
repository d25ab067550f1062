//! modkit-style 18-column bedMethyl output, written atomically through
//! [`methvb_io::atomic::AtomicFile`] (the hidden `.<name>.tmp-<pid>`, fsynced and renamed on
//! [`BedMethylWriter::finish`]); `.gz` / `.bgz` paths are BGZF-compressed (readable by gzip,
//! indexable by tabix). Or to standard output ([`BedMethylWriter::stdout`]), like
//! `modkit pileup ... -`.

use std::io::{self, BufWriter, Write};
use std::path::Path;

use methvb_io::atomic::AtomicFile;
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
    Plain(AtomicFile),
    Bgzf(Box<bgzf::io::Writer<AtomicFile>>),
    Stdout(BufWriter<io::Stdout>),
}

/// A bedMethyl writer that only appears at its final path on [`BedMethylWriter::finish`];
/// dropped unfinished, it removes its temporary file.
pub struct BedMethylWriter {
    sink: Sink,
    mixed_delim: bool,
    line: String,
}

impl std::fmt::Debug for BedMethylWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let dest = match &self.sink {
            Sink::Plain(file) => file.path(),
            Sink::Bgzf(w) => w.get_ref().path(),
            Sink::Stdout(_) => Path::new("-"),
        };
        f.debug_struct("BedMethylWriter")
            .field("dest", &dest)
            .finish_non_exhaustive()
    }
}

impl BedMethylWriter {
    /// Creates the hidden temporary `.<name>.tmp-<pid>` beside `dest`.
    pub fn create(dest: &Path, mixed_delim: bool) -> io::Result<BedMethylWriter> {
        let file = AtomicFile::create(dest)?;
        let name = dest.to_string_lossy();
        let sink = if name.ends_with(".gz") || name.ends_with(".bgz") {
            Sink::Bgzf(Box::new(bgzf::io::Writer::new(file)))
        } else {
            Sink::Plain(file)
        };
        Ok(BedMethylWriter {
            sink,
            mixed_delim,
            line: String::new(),
        })
    }

    /// Writes plain text to standard output (no temporary file, nothing to rename).
    pub fn stdout(mixed_delim: bool) -> BedMethylWriter {
        BedMethylWriter {
            sink: Sink::Stdout(BufWriter::with_capacity(1 << 16, io::stdout())),
            mixed_delim,
            line: String::new(),
        }
    }

    /// Writes one row.
    pub fn write(&mut self, row: &PileupRow, contig: &str) -> io::Result<()> {
        format_row(row, contig, self.mixed_delim, &mut self.line);
        self.line.push('\n');
        match &mut self.sink {
            Sink::Plain(w) => w.write_all(self.line.as_bytes()),
            Sink::Bgzf(w) => w.write_all(self.line.as_bytes()),
            Sink::Stdout(w) => w.write_all(self.line.as_bytes()),
        }
    }

    /// Flushes, syncs and renames the file into place (or flushes standard output).
    pub fn finish(self) -> io::Result<()> {
        match self.sink {
            Sink::Plain(file) => file.commit(),
            Sink::Bgzf(w) => w.finish()?.commit(),
            Sink::Stdout(mut w) => w.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mm::ModCode;
    use crate::pileup::RowStrand;

    fn row(pos: u64) -> PileupRow {
        PileupRow {
            tid: 0,
            pos,
            strand: RowStrand::Plus,
            code: ModCode::Code(b'm'),
            n_valid: 4,
            n_mod: 1,
            n_canonical: 3,
            n_other_mod: 0,
            n_delete: 0,
            n_fail: 0,
            n_diff: 0,
            n_nocall: 0,
        }
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn appears_on_finish_under_the_shared_temporary_name_until_then() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["p.bed", "p.bed.gz"] {
            let dest = dir.path().join(name);
            let mut w = BedMethylWriter::create(&dest, false).unwrap();
            w.write(&row(10), "chr1").unwrap();
            let tmp = format!(".{name}.tmp-{}", std::process::id());
            assert!(names(dir.path()).contains(&tmp), "{:?}", names(dir.path()));
            assert!(!dest.exists());
            w.finish().unwrap();
            assert!(!names(dir.path()).contains(&tmp));
        }
        assert_eq!(names(dir.path()), ["p.bed", "p.bed.gz"]);
        let plain = std::fs::read_to_string(dir.path().join("p.bed")).unwrap();
        assert!(plain.starts_with("chr1\t10\t11\tm\t4\t+\t"), "{plain}");
        let mut text = String::new();
        io::Read::read_to_string(
            &mut bgzf::io::Reader::new(std::fs::File::open(dir.path().join("p.bed.gz")).unwrap()),
            &mut text,
        )
        .unwrap();
        assert_eq!(text, plain);
    }

    #[test]
    fn dropped_unfinished_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["p.bed", "p.bed.gz"] {
            let mut w = BedMethylWriter::create(&dir.path().join(name), true).unwrap();
            w.write(&row(3), "chr2").unwrap();
        }
        assert_eq!(names(dir.path()), Vec::<String>::new());
    }

    #[test]
    fn errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("no-such-dir").join("p.bed");
        let e = BedMethylWriter::create(&dest, false).unwrap_err();
        assert!(e.to_string().contains("no-such-dir"), "{e}");
    }
}
