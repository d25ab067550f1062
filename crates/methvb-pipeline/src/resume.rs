//! The resume keys: JSON objects of everything a result depends on, which `run --resume`
//! compares before reusing `hyper.json` or a shard, and whose digest is the run id.
//!
//! A key is the serialisation of the configuration structs ([`crate::config`]) themselves, so a
//! setting added to them is in every key that serialises its struct, with nothing to list by
//! hand. Inside a key a [`crate::config::FileRef`] serialises as the SHA-256 of its file rather
//! than its path (see [`keying`]); the sample files enter by their checksums ([`InputFile`]).
//! Which structs a key holds is what each result depends on:
//!
//! * [`hyper_key`] (hyper.json): inputs, input and region settings, model, pass-1 settings;
//! * [`rows_key`] (the rows; its digest is the run id): the same without pass 1's settings,
//!   plus Theta and the per-region fit settings;
//! * [`shard_key`] (a shard of `run`): the rows key plus the FDR target of its `called` column.

use std::cell::Cell;
use std::io::Read;
use std::path::{Path, PathBuf};

use methvb_model::{StartModel, Theta};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::MODEL_VERSION;
use crate::config::{FitConfig, HyperConfig, InputConfig, ModelConfig, RegionConfig};
use crate::error::{Context, Result};
use crate::samples::Samples;

thread_local! {
    static KEYING: Cell<bool> = const { Cell::new(false) };
}

/// Whether a resume key is being serialised on this thread (then a `FileRef` writes its
/// file's checksum instead of its path).
pub(crate) fn keying() -> bool {
    KEYING.with(Cell::get)
}

/// `value` serialised as it enters a resume key.
pub fn key_value(value: &impl Serialize) -> Result<serde_json::Value> {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            KEYING.with(|k| k.set(self.0));
        }
    }
    let _reset = Reset(KEYING.with(|k| k.replace(true)));
    Ok(serde_json::to_value(value)?)
}

/// Size and SHA-256 (hex) of the file at `path`.
pub fn sha256_file(path: &Path) -> Result<(u64, String)> {
    let mut file =
        std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut bytes = 0u64;
    loop {
        let n = file
            .read(&mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        bytes += n as u64;
        hasher.update(&buf[..n]);
    }
    Ok((bytes, hex(&hasher.finalize())))
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One input file of the sheet and its checksum (run.json's `inputs`).
#[derive(Debug, Clone, Serialize)]
pub struct InputFile {
    /// Sample name.
    pub sample: String,
    /// Its group.
    pub group: String,
    /// The file.
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
    /// Its SHA-256 (hex).
    pub sha256: String,
}

/// Checksums of every input of the sheet (in parallel), in sheet order.
pub fn input_files(samples: &Samples) -> Result<Vec<InputFile>> {
    use rayon::prelude::*;
    samples
        .sheet
        .samples
        .par_iter()
        .map(|s| {
            let (bytes, sha256) = sha256_file(&s.path)?;
            Ok(InputFile {
                sample: s.name.clone(),
                group: s.group.clone(),
                path: s.path.clone(),
                bytes,
                sha256,
            })
        })
        .collect()
}

/// A key under construction: a JSON object.
pub type Key = serde_json::Map<String, serde_json::Value>;

/// What every key holds: versions, groups, the sample files by checksum (and format), and the
/// input, region and model settings.
pub fn base_key(
    input: &InputConfig,
    regions: &RegionConfig,
    model: &ModelConfig,
    samples: &Samples,
    files: &[InputFile],
) -> Result<Key> {
    let inputs: Vec<serde_json::Value> = samples
        .sheet
        .samples
        .iter()
        .zip(files)
        .map(|(entry, file)| {
            serde_json::json!({
                "sample": file.sample,
                "group": file.group,
                "format": entry.format.map(|f| format!("{f:?}")),
                "bytes": file.bytes,
                "sha256": file.sha256,
            })
        })
        .collect();
    let mut key = Key::new();
    key.insert("version".into(), env!("CARGO_PKG_VERSION").into());
    key.insert("model_version".into(), MODEL_VERSION.into());
    key.insert("groups".into(), serde_json::to_value(&samples.groups)?);
    key.insert("inputs".into(), inputs.into());
    key.insert("input".into(), key_value(input)?);
    key.insert("regions".into(), key_value(regions)?);
    key.insert("model".into(), key_value(model)?);
    Ok(key)
}

/// The key of a hyper.json learned by pass 1 with `hyper`.
pub fn hyper_key(mut base: Key, hyper: &HyperConfig) -> Result<serde_json::Value> {
    base.insert("hyper".into(), key_value(hyper)?);
    Ok(serde_json::Value::Object(base))
}

/// Everything the rows of a results table depend on but the contigs fitted and the FDR target
/// (which `gather` applies anew): the base key, Theta, the start model the fits use
/// ([`FitConfig::start`]) and the fit settings. Its digest is the run id.
pub fn rows_key(
    mut base: Key,
    theta: &Theta,
    start: Option<&StartModel>,
    fit: &FitConfig,
) -> Result<Key> {
    base.insert("theta".into(), key_value(theta)?);
    if let Some(start) = start {
        base.insert("start".into(), key_value(start)?);
    }
    base.insert("fit".into(), key_value(fit)?);
    Ok(base)
}

/// The key of a shard of `run`: the rows key and the FDR target of its `called` column.
pub fn shard_key(mut rows: Key, fdr: f64) -> serde_json::Value {
    rows.insert("fdr".into(), serde_json::json!(fdr));
    serde_json::Value::Object(rows)
}

/// Where two keys differ, as dotted paths (`model.seed`, `theta`), sorted; `*` if either is
/// not an object.
pub fn differing_keys(found: &serde_json::Value, wanted: &serde_json::Value) -> Vec<String> {
    fn walk(prefix: &str, f: &serde_json::Value, w: &serde_json::Value, out: &mut Vec<String>) {
        let (Some(fo), Some(wo)) = (f.as_object(), w.as_object()) else {
            out.push(if prefix.is_empty() { "*" } else { prefix }.to_string());
            return;
        };
        for k in wo.keys().chain(fo.keys()) {
            let (a, b) = (fo.get(k), wo.get(k));
            if a == b {
                continue;
            }
            let path = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            match (a, b) {
                // Theta is one quantity: say that it differs, not which of its numbers.
                (Some(a), Some(b)) if a.is_object() && b.is_object() && k != "theta" => {
                    walk(&path, a, b, out)
                }
                _ => out.push(path),
            }
        }
    }
    let mut keys = Vec::new();
    walk("", found, wanted, &mut keys);
    keys.sort();
    keys.dedup();
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differing_keys_name_the_changed_settings() {
        let a = serde_json::json!({"model": {"seed": 1, "family": "structured"},
            "theta": {"a": 1.0}, "fit": {"draws": 10}});
        let b = serde_json::json!({"model": {"seed": 2, "family": "structured"},
            "theta": {"a": 2.0}, "fdr": 0.05, "fit": {"draws": 10}});
        assert_eq!(differing_keys(&a, &b), ["fdr", "model.seed", "theta"]);
        assert!(differing_keys(&a, &a).is_empty());
        assert_eq!(differing_keys(&a, &serde_json::json!(1)), ["*"]);
    }

    #[test]
    fn a_key_holds_every_setting_and_files_by_content() {
        let dir = tempfile::tempdir().unwrap();
        let bed = dir.path().join("r.bed");
        std::fs::write(&bed, "chr1\t0\t100\n").unwrap();
        let regions = RegionConfig {
            regions: Some(bed.clone().into()),
            ..RegionConfig::default()
        };
        let key = key_value(&regions).unwrap();
        // Every field of the struct, with nothing listed by hand.
        let plain = serde_json::to_value(&regions).unwrap();
        let fields: Vec<&String> = plain.as_object().unwrap().keys().collect();
        assert_eq!(key.as_object().unwrap().keys().collect::<Vec<_>>(), fields);
        let digest = format!("sha256:{}", sha256_file(&bed).unwrap().1);
        assert_eq!(key["regions"], serde_json::json!(digest));
        // Outside a key the file is its path again.
        assert_eq!(plain["regions"], serde_json::json!(bed));
        // A moved file keeps its key; other content does not.
        let moved = dir.path().join("moved.bed");
        std::fs::rename(&bed, &moved).unwrap();
        let moved_cfg = RegionConfig {
            regions: Some(moved.clone().into()),
            ..regions.clone()
        };
        assert_eq!(key_value(&moved_cfg).unwrap(), key);
        std::fs::write(&moved, "chr1\t0\t200\n").unwrap();
        assert_ne!(key_value(&moved_cfg).unwrap(), key);
        // A missing file is an error naming it.
        std::fs::remove_file(&moved).unwrap();
        let err = key_value(&moved_cfg).unwrap_err().chain();
        assert!(err.contains("moved.bed"), "{err}");
    }
}
