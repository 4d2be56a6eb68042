//! This machine's names: what a registration's `host` must say for a log to be read here.
//!
//! A registration names the host its service runs on (`"host"` in plain registrations, Curator's
//! `address`). Its `file://` logs are on that host: `zklens agent` follows the registrations
//! naming its host, and `zklens serve` reads a registration's files itself only when they name
//! the machine it runs on (else it would read another file that happens to have the same path).

use std::net::IpAddr;

use serde::Serialize;

/// The names and addresses a registration's `host` may use for this machine.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HostNames {
    /// The identity: the host name, or `--host`.
    pub name: String,
    /// Every address of the machine's interfaces (loopback included), as text.
    pub addresses: Vec<String>,
    /// Other names it answers to (`localhost`, the short host name).
    pub aliases: Vec<String>,
}

impl HostNames {
    /// This machine: its host name, every interface address, `localhost`.
    pub fn of_machine() -> HostNames {
        let name = machine_name().unwrap_or_else(|| "localhost".to_string());
        let mut aliases = vec!["localhost".to_string()];
        if let Some((short, _)) = name.split_once('.') {
            aliases.push(short.to_string());
        }
        HostNames {
            name,
            addresses: interface_addresses()
                .into_iter()
                .map(|a| a.to_string())
                .collect(),
            aliases,
        }
    }

    /// An identity given by hand (`--host NAME`): that name only. Several agents on one machine
    /// (tests, or containers sharing a network) must not all claim its addresses.
    pub fn named(name: &str) -> HostNames {
        HostNames {
            name: name.to_string(),
            addresses: Vec::new(),
            aliases: Vec::new(),
        }
    }

    /// Whether a registration's `host` names this machine (case-insensitive for names; an
    /// address compares as an address, so `::1` and `0:0::1` are the same).
    pub fn matches(&self, host: &str) -> bool {
        let host = host.trim().trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return false;
        }
        if let Ok(ip) = host.parse::<IpAddr>() {
            return self
                .addresses
                .iter()
                .chain(std::iter::once(&self.name))
                .filter_map(|a| a.parse::<IpAddr>().ok())
                .any(|a| a == ip);
        }
        std::iter::once(&self.name)
            .chain(&self.aliases)
            .any(|n| n.eq_ignore_ascii_case(host))
    }
}

/// The kernel's host name.
fn machine_name() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most `buf.len()` bytes into the buffer it is given.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let name = String::from_utf8_lossy(&buf[..end]).trim().to_string();
    (!name.is_empty()).then_some(name)
}

/// Every IPv4 and IPv6 address of the machine's interfaces.
fn interface_addresses() -> Vec<IpAddr> {
    let mut out = Vec::new();
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs allocates a list it hands back through `head`; it is walked read-only
    // and freed once with freeifaddrs.
    unsafe {
        if libc::getifaddrs(&mut head) != 0 {
            return out;
        }
        let mut p = head;
        while !p.is_null() {
            let a = (*p).ifa_addr;
            if !a.is_null() {
                match i32::from((*a).sa_family) {
                    libc::AF_INET => {
                        let s = &*(a as *const libc::sockaddr_in);
                        out.push(IpAddr::from(u32::from_be(s.sin_addr.s_addr).to_be_bytes()));
                    }
                    libc::AF_INET6 => {
                        let s = &*(a as *const libc::sockaddr_in6);
                        out.push(IpAddr::from(s.sin6_addr.s6_addr));
                    }
                    _ => {}
                }
            }
            p = (*p).ifa_next;
        }
        libc::freeifaddrs(head);
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_machine_answers_to_its_name_loopback_and_localhost() {
        let h = HostNames::of_machine();
        assert!(!h.name.is_empty());
        assert!(h.matches(&h.name));
        assert!(h.matches(&h.name.to_uppercase()));
        assert!(h.matches("localhost"));
        assert!(h.matches("127.0.0.1"), "{h:?}");
        assert!(!h.matches("zklens-no-such-host.example"));
        assert!(!h.matches("192.0.2.77"), "TEST-NET-1 is nobody's");
        assert!(!h.matches(""));
    }

    #[test]
    fn a_given_identity_is_that_name_only() {
        let h = HostNames::named("h1");
        assert!(h.matches("h1") && h.matches("H1"));
        assert!(!h.matches("h2"));
        assert!(!h.matches("127.0.0.1"));
        assert!(!h.matches("localhost"));
    }
}
