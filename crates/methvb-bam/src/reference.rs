//! An indexed reference FASTA (`.fai`; bgzipped with `.gzi` also works) read one contig at a
//! time, upper-cased, for CpG context.

use std::fs::File;
use std::io;
use std::path::Path;

use noodles::core::Region;
use noodles::fasta;

/// An indexed FASTA reader.
pub struct Reference {
    reader: fasta::io::IndexedReader<fasta::io::BufReader<File>>,
}

impl std::fmt::Debug for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Reference")
    }
}

impl Reference {
    /// Opens `path` and its `.fai` index.
    pub fn open(path: &Path) -> io::Result<Reference> {
        let reader = fasta::io::indexed_reader::Builder::default()
            .build_from_path(path)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        Ok(Reference { reader })
    }

    /// Loads the 0-based half-open range `[start, end)` of contig `name` into `buf` (upper case;
    /// clipped to the contig).
    pub fn load_range(
        &mut self,
        name: &str,
        start: u64,
        end: u64,
        buf: &mut Vec<u8>,
    ) -> io::Result<()> {
        use noodles::core::Position;
        let len = self
            .reader
            .index()
            .as_ref()
            .iter()
            .find(|r| r.name() == name.as_bytes())
            .map(|r| r.length())
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("contig {name} not in the .fai"),
                )
            })?;
        buf.clear();
        let end = end.min(len);
        if start >= end {
            return Ok(());
        }
        let to_pos = |x: u64| {
            Position::try_from(x as usize)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
        };
        let region = Region::new(name, to_pos(start + 1)?..=to_pos(end)?);
        let rec = self.reader.query(&region)?;
        buf.extend(rec.sequence().as_ref().iter().map(u8::to_ascii_uppercase));
        Ok(())
    }

    /// Loads contig `name` into `buf` (upper case).
    pub fn load(&mut self, name: &str, buf: &mut Vec<u8>) -> io::Result<()> {
        let region = Region::new(name, ..);
        let rec = self.reader.query(&region)?;
        buf.clear();
        buf.extend(rec.sequence().as_ref().iter().map(u8::to_ascii_uppercase));
        Ok(())
    }
}
