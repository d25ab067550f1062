//! Small outputs (JSON, HTML, BED, an index) published atomically: the bytes go to the hidden
//! `.<name>.tmp-<pid>` beside the destination, are synced, and the file is renamed into place,
//! so a reader never sees half a file under the final name. The Parquet outputs do the same
//! while streaming ([`crate::parquet_out::AtomicParquetWriter`]).

use std::io::Write;
use std::path::{Path, PathBuf};

/// The hidden temporary name of `path`: `.<name>.tmp-<pid>` in the same directory.
fn temporary(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// Writes `bytes` to `path` through a temporary file beside it, an fsync and a rename. On error
/// the temporary file is removed and the error names the file that failed.
///
/// # Examples
///
/// ```
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("calls.bed");
/// methvb_io::atomic::write_atomic(&path, b"chr1\t10\t20\n")?;
/// assert_eq!(std::fs::read(&path)?, b"chr1\t10\t20\n");
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = temporary(path);
    let named = |p: &Path| {
        let p = p.display().to_string();
        move |e: std::io::Error| std::io::Error::new(e.kind(), format!("{p}: {e}"))
    };
    let result = (|| {
        let mut f = std::fs::File::create(&tmp).map_err(named(&tmp))?;
        f.write_all(bytes).map_err(named(&tmp))?;
        f.sync_all().map_err(named(&tmp))?;
        drop(f);
        std::fs::rename(&tmp, path).map_err(named(path))
    })();
    if result.is_err() {
        // Best effort: do not leave the temporary file behind.
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.json");
        write_atomic(&path, b"old").unwrap();
        write_atomic(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("x.json")]);
    }

    #[test]
    fn error_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing-dir").join("x.bed");
        let e = write_atomic(&path, b"x").unwrap_err();
        assert!(e.to_string().contains("missing-dir"), "{e}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
