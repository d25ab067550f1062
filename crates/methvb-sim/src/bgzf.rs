//! A minimal BGZF writer (SAMtools spec, section 4.1) on top of flate2: gzip members of at
//! most 65,280 uncompressed bytes, each with the `BC` extra field holding the member size,
//! followed by the standard 28-byte EOF block. The output is plain gzip too (any gzip reader
//! decodes it) and is what `bgzip` writes, so `tabix` can index it.

use std::io::{self, Write};

use flate2::Compression;
use flate2::write::DeflateEncoder;

/// Largest uncompressed payload of one block (htslib's `BGZF_BLOCK_SIZE`).
const BLOCK_DATA: usize = 0xff00;
/// Largest total size of one block.
const MAX_BLOCK: usize = 0x1_0000;
/// Header (18 bytes) plus trailer (CRC32 and ISIZE, 8 bytes).
const OVERHEAD: usize = 26;
/// The empty block that marks the end of a BGZF file.
const EOF_BLOCK: [u8; 28] = [
    0x1f, 0x8b, 0x08, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0x06, 0x00, 0x42, 0x43, 0x02, 0x00,
    0x1b, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
];

/// Buffers uncompressed bytes and writes them to `inner` as BGZF blocks.
pub(crate) struct BgzfWriter<W: Write> {
    inner: W,
    buf: Vec<u8>,
    deflated: Vec<u8>,
}

impl<W: Write> BgzfWriter<W> {
    pub(crate) fn new(inner: W) -> Self {
        Self {
            inner,
            buf: Vec::with_capacity(BLOCK_DATA),
            deflated: Vec::with_capacity(MAX_BLOCK),
        }
    }

    fn deflate(&mut self, level: Compression) -> io::Result<()> {
        self.deflated.clear();
        let mut enc = DeflateEncoder::new(std::mem::take(&mut self.deflated), level);
        enc.write_all(&self.buf)?;
        self.deflated = enc.finish()?;
        Ok(())
    }

    fn write_block(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.deflate(Compression::default())?;
        if self.deflated.len() + OVERHEAD > MAX_BLOCK {
            // Incompressible data: stored blocks add 5 bytes per 64 KiB, so this fits.
            self.deflate(Compression::none())?;
        }
        let bsize = self.deflated.len() + OVERHEAD - 1;
        let bsize =
            u16::try_from(bsize).map_err(|_| io::Error::other("BGZF block larger than 64 KiB"))?;
        let mut crc = flate2::Crc::new();
        crc.update(&self.buf);
        let mut header = [
            0x1f, 0x8b, 0x08, 0x04, 0, 0, 0, 0, 0x00, 0xff, 0x06, 0x00, b'B', b'C', 0x02, 0x00, 0,
            0,
        ];
        header[16..18].copy_from_slice(&bsize.to_le_bytes());
        self.inner.write_all(&header)?;
        self.inner.write_all(&self.deflated)?;
        self.inner.write_all(&crc.sum().to_le_bytes())?;
        // The payload is at most BLOCK_DATA bytes, so it fits in a u32.
        self.inner
            .write_all(&(self.buf.len() as u32).to_le_bytes())?;
        self.buf.clear();
        Ok(())
    }

    /// Writes the pending block and the EOF marker, and returns the inner writer.
    pub(crate) fn finish(mut self) -> io::Result<W> {
        self.write_block()?;
        self.inner.write_all(&EOF_BLOCK)?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for BgzfWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(BLOCK_DATA - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == BLOCK_DATA {
            self.write_block()?;
        }
        Ok(n)
    }

    /// Flushes the inner writer only: blocks are cut at full size or at [`Self::finish`].
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use rand::{RngExt, SeedableRng};

    use super::*;

    /// Splits a BGZF stream into blocks, checking each header's `BC` size field.
    fn blocks(bytes: &[u8]) -> Vec<&[u8]> {
        let mut out = Vec::new();
        let mut at = 0;
        while at < bytes.len() {
            let h = &bytes[at..];
            assert_eq!(h[..4], [0x1f, 0x8b, 8, 4]);
            assert_eq!(h[12..16], [b'B', b'C', 2, 0]);
            let size = usize::from(u16::from_le_bytes([h[16], h[17]])) + 1;
            out.push(&h[..size]);
            at += size;
        }
        out
    }

    #[test]
    fn compressible_and_incompressible_data_round_trip() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let noise: Vec<u8> = (0..200_000).map(|_| rng.random()).collect();
        let text: Vec<u8> = b"chr1\t10\t11\tm\n".repeat(20_000);
        for data in [noise, text, Vec::new()] {
            let mut w = BgzfWriter::new(Vec::new());
            // Odd-sized writes cross block boundaries.
            for chunk in data.chunks(7_777) {
                w.write_all(chunk).unwrap();
            }
            let bytes = w.finish().unwrap();
            let bl = blocks(&bytes);
            assert_eq!(*bl.last().unwrap(), EOF_BLOCK);
            assert_eq!(bl.len(), data.len().div_ceil(BLOCK_DATA) + 1);
            assert!(bl.iter().all(|b| b.len() <= MAX_BLOCK));
            let mut back = Vec::new();
            flate2::read::MultiGzDecoder::new(&bytes[..])
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(back, data);
        }
    }
}
