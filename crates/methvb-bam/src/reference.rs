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

    /// Loads contig `name` into `buf` (upper case).
    pub fn load(&mut self, name: &str, buf: &mut Vec<u8>) -> io::Result<()> {
        let region = Region::new(name, ..);
        let rec = self.reader.query(&region)?;
        buf.clear();
        buf.extend(rec.sequence().as_ref().iter().map(u8::to_ascii_uppercase));
        Ok(())
    }
}
