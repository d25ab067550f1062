//! The regions BED parser on arbitrary bytes: no panic; a parsed file's per-contig counts add up.
#![no_main]

use std::io::Cursor;
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use methvb_io::regions::BedRegions;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = BedRegions::from_reader(Path::new("fuzz.bed"), Cursor::new(data)) {
        let total: usize = r.contigs().map(|(_, n)| n).sum();
        assert_eq!(total, r.len());
        assert_eq!(r.is_empty(), r.len() == 0);
    }
});
