//! What a discovered registration may make zklens read. Registrations come from whoever can
//! write znodes under the services root: a `file://` URL is only followed under configured
//! roots, an `http(s)://` URL only to configured hosts or networks. Everything else is refused
//! with a reason (logged and shown by the API), never silently followed.

use std::net::IpAddr;
use std::path::{Component, Path, PathBuf};

use super::config::Security;

/// A source a registration may be read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A local file (absolute, normalised).
    File(PathBuf),
    /// An HTTP(S) URL.
    Http(String),
}

/// Parses a log URL (`file:///abs/path`, `http://host:port/path`, `https://...`).
pub fn parse_url(url: &str) -> Result<Target, String> {
    if let Some(rest) = url.strip_prefix("file://") {
        // file:///abs/path or file://localhost/abs/path
        let path = rest.strip_prefix("localhost").unwrap_or(rest);
        if !path.starts_with('/') {
            return Err(format!(
                "{url}: a file URL needs an absolute path (file:///...)"
            ));
        }
        if path.contains('\0') {
            return Err(format!("{url}: NUL byte in path"));
        }
        return Ok(Target::File(normalise(Path::new(path))));
    }
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        if host_port(url).is_none() {
            return Err(format!("{url}: no host in URL"));
        }
        return Ok(Target::Http(url.to_string()));
    }
    Err(format!(
        "{url}: unsupported URL scheme (file://, http://, https://)"
    ))
}

/// Removes `.` and resolves `..` lexically (before any file system access, so a `..` cannot
/// climb out of an allowed root).
fn normalise(p: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
            _ => {}
        }
    }
    out
}

/// `(host, port)` of an http(s) URL.
pub fn host_port(url: &str) -> Option<(String, Option<u16>)> {
    let rest = url.split_once("://")?.1;
    let auth = rest.split(['/', '?', '#']).next()?;
    let auth = auth.rsplit('@').next()?; // drop user:password@
    if auth.is_empty() {
        return None;
    }
    if let Some(v6) = auth.strip_prefix('[') {
        let (h, after) = v6.split_once(']')?;
        let port = after.strip_prefix(':').and_then(|p| p.parse().ok());
        return Some((h.to_string(), port));
    }
    match auth.rsplit_once(':') {
        Some((h, p)) => Some((h.to_ascii_lowercase(), Some(p.parse().ok()?))),
        None => Some((auth.to_ascii_lowercase(), None)),
    }
}

fn in_cidr(ip: IpAddr, net: &str) -> bool {
    let Some((addr, bits)) = net.split_once('/') else {
        return net.parse::<IpAddr>().ok() == Some(ip);
    };
    let (Ok(base), Ok(bits)) = (addr.parse::<IpAddr>(), bits.parse::<u32>()) else {
        return false;
    };
    match (ip, base) {
        (IpAddr::V4(a), IpAddr::V4(b)) if bits <= 32 => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(a) & mask == u32::from(b) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(b)) if bits <= 128 => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(a) & mask == u128::from(b) & mask
        }
        _ => false,
    }
}

/// Decides whether a discovered URL may be followed; `Err` says why not.
pub fn check(url: &str, sec: &Security) -> Result<Target, String> {
    let t = parse_url(url)?;
    match &t {
        Target::File(p) => {
            // Resolve symlinks of what exists (the file itself may not exist yet).
            let real = std::fs::canonicalize(p)
                .or_else(|_| {
                    p.parent()
                        .map(std::fs::canonicalize)
                        .unwrap_or_else(|| Ok(PathBuf::from("/")))
                        .map(|d| d.join(p.file_name().unwrap_or_default()))
                })
                .unwrap_or_else(|_| p.clone());
            let ok = sec.allowed_roots.iter().any(|r| {
                let root = std::fs::canonicalize(r).unwrap_or_else(|_| normalise(r));
                real.starts_with(&root)
            });
            if ok {
                Ok(Target::File(real))
            } else if sec.allowed_roots.is_empty() {
                Err(format!(
                    "{url}: refused: no allowed roots are configured for file sources (security.allowed_roots)"
                ))
            } else {
                Err(format!(
                    "{url}: refused: {} is not under an allowed root ({})",
                    real.display(),
                    sec.allowed_roots
                        .iter()
                        .map(|r| r.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            }
        }
        Target::Http(u) => {
            let Some((host, port)) = host_port(u) else {
                return Err(format!("{url}: no host in URL"));
            };
            let ip = host.parse::<IpAddr>().ok();
            let ok = sec.allowed_hosts.iter().any(|a| {
                let a = a.trim().to_ascii_lowercase();
                if let Some(ip) = ip {
                    if in_cidr(ip, &a) {
                        return true;
                    }
                }
                match a.rsplit_once(':') {
                    Some((h, p)) if !a.contains('/') && p.parse::<u16>().is_ok() => {
                        h == host && port == p.parse().ok()
                    }
                    _ => a == host,
                }
            });
            if ok {
                Ok(t)
            } else {
                Err(format!(
                    "{url}: refused: host {host} is not in security.allowed_hosts"
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sec(roots: &[&Path], hosts: &[&str]) -> Security {
        Security {
            allowed_roots: roots.iter().map(|p| p.to_path_buf()).collect(),
            allowed_hosts: hosts.iter().map(|h| h.to_string()).collect(),
        }
    }

    #[test]
    fn files_only_under_allowed_roots() {
        let d = tempfile::tempdir().expect("tempdir");
        let logs = d.path().join("logs");
        std::fs::create_dir_all(&logs).expect("mkdir");
        std::fs::write(logs.join("a.log"), "x\n").expect("write");
        let s = sec(&[&logs], &[]);
        let ok = format!("file://{}/a.log", logs.display());
        assert!(check(&ok, &s).is_ok());
        // not yet existing files under the root are fine
        assert!(check(&format!("file://{}/later.log", logs.display()), &s).is_ok());
        for bad in [
            "file:///etc/passwd".to_string(),
            format!("file://{}/../secret", logs.display()),
            "file://relative/path".to_string(),
            "ftp://host/x".to_string(),
        ] {
            assert!(check(&bad, &s).is_err(), "{bad} must be refused");
        }
        // a symlink inside the root pointing out of it is refused
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink("/etc/passwd", logs.join("link")).expect("symlink");
            assert!(check(&format!("file://{}/link", logs.display()), &s).is_err());
        }
        assert!(check(&ok, &sec(&[], &[])).is_err());
    }

    #[test]
    fn hosts_and_networks() {
        let s = sec(
            &[],
            &["10.0.0.0/8", "logs.internal:8080", "::1", "example.org"],
        );
        assert!(check("http://10.1.2.3:9000/x.log", &s).is_ok());
        assert!(check("http://11.1.2.3/x.log", &s).is_err());
        assert!(check("http://logs.internal:8080/x", &s).is_ok());
        assert!(check("http://logs.internal:8081/x", &s).is_err());
        assert!(check("https://EXAMPLE.org/x", &s).is_ok());
        assert!(check("http://[::1]:80/x", &s).is_ok());
        assert!(check("http://user:pw@10.0.0.1/x", &s).is_ok());
        assert!(check("http://evil.example.org.attacker/x", &s).is_err());
        assert!(check("http:///x", &s).is_err());
    }
}
