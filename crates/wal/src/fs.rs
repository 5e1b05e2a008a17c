//! The file operations the WAL uses, behind a trait so that tests can inject faults
//! (drop unsynced writes, tear the last write, flip bits) without touching a real disk.
//!
//! [`StdFs`] is the real implementation over `std::fs`. Every write the WAL makes is a
//! positional write into a file it created and preallocated itself; durability comes only
//! from [`WalFile::sync_data`] / [`WalFile::sync_all`] and, for names, [`FileSystem::sync_dir`].

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

/// One open file: positional reads and writes, durability on request.
#[allow(clippy::len_without_is_empty)]
pub trait WalFile: Send + Sync {
    /// Writes all of `buf` at `offset`. Not durable until a sync.
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;
    /// Fills `buf` from `offset`; fails if the file is shorter.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
    /// Current length in bytes.
    fn len(&self) -> io::Result<u64>;
    /// Makes written data durable (not necessarily metadata such as the length).
    fn sync_data(&self) -> io::Result<()>;
    /// Makes data and metadata durable.
    fn sync_all(&self) -> io::Result<()>;
}

/// The directory-level operations of the WAL.
pub trait FileSystem: Send + Sync + 'static {
    /// Creates `dir` and its parents if missing.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// Names of the files in `dir` (not paths), in no particular order.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// Creates `path` (truncating it if it exists) for reading and writing.
    fn create(&self, path: &Path) -> io::Result<Arc<dyn WalFile>>;
    /// Opens an existing file for reading and writing.
    fn open(&self, path: &Path) -> io::Result<Arc<dyn WalFile>>;
    /// Atomically renames `from` to `to`, replacing `to`. Durable after [`sync_dir`](Self::sync_dir).
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes a file. Durable after [`sync_dir`](Self::sync_dir).
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// Makes the directory's entries (creations, renames, removals) durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
}

/// The real file system.
#[derive(Clone, Copy, Debug, Default)]
pub struct StdFs;

struct StdFile(File);

impl WalFile for StdFile {
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.0.write_all_at(buf, offset)
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.0.read_exact_at(buf, offset)
    }
    fn len(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }
    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }
    fn sync_all(&self) -> io::Result<()> {
        self.0.sync_all()
    }
}

impl FileSystem for StdFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            if let Some(name) = entry.file_name().to_str() {
                names.push(name.to_owned());
            }
        }
        Ok(names)
    }
    fn create(&self, path: &Path) -> io::Result<Arc<dyn WalFile>> {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        Ok(Arc::new(StdFile(f)))
    }
    fn open(&self, path: &Path) -> io::Result<Arc<dyn WalFile>> {
        let f = OpenOptions::new().read(true).write(true).open(path)?;
        Ok(Arc::new(StdFile(f)))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
}

/// Writes `len` zero bytes into `file` from offset 0, in chunks. Zero-filling (rather than
/// a sparse `set_len`) allocates every block up front, so that a later append overwrites
/// allocated blocks and `fdatasync` has no block-allocation metadata to flush.
pub(crate) fn zero_fill(file: &dyn WalFile, from: u64, to: u64) -> io::Result<()> {
    const CHUNK: usize = 1 << 20;
    let zeros = vec![0u8; CHUNK];
    let mut at = from;
    while at < to {
        let n = ((to - at) as usize).min(CHUNK);
        file.write_at(&zeros[..n], at)?;
        at += n as u64;
    }
    Ok(())
}

/// Reads a whole file.
pub(crate) fn read_all(fs: &dyn FileSystem, path: &Path) -> io::Result<Vec<u8>> {
    let f = fs.open(path)?;
    let len = usize::try_from(f.len()?)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "file too large"))?;
    let mut buf = vec![0u8; len];
    f.read_exact_at(&mut buf, 0)?;
    Ok(buf)
}
