//! What the disk holds and has left: the size of a folder's files, and the free space of
//! the filesystem a path is on.

use std::path::Path;

/// The bytes of every file under `dir` (following no symbolic links); `None` when `dir`
/// cannot be read.
pub fn folder_size(dir: &Path) -> Option<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).ok()? {
        let Ok(entry) = entry else { continue };
        let Ok(meta) = entry.metadata() else { continue };
        if meta.is_dir() {
            total += folder_size(&entry.path()).unwrap_or(0);
        } else if meta.is_file() {
            total += meta.len();
        }
    }
    Some(total)
}

/// Bytes an unprivileged process may still write on the filesystem that holds `path`.
#[cfg(unix)]
pub fn free_bytes(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: c_path is a valid C string and stat points to writable memory of the right
    // type; statvfs fills it completely when it returns 0.
    let stat = unsafe {
        if libc::statvfs(c_path.as_ptr(), stat.as_mut_ptr()) != 0 {
            return None;
        }
        stat.assume_init()
    };
    Some((stat.f_bavail as u64).saturating_mul(stat.f_frsize as u64))
}

#[cfg(not(unix))]
pub fn free_bytes(_: &Path) -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_free_space_are_read() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("a"), [0u8; 100]).unwrap();
        std::fs::write(dir.path().join("sub/b"), [0u8; 23]).unwrap();
        assert_eq!(folder_size(dir.path()), Some(123));
        assert!(free_bytes(dir.path()).is_some_and(|b| b > 0));
        assert_eq!(folder_size(&dir.path().join("missing")), None);
        assert_eq!(free_bytes(&dir.path().join("missing")), None);
    }
}
