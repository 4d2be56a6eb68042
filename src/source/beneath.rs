//! Opening a file so that its path cannot leave a directory (an allowed root of `zklens serve`):
//! the check and the open are one system call, made at every open (first open, reopen after a
//! rotation, a rotated copy looked for next to the file), so replacing a checked file or one of
//! its directories with a symlink between the check and the use reaches nothing outside.
//!
//! Linux ≥ 5.6: `openat2` with `RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS` from a handle on the
//! root (symlinks that stay inside the root are followed; absolute ones and `..` that climbs out
//! are refused). Older kernels (`ENOSYS`): each component is opened with `O_NOFOLLOW` from the
//! root's handle, so no symlink at all is followed. Only regular files are opened (a FIFO would
//! block the reader, a device never ends).

use std::fs::File;
use std::io;
use std::path::{Component, Path};

use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

/// A path that would leave its root (or is not a regular file): refused, never read.
#[derive(Debug, thiserror::Error)]
#[error("{path}: refused: {why} (allowed root {root}); not read")]
pub struct Escape {
    /// The path asked for.
    pub path: String,
    /// The root it must stay under.
    pub root: String,
    /// What was found.
    pub why: String,
}

/// True when `e` is an [`Escape`].
pub fn is_escape(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|i| i.is::<Escape>())
}

fn escape(root: &Path, path: &Path, why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::PermissionDenied,
        Escape {
            path: path.display().to_string(),
            root: root.display().to_string(),
            why: why.to_string(),
        },
    )
}

/// How often an `openat2` disturbed by a concurrent rename (`EAGAIN`) is tried again.
const RETRIES: usize = 8;

/// Opens `path` (absolute, under `root`) for reading without leaving `root`: see the module
/// documentation. A symlink or `..` that leads out of the root, or a file that is not a regular
/// file, is an [`Escape`] error (`io::ErrorKind::PermissionDenied`).
pub fn open_beneath(root: &Path, path: &Path) -> io::Result<File> {
    let Ok(rel) = path.strip_prefix(root) else {
        return Err(escape(root, path, "not under the root"));
    };
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return Err(escape(root, path, "`..` or `.` in the path"));
    }
    let dir = rustix::fs::open(
        root,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK;
    let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS;
    let mut tries = 0;
    let fd = loop {
        match rustix::fs::openat2(&dir, rel, flags, Mode::empty(), resolve) {
            Ok(fd) => break fd,
            Err(Errno::AGAIN) if tries < RETRIES => tries += 1,
            Err(Errno::NOSYS) => break walk(&dir, root, path, rel, flags)?,
            Err(Errno::XDEV) | Err(Errno::LOOP) => {
                return Err(escape(
                    root,
                    path,
                    "a symlink or `..` in it leads out of the root",
                ))
            }
            Err(e) => return Err(e.into()),
        }
    };
    regular(File::from(fd), root, path)
}

/// The fallback: one `O_NOFOLLOW` open per component.
fn walk(
    dir: &rustix::fd::OwnedFd,
    root: &Path,
    path: &Path,
    rel: &Path,
    flags: OFlags,
) -> io::Result<rustix::fd::OwnedFd> {
    let parts: Vec<_> = rel.components().collect();
    let mut cur: Option<rustix::fd::OwnedFd> = None;
    for (i, c) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        let f = if last {
            flags | OFlags::NOFOLLOW
        } else {
            OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
        };
        let at = cur.as_ref().unwrap_or(dir);
        match rustix::fs::openat(at, c.as_os_str(), f, Mode::empty()) {
            Ok(fd) => cur = Some(fd),
            Err(Errno::LOOP) | Err(Errno::NOTDIR) => {
                return Err(escape(
                    root,
                    path,
                    "a symlink in it (not followed on this kernel)",
                ))
            }
            Err(e) => return Err(e.into()),
        }
    }
    cur.ok_or_else(|| escape(root, path, "the root itself"))
}

/// `file` when it is a regular file.
fn regular(file: File, root: &Path, path: &Path) -> io::Result<File> {
    if file.metadata()?.is_file() {
        Ok(file)
    } else {
        Err(escape(root, path, "not a regular file"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn opens_inside_refuses_outside() {
        let d = tempfile::tempdir().expect("tempdir");
        let root = d.path().join("root");
        let out = d.path().join("out");
        std::fs::create_dir_all(root.join("sub")).expect("mkdir");
        std::fs::create_dir_all(&out).expect("mkdir");
        std::fs::write(root.join("sub/a.log"), "inside\n").expect("write");
        std::fs::write(out.join("secret"), "SECRET\n").expect("write");
        let mut s = String::new();
        open_beneath(&root, &root.join("sub/a.log"))
            .expect("inside")
            .read_to_string(&mut s)
            .expect("read");
        assert_eq!(s, "inside\n");
        // a relative symlink that stays inside is followed
        std::os::unix::fs::symlink("sub/a.log", root.join("same.log")).expect("symlink");
        assert!(open_beneath(&root, &root.join("same.log")).is_ok());
        std::os::unix::fs::symlink(out.join("secret"), root.join("abs.log")).expect("symlink");
        std::os::unix::fs::symlink("../out/secret", root.join("rel.log")).expect("symlink");
        std::os::unix::fs::symlink(&out, root.join("dir")).expect("symlink");
        for p in ["abs.log", "rel.log", "dir/secret", "sub/../../out/secret"] {
            let e = open_beneath(&root, &root.join(p)).expect_err(p);
            assert!(is_escape(&e), "{p}: {e}");
        }
        assert!(is_escape(
            &open_beneath(&root, &out.join("secret")).expect_err("not under")
        ));
        assert!(is_escape(
            &open_beneath(&root, &root.join("sub")).expect_err("a directory")
        ));
    }
}
