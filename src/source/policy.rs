//! What a discovered registration may make zklens read. Registrations come from whoever can
//! write znodes under the services root: a `file://` URL is only followed under configured
//! roots, an `http(s)://` URL only to configured hosts or networks. Everything else is refused
//! with a reason (logged and shown by the API), never silently followed.
//!
//! An HTTP source's host is resolved here, once: every address it resolves to must be allowed
//! (link-local and metadata addresses only when an entry names them), and the source then
//! connects to exactly those addresses ([`Target::Http`]'s `pinned`), so a name cannot resolve to
//! something else between the check and the connection. Redirects are never followed (see
//! [`crate::source::follow::HttpRange`]).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Limits on what discovered registrations may point at.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Security {
    /// `file://` sources must lie under one of these directories.
    pub allowed_roots: Vec<PathBuf>,
    /// `http(s)://` sources must name one of these: `host`, `host:port`, an IP, or a network
    /// in CIDR notation (`10.0.0.0/8`). A URL's host is resolved once, when its registration
    /// is checked: every address must be allowed (named host, or inside a listed network), and
    /// the source then connects only to those addresses. Link-local and metadata addresses
    /// (169.254.0.0/16, fe80::/10, fd00:ec2::254) and non-unicast ones are refused unless an
    /// entry lies inside their range (`169.254.169.254`). Redirects are never followed.
    pub allowed_hosts: Vec<String>,
    /// Most discovered sources followed at once, over every registration (each has its own
    /// collector thread); one over it is refused and reported. `--max-sources`.
    pub max_sources: usize,
}

/// Default of [`Security::max_sources`].
pub const DEFAULT_MAX_SOURCES: usize = 256;

impl Default for Security {
    fn default() -> Self {
        Security {
            allowed_roots: Vec::new(),
            allowed_hosts: Vec::new(),
            max_sources: DEFAULT_MAX_SOURCES,
        }
    }
}

/// A source a registration may be read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A local file.
    File {
        /// Absolute, normalised (symlinks resolved as far as the path existed when checked).
        path: PathBuf,
        /// The allowed root it was checked against, resolved: every open of the file stays
        /// under it (None: a configured source, opened as named).
        root: Option<PathBuf>,
    },
    /// An HTTP(S) URL.
    Http {
        /// The URL.
        url: String,
        /// The addresses its host resolved to when it was checked: the only ones it may be
        /// read from (None: not checked, a configured source, resolved when connecting).
        pinned: Option<Vec<SocketAddr>>,
    },
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
        return Ok(Target::File {
            path: normalise(Path::new(path)),
            root: None,
        });
    }
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        if host_port(url).is_none() {
            return Err(format!("{url}: no host in URL"));
        }
        if url.bytes().any(|b| b.is_ascii_control() || b == b' ') {
            return Err(format!("{url:?}: control character or blank in URL"));
        }
        return Ok(Target::Http {
            url: url.to_string(),
            pinned: None,
        });
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

/// What a target reads, one spelling for every way of naming it: the file's resolved path
/// (`/a/./b`, `/a//b`, `/a/c/../b` and a symlink to it are one file), or the URL with its scheme
/// and host in lower case, no user info, default port or fragment, and its path's `.`, `..` and
/// empty segments resolved. Two registrations' sources with one identity are one source.
pub fn identity(t: &Target) -> String {
    match t {
        Target::File { path, .. } => {
            let real = std::fs::canonicalize(path).unwrap_or_else(|_| normalise(path));
            format!("file://{}", real.display())
        }
        Target::Http { url, .. } => {
            let Some((scheme, rest)) = url.split_once("://") else {
                return url.clone();
            };
            let scheme = scheme.to_ascii_lowercase();
            let rest = rest.split('#').next().unwrap_or_default();
            let cut = rest.find(['/', '?']).unwrap_or(rest.len());
            let (auth, tail) = rest.split_at(cut);
            let (path, query) = tail
                .split_once('?')
                .map_or((tail, None), |(p, q)| (p, Some(q)));
            let host = match host_port(url) {
                Some((h, Some(p)))
                    if !matches!((scheme.as_str(), p), ("http", 80) | ("https", 443)) =>
                {
                    if h.contains(':') {
                        format!("[{h}]:{p}")
                    } else {
                        format!("{h}:{p}")
                    }
                }
                Some((h, _)) if h.contains(':') => format!("[{h}]"),
                Some((h, _)) => h,
                None => auth.to_ascii_lowercase(),
            };
            let mut segs: Vec<&str> = Vec::new();
            for seg in path.split('/') {
                match seg {
                    "" | "." => {}
                    ".." => {
                        segs.pop();
                    }
                    s => segs.push(s),
                }
            }
            let mut out = format!(
                "{scheme}://{}/{}",
                host.to_ascii_lowercase(),
                segs.join("/")
            );
            if path.ends_with('/') && !segs.is_empty() {
                out.push('/');
            }
            if let Some(q) = query {
                out.push('?');
                out.push_str(q);
            }
            out
        }
    }
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
        Target::File { path: p, .. } => {
            // Resolve symlinks of what exists (the file itself may not exist yet).
            let real = std::fs::canonicalize(p)
                .or_else(|_| {
                    p.parent()
                        .map(std::fs::canonicalize)
                        .unwrap_or_else(|| Ok(PathBuf::from("/")))
                        .map(|d| d.join(p.file_name().unwrap_or_default()))
                })
                .unwrap_or_else(|_| p.clone());
            let root = sec.allowed_roots.iter().find_map(|r| {
                let root = std::fs::canonicalize(r).unwrap_or_else(|_| normalise(r));
                real.starts_with(&root).then_some(root)
            });
            if let Some(root) = root {
                Ok(Target::File {
                    path: real,
                    root: Some(root),
                })
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
        Target::Http { url: u, .. } => {
            let Some((host, port)) = host_port(u) else {
                return Err(format!("{url}: no host in URL"));
            };
            let port = port.unwrap_or(if u.to_ascii_lowercase().starts_with("https") {
                443
            } else {
                80
            });
            let named = sec
                .allowed_hosts
                .iter()
                .any(|a| entry_names(a, &host, port));
            let addrs = resolve(&host, port)
                .map_err(|e| format!("{url}: refused: host {host} does not resolve: {e}"))?;
            for a in &addrs {
                let ip = canonical_ip(a.ip());
                if special(ip) && !explicitly_allowed(ip, &sec.allowed_hosts) {
                    return Err(format!(
                        "{url}: refused: {host} resolves to {ip}, a link-local, metadata or \
                         non-unicast address, which only an allowed_hosts entry naming it \
                         (the address or a network inside that range) allows"
                    ));
                }
                if !named && !sec.allowed_hosts.iter().any(|n| in_cidr(ip, n.trim())) {
                    return Err(format!(
                        "{url}: refused: host {host} ({ip}) is not in security.allowed_hosts"
                    ));
                }
            }
            Ok(Target::Http {
                url: u.clone(),
                pinned: Some(addrs),
            })
        }
    }
}

/// Does allowlist entry `a` name `host` (as written, case-insensitive) on `port`?
fn entry_names(a: &str, host: &str, port: u16) -> bool {
    let a = a.trim().to_ascii_lowercase();
    if a.contains('/') {
        return false; // a network: matched against the resolved addresses
    }
    let a = a.trim_start_matches('[');
    match a.rsplit_once(':') {
        // `host:port` (an IPv6 address alone has more than one `:`)
        Some((h, p)) if !h.contains(':') || h.ends_with(']') => {
            h.trim_end_matches(']') == host && p.parse::<u16>().ok() == Some(port)
        }
        _ => a.trim_end_matches(']') == host,
    }
}

/// Most addresses one allowed name may resolve to (all are pinned).
pub const MAX_RESOLVED: usize = 16;

/// The host's addresses on `port`: an IP as it is, a name resolved (once, here).
fn resolve(host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let mut v: Vec<SocketAddr> = (host, port).to_socket_addrs()?.take(MAX_RESOLVED).collect();
    v.dedup();
    if v.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "no addresses",
        ));
    }
    Ok(v)
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Address ranges a discovered HTTP source never reaches unless an entry of
/// `security.allowed_hosts` lies inside one (the address itself, or a network within the range):
/// link-local (cloud metadata services answer at 169.254.169.254 and fd00:ec2::254), unspecified,
/// multicast and broadcast. A broad network (`0.0.0.0/0`) does not allow them.
const SPECIAL: &[(IpAddr, u32)] = &[
    (IpAddr::V4(Ipv4Addr::new(169, 254, 0, 0)), 16),
    (IpAddr::V4(Ipv4Addr::new(0, 0, 0, 0)), 8),
    (IpAddr::V4(Ipv4Addr::new(224, 0, 0, 0)), 4),
    (IpAddr::V4(Ipv4Addr::new(255, 255, 255, 255)), 32),
    (IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0)), 10),
    (
        IpAddr::V6(Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)),
        128,
    ),
    (IpAddr::V6(Ipv6Addr::UNSPECIFIED), 128),
    (IpAddr::V6(Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0)), 8),
];

fn special(ip: IpAddr) -> bool {
    SPECIAL
        .iter()
        .any(|(base, bits)| in_cidr(ip, &format!("{base}/{bits}")))
}

/// An entry of `allowed` names `ip` and lies within a special range (see [`SPECIAL`]).
fn explicitly_allowed(ip: IpAddr, allowed: &[String]) -> bool {
    allowed.iter().any(|a| {
        let a = a.trim();
        if !in_cidr(ip, a) {
            return false;
        }
        let (base, bits) = match a.split_once('/') {
            Some((b, n)) => (b.parse::<IpAddr>().ok(), n.parse::<u32>().ok()),
            None => (
                a.parse::<IpAddr>().ok(),
                Some(if ip.is_ipv4() { 32 } else { 128 }),
            ),
        };
        let (Some(base), Some(bits)) = (base, bits) else {
            return false;
        };
        SPECIAL
            .iter()
            .any(|(r, rbits)| bits >= *rbits && in_cidr(base, &format!("{r}/{rbits}")))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sec(roots: &[&Path], hosts: &[&str]) -> Security {
        Security {
            allowed_roots: roots.iter().map(|p| p.to_path_buf()).collect(),
            allowed_hosts: hosts.iter().map(|h| h.to_string()).collect(),
            ..Security::default()
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
        let s = sec(&[], &["10.0.0.0/8", "localhost:8080", "::1"]);
        assert!(check("http://10.1.2.3:9000/x.log", &s).is_ok());
        assert!(check("http://11.1.2.3/x.log", &s).is_err());
        assert!(check("http://LOCALHOST:8080/x", &s).is_ok());
        // localhost on another port: named only with 8080, and 127.0.0.1 is in no network
        assert!(check("http://localhost:8081/x", &s).is_err());
        assert!(check("http://[::1]:80/x", &s).is_ok());
        assert!(check("http://user:pw@10.0.0.1/x", &s).is_ok());
        assert!(check("http://evil.example.org.attacker.invalid/x", &s).is_err());
        assert!(check("http:///x", &s).is_err());
        assert!(check("http://10.0.0.1/a b", &s).is_err());
    }

    /// Issue 15: a name on the allowlist was matched as written and resolved again at every
    /// connection. It is now resolved once, here, and the source is pinned to what was checked.
    #[test]
    fn allowed_names_are_resolved_once_and_pinned() {
        let s = sec(&[], &["localhost"]);
        let Ok(Target::Http {
            pinned: Some(addrs),
            ..
        }) = check("http://localhost:9999/x", &s)
        else {
            panic!("localhost is allowed and resolves");
        };
        assert!(!addrs.is_empty());
        assert!(addrs
            .iter()
            .all(|a| a.ip().is_loopback() && a.port() == 9999));
        // a name not on the list whose every address is in an allowed network
        let s = sec(&[], &["127.0.0.0/8", "::1"]);
        assert!(check("http://localhost:1/x", &s).is_ok());
        // configured sources are not checked, nor pinned
        assert!(matches!(
            parse_url("http://localhost/x"),
            Ok(Target::Http { pinned: None, .. })
        ));
    }

    /// Issue 15: link-local (cloud metadata) and non-unicast addresses are refused unless an
    /// entry names them; a catch-all network does not.
    #[test]
    fn metadata_addresses_need_an_explicit_entry() {
        let all = sec(&[], &["0.0.0.0/0", "::/0"]);
        for bad in [
            "http://169.254.169.254/latest/meta-data/",
            "http://[::ffff:169.254.169.254]/latest/meta-data/",
            "http://[fe80::1]/x",
            "http://[fd00:ec2::254]/x",
            "http://0.0.0.0:7311/api/query",
            "http://224.0.0.1/x",
        ] {
            let r = check(bad, &all);
            assert!(r.is_err(), "{bad} must be refused: {r:?}");
        }
        assert!(check("http://10.1.1.1/x", &all).is_ok());
        assert!(check("http://169.254.169.254/x", &sec(&[], &["169.254.169.254"])).is_ok());
        assert!(check("http://169.254.10.1/x", &sec(&[], &["169.254.0.0/16"])).is_ok());
    }

    /// One identity for every spelling of a file or URL.
    #[test]
    fn identities() {
        let d = tempfile::tempdir().expect("tempdir");
        let root = d.path().canonicalize().expect("canonical");
        std::fs::create_dir_all(root.join("c")).expect("mkdir");
        std::fs::write(root.join("b.log"), "x\n").expect("write");
        std::os::unix::fs::symlink(root.join("b.log"), root.join("l.log")).expect("symlink");
        let r = root.display();
        let id = |u: &str| identity(&parse_url(u).expect(u));
        let want = format!("file://{r}/b.log");
        for u in ["/b.log", "/./b.log", "//b.log", "/c/../b.log", "/l.log"] {
            assert_eq!(id(&format!("file://{r}{u}")), want, "{u}");
        }
        let want = "http://logs.example/a/b.log?x=1";
        for u in [
            "http://logs.example/a/b.log?x=1",
            "HTTP://Logs.Example:80/a/./b.log?x=1#f",
            "http://user:pw@logs.example//a/c/../b.log?x=1",
        ] {
            assert_eq!(id(u), want, "{u}");
        }
        assert_ne!(
            id("http://logs.example:8080/a/b.log"),
            id("http://logs.example/a/b.log")
        );
        assert_eq!(id("https://[::1]:443/x"), "https://[::1]/x");
        assert_eq!(id("https://[::1]:8443/x"), "https://[::1]:8443/x");
    }
}
