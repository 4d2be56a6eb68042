//! TLS and SASL for the ZooKeeper connection: `zookeeper-client`'s options built from
//! [`ZkTls`] and [`ZkSasl`] once, when discovery starts, so that a wrong file or setting is an
//! error at once (naming it) and not a reconnect loop.
//!
//! * **TLS** (feature `zk-tls`, on by default): the CA bundle, and the client's certificate and
//!   key for servers that require client authentication. Hostname verification is always on.
//!   With TLS configured every `host:port` of the connect string is reached over TLS;
//!   `tcp://host:port` keeps one in plaintext, `tcp+tls://` asks for TLS explicitly.
//! * **SASL DIGEST-MD5**: a user of the servers' JAAS `DigestLoginModule`.
//! * **SASL GSSAPI** (feature `zk-gssapi`): Kerberos with the ticket already in the credential
//!   cache (`kinit`); zklens never asks a KDC itself.

#[cfg(feature = "zk-tls")]
use std::path::Path;
use std::path::PathBuf;

use zookeeper_client as zk;

use super::{SaslMechanism, ZkSasl, ZkTls};

/// Largest PEM file read (a CA bundle of a few hundred certificates is well under it).
pub const MAX_PEM_BYTES: u64 = 1 << 20;

/// What is wrong with the TLS or SASL settings.
#[derive(Debug, thiserror::Error)]
pub enum SecureError {
    /// A PEM file cannot be read or holds nothing usable.
    #[error("[zookeeper.tls] {what} {}: {reason}", path.display())]
    File {
        /// Which setting (`ca`, `cert`, `key`).
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// TLS settings that do not fit together.
    #[error("[zookeeper.tls] {0}")]
    Tls(String),
    /// SASL settings that cannot work.
    #[error("[zookeeper.sasl] {0}")]
    Sasl(String),
    /// Asked for something this build of zklens leaves out.
    #[error("{what} needs zklens built with the cargo feature {feature}")]
    NotBuilt {
        /// What was asked for.
        what: &'static str,
        /// The feature.
        feature: &'static str,
    },
}

/// The connection's TLS and SASL options, ready to apply to every connection attempt.
#[derive(Clone, Default)]
pub struct Secure {
    #[cfg(feature = "zk-tls")]
    tls: Option<zk::TlsOptions>,
    sasl: Option<zk::SaslOptions>,
}

impl std::fmt::Debug for Secure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secure")
            .field("tls", &self.tls())
            .field("sasl", &self.sasl.is_some())
            .finish()
    }
}

impl Secure {
    /// Reads the PEM files and checks the SASL settings. `sasl.password` must hold the
    /// password by now (`zklens serve` reads `password_file` into it with its other secrets).
    pub fn new(tls: Option<&ZkTls>, sasl: Option<&ZkSasl>) -> Result<Secure, SecureError> {
        let mut s = Secure::default();
        if let Some(t) = tls {
            s.set_tls(t)?;
        }
        if let Some(a) = sasl {
            s.sasl = Some(sasl_options(a)?);
        }
        Ok(s)
    }

    /// Whether the connect string's plain `host:port` entries are reached over TLS.
    pub fn tls(&self) -> bool {
        #[cfg(feature = "zk-tls")]
        return self.tls.is_some();
        #[cfg(not(feature = "zk-tls"))]
        return false;
    }

    #[cfg(feature = "zk-tls")]
    fn set_tls(&mut self, t: &ZkTls) -> Result<(), SecureError> {
        install_crypto_provider();
        let bad = |what, path: &Path, e: zk::Error| SecureError::File {
            what,
            path: path.to_path_buf(),
            reason: e.to_string(),
        };
        let ca = read_pem("ca", &t.ca)?;
        let mut o = zk::TlsOptions::new()
            .with_pem_ca(&ca)
            .map_err(|e| bad("ca", &t.ca, e))?;
        match (&t.cert, &t.key) {
            (Some(c), Some(k)) => {
                let (cert, key) = (read_pem("cert", c)?, read_pem("key", k)?);
                o = o
                    .with_pem_identity(&cert, &key)
                    .map_err(|e| bad("cert/key", c, e))?;
            }
            (None, None) => {}
            _ => {
                return Err(SecureError::Tls(
                    "cert and key go together: set both or neither".into(),
                ))
            }
        }
        self.tls = Some(o);
        Ok(())
    }

    #[cfg(not(feature = "zk-tls"))]
    fn set_tls(&mut self, _: &ZkTls) -> Result<(), SecureError> {
        Err(SecureError::NotBuilt {
            what: "TLS to ZooKeeper ([zookeeper.tls])",
            feature: "zk-tls",
        })
    }

    /// `c` with these options.
    pub fn apply(&self, mut c: zk::Connector) -> zk::Connector {
        #[cfg(feature = "zk-tls")]
        if let Some(t) = &self.tls {
            c = c.with_tls(t.clone());
        }
        if let Some(s) = &self.sasl {
            c = c.with_sasl(s.clone());
        }
        c
    }

    /// Connects `c` (built with [`Secure::apply`]) to `connect`: over TLS by default when TLS is
    /// configured.
    pub async fn connect(&self, c: zk::Connector, connect: &str) -> Result<zk::Client, zk::Error> {
        #[cfg(feature = "zk-tls")]
        if self.tls.is_some() {
            return c.secure_connect(connect).await;
        }
        c.connect(connect).await
    }
}

/// zookeeper-client's rustls has both ring and aws-lc-rs enabled, so neither is the process's
/// default provider until one is installed: ring, as the HTTP source uses.
#[cfg(feature = "zk-tls")]
fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Err: another part of the process installed one first; that one is used.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

#[cfg(feature = "zk-tls")]
fn read_pem(what: &'static str, path: &Path) -> Result<String, SecureError> {
    use std::io::Read;
    let err = |reason: String| SecureError::File {
        what,
        path: path.to_path_buf(),
        reason,
    };
    let f = std::fs::File::open(path).map_err(|e| err(e.to_string()))?;
    let mut text = String::new();
    f.take(MAX_PEM_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| err(format!("not a PEM file ({e})")))?;
    if text.len() as u64 > MAX_PEM_BYTES {
        return Err(err(format!("larger than {MAX_PEM_BYTES} bytes")));
    }
    if !text.contains("-----BEGIN ") {
        return Err(err("no PEM block in it".into()));
    }
    Ok(text)
}

fn sasl_options(a: &ZkSasl) -> Result<zk::SaslOptions, SecureError> {
    match a.mechanism {
        SaslMechanism::DigestMd5 => {
            let user = a.username.as_deref().filter(|u| !u.is_empty());
            let (Some(user), Some(password)) = (user, a.password.as_deref()) else {
                return Err(SecureError::Sasl(
                    "digest-md5 needs username and password (password_file, \
                     --zk-sasl-password-file or $ZKLENS_ZK_SASL_PASSWORD)"
                        .into(),
                ));
            };
            Ok(zk::SaslOptions::digest_md5(user.to_string(), password.to_string()).into())
        }
        SaslMechanism::Gssapi => gssapi(a),
    }
}

#[cfg(feature = "zk-gssapi")]
fn gssapi(a: &ZkSasl) -> Result<zk::SaslOptions, SecureError> {
    if a.password.is_some() || a.password_file.is_some() {
        return Err(SecureError::Sasl(
            "gssapi takes no password: the Kerberos ticket comes from the credential cache (kinit)"
                .into(),
        ));
    }
    let mut o = zk::SaslOptions::gssapi();
    if let Some(u) = &a.username {
        o = o.with_username(u.clone());
    }
    if let Some(h) = &a.hostname {
        o = o.with_hostname(h.clone());
    }
    Ok(o.into())
}

#[cfg(not(feature = "zk-gssapi"))]
fn gssapi(_: &ZkSasl) -> Result<zk::SaslOptions, SecureError> {
    Err(SecureError::NotBuilt {
        what: "SASL GSSAPI (Kerberos) to ZooKeeper",
        feature: "zk-gssapi",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tls(dir: &Path, ca: &str, cert: Option<&str>, key: Option<&str>) -> ZkTls {
        ZkTls {
            ca: dir.join(ca),
            cert: cert.map(|c| dir.join(c)),
            key: key.map(|k| dir.join(k)),
        }
    }

    #[test]
    fn files_that_cannot_work_are_errors_naming_them() {
        let d = tempfile::tempdir().expect("tempdir");
        std::fs::write(d.path().join("junk.pem"), "not a certificate\n").expect("write");
        std::fs::write(
            d.path().join("empty-block.pem"),
            "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n",
        )
        .expect("write");
        for (t, needle) in [
            (tls(d.path(), "missing.pem", None, None), "missing.pem"),
            (
                tls(d.path(), "junk.pem", None, None),
                "junk.pem: no PEM block",
            ),
            (
                tls(d.path(), "empty-block.pem", None, None),
                "empty-block.pem",
            ),
        ] {
            let e = Secure::new(Some(&t), None).expect_err("must fail");
            let msg = e.to_string();
            if cfg!(feature = "zk-tls") {
                assert!(msg.contains(needle), "{msg}");
            } else {
                assert!(msg.contains("zk-tls"), "{msg}");
            }
        }
    }

    #[cfg(feature = "zk-tls")]
    #[test]
    fn a_certificate_without_its_key_is_refused() {
        let d = tempfile::tempdir().expect("tempdir");
        // A real CA certificate is needed before cert/key are looked at.
        let key = rcgen::KeyPair::generate().expect("key");
        let ca = rcgen::CertificateParams::new(vec!["ca".to_string()])
            .expect("params")
            .self_signed(&key)
            .expect("cert");
        std::fs::write(d.path().join("ca.pem"), ca.pem()).expect("write");
        let t = tls(d.path(), "ca.pem", Some("ca.pem"), None);
        let msg = Secure::new(Some(&t), None)
            .expect_err("must fail")
            .to_string();
        assert!(msg.contains("cert and key go together"), "{msg}");
        let ok = Secure::new(Some(&tls(d.path(), "ca.pem", None, None)), None).expect("CA only");
        assert!(ok.tls());
    }

    #[test]
    fn sasl_settings_that_cannot_work_are_refused() {
        let no_password = ZkSasl {
            username: Some("zklens".into()),
            ..ZkSasl::default()
        };
        let msg = Secure::new(None, Some(&no_password))
            .expect_err("no password")
            .to_string();
        assert!(
            msg.contains("digest-md5 needs username and password"),
            "{msg}"
        );
        let gssapi = ZkSasl {
            mechanism: SaslMechanism::Gssapi,
            ..ZkSasl::default()
        };
        let r = Secure::new(None, Some(&gssapi));
        if cfg!(feature = "zk-gssapi") {
            assert!(r.is_ok());
        } else {
            assert!(r.expect_err("not built").to_string().contains("zk-gssapi"));
        }
        let digest = ZkSasl {
            username: Some("zklens".into()),
            password: Some("pw".into()),
            ..ZkSasl::default()
        };
        assert!(!Secure::new(None, Some(&digest)).expect("digest").tls());
    }
}
