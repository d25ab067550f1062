//! Reading BAM or SAM records into one reusable [`ReadBuf`]: the fields the callers need
//! (flags, position, CIGAR, SEQ, QUAL) and the tags `MM`/`Mm`, `ML`/`Ml`, `MN`, `XM`, `XR`,
//! `XG`, `MC`. BAM aux data are scanned once from the raw bytes; nothing is allocated per record
//! once the buffers have grown.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use noodles::bam;
use noodles::bgzf;
use noodles::sam;
use noodles::sam::alignment::record::cigar::op::Kind;
use noodles::sam::alignment::record::data::field::Value;
use noodles::sam::alignment::record::data::field::value::Array;

/// SAM flag bits.
pub mod flags {
    /// Template has multiple segments.
    pub const PAIRED: u16 = 0x1;
    /// Segment unmapped.
    pub const UNMAPPED: u16 = 0x4;
    /// SEQ reverse-complemented.
    pub const REVERSE: u16 = 0x10;
    /// First segment (read 1).
    pub const READ1: u16 = 0x40;
    /// Last segment (read 2).
    pub const READ2: u16 = 0x80;
    /// Secondary alignment.
    pub const SECONDARY: u16 = 0x100;
    /// Failed quality checks.
    pub const QC_FAIL: u16 = 0x200;
    /// PCR or optical duplicate.
    pub const DUPLICATE: u16 = 0x400;
    /// Supplementary alignment.
    pub const SUPPLEMENTARY: u16 = 0x800;
}

/// The `MN` tag (length of SEQ the `MM` tag was computed on).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MnTag {
    /// No `MN` tag.
    #[default]
    Absent,
    /// An integer `MN`.
    Int(i64),
    /// `MN` of a non-integer type (invalid; htslib rejects it).
    NotInteger,
}

/// A CIGAR operation: kind and length.
pub type CigarOp = (Kind, u32);

/// One alignment record, decoded into reusable buffers.
#[derive(Debug, Default, Clone)]
pub struct ReadBuf {
    /// Read name.
    pub name: Vec<u8>,
    /// SAM flags.
    pub flags: u16,
    /// Reference sequence index.
    pub tid: Option<usize>,
    /// 0-based alignment start.
    pub pos: Option<u64>,
    /// Mapping quality (255 = unavailable).
    pub mapq: u8,
    /// CIGAR operations.
    pub cigar: Vec<CigarOp>,
    /// SEQ as stored (ASCII, upper case).
    pub seq: Vec<u8>,
    /// Base qualities (Phred, no offset); empty when absent.
    pub qual: Vec<u8>,
    /// `MM` (or legacy `Mm`) text; valid when `has_mm`.
    pub mm: Vec<u8>,
    /// An `MM`/`Mm` tag is present.
    pub has_mm: bool,
    /// `ML` (or legacy `Ml`) values; valid when `has_ml`.
    pub ml: Vec<u8>,
    /// An `ML`/`Ml` tag is present.
    pub has_ml: bool,
    /// `ML` is present but not a `B:C` array.
    pub ml_bad_type: bool,
    /// The modification tags use the legacy `Mm`/`Ml` names.
    pub legacy_tags: bool,
    /// `MN`.
    pub mn: MnTag,
    /// Bismark `XM` call string; valid when `has_xm`.
    pub xm: Vec<u8>,
    /// An `XM` tag is present.
    pub has_xm: bool,
    /// Bismark `XR` (read conversion, `CT`/`GA`).
    pub xr: Option<[u8; 2]>,
    /// Bismark `XG` (genome conversion, `CT`/`GA`).
    pub xg: Option<[u8; 2]>,
    /// Mate CIGAR (`MC`) text; empty when absent.
    pub mc: Vec<u8>,
    /// 0-based mate alignment start.
    pub mate_pos: Option<u64>,
}

impl ReadBuf {
    /// Whether the given flag bit(s) are set.
    pub fn has_flag(&self, f: u16) -> bool {
        self.flags & f != 0
    }

    /// Whether SEQ is reverse-complemented.
    pub fn is_reverse(&self) -> bool {
        self.has_flag(flags::REVERSE)
    }

    /// Reference length covered by the CIGAR (M, D, N, =, X).
    pub fn ref_span(&self) -> u64 {
        self.cigar
            .iter()
            .filter(|(k, _)| k.consumes_reference())
            .map(|&(_, l)| u64::from(l))
            .sum()
    }

    /// Whether the CIGAR has a hard clip.
    pub fn is_hard_clipped(&self) -> bool {
        self.cigar.iter().any(|(k, _)| *k == Kind::HardClip)
    }

    fn clear(&mut self) {
        self.name.clear();
        self.cigar.clear();
        self.seq.clear();
        self.qual.clear();
        self.mm.clear();
        self.ml.clear();
        self.xm.clear();
        self.mc.clear();
        self.has_mm = false;
        self.has_ml = false;
        self.ml_bad_type = false;
        self.legacy_tags = false;
        self.has_xm = false;
        self.mn = MnTag::Absent;
        self.xr = None;
        self.xg = None;
        self.mate_pos = None;
        self.tid = None;
        self.pos = None;
        self.mapq = 255;
        self.flags = 0;
    }

    /// Handles one tag given as noodles' typed value (SAM path).
    fn absorb_value(&mut self, tag: [u8; 2], value: &Value<'_>) -> io::Result<()> {
        match (&tag, value) {
            (b"MM" | b"Mm", Value::String(s)) => {
                let legacy = &tag == b"Mm";
                if !self.has_mm || !legacy {
                    self.mm.clear();
                    self.mm.extend_from_slice(s);
                    self.has_mm = true;
                    self.legacy_tags = legacy;
                }
            }
            (b"ML" | b"Ml", v) => {
                let legacy = &tag == b"Ml";
                if self.has_ml && legacy {
                    return Ok(());
                }
                self.ml.clear();
                self.has_ml = true;
                self.ml_bad_type = false;
                match v {
                    Value::Array(Array::UInt8(values)) => {
                        for x in values.iter() {
                            self.ml.push(x?);
                        }
                    }
                    _ => self.ml_bad_type = true,
                }
            }
            (b"MN", v) => {
                self.mn = match v {
                    Value::Int8(x) => MnTag::Int(i64::from(*x)),
                    Value::UInt8(x) => MnTag::Int(i64::from(*x)),
                    Value::Int16(x) => MnTag::Int(i64::from(*x)),
                    Value::UInt16(x) => MnTag::Int(i64::from(*x)),
                    Value::Int32(x) => MnTag::Int(i64::from(*x)),
                    Value::UInt32(x) => MnTag::Int(i64::from(*x)),
                    _ => MnTag::NotInteger,
                }
            }
            (b"XM", Value::String(s)) => {
                self.xm.extend_from_slice(s);
                self.has_xm = true;
            }
            (b"XR", Value::String(s)) if s.len() == 2 => self.xr = Some([s[0], s[1]]),
            (b"XG", Value::String(s)) if s.len() == 2 => self.xg = Some([s[0], s[1]]),
            (b"MC", Value::String(s)) => self.mc.extend_from_slice(s),
            _ => {}
        }
        Ok(())
    }

    /// Scans the raw BAM aux block once.
    fn absorb_bam_aux(&mut self, mut b: &[u8]) -> io::Result<()> {
        fn bad() -> io::Error {
            io::Error::new(io::ErrorKind::InvalidData, "truncated BAM aux field")
        }
        fn size_of(t: u8) -> Option<usize> {
            match t {
                b'A' | b'c' | b'C' => Some(1),
                b's' | b'S' => Some(2),
                b'i' | b'I' | b'f' => Some(4),
                _ => None,
            }
        }
        while !b.is_empty() {
            if b.len() < 3 {
                return Err(bad());
            }
            let tag = [b[0], b[1]];
            let ty = b[2];
            b = &b[3..];
            match ty {
                b'Z' | b'H' => {
                    let end = b.iter().position(|&c| c == 0).ok_or_else(bad)?;
                    let s = &b[..end];
                    if ty == b'Z' {
                        self.absorb_value(tag, &Value::String(s.into()))?;
                    }
                    b = &b[end + 1..];
                }
                b'B' => {
                    if b.len() < 5 {
                        return Err(bad());
                    }
                    let sub = b[0];
                    let n = u32::from_le_bytes([b[1], b[2], b[3], b[4]]) as usize;
                    let w = size_of(sub).filter(|_| sub != b'A').ok_or_else(bad)?;
                    let total = n.checked_mul(w).ok_or_else(bad)?;
                    if b.len() < 5 + total {
                        return Err(bad());
                    }
                    let values = &b[5..5 + total];
                    if &tag == b"ML" || &tag == b"Ml" {
                        let legacy = &tag == b"Ml";
                        if !(self.has_ml && legacy) {
                            self.ml.clear();
                            self.has_ml = true;
                            self.ml_bad_type = sub != b'C';
                            if sub == b'C' {
                                self.ml.extend_from_slice(values);
                            }
                        }
                    }
                    b = &b[5 + total..];
                }
                t => {
                    let w = size_of(t).ok_or_else(bad)?;
                    if b.len() < w {
                        return Err(bad());
                    }
                    let v = &b[..w];
                    if &tag == b"MN" {
                        self.mn = match t {
                            b'c' => MnTag::Int(i64::from(v[0] as i8)),
                            b'C' => MnTag::Int(i64::from(v[0])),
                            b's' => MnTag::Int(i64::from(i16::from_le_bytes([v[0], v[1]]))),
                            b'S' => MnTag::Int(i64::from(u16::from_le_bytes([v[0], v[1]]))),
                            b'i' => {
                                MnTag::Int(i64::from(i32::from_le_bytes([v[0], v[1], v[2], v[3]])))
                            }
                            b'I' => {
                                MnTag::Int(i64::from(u32::from_le_bytes([v[0], v[1], v[2], v[3]])))
                            }
                            _ => MnTag::NotInteger,
                        };
                    }
                    b = &b[w..];
                }
            }
        }
        Ok(())
    }

    /// Fills the buffer from a BAM record.
    pub fn load_bam(&mut self, r: &bam::Record) -> io::Result<()> {
        self.clear();
        if let Some(n) = r.name() {
            self.name.extend_from_slice(n);
        }
        self.flags = r.flags().bits();
        self.tid = r.reference_sequence_id().transpose()?;
        self.pos = r
            .alignment_start()
            .transpose()?
            .map(|p| usize::from(p) as u64 - 1);
        self.mapq = r.mapping_quality().map_or(255, u8::from);
        self.mate_pos = r
            .mate_alignment_start()
            .transpose()?
            .map(|p| usize::from(p) as u64 - 1);
        for op in r.cigar().iter() {
            let op = op?;
            self.cigar.push((op.kind(), op.len() as u32));
        }
        self.seq.extend(r.sequence().iter());
        let q = r.quality_scores();
        let q = q.as_bytes();
        if !q.iter().all(|&x| x == 0xff) {
            self.qual.extend_from_slice(q);
        }
        self.absorb_bam_aux(r.data().as_bytes())
    }

    /// Fills the buffer from a SAM text record.
    pub fn load_sam(&mut self, r: &sam::Record, header: &sam::Header) -> io::Result<()> {
        self.clear();
        if let Some(n) = r.name() {
            self.name.extend_from_slice(n);
        }
        self.flags = r.flags()?.bits();
        self.tid = r.reference_sequence_id(header).transpose()?;
        self.pos = r
            .alignment_start()
            .transpose()?
            .map(|p| usize::from(p) as u64 - 1);
        self.mapq = r.mapping_quality().transpose()?.map_or(255, u8::from);
        self.mate_pos = r
            .mate_alignment_start()
            .transpose()?
            .map(|p| usize::from(p) as u64 - 1);
        for op in r.cigar().iter() {
            let op = op.map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            self.cigar.push((op.kind(), op.len() as u32));
        }
        self.seq
            .extend(r.sequence().as_ref().iter().map(u8::to_ascii_uppercase));
        let q = r.quality_scores();
        let q = q.as_ref();
        if q != b"*" {
            self.qual.extend(q.iter().map(|&c| c.saturating_sub(33)));
        }
        for field in r.data().iter() {
            let (tag, value) = field?;
            let t: [u8; 2] = *tag.as_ref();
            self.absorb_value(t, &value)?;
        }
        Ok(())
    }
}

/// A BAM or SAM file read record by record (format detected from the first bytes).
pub enum RecordSource {
    /// BGZF-compressed BAM.
    Bam(Box<bam::io::Reader<bgzf::io::Reader<File>>>, bam::Record),
    /// SAM text.
    Sam(Box<sam::io::Reader<BufReader<File>>>, sam::Record),
}

impl std::fmt::Debug for RecordSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecordSource::Bam(..) => f.write_str("RecordSource::Bam"),
            RecordSource::Sam(..) => f.write_str("RecordSource::Sam"),
        }
    }
}

impl RecordSource {
    /// Opens `path` and reads its header.
    pub fn open(path: &Path) -> io::Result<(RecordSource, sam::Header)> {
        let mut magic = [0u8; 2];
        let n = File::open(path)?.read(&mut magic)?;
        if n == 2 && magic == [0x1f, 0x8b] {
            let mut r = bam::io::Reader::new(File::open(path)?);
            let header = r.read_header()?;
            Ok((
                RecordSource::Bam(Box::new(r), bam::Record::default()),
                header,
            ))
        } else {
            let mut r = sam::io::Reader::new(BufReader::new(File::open(path)?));
            let header = r.read_header()?;
            Ok((
                RecordSource::Sam(Box::new(r), sam::Record::default()),
                header,
            ))
        }
    }

    /// Reads the next record into `buf`; `false` at the end of the file.
    pub fn next_into(&mut self, header: &sam::Header, buf: &mut ReadBuf) -> io::Result<bool> {
        match self {
            RecordSource::Bam(r, rec) => {
                if r.read_record(rec)? == 0 {
                    return Ok(false);
                }
                buf.load_bam(rec)?;
            }
            RecordSource::Sam(r, rec) => {
                if r.read_record(rec)? == 0 {
                    return Ok(false);
                }
                buf.load_sam(rec, header)?;
            }
        }
        Ok(true)
    }
}

/// Whether the header declares coordinate sorting (`@HD SO:coordinate`).
pub fn is_coordinate_sorted(header: &sam::Header) -> bool {
    use noodles::sam::header::record::value::map::header::tag;
    header
        .header()
        .and_then(|hd| hd.other_fields().get(&tag::SORT_ORDER))
        .is_some_and(|v| v.as_slice() == b"coordinate")
}

/// Reference sequence names from the header, in header order.
pub fn contig_names(header: &sam::Header) -> Vec<String> {
    header
        .reference_sequences()
        .keys()
        .map(|k| String::from_utf8_lossy(k).into_owned())
        .collect()
}
