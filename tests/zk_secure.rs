//! TLS and SASL to a real ZooKeeper (Debian's 3.8 jar, one server started by
//! `tests/harness/zkharness.py` on loopback, base port 29810: plain client port 29811, TLS
//! `secureClientPort` 29861; set `ZKLENS_SECURE_PORT` to move it).
//!
//! The test makes its own PKI (rcgen): a CA, the server's certificate (SAN 127.0.0.1 and
//! localhost), zklens's client certificate, and a second CA nobody trusts. The server runs the
//! Netty connection factory with PEM key and trust stores, requires client certificates
//! (ZooKeeper's default), takes SASL DIGEST-MD5 users from a JAAS file and **enforces SASL**
//! (`enforce.auth.schemes=sasl`): no session works without it. The registrations live under a
//! znode only the SASL user may read (`sasl:zklens` ACL).
//!
//! Checked: zklens's discovery over TLS with SASL finds the registration; the same with SASL
//! over plaintext; with a CA that did not sign the server's certificate, without a client
//! certificate, without SASL, or with a wrong password, it finds nothing. `zklens serve` given
//! the TLS and SASL flags (the password from a file) follows the registered service's log and
//! indexes it; a missing CA file stops `zklens serve` at once with an error naming it.
//!
//! Without java or Debian's ZooKeeper jars the test prints `SKIPPED: ...` and passes, unless
//! `ZKLENS_REQUIRE_ORACLE=1`.

#![cfg(feature = "zk-tls")]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tokio::runtime::Runtime;
use tokio::sync::{mpsc, watch};
use zklens::discovery::watch::run;
use zklens::discovery::{DiscoveryEvent, SaslMechanism, ZkConfig, ZkSasl, ZkTls};
use zookeeper_client as zk;

mod common;
use common::{http_get, stdout_of, PYTHON};

const HARNESS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/harness/zkharness.py");
const USER: &str = "zklens";
const PASSWORD: &str = "s3cret-for-tests";
const ROOT: &str = "/secure/services";

fn base_port() -> u16 {
    std::env::var("ZKLENS_SECURE_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(29810)
}

/// The test's PKI, as PEM files in one directory.
struct Pki {
    ca: PathBuf,
    other_ca: PathBuf,
    /// The server's key and certificate in one file (ZooKeeper's PEM key store).
    server: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
}

fn pki(dir: &Path) -> Pki {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
        KeyUsagePurpose,
    };
    let ca = |name: &str| {
        let key = KeyPair::generate().expect("key");
        let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, name);
        p.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = p.self_signed(&key).expect("CA");
        (cert, key)
    };
    let (ca_cert, ca_key) = ca("zklens test CA");
    let (other_cert, _) = ca("a CA nobody trusts");
    let leaf = |name: &str| {
        let key = KeyPair::generate().expect("key");
        let mut p = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .expect("params");
        p.distinguished_name.push(DnType::CommonName, name);
        p.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let cert = p.signed_by(&key, &ca_cert, &ca_key).expect("sign");
        (cert.pem(), key.serialize_pem())
    };
    let (server_cert, server_key) = leaf("zookeeper");
    let (client_cert, client_key) = leaf("zklens");
    let write = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).expect("write PEM");
        p
    };
    Pki {
        ca: write("ca.pem", &ca_cert.pem()),
        other_ca: write("other-ca.pem", &other_cert.pem()),
        server: write("server.pem", &format!("{server_key}{server_cert}")),
        client_cert: write("client.pem", &client_cert),
        client_key: write("client-key.pem", &client_key),
    }
}

/// The server; killed on drop (and by the harness's watchdog if the test dies).
struct Server {
    dir: PathBuf,
}

impl Server {
    fn start(dir: &Path, pki: &Pki) -> Server {
        let jaas = dir.join("jaas.conf");
        std::fs::write(
            &jaas,
            format!(
                "Server {{\n  org.apache.zookeeper.server.auth.DigestLoginModule required\n  user_{USER}=\"{PASSWORD}\";\n}};\n"
            ),
        )
        .expect("jaas");
        let b = base_port();
        let j = "/usr/share/java";
        let extra = [
            format!("secureClientPort={}", b + 51),
            "secureClientPortAddress=127.0.0.1".into(),
            "serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory".into(),
            format!("ssl.keyStore.location={}", pki.server.display()),
            "ssl.keyStore.type=PEM".into(),
            format!("ssl.trustStore.location={}", pki.ca.display()),
            "ssl.trustStore.type=PEM".into(),
            "authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider".into(),
            "enforce.auth.enabled=true".into(),
            "enforce.auth.schemes=sasl".into(),
        ];
        let s = Server {
            dir: dir.join("ens"),
        };
        let mut c = Command::new(PYTHON);
        c.arg(HARNESS)
            .args(["start", "--servers", "1", "--timeout", "60"])
            .args(["--base-port", &b.to_string()])
            // The Netty factory needs netty-codec, which the jar's manifest class path lacks.
            .arg(format!(
                "--jars={j}/zookeeper.jar:{j}/slf4j-log4j12.jar:{j}/log4j-1.2.jar:{j}/netty-codec.jar"
            ))
            .arg(format!(
                "--jvm-opt=-Djava.security.auth.login.config={}",
                jaas.display()
            ))
            .arg("--dir")
            .arg(&s.dir);
        for e in &extra {
            c.arg(format!("--extra={e}"));
        }
        stdout_of(c.output().expect("run zkharness.py"), "zkharness start");
        s
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("zk1/logs/zookeeper.log")).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new(PYTHON)
            .arg(HARNESS)
            .args(["stop-all", "--dir"])
            .arg(&self.dir)
            .output();
    }
}

fn plain_port() -> String {
    format!("127.0.0.1:{}", base_port() + 1)
}

fn tls_port() -> String {
    format!("127.0.0.1:{}", base_port() + 51)
}

/// Writes the registration as the SASL user, readable by that user only.
async fn register(log: &Path) -> zk::Client {
    let deadline = Instant::now() + Duration::from_secs(30);
    let c = loop {
        match zk::Client::connector()
            .with_session_timeout(Duration::from_secs(6))
            .with_sasl(zk::SaslOptions::digest_md5(USER, PASSWORD))
            .connect(&plain_port())
            .await
        {
            Ok(c) => break c,
            Err(e) if Instant::now() < deadline => {
                eprintln!("registrar: connect: {e}; retrying");
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            Err(e) => panic!("registrar cannot connect: {e}"),
        }
    };
    let mine = zk::CreateMode::Persistent.with_acls(zk::Acls::creator_all());
    c.mkdir("/secure/services/calc", &mine)
        .await
        .expect("mkdir");
    let data = serde_json::json!({
        "service": "calc", "instance": "calc-s", "host": "127.0.0.1",
        "logs": [{"url": format!("file://{}", log.display()), "format": "python-logging"}]
    })
    .to_string();
    c.create(
        "/secure/services/calc/calc-s",
        data.as_bytes(),
        &zk::CreateMode::Ephemeral.with_acls(zk::Acls::creator_all()),
    )
    .await
    .expect("create the registration");
    // Without SASL the registration cannot be read (the ACL), let alone without a session.
    c
}

fn tls(pki: &Pki, ca: &Path, identity: bool) -> Option<ZkTls> {
    Some(ZkTls {
        ca: ca.to_path_buf(),
        cert: identity.then(|| pki.client_cert.clone()),
        key: identity.then(|| pki.client_key.clone()),
    })
}

fn sasl(password: &str) -> Option<ZkSasl> {
    Some(ZkSasl {
        mechanism: SaslMechanism::DigestMd5,
        username: Some(USER.into()),
        password: Some(password.into()),
        ..ZkSasl::default()
    })
}

/// Runs discovery with `cfg` for at most `secs`: whether it found the registration, and what
/// it reported.
fn discover(rt: &Runtime, cfg: ZkConfig, secs: u64) -> (bool, Vec<DiscoveryEvent>) {
    rt.block_on(async {
        let (tx, mut rx) = mpsc::channel(64);
        let (stop, srx) = watch::channel(false);
        let task = tokio::spawn(run(cfg, tx, srx));
        let mut seen = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        let found = loop {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(ev)) => {
                    let hit =
                        matches!(&ev, DiscoveryEvent::Registered(r) if r.instance == "calc-s");
                    seen.push(ev);
                    if hit {
                        break true;
                    }
                }
                Ok(None) | Err(_) => break false,
            }
        };
        let _ = stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        (found, seen)
    })
}

fn config(connect: String, tls: Option<ZkTls>, sasl: Option<ZkSasl>) -> ZkConfig {
    ZkConfig {
        connect,
        services_root: ROOT.into(),
        session_timeout_ms: 6000,
        tls,
        sasl,
        ..ZkConfig::default()
    }
}

#[test]
fn discovery_and_serve_over_tls_with_sasl_digest_md5() {
    if let Some(why) = common::missing_zookeeper(common::SERVER_JARS, false) {
        eprintln!("SKIPPED: {why}");
        assert!(
            std::env::var_os("ZKLENS_REQUIRE_ORACLE").is_none(),
            "ZooKeeper required (ZKLENS_REQUIRE_ORACLE) but {why}"
        );
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let pki = pki(tmp.path());
    let server = Server::start(tmp.path(), &pki);
    let logs = tmp.path().join("logs");
    std::fs::create_dir_all(&logs).expect("logs dir");
    let log = logs.join("calc-s.log");
    std::fs::write(
        &log,
        "2026-11-30 05:00:00,123 INFO calc: served over a secured ensemble\n",
    )
    .expect("log");
    let rt = Runtime::new().expect("runtime");
    let _registrar = rt.block_on(register(&log));

    // TLS and SASL: found.
    let t0 = Instant::now();
    let (found, seen) = discover(
        &rt,
        config(tls_port(), tls(&pki, &pki.ca, true), sasl(PASSWORD)),
        30,
    );
    assert!(found, "over TLS with SASL: {seen:?}\n{}", server.log());
    eprintln!("found over TLS with SASL in {:?}", t0.elapsed());
    // SASL over plaintext: found too (the plain port is open; enforcement is SASL's).
    let (found, seen) = discover(&rt, config(plain_port(), None, sasl(PASSWORD)), 30);
    assert!(found, "plaintext with SASL: {seen:?}");

    // What must not work, each given a few sessions' worth of time.
    let refused = [
        (
            "a CA that did not sign the server's certificate",
            config(tls_port(), tls(&pki, &pki.other_ca, true), sasl(PASSWORD)),
        ),
        (
            "no client certificate (the server requires one)",
            config(tls_port(), tls(&pki, &pki.ca, false), sasl(PASSWORD)),
        ),
        (
            "no SASL (the server enforces it)",
            config(tls_port(), tls(&pki, &pki.ca, true), None),
        ),
        (
            "a wrong SASL password",
            config(
                tls_port(),
                tls(&pki, &pki.ca, true),
                sasl("not-the-password"),
            ),
        ),
        (
            "plaintext to the TLS port",
            config(tls_port(), None, sasl(PASSWORD)),
        ),
    ];
    for (what, cfg) in refused {
        let (found, seen) = discover(&rt, cfg, 6);
        assert!(!found, "{what}: the registration was read: {seen:?}");
        if what.starts_with("a CA") || what.starts_with("plaintext") {
            assert!(
                !seen
                    .iter()
                    .any(|e| matches!(e, DiscoveryEvent::Connected { .. })),
                "{what}: a session was established: {seen:?}"
            );
        }
    }

    // `zklens serve` with the flags, the password from a file.
    let pw = tmp.path().join("zk-password");
    std::fs::write(&pw, format!("{PASSWORD}\n")).expect("password file");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
    let port = common::free_port();
    let serve_log = tmp.path().join("serve.log");
    let serve = |ca: &Path| {
        let mut c = Command::new(common::exe());
        c.env_remove("ZKLENS_DATA_DIR")
            .env_remove("ZKLENS_SERVER")
            .arg("--data-dir")
            .arg(tmp.path().join("data"))
            .arg("serve")
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--zk", &tls_port(), "--services-root", ROOT])
            .arg("--zk-tls-ca")
            .arg(ca)
            .arg("--zk-tls-cert")
            .arg(&pki.client_cert)
            .arg("--zk-tls-key")
            .arg(&pki.client_key)
            .args(["--zk-sasl-user", USER])
            .arg("--zk-sasl-password-file")
            .arg(&pw)
            .arg("--allow-root")
            .arg(&logs)
            .args(["--commit-ms", "200", "--poll-ms", "100"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&serve_log).expect("serve log"));
        c
    };
    // A CA file that is not there stops the start, naming it.
    let missing = tmp.path().join("no-such-ca.pem");
    let out = serve(&missing).output().expect("run zklens serve");
    let err = std::fs::read_to_string(&serve_log).unwrap_or_default();
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("no-such-ca.pem"), "{err}");

    let mut child = common::Serve(serve(&pki.ca).spawn().expect("start zklens serve"));
    common::wait_up(port);
    let t0 = Instant::now();
    let count = || {
        http_get(port, "/api/query?q=node%3Acalc-s&count=true")
            .filter(|(c, _)| *c == 200)
            .and_then(|(_, b)| serde_json::from_str::<serde_json::Value>(&b).ok())
            .and_then(|v| v["total"].as_u64())
            .unwrap_or(0)
    };
    while count() == 0 {
        assert!(
            t0.elapsed() < Duration::from_secs(40),
            "zklens serve over TLS+SASL indexed nothing of calc-s:\n{}",
            std::fs::read_to_string(&serve_log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let health: serde_json::Value = http_get(port, "/health")
        .and_then(|(_, b)| serde_json::from_str(&b).ok())
        .unwrap_or_default();
    assert_eq!(health["zookeeper"]["state"], "connected", "{health}");
    let _ = child.0.kill();
}
