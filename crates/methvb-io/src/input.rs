//! Opening an input file as a buffered byte stream, whatever its compression.
//!
//! The compression is detected from the first bytes, never from the file name:
//!
//! | first bytes | decoder |
//! |---|---|
//! | `1f 8b 08`, FEXTRA with a `BC` subfield | BGZF ([`noodles::bgzf`]), optionally multithreaded |
//! | `1f 8b 08` otherwise | gzip, all members ([`flate2::read::MultiGzDecoder`]) |
//! | anything else | plain text |
//!
//! Truncation is an error, not an early end of file:
//! - BGZF: a regular file must end with the 28-byte BGZF end-of-file marker block (SAM/BAM spec
//!   §4.1.2). noodles ends the stream silently when a file is cut inside a block header, so the
//!   marker is checked when the file is opened and its absence is [`ErrorKind::Compression`].
//!   (htslib only warns here; a file written without the marker by a very old tool must be
//!   re-compressed with `bgzip`.) A cut inside a block surfaces later as an
//!   [`std::io::ErrorKind::UnexpectedEof`] from the decoder.
//! - gzip: flate2 reports a member cut inside its deflate data or trailer as
//!   [`std::io::ErrorKind::UnexpectedEof`] and a corrupt one as
//!   [`std::io::ErrorKind::InvalidData`]. A file cut exactly between two members is
//!   indistinguishable from a shorter valid file.
//!
//! Read errors that happen later, while lines are read, are mapped by [`map_read_error`]: decoder
//! errors (`InvalidData`, `UnexpectedEof`) become [`ErrorKind::Compression`] with the line number.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Cursor, Read, Seek, SeekFrom};
use std::num::NonZero;
use std::path::Path;

use noodles::bgzf;

use crate::error::{ErrorKind, ReadError};

/// Buffer size for plain and gzip inputs.
const BUF_SIZE: usize = 128 * 1024;

/// The BGZF end-of-file marker: an empty block (SAM/BAM spec §4.1.2).
const BGZF_EOF: [u8; 28] = [
    0x1f, 0x8b, 0x08, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0x06, 0x00, 0x42, 0x43, 0x02, 0x00,
    0x1b, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
];

/// How an input is compressed, as detected from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Not compressed.
    Plain,
    /// gzip (possibly several members), not BGZF.
    Gzip,
    /// Blocked gzip (BGZF), as written by `bgzip` / htslib / noodles.
    Bgzf,
}

impl Compression {
    /// Detects the compression from the first bytes of a file (up to 16 are looked at).
    ///
    /// ```
    /// use methvb_io::input::Compression;
    /// assert_eq!(Compression::detect(b"chr1\t10\t11"), Compression::Plain);
    /// assert_eq!(Compression::detect(&[0x1f, 0x8b, 0x08, 0x00]), Compression::Gzip);
    /// ```
    pub fn detect(head: &[u8]) -> Compression {
        if head.len() < 3 || head[0] != 0x1f || head[1] != 0x8b || head[2] != 0x08 {
            return Compression::Plain;
        }
        // FLG.FEXTRA, XLEN at 10..12, then subfields SI1 SI2 SLEN(2) data.
        let fextra = head.len() > 3 && head[3] & 0x04 != 0;
        if fextra && head.len() >= 16 {
            let xlen = usize::from(u16::from_le_bytes([head[10], head[11]]));
            let extra = &head[12..head.len().min(12 + xlen)];
            let mut i = 0;
            while i + 4 <= extra.len() {
                let slen = usize::from(u16::from_le_bytes([extra[i + 2], extra[i + 3]]));
                if extra[i] == b'B' && extra[i + 1] == b'C' && slen == 2 {
                    return Compression::Bgzf;
                }
                i += 4 + slen;
            }
        }
        Compression::Gzip
    }

    /// Short lower-case name for messages.
    pub fn name(self) -> &'static str {
        match self {
            Compression::Plain => "plain",
            Compression::Gzip => "gzip",
            Compression::Bgzf => "BGZF",
        }
    }
}

/// Opens `path` for line reading, decompressing gzip or BGZF transparently (one thread).
///
/// Errors: [`ErrorKind::Io`] when the file cannot be opened or read;
/// [`ErrorKind::Compression`] when a BGZF file lacks its end-of-file marker (truncated).
pub fn open(path: &Path) -> Result<Box<dyn BufRead + Send>, ReadError> {
    open_with_threads(path, 1)
}

/// Like [`open`], but decodes BGZF with `threads` worker threads when `threads > 1`
/// ([`noodles::bgzf::io::MultithreadedReader`]); plain and gzip inputs ignore `threads`.
pub fn open_with_threads(
    path: &Path,
    threads: usize,
) -> Result<Box<dyn BufRead + Send>, ReadError> {
    let io_err = |e: io::Error| ReadError::new(path, 0, ErrorKind::Io(e));
    let mut file = File::open(path).map_err(io_err)?;
    let mut head = [0u8; 18];
    let n = read_up_to(&mut file, &mut head).map_err(io_err)?;
    let head = &head[..n];
    let compression = Compression::detect(head);
    if compression == Compression::Bgzf {
        check_bgzf_eof(&mut file).map_err(|kind| ReadError::new(path, 0, kind))?;
    }
    // Re-attach the bytes already consumed (works for pipes as well as files).
    let raw = Cursor::new(head.to_vec()).chain(file);
    if compression == Compression::Plain {
        return Ok(Box::new(BufReader::with_capacity(BUF_SIZE, raw)));
    }
    let source = Source(raw);
    Ok(match compression {
        Compression::Bgzf => match NonZero::new(threads) {
            Some(workers) if workers.get() > 1 => Box::new(Decoded(
                bgzf::io::MultithreadedReader::with_worker_count(workers, source),
            )),
            _ => Box::new(Decoded(bgzf::io::Reader::new(source))),
        },
        _ => Box::new(Decoded(BufReader::with_capacity(
            BUF_SIZE,
            flate2::read::MultiGzDecoder::new(source),
        ))),
    })
}

/// Marks errors of the underlying file, so that [`Decoded`] can tell them from decoder errors.
#[derive(Debug)]
struct SourceError(io::Error);

impl std::fmt::Display for SourceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for SourceError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// The compressed bytes, with their read errors marked as [`SourceError`].
struct Source<R>(R);

impl<R: Read> Read for Source<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf).map_err(|e| {
            if e.kind() == io::ErrorKind::Interrupted {
                e
            } else {
                io::Error::new(e.kind(), SourceError(e))
            }
        })
    }
}

/// A decoder whose own errors (bad checksum, corrupt deflate data, truncated block, ...) all come
/// out as `InvalidData` or `UnexpectedEof`, while errors of the file keep their kind.
struct Decoded<R>(R);

fn decoder_error(e: io::Error) -> io::Error {
    let from_file = e.get_ref().is_some_and(|inner| inner.is::<SourceError>());
    if from_file
        || matches!(
            e.kind(),
            io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof | io::ErrorKind::Interrupted
        )
    {
        e
    } else {
        io::Error::new(io::ErrorKind::InvalidData, e)
    }
}

impl<R: BufRead> Read for Decoded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf).map_err(decoder_error)
    }
}

impl<R: BufRead> BufRead for Decoded<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.0.fill_buf().map_err(decoder_error)
    }
    fn consume(&mut self, amt: usize) {
        self.0.consume(amt);
    }
}

/// Reads until `buf` is full or the input ends; returns the number of bytes read.
fn read_up_to<R: Read>(reader: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(k) => filled += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// For a regular file, checks that its last 28 bytes are the BGZF end-of-file block, then
/// restores the read position. Pipes and other non-seekable inputs are not checked.
fn check_bgzf_eof(file: &mut File) -> Result<(), ErrorKind> {
    let meta = file.metadata().map_err(ErrorKind::Io)?;
    if !meta.is_file() {
        return Ok(());
    }
    let here = file.stream_position().map_err(ErrorKind::Io)?;
    let len = meta.len();
    let ok = if len < BGZF_EOF.len() as u64 {
        false
    } else {
        file.seek(SeekFrom::Start(len - BGZF_EOF.len() as u64))
            .map_err(ErrorKind::Io)?;
        let mut tail = [0u8; 28];
        file.read_exact(&mut tail).map_err(ErrorKind::Io)?;
        tail == BGZF_EOF
    };
    file.seek(SeekFrom::Start(here)).map_err(ErrorKind::Io)?;
    if ok {
        Ok(())
    } else {
        Err(ErrorKind::Compression(
            "BGZF file does not end with the end-of-file marker block: it is truncated".into(),
        ))
    }
}

/// Maps an I/O error met while reading `line` of `path`: decoder errors (`InvalidData`,
/// `UnexpectedEof`) become [`ErrorKind::Compression`], anything else stays [`ErrorKind::Io`].
pub fn map_read_error(path: &Path, line: u64, err: io::Error) -> ReadError {
    let kind = match err.kind() {
        io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof => {
            ErrorKind::Compression(format!("{} ({:?})", err, err.kind()))
        }
        _ => ErrorKind::Io(err),
    };
    ReadError::new(path, line, kind)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    fn bgzip(data: &[u8]) -> Vec<u8> {
        let mut w = bgzf::io::Writer::new(Vec::new());
        w.write_all(data).unwrap();
        w.finish().unwrap()
    }

    fn read_all(path: &Path) -> Result<Vec<u8>, ReadError> {
        let mut r = open(path)?;
        let mut out = Vec::new();
        r.read_to_end(&mut out)
            .map_err(|e| map_read_error(path, 1, e))?;
        Ok(out)
    }

    fn text() -> Vec<u8> {
        (0..20000)
            .flat_map(|i| format!("chr1\t{i}\t{}\t3\t1\n", i * 7 % 13).into_bytes())
            .collect()
    }

    #[test]
    fn detects_compression() {
        assert_eq!(Compression::detect(b""), Compression::Plain);
        assert_eq!(Compression::detect(b"\x1f"), Compression::Plain);
        assert_eq!(Compression::detect(&gzip(b"x")[..18]), Compression::Gzip);
        assert_eq!(Compression::detect(&bgzip(b"x")[..18]), Compression::Bgzf);
        // A gzip with an unrelated extra field is plain gzip.
        let mut h = vec![0x1f, 0x8b, 0x08, 0x04, 0, 0, 0, 0, 0, 0xff, 6, 0];
        h.extend_from_slice(b"XY\x02\x00\x00\x00");
        assert_eq!(Compression::detect(&h), Compression::Gzip);
    }

    #[test]
    fn reads_plain_gzip_multimember_and_bgzf() {
        let dir = tempfile::tempdir().unwrap();
        let data = text();
        let p = dir.path().join("plain.txt");
        std::fs::write(&p, &data).unwrap();
        assert_eq!(read_all(&p).unwrap(), data);

        let p = dir.path().join("a.gz");
        std::fs::write(&p, gzip(&data)).unwrap();
        assert_eq!(read_all(&p).unwrap(), data);

        // Two concatenated members (e.g. `cat a.gz b.gz`).
        let p = dir.path().join("multi.dat");
        let (a, b) = data.split_at(1000);
        let mut both = gzip(a);
        both.extend(gzip(b));
        std::fs::write(&p, both).unwrap();
        assert_eq!(read_all(&p).unwrap(), data);

        let p = dir.path().join("b.bgz");
        std::fs::write(&p, bgzip(&data)).unwrap();
        assert_eq!(read_all(&p).unwrap(), data);
        let mut r = open_with_threads(&p, 2).unwrap();
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, data);

        let p = dir.path().join("empty");
        std::fs::write(&p, b"").unwrap();
        assert_eq!(read_all(&p).unwrap(), b"");
    }

    #[test]
    fn truncated_gzip_is_a_compression_error_at_every_cut() {
        let dir = tempfile::tempdir().unwrap();
        let data = text();
        let gz = gzip(&data);
        let p = dir.path().join("cut.gz");
        // Cuts inside the header, the deflate data and the 8-byte trailer.
        for cut in [
            5,
            15,
            gz.len() / 2,
            gz.len() - 9,
            gz.len() - 4,
            gz.len() - 1,
        ] {
            std::fs::write(&p, &gz[..cut]).unwrap();
            let err = read_all(&p).expect_err(&format!("cut at {cut} must fail"));
            assert!(
                matches!(err.kind, ErrorKind::Compression(_)),
                "cut {cut}: {err}"
            );
            assert!(err.to_string().contains("cut.gz"), "{err}");
        }
    }

    #[test]
    fn truncated_bgzf_is_a_compression_error_at_every_cut() {
        let dir = tempfile::tempdir().unwrap();
        let data = text();
        let bgz = bgzip(&data);
        let p = dir.path().join("cut.bed.gz");
        for cut in [20, 100, bgz.len() / 2, bgz.len() - 28, bgz.len() - 1] {
            std::fs::write(&p, &bgz[..cut]).unwrap();
            let err = read_all(&p).expect_err(&format!("cut at {cut} must fail"));
            assert!(
                matches!(err.kind, ErrorKind::Compression(_)),
                "cut {cut}: {err}"
            );
            assert!(err.to_string().contains("cut.bed.gz"), "{err}");
        }
    }

    #[test]
    fn corrupt_gzip_is_a_compression_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut gz = gzip(&text());
        let mid = gz.len() / 2;
        for b in &mut gz[mid..mid + 16] {
            *b ^= 0x5a;
        }
        let p = dir.path().join("bad.gz");
        std::fs::write(&p, &gz).unwrap();
        let err = read_all(&p).unwrap_err();
        assert!(matches!(err.kind, ErrorKind::Compression(_)), "{err}");
    }

    #[test]
    fn corrupt_bgzf_block_is_a_compression_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut bgz = bgzip(&text());
        // Damage the deflate data of the first block; the EOF marker stays intact.
        for b in &mut bgz[40..56] {
            *b ^= 0x5a;
        }
        let p = dir.path().join("bad.bgz");
        std::fs::write(&p, &bgz).unwrap();
        let err = read_all(&p).unwrap_err();
        assert!(matches!(err.kind, ErrorKind::Compression(_)), "{err}");
    }

    #[test]
    fn missing_file_is_io() {
        let err = open(Path::new("/nonexistent/x.bed")).err().unwrap();
        assert!(matches!(err.kind, ErrorKind::Io(_)));
    }
}
