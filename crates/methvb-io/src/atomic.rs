//! Atomic, durable output files: every file methvb writes goes through [`AtomicFile`], so a
//! reader never sees half a file under the final name and a crash right after a run cannot
//! leave a file that exists but is empty.
//!
//! [`AtomicFile::create`] opens the hidden temporary `.<name>.tmp-<pid>` beside the destination
//! `<name>` (a name that is already hidden keeps its single leading dot: `.x.fitted` gets
//! `.x.fitted.tmp-<pid>`). `methvb run` recognises stale temporaries of killed runs by exactly
//! this shape, and the pid tells it whether their writer still runs. The bytes are streamed
//! through a buffer; [`AtomicFile::commit`] flushes them, fsyncs the file, renames it over the
//! destination and fsyncs the directory (on Unix; elsewhere the directory cannot be opened for
//! syncing). An `AtomicFile` dropped without `commit` (an error, a panic, Ctrl-C unwinding)
//! removes its temporary. Every error names the file the failing operation concerned.
//!
//! [`write_atomic`] writes a whole buffer (JSON, HTML, BED, an index); the Parquet outputs
//! ([`crate::parquet_out::AtomicParquetWriter`]), the bedMethyl writer and the simulator stream
//! into an `AtomicFile`.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// Buffer between the writer and the temporary file (the simulator's and bedMethyl's
/// record-by-record writes would otherwise be one system call each).
const BUFFER_BYTES: usize = 1 << 16;

/// A file written under a hidden temporary name and renamed to its destination by
/// [`commit`](Self::commit); see the [module docs](self).
///
/// # Examples
///
/// ```
/// use std::io::Write;
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("calls.bed");
/// let mut file = methvb_io::atomic::AtomicFile::create(&path)?;
/// writeln!(file, "chr1\t10\t20")?;
/// assert!(!path.exists(), "nothing under the final name before commit");
/// file.commit()?;
/// assert_eq!(std::fs::read(&path)?, b"chr1\t10\t20\n");
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct AtomicFile {
    // Declared before `temporary`: fields drop in order, so the file is closed before the
    // temporary is removed (Windows cannot remove an open file).
    out: BufWriter<File>,
    temporary: Temporary,
}

/// The temporary file of an [`AtomicFile`], removed on drop until it has been renamed.
#[derive(Debug)]
struct Temporary {
    tmp: PathBuf,
    dest: PathBuf,
    renamed: bool,
}

impl Drop for Temporary {
    fn drop(&mut self) {
        if !self.renamed {
            // Best effort: an error is already on its way to the caller, and a leftover is
            // recognised by its name and removed by a later run.
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// `err` with `what` (which names the file) in front, keeping its kind.
fn named(what: String, err: io::Error) -> io::Error {
    io::Error::new(err.kind(), format!("{what}: {err}"))
}

impl AtomicFile {
    /// Creates (or truncates, if a killed writer with the same pid left it) the temporary
    /// file beside `dest`. Nothing appears under `dest` until [`commit`](Self::commit).
    pub fn create(dest: &Path) -> io::Result<Self> {
        let name = dest.file_name().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{}: the path does not end in a file name", dest.display()),
            )
        })?;
        let mut hidden = OsString::new();
        if !name.to_string_lossy().starts_with('.') {
            hidden.push(".");
        }
        hidden.push(name);
        hidden.push(format!(".tmp-{}", std::process::id()));
        let tmp = dest.with_file_name(hidden);
        let file =
            File::create(&tmp).map_err(|e| named(format!("creating {}", tmp.display()), e))?;
        Ok(Self {
            out: BufWriter::with_capacity(BUFFER_BYTES, file),
            temporary: Temporary {
                tmp,
                dest: dest.to_path_buf(),
                renamed: false,
            },
        })
    }

    /// The destination (where the file appears on [`commit`](Self::commit)).
    pub fn path(&self) -> &Path {
        &self.temporary.dest
    }

    /// Flushes the buffer, fsyncs the file, renames it to the destination (replacing a file
    /// there) and fsyncs the directory so the rename survives a crash. On error the temporary
    /// is removed, unless the rename already happened (then only the directory sync failed
    /// and the complete file is in place).
    pub fn commit(self) -> io::Result<()> {
        let Self {
            mut out,
            mut temporary,
        } = self;
        let tmp = &temporary.tmp;
        let writing = |e| named(format!("writing {}", tmp.display()), e);
        out.flush().map_err(writing)?;
        let file = out.into_inner().map_err(|e| writing(e.into_error()))?;
        file.sync_all()
            .map_err(|e| named(format!("syncing {}", tmp.display()), e))?;
        drop(file);
        std::fs::rename(tmp, &temporary.dest).map_err(|e| {
            named(
                format!("renaming {} to {}", tmp.display(), temporary.dest.display()),
                e,
            )
        })?;
        temporary.renamed = true;
        sync_directory(&temporary.dest)
    }
}

/// Fsyncs the directory holding `dest`, which makes a rename into it durable.
#[cfg(unix)]
fn sync_directory(dest: &Path) -> io::Result<()> {
    let dir = match dest.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let result = File::open(dir).and_then(|d| d.sync_all());
    match result {
        // Some file systems (network and FUSE ones) refuse to sync a directory; the file
        // itself is synced and in place, which is all they can offer.
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::InvalidInput | io::ErrorKind::Unsupported
            ) =>
        {
            Ok(())
        }
        other => other.map_err(|e| named(format!("syncing directory {}", dir.display()), e)),
    }
}

/// The standard library cannot open a directory to sync it on this platform (Windows).
#[cfg(not(unix))]
fn sync_directory(_dest: &Path) -> io::Result<()> {
    Ok(())
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let tmp = &self.temporary.tmp;
        self.out
            .write(buf)
            .map_err(|e| named(format!("writing {}", tmp.display()), e))
    }

    // Forwarded rather than left to the default loop over `write`: `BufWriter` copies a small
    // buffer in one step.
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        let tmp = &self.temporary.tmp;
        self.out
            .write_all(buf)
            .map_err(|e| named(format!("writing {}", tmp.display()), e))
    }

    fn flush(&mut self) -> io::Result<()> {
        let tmp = &self.temporary.tmp;
        self.out
            .flush()
            .map_err(|e| named(format!("writing {}", tmp.display()), e))
    }
}

/// Writes `bytes` to `path` through an [`AtomicFile`]: a temporary file beside it, an fsync and
/// a rename. On error the temporary file is removed and the error names the file that failed.
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
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = AtomicFile::create(path)?;
    file.write_all(bytes)?;
    file.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn replaces_the_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.json");
        write_atomic(&path, b"old").unwrap();
        write_atomic(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        assert_eq!(names(dir.path()), ["x.json"]);
    }

    #[test]
    fn streams_under_the_hidden_temporary_until_commit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.bed");
        std::fs::write(&path, "old\n").unwrap();
        let mut f = AtomicFile::create(&path).unwrap();
        assert_eq!(f.path(), path);
        // More than the buffer, so some bytes reach the temporary before commit.
        let line = [b'a'; 1000];
        for _ in 0..100 {
            f.write_all(&line).unwrap();
        }
        let tmp = format!(".x.bed.tmp-{}", std::process::id());
        assert_eq!(names(dir.path()), [tmp.as_str(), "x.bed"]);
        assert_eq!(
            std::fs::read(&path).unwrap(),
            b"old\n",
            "untouched until commit"
        );
        f.commit().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), [b'a'; 100_000]);
        assert_eq!(names(dir.path()), ["x.bed"]);
    }

    #[test]
    fn a_hidden_destination_keeps_one_leading_dot() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".x.fitted");
        let f = AtomicFile::create(&path).unwrap();
        let tmp = format!(".x.fitted.tmp-{}", std::process::id());
        assert_eq!(names(dir.path()), [tmp]);
        f.commit().unwrap();
        assert_eq!(names(dir.path()), [".x.fitted"]);
    }

    #[test]
    fn dropped_uncommitted_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.bed");
        {
            let mut f = AtomicFile::create(&path).unwrap();
            f.write_all(b"half a file").unwrap();
            f.flush().unwrap();
        }
        assert_eq!(names(dir.path()), Vec::<String>::new());
    }

    #[test]
    fn error_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing-dir").join("x.bed");
        let e = write_atomic(&path, b"x").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        let tmp = path.with_file_name(format!(".x.bed.tmp-{}", std::process::id()));
        assert!(e.to_string().contains(&tmp.display().to_string()), "{e}");
        assert_eq!(names(dir.path()), Vec::<String>::new());

        let e = AtomicFile::create(Path::new("/")).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(e.to_string().starts_with("/: "), "{e}");
    }

    #[test]
    fn failed_rename_names_both_files_and_removes_the_temporary() {
        let dir = tempfile::tempdir().unwrap();
        // A non-empty directory where the file should go: the rename fails.
        let path = dir.path().join("taken");
        std::fs::create_dir(&path).unwrap();
        std::fs::write(path.join("inside"), "x").unwrap();
        let mut f = AtomicFile::create(&path).unwrap();
        f.write_all(b"data").unwrap();
        let e = f.commit().unwrap_err();
        let msg = e.to_string();
        assert!(msg.starts_with("renaming "), "{msg}");
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert_eq!(names(dir.path()), ["taken"]);
    }
}
