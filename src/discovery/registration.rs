//! Parsing registration znode data: Apache Curator's service-discovery `ServiceInstance` JSON and
//! zklens's plain JSON registration.
//!
//! # Plain registration
//!
//! ```json
//! {"service": "calc", "instance": "calc-a", "host": "10.0.0.5",
//!  "logs": [{"url": "file:///var/log/calc/calc.log", "format": "python-logging"}]}
//! ```
//!
//! Recognised by a top-level `logs` member. `service` defaults to the parent znode's name,
//! `instance` to the znode's own name; `host` is optional.
//!
//! # Curator `ServiceInstance`
//!
//! What `ServiceDiscovery` with `JsonInstanceSerializer` writes to `<base>/<name>/<id>`:
//!
//! ```json
//! {"name": "calc", "id": "3f6c...", "address": "10.0.0.5", "port": 8080, "sslPort": null,
//!  "payload": {"@class": "java.util.HashMap",
//!              "logs": [{"url": "file:///var/log/calc.log", "format": "python-logging"}]},
//!  "registrationTimeUTC": 1700000000000, "serviceType": "DYNAMIC", "uriSpec": null}
//! ```
//!
//! Recognised by a `payload` member, or by `name` and `id` without `logs`. `service` is `name`
//! (else the parent znode's name), `host` is `address`, the instance is the payload's `instance`
//! or `name` member if it has one, else the znode's own name (Curator's `id`).
//!
//! The payload may be: an object (Jackson's `@class` member is ignored); Jackson's wrapper array
//! `["some.Class", value]`; or a string holding the JSON of either (a `String` payload). In the
//! payload object, `logs` is required.
//!
//! # Log locations (both layouts)
//!
//! `logs` is a non-empty array (or Jackson's `["java.util.ArrayList", [...]]`) of at most
//! [`MAX_LOGS`] entries, each either a URL string or an object `{"url": ..., "format": ...}`
//! (`format` optional, a string or null). A URL is `file:///absolute/path` or
//! `http(s)://host[:port]/...`, at most [`MAX_URL`] bytes, without control characters.
//!
//! # Rejected
//!
//! Data larger than the limit (checked before anything else), not UTF-8, not JSON (including JSON
//! nested deeper than serde_json's limit of 128), not an object, of neither layout, without logs,
//! with a member of the wrong type, or with a log URL of another scheme.

use serde_json::{Map, Value};

use super::{LogLocation, Registration};

/// Most log locations one registration may name.
pub const MAX_LOGS: usize = 64;
/// Longest accepted log URL (bytes).
pub const MAX_URL: usize = 4096;
/// Longest accepted service, instance, host or format name (bytes).
pub const MAX_NAME: usize = 256;

/// Why znode data is not a usable registration. `Display` gives the reason for the log and the
/// API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistrationError {
    /// Larger than the configured limit.
    #[error("data is {len} bytes, more than the limit of {max}")]
    TooLarge {
        /// Data length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Not UTF-8.
    #[error("data is not UTF-8 (invalid byte at offset {offset})")]
    NotUtf8 {
        /// Offset of the first invalid byte.
        offset: usize,
    },
    /// Not JSON.
    #[error("data is not JSON: {0}")]
    NotJson(String),
    /// JSON, but neither layout.
    #[error("{0}")]
    Layout(String),
    /// A member of the wrong type.
    #[error("`{field}` {problem}")]
    WrongType {
        /// The member (`payload.logs[2].url`).
        field: String,
        /// What is wrong with it.
        problem: String,
    },
    /// No log location.
    #[error("no log locations (`{0}` is missing or empty)")]
    NoLogs(String),
    /// A log URL zklens cannot read.
    #[error("log URL {url:?}: {reason}")]
    BadUrl {
        /// The URL (truncated to 200 bytes).
        url: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// Parses the data of znode `znode` (its path as seen by the client, `/services/calc/calc-a`).
///
/// `max_data` is the largest accepted data length; `ephemeral_owner` the session owning the znode
/// (`None` or `Some(0)` when it is persistent). See the module documentation for both layouts.
pub fn parse(
    znode: &str,
    data: &[u8],
    max_data: usize,
    ephemeral_owner: Option<u64>,
) -> Result<Registration, RegistrationError> {
    if data.len() > max_data {
        return Err(RegistrationError::TooLarge {
            len: data.len(),
            max: max_data,
        });
    }
    let text = std::str::from_utf8(data).map_err(|e| RegistrationError::NotUtf8 {
        offset: e.valid_up_to(),
    })?;
    let value: Value =
        serde_json::from_str(text).map_err(|e| RegistrationError::NotJson(e.to_string()))?;
    let Value::Object(obj) = value else {
        return Err(RegistrationError::Layout(format!(
            "data is a JSON {}, not an object",
            kind(&value)
        )));
    };
    let (parent, own) = names(znode);
    let session = ephemeral_owner.filter(|&s| s != 0);
    if obj.contains_key("logs") {
        let logs = logs(obj.get("logs"), "logs")?;
        let service = opt_name(&obj, "service", "")?.unwrap_or(parent);
        let instance = opt_name(&obj, "instance", "")?.unwrap_or(own);
        let host = opt_name(&obj, "host", "")?;
        return finish(znode, service, instance, host, logs, session);
    }
    if obj.contains_key("payload") || (obj.contains_key("name") && obj.contains_key("id")) {
        let service = opt_name(&obj, "name", "")?.unwrap_or(parent);
        opt_name(&obj, "id", "")?;
        let host = opt_name(&obj, "address", "")?;
        let payload = curator_payload(obj.get("payload"))?;
        let logs = logs(payload.get("logs"), "payload.logs")?;
        let instance = match opt_name(&payload, "instance", "payload.")? {
            Some(i) => i,
            None => opt_name(&payload, "name", "payload.")?.unwrap_or(own),
        };
        return finish(znode, service, instance, host, logs, session);
    }
    Err(RegistrationError::Layout(
        "neither a zklens registration (no `logs`) nor a Curator ServiceInstance (no `payload`, \
         `name`/`id`)"
            .into(),
    ))
}

fn finish(
    znode: &str,
    service: String,
    instance: String,
    host: Option<String>,
    logs: Vec<LogLocation>,
    session: Option<u64>,
) -> Result<Registration, RegistrationError> {
    for (field, v) in [("service", &service), ("instance", &instance)] {
        if v.is_empty() {
            return Err(wrong(field, "is empty (and the znode path gives none)"));
        }
    }
    Ok(Registration {
        znode: znode.to_string(),
        service,
        instance,
        host,
        logs,
        session,
    })
}

/// (parent's name, own name) of a znode path.
fn names(znode: &str) -> (String, String) {
    let mut parts = znode.rsplit('/').filter(|p| !p.is_empty());
    let own = parts.next().unwrap_or_default().to_string();
    let parent = parts.next().unwrap_or_default().to_string();
    (parent, own)
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn wrong(field: &str, problem: impl Into<String>) -> RegistrationError {
    RegistrationError::WrongType {
        field: field.to_string(),
        problem: problem.into(),
    }
}

/// An optional short name: a string (or null/absent) of at most [`MAX_NAME`] bytes without
/// control characters; empty counts as absent.
fn opt_name(
    obj: &Map<String, Value>,
    key: &str,
    prefix: &str,
) -> Result<Option<String>, RegistrationError> {
    let field = || format!("{prefix}{key}");
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => {
            if s.len() > MAX_NAME {
                Err(wrong(&field(), format!("is longer than {MAX_NAME} bytes")))
            } else if s.chars().any(char::is_control) {
                Err(wrong(&field(), "contains control characters"))
            } else {
                Ok(Some(s.clone()))
            }
        }
        Some(v) => Err(wrong(&field(), format!("is a {}, not a string", kind(v)))),
    }
}

/// Jackson writes a typed value as `["class.Name", value]` when it cannot add an `@class`
/// member; returns `value` for that shape.
fn unwrap_jackson(v: &Value) -> Option<&Value> {
    match v {
        Value::Array(a) if a.len() == 2 && a[0].is_string() => Some(&a[1]),
        _ => None,
    }
}

fn curator_payload(payload: Option<&Value>) -> Result<Map<String, Value>, RegistrationError> {
    let Some(v) = payload else {
        return Err(RegistrationError::NoLogs("payload".into()));
    };
    let v = unwrap_jackson(v).unwrap_or(v);
    match v {
        Value::Object(m) => Ok(m.clone()),
        Value::Null => Err(RegistrationError::NoLogs("payload".into())),
        Value::String(s) => {
            // A String payload holding JSON (one level only).
            let parsed: Value = serde_json::from_str(s)
                .map_err(|e| wrong("payload", format!("is a string that is not JSON ({e})")))?;
            match unwrap_jackson(&parsed).unwrap_or(&parsed) {
                Value::Object(m) => Ok(m.clone()),
                other => Err(wrong(
                    "payload",
                    format!("is a string whose JSON is a {}, not an object", kind(other)),
                )),
            }
        }
        other => Err(wrong(
            "payload",
            format!("is a {}, not an object", kind(other)),
        )),
    }
}

fn logs(v: Option<&Value>, field: &str) -> Result<Vec<LogLocation>, RegistrationError> {
    let items = match v {
        None | Some(Value::Null) => return Err(RegistrationError::NoLogs(field.into())),
        // A plain array, or Jackson's ["java.util.ArrayList", [...]].
        Some(Value::Array(a)) => match (a.len(), a.first(), a.get(1)) {
            (2, Some(Value::String(_)), Some(Value::Array(inner))) => inner,
            _ => a,
        },
        Some(other) => {
            return Err(wrong(field, format!("is a {}, not an array", kind(other))));
        }
    };
    if items.is_empty() {
        return Err(RegistrationError::NoLogs(field.into()));
    }
    if items.len() > MAX_LOGS {
        return Err(wrong(
            field,
            format!("has {} entries, more than {MAX_LOGS}", items.len()),
        ));
    }
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let at = format!("{field}[{i}]");
        let (url, format) = match item {
            Value::String(u) => (u.as_str(), None),
            Value::Object(m) => {
                let url = match m.get("url") {
                    Some(Value::String(u)) => u.as_str(),
                    None | Some(Value::Null) => {
                        return Err(wrong(&format!("{at}.url"), "is missing"))
                    }
                    Some(v) => {
                        return Err(wrong(
                            &format!("{at}.url"),
                            format!("is a {}, not a string", kind(v)),
                        ))
                    }
                };
                (url, opt_name(m, "format", &format!("{at}."))?)
            }
            other => {
                return Err(wrong(
                    &at,
                    format!("is a {}, not a URL or an object", kind(other)),
                ));
            }
        };
        check_url(url)?;
        out.push(LogLocation {
            url: url.to_string(),
            format,
        });
    }
    Ok(out)
}

fn check_url(url: &str) -> Result<(), RegistrationError> {
    let bad = |reason: &str| RegistrationError::BadUrl {
        url: truncate(url, 200).to_string(),
        reason: reason.to_string(),
    };
    if url.len() > MAX_URL {
        return Err(bad(&format!("longer than {MAX_URL} bytes")));
    }
    if url.chars().any(char::is_control) {
        return Err(bad("contains control characters"));
    }
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    if lower.starts_with("file://") {
        let path = &url[7..];
        if !path.starts_with('/') || path.len() < 2 {
            return Err(bad(
                "a file URL needs an absolute path (file:///var/log/x.log)",
            ));
        }
        Ok(())
    } else if lower.starts_with("http://") || lower.starts_with("https://") {
        let rest = &url[if lower.starts_with("https") { 8 } else { 7 }..];
        let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if host.is_empty() {
            return Err(bad("no host"));
        }
        Ok(())
    } else {
        Err(bad("not a file:// or http(s):// URL"))
    }
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = 64 * 1024;

    fn ok(znode: &str, json: &str) -> Registration {
        match parse(znode, json.as_bytes(), MAX, Some(0x42)) {
            Ok(r) => r,
            Err(e) => panic!("{json}: {e}"),
        }
    }

    fn err(znode: &str, data: &[u8]) -> String {
        match parse(znode, data, MAX, None) {
            Ok(r) => panic!("accepted {r:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn plain_registration() {
        let r = ok(
            "/services/calc/calc-a",
            r#"{"service":"calc","instance":"calc-a","host":"10.0.0.5",
                "logs":[{"url":"file:///var/log/calc.log","format":"python-logging"},
                        {"url":"http://10.0.0.5:8080/log"}]}"#,
        );
        assert_eq!(r.znode, "/services/calc/calc-a");
        assert_eq!(r.service, "calc");
        assert_eq!(r.instance, "calc-a");
        assert_eq!(r.host.as_deref(), Some("10.0.0.5"));
        assert_eq!(r.session, Some(0x42));
        assert_eq!(
            r.logs,
            vec![
                LogLocation {
                    url: "file:///var/log/calc.log".into(),
                    format: Some("python-logging".into())
                },
                LogLocation {
                    url: "http://10.0.0.5:8080/log".into(),
                    format: None
                },
            ]
        );
    }

    #[test]
    fn plain_defaults_from_the_path() {
        let r = ok(
            "/services/calc/calc-b",
            r#"{"logs":["file:///var/log/b.log"]}"#,
        );
        assert_eq!(
            (r.service.as_str(), r.instance.as_str()),
            ("calc", "calc-b")
        );
        assert_eq!(r.host, None);
        assert_eq!(r.logs[0].format, None);
        let r = parse("/x", br#"{"logs":["file:///a"]}"#, MAX, Some(0)).unwrap_err();
        assert!(r.to_string().contains("service"), "{r}");
    }

    #[test]
    fn curator_instance() {
        let json = r#"{"name":"calc","id":"3f6a1c2e-8d2b-4b7e-9a55-0c1f2d3e4f50",
            "address":"10.0.0.5","port":8080,"sslPort":null,
            "payload":{"@class":"java.util.HashMap",
                       "logs":[{"url":"file:///var/log/calc.log","format":"python-logging"}]},
            "registrationTimeUTC":1700000000000,"serviceType":"DYNAMIC","uriSpec":null,
            "enabled":true}"#;
        let r = ok("/services/calc/3f6a1c2e-8d2b-4b7e-9a55-0c1f2d3e4f50", json);
        assert_eq!(r.service, "calc");
        assert_eq!(r.instance, "3f6a1c2e-8d2b-4b7e-9a55-0c1f2d3e4f50");
        assert_eq!(r.host.as_deref(), Some("10.0.0.5"));
        assert_eq!(r.logs.len(), 1);
        assert_eq!(r.logs[0].format.as_deref(), Some("python-logging"));
    }

    #[test]
    fn curator_payload_shapes() {
        let base = |payload: &str| {
            format!(r#"{{"name":"calc","id":"u1","address":"h","payload":{payload}}}"#)
        };
        // Instance name from the payload.
        let r = ok(
            "/services/calc/u1",
            &base(r#"{"instance":"calc-a","logs":["file:///l"]}"#),
        );
        assert_eq!(r.instance, "calc-a");
        let r = ok(
            "/services/calc/u1",
            &base(r#"{"name":"calc-n","logs":["file:///l"]}"#),
        );
        assert_eq!(r.instance, "calc-n");
        // Jackson's wrapper array, a String payload holding JSON, a wrapped logs list.
        let r = ok(
            "/services/calc/u1",
            &base(r#"["com.example.Payload",{"logs":["https://h:1/x"]}]"#),
        );
        assert_eq!(r.logs[0].url, "https://h:1/x");
        let r = ok(
            "/services/calc/u1",
            &base(r#"["java.lang.String","{\"logs\":[\"file:///s\"]}"]"#),
        );
        assert_eq!(r.logs[0].url, "file:///s");
        let r = ok(
            "/services/calc/u1",
            &base(r#""{\"logs\":[\"file:///s\"]}""#),
        );
        assert_eq!(r.logs[0].url, "file:///s");
        let r = ok(
            "/services/calc/u1",
            &base(r#"{"logs":["java.util.ArrayList",[{"url":"file:///w"}]]}"#),
        );
        assert_eq!(r.logs[0].url, "file:///w");
        // No payload, null payload, payload without logs.
        let e = err("/services/calc/u1", br#"{"name":"calc","id":"u1"}"#);
        assert!(e.contains("no log locations"), "{e}");
        let e = err("/services/calc/u1", base("null").as_bytes());
        assert!(e.contains("no log locations"), "{e}");
        let e = err(
            "/services/calc/u1",
            base(r#"{"@class":"x.Y","port":3}"#).as_bytes(),
        );
        assert!(e.contains("payload.logs"), "{e}");
        let e = err("/services/calc/u1", base(r#""not json""#).as_bytes());
        assert!(e.contains("not JSON"), "{e}");
        let e = err("/services/calc/u1", base("17").as_bytes());
        assert!(e.contains("number"), "{e}");
    }

    #[test]
    fn rejects_hostile_data() {
        let e = parse("/s/a/b", &vec![b'{'; 2000], 1024, None).unwrap_err();
        assert_eq!(
            e,
            RegistrationError::TooLarge {
                len: 2000,
                max: 1024
            }
        );
        assert!(e.to_string().contains("2000 bytes"));
        let e = err("/s/a/b", b"\x00\x01\xff\xfe binary");
        assert!(e.contains("not UTF-8"), "{e}");
        let e = err("/s/a/b", b"10.0.0.5");
        assert!(e.contains("not JSON") || e.contains("not an object"), "{e}");
        let e = err("/s/a/b", b"hello");
        assert!(e.contains("not JSON"), "{e}");
        let e = err("/s/a/b", b"");
        assert!(e.contains("not JSON"), "{e}");
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        let e = err("/s/a/b", deep.as_bytes());
        assert!(e.contains("recursion limit"), "{e}");
        let deep = format!(r#"{{"logs":{}{}}}"#, "[".repeat(5000), "]".repeat(5000));
        let e = err("/s/a/b", deep.as_bytes());
        assert!(e.contains("not JSON"), "{e}");
        let e = err("/s/a/b", b"[1,2]");
        assert!(e.contains("array, not an object"), "{e}");
        let e = err("/s/a/b", br#"{"hello":"world"}"#);
        assert!(e.contains("neither"), "{e}");
    }

    #[test]
    fn rejects_wrong_types() {
        for (json, want) in [
            (r#"{"logs":"file:///x"}"#, "`logs` is a string"),
            (r#"{"logs":[]}"#, "no log locations"),
            (r#"{"logs":null}"#, "no log locations"),
            (r#"{"logs":[42]}"#, "`logs[0]` is a number"),
            (r#"{"logs":[{"format":"x"}]}"#, "`logs[0].url` is missing"),
            (r#"{"logs":[{"url":7}]}"#, "`logs[0].url` is a number"),
            (
                r#"{"logs":[{"url":"file:///x","format":3}]}"#,
                "`logs[0].format` is a number",
            ),
            (
                r#"{"service":["a"],"logs":["file:///x"]}"#,
                "`service` is a array",
            ),
            (
                r#"{"instance":{},"logs":["file:///x"]}"#,
                "`instance` is a object",
            ),
            (r#"{"host":1,"logs":["file:///x"]}"#, "`host` is a number"),
            (
                r#"{"instance":"a\nb","logs":["file:///x"]}"#,
                "control characters",
            ),
            (
                r#"{"name":5,"id":"x","payload":{"logs":["file:///x"]}}"#,
                "`name` is a number",
            ),
            (
                r#"{"name":"a","id":"x","payload":{"instance":1,"logs":["file:///x"]}}"#,
                "`payload.instance`",
            ),
        ] {
            let e = err("/services/s/i", json.as_bytes());
            assert!(e.contains(want), "{json}: {e}");
        }
        let many = format!(
            r#"{{"logs":[{}]}}"#,
            vec![r#""file:///x""#; MAX_LOGS + 1].join(",")
        );
        assert!(err("/services/s/i", many.as_bytes()).contains("more than"));
        let long = format!(
            r#"{{"instance":"{}","logs":["file:///x"]}}"#,
            "i".repeat(MAX_NAME + 1)
        );
        assert!(err("/services/s/i", long.as_bytes()).contains("longer than"));
    }

    #[test]
    fn rejects_bad_urls() {
        for (url, want) in [
            ("ftp://h/x", "not a file:// or http(s):// URL"),
            ("/var/log/x.log", "not a file://"),
            ("file://relative/x", "absolute path"),
            ("file:///", "absolute path"),
            ("http:///x", "no host"),
            ("https://", "no host"),
            ("FILE:///ok", ""),
            ("HTTPS://h/ok", ""),
            ("file:///a\u{0}b", "control characters"),
        ] {
            let json = serde_json::json!({"logs": [url]}).to_string();
            let r = parse("/services/s/i", json.as_bytes(), MAX, None);
            if want.is_empty() {
                assert!(r.is_ok(), "{url}: {r:?}");
            } else {
                let e = r.unwrap_err().to_string();
                assert!(e.contains(want) && e.contains("log URL"), "{url}: {e}");
            }
        }
        let long = format!("file:///{}", "a".repeat(MAX_URL));
        let json = serde_json::json!({"logs": [long]}).to_string();
        let e = parse("/services/s/i", json.as_bytes(), MAX * 2, None).unwrap_err();
        assert!(e.to_string().contains("longer than"), "{e}");
        // The reason quotes at most 200 bytes of the URL.
        assert!(e.to_string().len() < 300);
    }

    #[test]
    fn never_panics_on_arbitrary_bytes() {
        // A cheap fuzz over mutations of valid registrations.
        let seeds: [&[u8]; 2] = [
            br#"{"service":"calc","logs":[{"url":"file:///v","format":"f"}]}"#,
            br#"{"name":"c","id":"i","payload":["C",{"logs":["http://h/x"]}]}"#,
        ];
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for seed in seeds {
            for _ in 0..2000 {
                let mut d = seed.to_vec();
                for _ in 0..3 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let i = (x as usize) % d.len();
                    d[i] = (x >> 32) as u8;
                }
                let _ = parse("/services/a/b", &d, MAX, None);
                let _ = parse("/", &d, MAX, None);
            }
        }
    }
}
