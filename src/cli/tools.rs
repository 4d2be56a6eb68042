//! The commands that neither ingest nor ask an index: `formats`, `serve`, `agent`, and the development
//! tools `bench`, `corpus` and the hidden `measure` (which live in `zklens::devtools`).

use std::io::Write;

use anyhow::{Context, Result};

use zklens::index::DataDir;
use zklens::parser::Registry;
use zklens::time::{self, Tz};

use super::out::Out;
use super::{AgentArgs, BenchArgs, CorpusArgs, Global, ServeArgs};

/// `zklens formats [--check]`.
pub fn formats(registry: &Registry, check: bool) -> Result<u8> {
    let mut out = Out::new();
    for f in registry.formats() {
        writeln!(
            out,
            "{:<24} {}  [{}]",
            f.def.name, f.def.description, f.origin
        )?;
    }
    if !check {
        out.flush()?;
        return Ok(0);
    }
    let failures = zklens::parser::format::check_examples(registry);
    let total: usize = registry.rules().map(|(_, r)| r.examples.len()).sum();
    for fail in &failures {
        writeln!(out, "FAIL {fail}")?;
    }
    writeln!(out, "{} examples checked, {} failed", total, failures.len())?;
    // The catalogue of every release's log statements, against the same rules.
    let catalogue = zklens::parser::catalogue::embedded()?;
    let report = zklens::parser::catalogue::check(registry, &catalogue);
    for fail in &report.failures {
        writeln!(out, "FAIL catalogue {fail}")?;
    }
    writeln!(
        out,
        "{} catalogued statements checked ({} with a kind, {} with none on purpose; {} examples), {} failed",
        report.statements,
        report.with_kind,
        report.none,
        report.examples,
        report.failures.len()
    )?;
    out.flush()?;
    Ok(if failures.is_empty() && report.failures.is_empty() {
        0
    } else {
        2
    })
}

/// `zklens formats --explain FILE`: how every candidate format scores on the file's sample,
/// which one is chosen, and for the first `lines` lines why each reads them or not.
pub fn explain(registry: &Registry, path: &std::path::Path, lines: usize) -> Result<u8> {
    use zklens::source::{self, Content};
    let content = source::sniff(path)?;
    let gzip = match content {
        Content::Text { gzip } => gzip,
        Content::Empty => anyhow::bail!("{}: the file is empty", path.display()),
        other => anyhow::bail!(
            "{}: not a text log ({other:?}); `zklens txnlog` and `zklens snapshot` read ZooKeeper's binary files",
            path.display()
        ),
    };
    let file = source::SourceFile::unnamed(path, content, 0);
    let sample = source::text::sample(&file, gzip)?;
    let refs: Vec<&[u8]> = sample.iter().map(Vec::as_slice).collect();
    let choice = registry.choose(&refs);
    let mut out = Out::new();
    writeln!(
        out,
        "{}: {} non-empty lines sampled from the start",
        path.display(),
        choice.sample_lines
    )?;
    writeln!(
        out,
        "  {:<24} {:>9} {:>11}",
        "format", "entries", "with time"
    )?;
    let n = choice.sample_lines.max(1);
    for s in &choice.scores {
        let chosen = std::sync::Arc::ptr_eq(&s.format, &choice.format);
        let learned = match &s.format.def.layout {
            Some(l) if s.format.origin == "learned" => format!("  {l}"),
            _ if s.format.origin == "learned" => format!("  {}", s.format.def.description),
            _ => String::new(),
        };
        writeln!(
            out,
            "{} {:<24} {:>4} {:>3}% {:>5} {:>3}%{}",
            if chosen { "*" } else { " " },
            s.format.def.name,
            s.entries,
            s.entries * 100 / n,
            s.timed,
            s.timed * 100 / n,
            learned
        )?;
    }
    if choice.format.def.name == "plain" {
        writeln!(
            out,
            "  no format reads any line: plain text, one entry per line, no timestamps (give the layout with --layout)"
        )?;
    }
    writeln!(
        out,
        "chosen: {} ({})",
        choice.format.def.name, choice.format.def.description
    )?;
    for (i, l) in refs.iter().take(lines).enumerate() {
        let shown: String = String::from_utf8_lossy(l).chars().take(160).collect();
        writeln!(out, "\nline {}: {shown}", i + 1)?;
        for s in &choice.scores {
            match s.format.explain(l) {
                Ok(fields) => writeln!(out, "  yes {:<22} {fields}", s.format.def.name)?,
                Err(why) => writeln!(out, "  no  {:<22} {why}", s.format.def.name)?,
            }
        }
    }
    out.flush()?;
    Ok(0)
}

/// `zklens serve`: the configuration file, overridden by the flags.
pub fn serve(a: &ServeArgs, g: &Global, dir: &DataDir, registry: Registry) -> Result<u8> {
    use zklens::serve::config::{ServeConfig, StaticSource};
    let mut cfg = match &a.config {
        Some(p) => ServeConfig::load(p)?,
        None => ServeConfig::default(),
    };
    if let Some(l) = a.listen {
        cfg.listen = l;
    }
    if g.token.is_some() {
        cfg.token = g.token.clone();
        cfg.token_file = None;
    } else if g.token_file.is_some() {
        cfg.token_file = g.token_file.clone();
        cfg.token = None;
    }
    cfg.api_hosts.extend(a.api_host.iter().cloned());
    if let Some(zk) = &a.zk {
        cfg.zookeeper.get_or_insert_with(Default::default).connect = zk.clone();
    }
    if let Some(z) = cfg.zookeeper.as_mut() {
        if let Some(r) = &a.services_root {
            z.services_root = r.clone();
        }
        if let Some(t) = a.session_timeout {
            z.session_timeout_ms = t;
        }
        if a.zk_auth.is_some() {
            z.auth = a.zk_auth.clone();
            z.auth_file = None;
        } else if a.zk_auth_file.is_some() {
            z.auth_file = a.zk_auth_file.clone();
            z.auth = None;
        }
        if let Some(ca) = &a.zk_tls_ca {
            z.tls = Some(zklens::discovery::ZkTls {
                ca: ca.clone(),
                cert: a.zk_tls_cert.clone(),
                key: a.zk_tls_key.clone(),
            });
        } else if a.zk_tls_cert.is_some() {
            let t = z
                .tls
                .as_mut()
                .context("--zk-tls-cert and --zk-tls-key need a CA: --zk-tls-ca FILE")?;
            t.cert = a.zk_tls_cert.clone();
            t.key = a.zk_tls_key.clone();
        }
        let given = a.zk_sasl.is_some()
            || a.zk_sasl_user.is_some()
            || a.zk_sasl_password.is_some()
            || a.zk_sasl_password_file.is_some();
        if given {
            let s = z.sasl.get_or_insert_with(Default::default);
            if let Some(m) = &a.zk_sasl {
                s.mechanism = if m == "gssapi" {
                    zklens::discovery::SaslMechanism::Gssapi
                } else {
                    zklens::discovery::SaslMechanism::DigestMd5
                };
            }
            if a.zk_sasl_user.is_some() {
                s.username = a.zk_sasl_user.clone();
            }
            if a.zk_sasl_password.is_some() {
                s.password = a.zk_sasl_password.clone();
                s.password_file = None;
            } else if a.zk_sasl_password_file.is_some() {
                s.password_file = a.zk_sasl_password_file.clone();
                s.password = None;
            }
        }
    }
    cfg.security
        .allowed_roots
        .extend(a.allow_root.iter().cloned());
    cfg.security
        .allowed_hosts
        .extend(a.allow_host.iter().cloned());
    if let Some(n) = a.max_sources {
        cfg.security.max_sources = n;
    }
    for s in &a.source {
        let (node, url) = s
            .split_once('=')
            .with_context(|| format!("--source {s:?}: expected NODE=URL"))?;
        cfg.sources.push(StaticSource {
            node: node.to_string(),
            url: url.to_string(),
            format: None,
            layout: None,
            tz: None,
        });
    }
    cfg.queries.extend(a.queries.dirs.iter().cloned());
    if let Some(c) = a.commit_ms {
        cfg.commit_ms = c;
    }
    if let Some(p) = a.poll_ms {
        cfg.poll_ms = p;
    }
    if let Some(n) = a.max_events {
        cfg.max_events = n;
    }
    if let Some(n) = a.max_answer_bytes {
        cfg.max_answer_bytes = n;
    }
    if let Some(ms) = a.request_timeout_ms {
        cfg.request_timeout_ms = ms;
    }
    if let Some(n) = a.max_requests {
        cfg.max_requests = n;
    }
    if let Some(n) = a.max_record_len {
        cfg.max_record_len = n;
    }
    if let Some(n) = a.max_snapshot_sessions {
        cfg.max_snapshot_sessions = n;
    }
    if let Some(name) = &a.ensemble {
        cfg.ensemble.name = Some(name.clone());
    }
    zklens::serve::run(cfg, dir.clone(), registry)?;
    Ok(0)
}

/// Parses `100MB`, `1.5GB`, `512KiB`, `1000` (bytes).
fn parse_size(s: &str) -> Result<u64> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let n: f64 = t[..split]
        .parse()
        .with_context(|| format!("bad size {s:?}"))?;
    let mult: f64 = match t[split..].trim().to_ascii_uppercase().as_str() {
        "" | "B" => 1.0,
        "K" | "KB" => 1e3,
        "KIB" => 1024.0,
        "M" | "MB" => 1e6,
        "MIB" => 1048576.0,
        "G" | "GB" => 1e9,
        "GIB" => 1073741824.0,
        other => anyhow::bail!("bad size unit {other:?} in {s:?}"),
    };
    Ok((n * mult) as u64)
}

/// `zklens agent`: flags over the configuration file, then [`zklens::agent::run`].
pub fn agent(a: &AgentArgs, g: &Global, registry: Registry) -> Result<u8> {
    use zklens::agent::config::{AgentConfig, AgentFile};
    let mut cfg = match &a.config {
        Some(p) => AgentConfig::load(p)?,
        None => AgentConfig::default(),
    };
    if let Some(z) = &a.zk {
        cfg.zookeeper.connect = z.clone();
    }
    if let Some(s) = &a.server {
        cfg.server = s.clone();
    }
    if a.host.is_some() {
        cfg.host = a.host.clone();
    }
    if let Some(r) = &a.services_root {
        cfg.zookeeper.services_root = r.clone();
    }
    if let Some(t) = a.session_timeout {
        cfg.zookeeper.session_timeout_ms = t;
    }
    if let Some(l) = a.listen {
        cfg.listen = l;
    }
    if let Some(b) = a.spool_max_bytes {
        cfg.spool_max_bytes = b;
    }
    if let Some(f) = a.flush_ms {
        cfg.flush_ms = f;
    }
    if a.ensemble.is_some() {
        cfg.ensemble = a.ensemble.clone();
    }
    if g.data_dir.is_some() {
        cfg.data_dir = g.data_dir.clone();
    }
    cfg.security
        .allowed_roots
        .extend(a.allow_root.iter().cloned());
    for f in &a.file {
        let (node, path) = f
            .split_once('=')
            .with_context(|| format!("--file {f}: expected NODE=PATH"))?;
        cfg.files.push(AgentFile {
            node: node.to_string(),
            path: path.into(),
            format: None,
        });
    }
    if g.token.is_some() || g.token_file.is_some() {
        cfg.token = g.token()?;
    } else if let Some(p) = &cfg.token_file {
        let mut warnings = Vec::new();
        cfg.token = Some(zklens::serve::config::read_secret(p, &mut warnings)?);
        for w in warnings {
            eprintln!("zklens agent: {w}");
        }
    }
    if let Some(p) = cfg.zookeeper.auth_file.clone() {
        let mut warnings = Vec::new();
        cfg.zookeeper.auth = Some(zklens::serve::config::read_secret(&p, &mut warnings)?);
    }
    zklens::agent::run(cfg, registry)?;
    Ok(0)
}

/// `zklens bench`.
pub fn bench(a: &BenchArgs) -> Result<u8> {
    let spec = zklens::devtools::bench::BenchSpec {
        dir: a.dir.clone(),
        bytes: parse_size(&a.size)?,
        exe: std::env::current_exe().context("locating the zklens binary")?,
        reps: a.reps,
        txnlog: a.txnlog.clone(),
        memory_sizes: if a.memory_sizes == "none" {
            Vec::new()
        } else {
            a.memory_sizes
                .split(',')
                .map(|x| parse_size(x.trim()))
                .collect::<Result<_>>()?
        },
    };
    std::fs::create_dir_all(&a.dir).with_context(|| format!("creating {}", a.dir.display()))?;
    let report = zklens::devtools::bench::run(&spec, &mut |m| eprintln!("zklens bench: {m}"))?;
    let mut out = Out::new();
    write!(out, "{}", zklens::devtools::bench::table(&report))?;
    let json = a.json.clone().unwrap_or_else(|| a.dir.join("bench.json"));
    std::fs::write(&json, serde_json::to_string_pretty(&report)?)
        .with_context(|| format!("writing {}", json.display()))?;
    writeln!(out, "figures written to {}", json.display())?;
    out.flush()?;
    Ok(0)
}

/// `zklens corpus`.
pub fn corpus(a: &CorpusArgs) -> Result<u8> {
    let spec = zklens::devtools::corpus::CorpusSpec {
        out: a.out.clone(),
        bytes: parse_size(&a.size)?,
        servers: a.servers,
        services: a.services,
        seed: a.seed,
        start: time::parse_time("2026-11-24T00:00:00Z", Tz::Utc, 0)?,
        failover_every_s: a.failover_every.max(10),
        profile: a.profile.parse().map_err(anyhow::Error::msg)?,
    };
    let m = zklens::devtools::corpus::generate(&spec)?;
    let mut out = Out::new();
    writeln!(
        out,
        "{} files, {:.1} MB, {} lines ({} entries), {} failovers; manifest {}",
        m.files.len(),
        m.bytes as f64 / 1e6,
        m.lines,
        m.entries,
        m.failovers.len(),
        zklens::devtools::corpus::manifest_path(&a.out).display()
    )?;
    out.flush()?;
    Ok(0)
}

/// `zklens measure CMD...` (internal, for bench): the command's wall time and peak RSS as JSON.
pub fn measure(cmd: &[String]) -> Result<u8> {
    let Some((exe, args)) = cmd.split_first() else {
        anyhow::bail!("measure: no command");
    };
    let mut c = std::process::Command::new(exe);
    c.args(args);
    let r = zklens::devtools::bench::measure(&mut c)?;
    let mut out = Out::new();
    writeln!(out, "{}", serde_json::to_string(&r)?)?;
    out.flush()?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("100MB").ok(), Some(100_000_000));
        assert_eq!(parse_size("1.5GB").ok(), Some(1_500_000_000));
        assert_eq!(parse_size("512KiB").ok(), Some(524_288));
        assert_eq!(parse_size("1000").ok(), Some(1000));
        assert!(parse_size("3 parsecs").is_err());
    }
}
