//! A model file read piece by piece: the header once, then each tensor's bytes when a block
//! asks for them, so loading never holds more of the file than its largest tensor.

use alloc::format;
use alloc::string::{String, ToString};
use std::fs::File;
use std::io::Read;
#[cfg(not(unix))]
use std::io::{Seek, SeekFrom};
use std::path::Path;

use super::budget::{Budget, try_format};
use super::header::{self, Header};
use crate::error::{Error, Result};

/// An open model file whose header has been read and checked.
pub(crate) struct TensorFile {
    file: File,
    path: String,
    /// Offset of the data section (tensor offsets in the header count from here).
    data_start: u64,
}

impl TensorFile {
    /// Opens `path` and parses its header (read into memory charged to `budget`). Errors
    /// name the path.
    pub(crate) fn open(path: &Path, budget: &Budget) -> Result<(TensorFile, Header)> {
        let shown = try_format("the file's name", format_args!("{}", path.display()))?;
        let io = |e: std::io::Error| Error::Io {
            path: shown.clone(),
            problem: e.to_string(),
        };
        let located = |e: Error| match e {
            Error::Format(m) => Error::Format(format!("{shown}: {m}")),
            other => other,
        };
        let mut file = File::open(path).map_err(io)?;
        let file_len = file.metadata().map_err(io)?.len();
        let mut prefix = [0u8; header::PREFIX];
        let got = (file_len as usize).min(header::PREFIX);
        file.read_exact(&mut prefix[..got]).map_err(io)?;
        let n = header::json_len(&prefix[..got], file_len).map_err(located)?;
        let mut json = budget.vec("the JSON header", n, 0u8).map_err(located)?;
        file.read_exact(&mut json).map_err(io)?;
        let metadata = header::parse(&json, file_len).map_err(located)?;
        Ok((
            TensorFile {
                file,
                path: shown,
                data_start: (header::PREFIX + n) as u64,
            },
            metadata,
        ))
    }

    /// Reads the bytes `offsets` of the data section (part of tensor `name`) into `out`,
    /// which is exactly that long.
    pub(crate) fn read(&self, name: &str, offsets: (usize, usize), out: &mut [u8]) -> Result<()> {
        debug_assert_eq!(out.len(), offsets.1 - offsets.0);
        let at = self.data_start + offsets.0 as u64;
        // One positioned read on Unix; elsewhere seek then read (`&File` does both, so a
        // shared Source can read; loading is single-threaded).
        #[cfg(unix)]
        let read = std::os::unix::fs::FileExt::read_exact_at(&self.file, out, at);
        #[cfg(not(unix))]
        let read = {
            let mut file = &self.file;
            file.seek(SeekFrom::Start(at))
                .and_then(|_| file.read_exact(out))
        };
        read.map_err(|e| Error::Io {
            path: self.path.clone(),
            problem: format!("reading tensor `{name}`: {e}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    // Not under Miri: it writes and reads a real file, which Miri's isolation refuses
    // (scripts/miri.sh keeps isolation on).
    #[cfg_attr(miri, ignore)]
    fn a_file_cut_after_its_header_was_read_names_file_and_tensor() {
        let json = br#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#;
        let mut bytes = (json.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(json);
        bytes.extend_from_slice(&[0; 8]);
        let path = std::env::temp_dir().join(format!("innfer-cut-{}.st", std::process::id()));
        std::fs::write(&path, &bytes).unwrap();
        let (file, metadata) = TensorFile::open(&path, &Budget::new(usize::MAX)).unwrap();
        let offsets = metadata.tensors()[metadata.tensor_index("w").unwrap()].data_offsets;
        // Another process truncates the file between the header and the tensor.
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(bytes.len() as u64 - 1)
            .unwrap();
        let err = file.read("w", offsets, &mut [0; 8]).unwrap_err();
        std::fs::remove_file(&path).unwrap();
        match err {
            Error::Io { path: p, problem } => {
                assert_eq!(p, path.display().to_string());
                assert!(problem.contains("tensor `w`"), "{problem}");
            }
            other => panic!("{other:?}"),
        }
    }
}
