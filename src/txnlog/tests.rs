//! Unit tests on hand-built transaction logs and snapshots.

use std::io::Write;
use std::time::{Duration, Instant};

use super::jute::{adler32, java_utf8, Adler32};
use super::op::opcode;
use super::*;

/// A jute writer.
#[derive(Default, Clone)]
struct J(Vec<u8>);

impl J {
    fn i32(mut self, v: i32) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn i64(mut self, v: i64) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn u8(mut self, v: u8) -> Self {
        self.0.push(v);
        self
    }
    fn buf(self, b: &[u8]) -> Self {
        let mut s = self.i32(b.len() as i32);
        s.0.extend_from_slice(b);
        s
    }
    fn str(self, s: &str) -> Self {
        self.buf(s.as_bytes())
    }
    fn acl(self, acl: &[(i32, &str, &str)]) -> Self {
        let mut s = self.i32(acl.len() as i32);
        for (p, scheme, id) in acl {
            s = s.i32(*p).str(scheme).str(id);
        }
        s
    }
    fn raw(mut self, b: &[u8]) -> Self {
        self.0.extend_from_slice(b);
        self
    }
}

const WORLD: &[(i32, &str, &str)] = &[(31, "world", "anyone")];
const SESSION: i64 = 0x10000bb6b2d0000;
/// 2026-11-25T02:26:06.256Z
const TIME: i64 = 1_795_573_566_256;

fn hdr(cxid: i32, zxid: i64, ty: i32) -> J {
    J::default()
        .i64(SESSION)
        .i32(cxid)
        .i64(zxid)
        .i64(TIME)
        .i32(ty)
}

fn digest(j: J) -> J {
    j.i32(2).i64(0x1234_5678)
}

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&u64::from(adler32(payload)).to_be_bytes());
    v.extend_from_slice(&(payload.len() as i32).to_be_bytes());
    v.extend_from_slice(payload);
    v.push(0x42);
    v
}

fn log_file(payloads: &[Vec<u8>], pad: usize) -> Vec<u8> {
    let mut v = J::default().raw(b"ZKLG").i32(2).i64(0).0;
    for p in payloads {
        v.extend(frame(p));
    }
    v.resize(v.len() + pad, 0);
    v
}

fn read_all(bytes: &[u8]) -> (Vec<TxnRecord>, Vec<Notice>, Option<LogEnd>) {
    let mut r = TxnLogReader::new(bytes, "test.log").expect("header");
    let recs: Vec<TxnRecord> = r.by_ref().map(|x| x.expect("record")).collect();
    (recs, r.take_notices(), r.end())
}

fn create_body(path: &str, data: &[u8], eph: bool, pcv: i32) -> J {
    J::default()
        .str(path)
        .buf(data)
        .acl(WORLD)
        .u8(eph as u8)
        .i32(pcv)
}

/// One payload per op kind, in a known order.
fn every_op() -> Vec<Vec<u8>> {
    let multi_ok = J::default()
        .i32(4)
        .i32(opcode::CREATE)
        .buf(&create_body("/m1", b"a", false, 4).0)
        .i32(opcode::SET_DATA)
        .buf(&J::default().str("/app").buf(b"m").i32(3).0)
        .i32(opcode::CHECK)
        .buf(&J::default().str("/app").i32(3).0)
        .i32(opcode::DELETE)
        .buf(&J::default().str("/app/seq-0000000001").0);
    let multi_failed = J::default()
        .i32(3)
        .i32(opcode::CREATE)
        .buf(&create_body("/m2", b"b", false, 5).0)
        .i32(opcode::ERROR)
        .buf(&J::default().i32(-110).0)
        .i32(opcode::ERROR)
        .buf(&J::default().i32(-2).0);
    vec![
        /* 0 */ digest(hdr(0, 1, opcode::CREATE_SESSION).i32(10000)).0,
        /* 1 */
        digest(hdr(1, 2, opcode::CREATE).raw(&create_body("/app", b"hello", false, 1).0)).0,
        /* 2 */ digest(hdr(2, 3, opcode::CREATE2).raw(&create_body("/e", b"", true, 2).0)).0,
        /* 3 V0 create, no digest */
        hdr(3, 4, opcode::CREATE)
            .str("/old")
            .buf(b"v0")
            .acl(WORLD)
            .u8(0)
            .0,
        /* 4 */
        digest(
            hdr(4, 5, opcode::CREATE_CONTAINER)
                .str("/cont")
                .buf(b"cd")
                .acl(WORLD)
                .i32(2),
        )
        .0,
        /* 5 */
        digest(
            hdr(5, 6, opcode::CREATE_TTL)
                .str("/ttl")
                .buf(b"td")
                .acl(WORLD)
                .i32(3)
                .i64(60000),
        )
        .0,
        /* 6 */ digest(hdr(6, 7, opcode::DELETE).str("/m1")).0,
        /* 7 */ digest(hdr(0, 8, opcode::DELETE_CONTAINER).str("/cont")).0,
        /* 8 */ digest(hdr(7, 9, opcode::SET_DATA).str("/app").buf(b"world").i32(1)).0,
        /* 9 */
        digest(
            hdr(8, 10, opcode::RECONFIG)
                .str("/zookeeper/config")
                .buf(b"server.1=127.0.0.1:2888:3888:participant;0.0.0.0:2181\nversion=100000001")
                .i32(-1),
        )
        .0,
        /* 10 */
        digest(
            hdr(9, 11, opcode::SET_ACL)
                .str("/app/c2")
                .acl(&[(3, "world", "anyone"), (31, "digest", "u:h,x}")])
                .i32(1),
        )
        .0,
        /* 11 */ digest(hdr(10, 12, opcode::MULTI).raw(&multi_ok.0)).0,
        /* 12 */ digest(hdr(11, 13, opcode::MULTI).raw(&multi_failed.0)).0,
        /* 13 */ digest(hdr(12, 14, opcode::ERROR).i32(-110)).0,
        /* 14 closeSession with paths2Delete */
        digest(
            hdr(13, 15, opcode::CLOSE_SESSION)
                .i32(2)
                .str("/app/eph")
                .str("/app/eseq-0000000002"),
        )
        .0,
        /* 15 closeSession without body, without digest (pre-3.6) */
        hdr(14, 16, opcode::CLOSE_SESSION).0,
        /* 16 closeSession without body but with digest (closeSessionTxn disabled) */
        digest(hdr(15, 17, opcode::CLOSE_SESSION)).0,
        /* 17 createSession without digest */
        hdr(0, 18, opcode::CREATE_SESSION).i32(4000).0,
    ]
}

#[test]
fn decodes_every_op_type() {
    let file = log_file(&every_op(), 1000);
    let (recs, notices, end) = read_all(&file);
    assert!(notices.is_empty(), "{notices:?}");
    assert_eq!(end, Some(LogEnd::Preallocated));
    assert_eq!(recs.len(), 18);
    assert!(recs.iter().all(|r| r.crc_ok && r.session == SESSION as u64));
    assert_eq!(recs[0].offset, 16);
    assert_eq!(recs[1].offset, 16 + 12 + recs[0].len as u64 + 1);
    let zxids: Vec<u64> = recs.iter().map(|r| r.zxid).collect();
    assert_eq!(zxids, (1..=18).collect::<Vec<u64>>());

    assert_eq!(recs[0].op, Op::CreateSession { timeout_ms: 10000 });
    let d = Some(TxnDigest {
        version: 2,
        tree_digest: 0x1234_5678,
    });
    assert_eq!(recs[0].digest, d);
    let acl = Some(vec![Acl {
        perms: 31,
        scheme: "world".into(),
        id: "anyone".into(),
    }]);
    assert_eq!(
        recs[1].op,
        Op::Create {
            create2: false,
            path: "/app".into(),
            data: Some(b"hello".to_vec()),
            acl: acl.clone(),
            ephemeral: false,
            parent_cversion: 1,
            v0: false,
        }
    );
    assert!(matches!(
        recs[2].op,
        Op::Create {
            create2: true,
            ephemeral: true,
            ..
        }
    ));
    assert_eq!(
        recs[3].op,
        Op::Create {
            create2: false,
            path: "/old".into(),
            data: Some(b"v0".to_vec()),
            acl: acl.clone(),
            ephemeral: false,
            parent_cversion: -1,
            v0: true,
        }
    );
    assert_eq!(recs[3].digest, None);
    assert!(
        matches!(&recs[4].op, Op::CreateContainer { path, parent_cversion: 2, .. } if path == "/cont")
    );
    assert!(matches!(
        &recs[5].op,
        Op::CreateTtl {
            ttl: 60000,
            parent_cversion: 3,
            ..
        }
    ));
    assert_eq!(recs[6].op, Op::Delete { path: "/m1".into() });
    assert_eq!(
        recs[7].op,
        Op::DeleteContainer {
            path: "/cont".into()
        }
    );
    assert!(matches!(&recs[8].op, Op::SetData { version: 1, data: Some(d), .. } if d == b"world"));
    assert!(
        matches!(&recs[9].op, Op::Reconfig { path, version: -1, .. } if path == "/zookeeper/config")
    );
    assert!(matches!(&recs[10].op, Op::SetAcl { acl: Some(a), version: 1, .. } if a.len() == 2));
    match &recs[11].op {
        Op::Multi { ops: Some(ops) } => {
            let names: Vec<String> = ops.iter().map(|s| s.op.name()).collect();
            assert_eq!(names, ["create", "setData", "check", "delete"]);
            assert_eq!(
                ops[2].op,
                Op::Check {
                    path: "/app".into(),
                    version: 3
                }
            );
        }
        o => panic!("{o:?}"),
    }
    match &recs[12].op {
        Op::Multi { ops: Some(ops) } => {
            assert!(matches!(ops[0].op, Op::Create { .. }));
            assert_eq!(ops[1].op, Op::Error { code: -110 });
            assert_eq!(ops[2].op, Op::Error { code: -2 });
        }
        o => panic!("{o:?}"),
    }
    assert_eq!(recs[13].op, Op::Error { code: -110 });
    assert_eq!(
        recs[14].op,
        Op::CloseSession {
            paths_to_delete: Some(vec!["/app/eph".into(), "/app/eseq-0000000002".into()])
        }
    );
    assert_eq!(recs[14].digest, d);
    assert_eq!(
        recs[15].op,
        Op::CloseSession {
            paths_to_delete: None
        }
    );
    assert_eq!(recs[15].digest, None);
    assert_eq!(
        recs[16].op,
        Op::CloseSession {
            paths_to_delete: None
        }
    );
    assert_eq!(recs[16].digest, d);
    assert_eq!(recs[17].op, Op::CreateSession { timeout_ms: 4000 });
    assert_eq!(recs[17].digest, None);
}

/// Lines as Debian's zookeeper 3.8.0 `TxnLogToolkit -d` printed them (TZ=UTC, en_US).
#[test]
fn toolkit_lines_match_captured_output() {
    let (recs, _, _) = read_all(&log_file(&every_op(), 0));
    let tz = chrono_tz::UTC;
    let line = |i: usize| toolkit_line(&recs[i], &tz);
    let p = "11/25/26, 2:26:06 AM UTC session 0x10000bb6b2d0000";
    assert_eq!(
        line(0),
        format!("{p} cxid 0x0 zxid 0x1 createSession 10000")
    );
    assert_eq!(
        line(1),
        format!("{p} cxid 0x1 zxid 0x2 create /app,hello,[31,s{{'world,'anyone}}\n],false,1")
    );
    assert_eq!(
        line(4),
        format!("{p} cxid 0x4 zxid 0x5 createContainer /cont,cd,[31,s{{'world,'anyone}}\n],2")
    );
    assert_eq!(
        line(5),
        format!("{p} cxid 0x5 zxid 0x6 createTtl /ttl,td,[31,s{{'world,'anyone}}\n],3,60000")
    );
    assert_eq!(line(6), format!("{p} cxid 0x6 zxid 0x7 delete '/m1"));
    assert_eq!(
        line(8),
        format!("{p} cxid 0x7 zxid 0x9 setData /app,world,1")
    );
    assert_eq!(
        line(10),
        format!(
            "{p} cxid 0x9 zxid 0xb setACL '/app/c2,v{{s{{3,s{{'world,'anyone}}}},\
             s{{31,s{{'digest,'u:h%2Cx%7D}}}}}},1"
        )
    );
    assert_eq!(
        line(11),
        format!(
            "{p} cxid 0xa zxid 0xc multi create:\0\0\0\x03/m1\0\0\0\x01a\0\0\0\x01\0\0\0\x1f\0\0\0\
             \x05world\0\0\0\x06anyone\0\0\0\0\x04;setData:\0\0\0\x04/app\0\0\0\x01m\0\0\0\x03;\
             check:\0\0\0\x04/app\0\0\0\x03;delete:\0\0\0\x13/app/seq-0000000001"
        )
    );
    assert!(line(12).ends_with(
        ";error:\u{FFFD}\u{FFFD}\u{FFFD}\u{FFFD};error:\u{FFFD}\u{FFFD}\u{FFFD}\u{FFFD}"
    ));
    // Under LC_ALL=C the toolkit printed "multi create:...;error:????;error:????".
    assert!(format::java_ascii(&line(12)).ends_with(";error:????;error:????"));
    assert_eq!(line(13), format!("{p} cxid 0xc zxid 0xe error -110"));
    assert_eq!(
        line(14),
        format!("{p} cxid 0xd zxid 0xf closeSession v{{'/app/eph,'/app/eseq-0000000002}}")
    );
    assert_eq!(line(15), format!("{p} cxid 0xe zxid 0x10 closeSession "));
    assert_eq!(
        toolkit_header_line(&TxnLogHeader {
            version: 2,
            dbid: 0
        }),
        "ZooKeeper Transactional Log File with dbid 0 txnlog format version 2"
    );
    assert_eq!(toolkit_eof_line(23), "EOF reached after 23 txns.");
    // A negative cxid prints sign-extended, as Long.toHexString((long) cxid).
    let mut r = recs[0].clone();
    r.cxid = -2;
    assert!(toolkit_line(&r, &tz).contains(" cxid 0xfffffffffffffffe "));
    // The JVM's zone: LONG time style prints the zone abbreviation.
    let berlin: chrono_tz::Tz = "Europe/Berlin".parse().unwrap();
    assert!(toolkit_line(&recs[0], &berlin).starts_with("11/25/26, 3:26:06 AM CET session"));
    r.time_ms = 0;
    assert!(toolkit_line(&r, &tz).starts_with("1/1/70, 12:00:00 AM UTC session"));
}

#[test]
fn jsonl_has_the_fields() {
    let (recs, _, _) = read_all(&log_file(&every_op(), 0));
    let v: serde_json::Value = serde_json::from_str(&jsonl(&recs[14])).unwrap();
    assert_eq!(v["offset"], recs[14].offset);
    assert_eq!(v["session"], "0x10000bb6b2d0000");
    assert_eq!(v["zxid"], "0xf");
    assert_eq!(v["cxid"], "0xd");
    assert_eq!(v["epoch"], 0);
    assert_eq!(v["time"], "2026-11-25T02:26:06.256Z");
    assert_eq!(v["op"], "closeSession");
    assert_eq!(v["paths2Delete"][1], "/app/eseq-0000000002");
    assert_eq!(v["crc_ok"], true);
    assert_eq!(v["digest"]["version"], 2);
    let v: serde_json::Value = serde_json::from_str(&jsonl(&recs[12])).unwrap();
    assert_eq!(v["op"], "multi");
    assert_eq!(v["ops"][0]["op"], "create");
    assert_eq!(v["ops"][0]["path"], "/m2");
    assert_eq!(v["ops"][1]["err"], -110);
    assert_eq!(v["ops"][1]["err_name"], "NODEEXISTS");
    let v: serde_json::Value = serde_json::from_str(&jsonl(&recs[2])).unwrap();
    assert_eq!(v["ephemeral"], true);
    assert_eq!(v["path"], "/e");
    let v: serde_json::Value = serde_json::from_str(&jsonl(&recs[0])).unwrap();
    assert_eq!(v["timeout"], 10000);
    let v: serde_json::Value = serde_json::from_str(&jsonl(&recs[15])).unwrap();
    assert_eq!(v["paths2Delete"], serde_json::Value::Null);
    assert!(v.get("digest").is_none());
}

#[test]
fn flipped_payload_byte_is_reported_and_reading_goes_on() {
    let payloads = every_op();
    let clean = log_file(&payloads, 100);
    let (good, _, _) = read_all(&clean);
    let mut bad = clean.clone();
    // Flip a byte of record 1's data ("hello" → "hallo").
    let rec = &good[1];
    let pos = rec.offset as usize + 12 + 32 + 4 + 4 + 4 + 1;
    assert_eq!(bad[pos], b'e');
    bad[pos] = b'a';
    let (recs, notices, end) = read_all(&bad);
    assert_eq!(end, Some(LogEnd::Preallocated));
    assert_eq!(recs.len(), good.len());
    assert!(!recs[1].crc_ok);
    assert!(recs.iter().enumerate().all(|(i, r)| r.crc_ok == (i != 1)));
    assert!(matches!(&recs[1].op, Op::Create { data: Some(d), .. } if d == b"hallo"));
    assert_eq!(notices.len(), 1);
    assert_eq!(notices[0].kind, NoticeKind::CrcMismatch);
    assert_eq!(notices[0].offset, rec.offset);
    assert!(notices[0].to_string().starts_with(&format!(
        "test.log: at byte offset {}: checksum mismatch",
        rec.offset
    )));
    let text = toolkit_record_text(&recs[1], &chrono_tz::UTC);
    let line = toolkit_line(&recs[1], &chrono_tz::UTC);
    assert_eq!(text, format!("CRC ERROR - {line}\n{line}\n"));
}

#[test]
fn cut_file_reads_records_before_the_cut() {
    let payloads = every_op();
    let full = log_file(&payloads, 0);
    let (good, _, _) = read_all(&full);
    for cut in 16..full.len() {
        let (recs, notices, end) = read_all(&full[..cut]);
        let complete = good
            .iter()
            .filter(|r| r.offset as usize + 12 + (r.len as usize) < cut)
            .count();
        assert_eq!(recs.len(), complete, "cut at {cut}");
        assert_eq!(recs[..], good[..complete]);
        let boundary = complete == good.len() || good[complete].offset as usize == cut;
        if boundary {
            assert!(notices.is_empty(), "cut at {cut}: {notices:?}");
            assert_eq!(end, Some(LogEnd::Eof));
        } else {
            assert_eq!(notices.len(), 1, "cut at {cut}");
            assert_eq!(notices[0].kind, NoticeKind::TornRecord);
            assert_eq!(notices[0].offset, good[complete].offset, "cut at {cut}");
            assert_eq!(end, Some(LogEnd::Torn));
        }
    }
}

#[test]
fn missing_end_of_record_byte_stops_reading() {
    let payloads = every_op();
    let mut file = log_file(&payloads[..3], 64);
    let (good, _, _) = read_all(&file);
    let eor = good[1].offset as usize + 12 + good[1].len as usize;
    assert_eq!(file[eor], 0x42);
    file[eor] = 0;
    let (recs, notices, end) = read_all(&file);
    assert_eq!(recs.len(), 1);
    assert_eq!(end, Some(LogEnd::Torn));
    assert_eq!(notices[0].kind, NoticeKind::TornRecord);
    assert_eq!(notices[0].offset, eor as u64);
}

#[test]
fn unreasonable_lengths_are_reported() {
    for len in [-5i32, i32::MAX] {
        let mut file = log_file(&every_op()[..2], 0);
        let (good, _, _) = read_all(&file);
        let at = good[1].offset as usize + 8;
        file[at..at + 4].copy_from_slice(&len.to_be_bytes());
        let (recs, notices, end) = read_all(&file);
        assert_eq!(recs.len(), 1);
        assert_eq!(end, Some(LogEnd::BadLength));
        assert_eq!(notices[0].kind, NoticeKind::BadLength);
        assert_eq!(notices[0].offset, good[1].offset);
    }
    // A string length inside a body that overruns the payload: the record is kept, malformed.
    let bad = digest(hdr(1, 2, opcode::DELETE).i32(1000).raw(b"/x")).0;
    let (recs, notices, _) = read_all(&log_file(&[bad], 0));
    assert!(matches!(recs[0].op, Op::Malformed { type_code: 2, .. }));
    assert_eq!(notices[0].kind, NoticeKind::BadBody);
    assert_eq!(notices[0].offset, 16 + 12 + 32);
}

#[test]
fn bad_headers_are_clear_errors() {
    let mut file = log_file(&every_op(), 0);
    file[..16].fill(0);
    let err = TxnLogReader::new(&file[..], "log.1").unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(&err, crate::Error::BadInput { offset: 0, path, .. } if path.as_os_str() == "log.1"),
        "{msg}"
    );
    assert!(msg.contains("not a ZooKeeper transaction log"), "{msg}");
    assert!(TxnLogReader::new(&b""[..], "log.1").is_err());
    assert!(TxnLogReader::new(&b"ZKLG\0\0"[..], "log.1").is_err());
    let v3 = J::default().raw(b"ZKLG").i32(3).i64(0).0;
    assert!(matches!(
        TxnLogReader::new(&v3[..], "log.1"),
        Err(crate::Error::BadInput { offset: 4, .. })
    ));
    // A header alone is an empty log.
    let (recs, notices, end) = read_all(&log_file(&[], 0));
    assert!(recs.is_empty() && notices.is_empty());
    assert_eq!(end, Some(LogEnd::Eof));
}

#[test]
fn preallocated_64mib_file_is_fast() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.1");
    let payloads: Vec<Vec<u8>> = every_op().into_iter().take(10).collect();
    let head = log_file(&payloads, 0);
    let f = std::fs::File::create(&path).unwrap();
    (&f).write_all(&head).unwrap();
    f.set_len(64 << 20).unwrap();
    drop(f);
    let t = Instant::now();
    let mut r = open_txnlog(&path).unwrap();
    let n = r.by_ref().filter(|x| x.is_ok()).count();
    assert_eq!(n, 10);
    assert_eq!(r.end(), Some(LogEnd::Preallocated));
    assert!(r.notices().is_empty());
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());

    // A gzip-compressed copy reads the same (offsets are in the decompressed stream).
    let gz = dir.path().join("log.1.gz");
    let mut enc = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz).unwrap(),
        flate2::Compression::fast(),
    );
    enc.write_all(&std::fs::read(&path).unwrap()).unwrap();
    enc.finish().unwrap();
    let a: Vec<TxnRecord> = open_txnlog(&path).unwrap().map(|r| r.unwrap()).collect();
    let b: Vec<TxnRecord> = open_txnlog(&gz).unwrap().map(|r| r.unwrap()).collect();
    assert_eq!(a, b);

    // A cut gzip copy: the records before the cut, then a torn-record notice (no error).
    let whole = std::fs::read(&gz).unwrap();
    let gz_plain = {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(&head).unwrap();
        e.finish().unwrap()
    };
    assert!(whole.len() > 100);
    let cut = dir.path().join("cut.gz");
    std::fs::write(&cut, &gz_plain[..gz_plain.len() / 2]).unwrap();
    let mut r = open_txnlog(&cut).unwrap();
    let got: Vec<_> = r.by_ref().collect();
    assert!(got.iter().all(|x| x.is_ok()));
    assert!(got.len() < 10);
    assert_eq!(r.end(), Some(LogEnd::Torn));
    assert_eq!(r.notices()[0].kind, NoticeKind::TornRecord);
}

#[test]
fn java_utf8_matches_the_jvm() {
    // Cases checked against `new String(bytes, UTF_8)` on OpenJDK 17.
    assert_eq!(java_utf8(b"plain"), "plain");
    assert_eq!(java_utf8(&[0xff, 0xfe, b' ', b'b']), "\u{FFFD}\u{FFFD} b");
    assert_eq!(java_utf8(&[0xff, 0xff, 0xff, 0x92]), "\u{FFFD}".repeat(4));
    // CESU-8 surrogate half: one replacement for three bytes (Rust's lossy gives three).
    assert_eq!(java_utf8(&[0xed, 0xa0, 0xbd, b'x']), "\u{FFFD}x");
    assert_eq!(java_utf8(&[0xe2, 0x82]), "\u{FFFD}");
    assert_eq!(java_utf8(&[0xf0, 0x9f, 0x98, 0x80]), "\u{1F600}");
    assert_eq!(java_utf8(&[0xf0, 0x90, b'A']), "\u{FFFD}A");
    assert_eq!(java_utf8(&[0xc3, 0xa9, 0xc0, 0xaf]), "é\u{FFFD}\u{FFFD}");
}

#[test]
fn adler32_known_values() {
    assert_eq!(adler32(b""), 1);
    assert_eq!(adler32(b"Wikipedia"), 0x11E6_0398);
    let big = vec![0xffu8; 100_000];
    let mut a = Adler32::new();
    a.update(&big[..7]);
    a.update(&big[7..]);
    assert_eq!(a.value(), adler32(&big));
    // Reference value computed with zlib's adler32.
    let slow = big.iter().fold((1u64, 0u64), |(a, b), &x| {
        let a = (a + u64::from(x)) % 65521;
        (a, (b + a) % 65521)
    });
    assert_eq!(u64::from(adler32(&big)), (slow.1 << 16) | slow.0);
}

// ---- snapshots ----

const S1: i64 = 0x100_0000_0000_0001;
const S2: i64 = 0x100_0000_0000_0002;

fn node(j: J, path: &str, data: &[u8], owner: i64, czxid: i64) -> J {
    j.str(path)
        .buf(data)
        .i64(1)
        .i64(czxid)
        .i64(czxid + 1)
        .i64(TIME)
        .i64(TIME + 5)
        .i32(1)
        .i32(2)
        .i32(0)
        .i64(owner)
        .i64(czxid + 2)
}

fn seal(j: J) -> J {
    let v = adler32(&j.0);
    j.i64(i64::from(v)).str("/")
}

/// A snapshot with 2 sessions, an ACL cache entry, 6 nodes; `digest` / `last_zxid` sections.
fn snapshot_bytes(digest: bool, last_zxid: bool) -> Vec<u8> {
    let mut j = J::default()
        .raw(b"ZKSN")
        .i32(2)
        .i64(-1)
        .i32(2)
        .i64(S1)
        .i32(10000)
        .i64(S2)
        .i32(4000)
        .i32(1)
        .i64(1)
        .acl(WORLD);
    j = node(j, "", b"", 0, 0);
    j = node(j, "/app", b"hello", 0, 2);
    j = node(j, "/app/eph", b"e1", S1, 3);
    j = node(j, "/app/eph2", b"", S1, 4);
    j = node(j, "/beph", b"", S2, 5);
    j = node(j, "/cont", b"cd", i64::MIN, 6);
    j = node(j, "/ttl", b"td", (0xff_i64 << 56) | 60000, 7);
    j = j.str("/");
    j = seal(j);
    if digest {
        j = seal(j.i64(0x1d).i32(2).i64(987_654_321));
    }
    if last_zxid {
        j = seal(j.i64(0x1e));
    }
    j.0
}

fn read_snapshot(bytes: &[u8]) -> (Vec<SnapNode>, SnapshotReader<&[u8]>) {
    let mut r = SnapshotReader::new(bytes, "snapshot.1d").expect("header");
    let nodes: Vec<SnapNode> = r.by_ref().map(|n| n.expect("node")).collect();
    (nodes, r)
}

#[test]
fn snapshot_reads_sessions_nodes_seal_and_sections() {
    for (dg, lz) in [(false, false), (true, false), (false, true), (true, true)] {
        let bytes = snapshot_bytes(dg, lz);
        let (nodes, r) = read_snapshot(&bytes);
        assert!(r.notices().is_empty(), "{dg} {lz}: {:?}", r.notices());
        assert_eq!(
            r.header(),
            &SnapshotHeader {
                version: 2,
                dbid: -1
            }
        );
        assert_eq!(
            r.sessions(),
            &[
                SnapSession {
                    id: S1 as u64,
                    timeout_ms: 10000
                },
                SnapSession {
                    id: S2 as u64,
                    timeout_ms: 4000
                }
            ]
        );
        assert_eq!(r.acl_cache().len(), 1);
        assert_eq!(r.acl_cache()[0].acl[0].scheme, "world");
        let paths: Vec<&str> = nodes.iter().map(|n| n.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "",
                "/app",
                "/app/eph",
                "/app/eph2",
                "/beph",
                "/cont",
                "/ttl"
            ]
        );
        assert_eq!(nodes[1].data_len, 5);
        assert_eq!(nodes[1].stat.czxid, 2);
        assert_eq!(nodes[1].stat.mzxid, 3);
        assert_eq!(nodes[1].stat.pzxid, 4);
        assert_eq!(nodes[1].stat.mtime, TIME + 5);
        assert_eq!(nodes[1].stat.cversion, 2);
        assert_eq!(nodes[2].stat.kind(), NodeKind::Ephemeral(S1 as u64));
        assert_eq!(nodes[5].stat.kind(), NodeKind::Container);
        assert_eq!(nodes[6].stat.kind(), NodeKind::Ttl(60000));
        let t = r.trailer().expect("trailer");
        assert!(t.seals_ok);
        assert_eq!(u64::from(t.checksum_computed), t.checksum_stored);
        assert_eq!(
            t.digest,
            dg.then_some(ZxidDigest {
                zxid: 0x1d,
                version: 2,
                digest: 987_654_321
            })
        );
        assert_eq!(t.last_processed_zxid, lz.then_some(0x1e));
    }
}

#[test]
fn snapshot_summary_lists_ephemerals_by_session() {
    let bytes = snapshot_bytes(true, false);
    let mut r = SnapshotReader::new(&bytes[..], "snapshot.1d").unwrap();
    let mut out = Vec::new();
    let st = snapshot_summary(&mut r, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert_eq!(st.nodes, 7);
    assert_eq!((st.ephemerals, st.containers, st.ttl_nodes), (3, 1, 1));
    assert!(st.complete);
    assert!(text.contains("Session Details (sid, timeout, ephemeralCount):\n0x100000000000001, 10000, 2\n0x100000000000002, 4000, 1\n"), "{text}");
    assert!(
        text.contains("0x100000000000001 (timeout 10000 ms):\n  /app/eph\n  /app/eph2\n"),
        "{text}"
    );
    assert!(text.contains("Seal: checksum 0x"), "{text}");
    assert!(text.contains("ok"), "{text}");
    assert!(
        text.contains("Digest: zxid 0x1d version 2 digest 987654321"),
        "{text}"
    );
}

/// A snapshot whose table holds `sessions` sessions, each owning one ephemeral (`/e/N`), with
/// `acl_entries` ACL cache entries of `acls` ACLs each.
fn crowded_snapshot(sessions: usize, acl_entries: usize, acls: usize) -> Vec<u8> {
    let mut j = J::default()
        .raw(b"ZKSN")
        .i32(2)
        .i64(-1)
        .i32(sessions as i32);
    for i in 0..sessions {
        j = j.i64(S1 + i as i64).i32(4000);
    }
    j = j.i32(acl_entries as i32);
    let many: Vec<(i32, &str, &str)> = vec![(31, "world", "anyone"); acls];
    for i in 0..acl_entries {
        j = j.i64(i as i64 + 1).acl(&many);
    }
    j = node(j, "", b"", 0, 0);
    j = node(j, "/e", b"", 0, 1);
    for i in 0..sessions {
        j = node(j, &format!("/e/{i}"), b"", S1 + i as i64, 2 + i as i64);
    }
    seal(j.str("/")).0
}

/// Regression (issue 15): the session table was held whole, whatever it held. Past the limit
/// the sessions are read past, counted and reported once (file and offset of the first one
/// skipped), and the node list is still read to its seal.
#[test]
fn snapshot_sessions_over_the_limit_are_skipped_and_reported() {
    let bytes = crowded_snapshot(100, 1, 1);
    let mut r = SnapshotReader::with_max_sessions(&bytes[..], "snapshot.1d", 10).expect("header");
    let nodes: Vec<SnapNode> = r.by_ref().map(|n| n.expect("node")).collect();
    assert_eq!(r.sessions().len(), 10);
    assert_eq!(r.sessions()[9].id, (S1 + 9) as u64);
    assert_eq!(r.skipped_sessions(), 90);
    assert_eq!(nodes.len(), 102, "the nodes are all read");
    assert!(r.trailer().expect("sealed").seals_ok);
    assert_eq!(r.notices().len(), 1, "{:?}", r.notices());
    let n = &r.notices()[0];
    assert_eq!(n.kind, NoticeKind::OverLimit);
    // Header (16), the count (4), ten sessions of 12 bytes.
    assert_eq!(n.offset, 16 + 4 + 10 * 12);
    assert!(
        n.to_string().starts_with(
            "snapshot.1d: at byte offset 140: 90 of 100 sessions in the session table are over the limit of 10"
        ),
        "{n}"
    );
    // The summary lists the ten, says how many more, and holds the ephemerals of the ten only
    // as theirs (the others' are counted, as owners it may not hold).
    let mut r = SnapshotReader::with_max_sessions(&bytes[..], "snapshot.1d", 10).expect("header");
    let mut out = Vec::new();
    let st = snapshot_summary(&mut r, &mut out).expect("summary");
    let text = String::from_utf8(out).expect("utf-8");
    assert_eq!(st.ephemerals, 100);
    assert!(text.contains("0x10000000000000a, 4000, 1\n... and 90 more sessions over the limit of 10 (not listed)\n"), "{text}");
    assert!(
        text.contains("... and 80 more ephemerals not listed"),
        "{text}"
    );
    assert!(
        text.contains("Ephemerals of sessions not in the session table (or skipped over its limit):\n0x10000000000000b:\n  /e/10\n"),
        "{text}"
    );
    // Within the limit: nothing skipped, nothing said.
    let (_, r) = read_snapshot(&bytes);
    assert_eq!((r.sessions().len(), r.skipped_sessions()), (100, 0));
    assert!(r.notices().is_empty());
}

/// The ACL cache is bounded too: entries past [`MAX_ACL_CACHE`], ACLs of one entry past
/// [`MAX_ACLS_PER_ENTRY`], read past and reported.
#[test]
fn snapshot_acl_cache_is_bounded() {
    let bytes = crowded_snapshot(1, MAX_ACL_CACHE + 3, 1);
    let (nodes, r) = read_snapshot(&bytes);
    assert_eq!(nodes.len(), 3);
    assert_eq!(r.acl_cache().len(), MAX_ACL_CACHE);
    assert_eq!(r.notices().len(), 1, "{:?}", r.notices());
    assert!(r.notices()[0]
        .message
        .starts_with("3 ACL cache entries over the limit"));
    let bytes = crowded_snapshot(1, 1, MAX_ACLS_PER_ENTRY + 2);
    let (nodes, r) = read_snapshot(&bytes);
    assert_eq!(nodes.len(), 3);
    assert_eq!(r.acl_cache()[0].acl.len(), MAX_ACLS_PER_ENTRY);
    assert!(r.notices()[0].message.starts_with("2 ACLs over the limit"));
    assert!(r.trailer().expect("sealed").seals_ok);
}

#[test]
fn truncated_snapshot_is_detected_with_offset() {
    let bytes = snapshot_bytes(true, false);
    let (full, _) = read_snapshot(&bytes);
    let term = bytes.len() - 33 - 13 - 5; // offset of the "/" terminator
    for cut in 16..bytes.len() {
        let mut r = SnapshotReader::new(&bytes[..cut], "snapshot.1d").expect("header");
        let nodes: Vec<SnapNode> = r.by_ref().map(|n| n.expect("node")).collect();
        assert_eq!(nodes[..], full[..nodes.len()], "cut at {cut}");
        if cut < term + 5 + 13 {
            assert!(r.trailer().is_none(), "cut at {cut}");
            let n = &r.notices()[0];
            assert_eq!(n.kind, NoticeKind::Truncated, "cut at {cut}");
            assert_eq!(n.offset, cut as u64, "cut at {cut}");
        } else {
            // Seal read; the digest section is cut: reported as unexplained trailing bytes.
            let t = r.trailer().expect("trailer");
            assert!(t.seals_ok);
            assert_eq!(t.digest, None);
            if cut > term + 5 + 13 {
                assert_eq!(
                    r.notices()[0].kind,
                    NoticeKind::TrailingBytes,
                    "cut at {cut}"
                );
                assert_eq!(r.notices()[0].offset, (term + 5 + 13) as u64);
            }
        }
    }
    // Truncated in the middle of the node list but ending in "00 00 00 01 2f" (the server's
    // cheap validity test passes; the seal check does not).
    let mut fake = bytes[..200].to_vec();
    fake.extend_from_slice(&[0, 0, 0, 1, b'/']);
    let (_, r) = read_snapshot(&fake);
    assert!(r.trailer().is_none());
    assert_eq!(r.notices()[0].kind, NoticeKind::Truncated);
}

#[test]
fn snapshot_seal_mismatch_and_bad_header() {
    let mut bytes = snapshot_bytes(true, true);
    let pos = bytes.windows(5).position(|w| w == b"hello").unwrap();
    bytes[pos] = b'j';
    let (nodes, r) = read_snapshot(&bytes);
    assert_eq!(nodes.len(), 7);
    let t = r.trailer().unwrap();
    assert!(!t.seals_ok);
    assert_eq!(r.notices()[0].kind, NoticeKind::CrcMismatch);
    assert_eq!(r.notices()[0].offset, t.seal_offset);
    // The digest and lastProcessedZxid sections are still found (their seals fail too).
    assert!(t.digest.is_some() && t.last_processed_zxid == Some(0x1e));

    let mut z = snapshot_bytes(false, false);
    z[..4].fill(0);
    let e = SnapshotReader::new(&z[..], "snapshot.1").unwrap_err();
    assert!(matches!(e, crate::Error::BadInput { offset: 0, .. }));
    assert!(e.to_string().contains("not a ZooKeeper snapshot"));
    assert!(SnapshotReader::new(&b"ZKLG"[..], "x").is_err());
}

/// A literal-only snappy block.
fn snappy_literal_block(data: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    let mut n = data.len();
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            v.push(b);
            break;
        }
        v.push(b | 0x80);
    }
    for chunk in data.chunks(60) {
        v.push(((chunk.len() - 1) << 2) as u8);
        v.extend_from_slice(chunk);
    }
    v
}

#[test]
fn snappy_blocks_and_streams() {
    // "abc" + copy1(len 9, offset 3) + copy2(len 4, offset 12) + literal "!"
    let block = [
        12 + 4 + 1,
        0x08,
        b'a',
        b'b',
        b'c',
        0x15,
        3,
        2 | (3 << 2),
        12,
        0,
        0x00,
        b'!',
    ];
    let mut out = Vec::new();
    snappy::decompress_block(&block, &mut out).unwrap();
    assert_eq!(out, b"abcabcabcabcabca!");
    let mut out = Vec::new();
    assert!(snappy::decompress_block(&[5, 0x15, 9], &mut out).is_err());
    assert!(snappy::decompress_block(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x7f], &mut out).is_err());

    let snap = snapshot_bytes(true, false);
    let mut stream = snappy::MAGIC.to_vec();
    stream.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1]);
    for chunk in snap.chunks(100) {
        let b = snappy_literal_block(chunk);
        stream.extend_from_slice(&(b.len() as i32).to_be_bytes());
        stream.extend_from_slice(&b);
    }
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("snapshot.1d.snappy");
    std::fs::write(&p, &stream).unwrap();
    let mut r = open_snapshot(&p).unwrap();
    assert_eq!(r.by_ref().filter(|n| n.is_ok()).count(), 7);
    assert!(r
        .trailer()
        .is_some_and(|t| t.seals_ok && t.digest.is_some()));
    // A cut snappy stream is an I/O-level error for the reader, not a panic.
    std::fs::write(&p, &stream[..stream.len() - 7]).unwrap();
    let mut r = open_snapshot(&p).unwrap();
    let results: Vec<_> = r.by_ref().collect();
    assert!(results.iter().any(|x| x.is_err()) || !r.notices().is_empty());
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn random_bytes_after_a_valid_header_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let mut file = J::default().raw(b"ZKLG").i32(2).i64(0).0;
            file.extend_from_slice(&tail);
            let mut r = TxnLogReader::new(&file[..], "fuzz.log").unwrap();
            for rec in r.by_ref() {
                let rec = rec.unwrap();
                let _ = toolkit_line(&rec, &chrono_tz::UTC);
                let _ = jsonl(&rec);
            }
            prop_assert!(r.end().is_some());
        }

        #[test]
        fn mutated_valid_logs_never_panic(
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut file = log_file(&every_op(), 40);
            for (i, b) in edits {
                let at = 16 + i.index(file.len() - 16);
                file[at] = b;
            }
            let cut = 16 + cut.index(file.len() - 15);
            let mut r = TxnLogReader::new(&file[..cut], "fuzz.log").unwrap();
            for rec in r.by_ref() {
                let rec = rec.unwrap();
                let _ = toolkit_record_text(&rec, &chrono_tz::UTC);
                let _ = jsonl(&rec);
            }
        }

        #[test]
        fn mutated_snapshots_never_panic(
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut file = snapshot_bytes(true, true);
            for (i, b) in edits {
                let at = 16 + i.index(file.len() - 16);
                file[at] = b;
            }
            let cut = 16 + cut.index(file.len() - 15);
            let mut r = SnapshotReader::new(&file[..cut], "fuzz.snap").unwrap();
            let mut out = Vec::new();
            let _ = snapshot_summary(&mut r, &mut out).unwrap();
        }
    }
}

// ---- Hostile transaction logs: bounded cost (issue 15) ----

/// A multi record declaring `count` sub-ops of 8 bytes each (a type and a null buffer): the
/// smallest thing that looks like a sub-op, and nothing ZooKeeper writes.
fn hostile_multi(zxid: i64, count: usize) -> Vec<u8> {
    let mut j = hdr(100, zxid, opcode::MULTI).i32(count as i32);
    j.0.reserve(count * 8);
    for _ in 0..count {
        j = j.i32(opcode::DELETE).i32(-1);
    }
    j.0
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

#[test]
fn multi_over_the_sub_op_cap_is_one_notice_and_no_structs() {
    // 200 000 sub-ops in 1.6 MB: within the record limit, over the sub-op cap.
    let count = 200_000;
    assert!(count > DEFAULT_MAX_MULTI_OPS);
    let ops = every_op();
    let file = log_file(
        &[ops[0].clone(), hostile_multi(50, count), ops[8].clone()],
        0,
    );
    assert!(file.len() < DEFAULT_MAX_RECORD_LEN);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.1.gz");
    std::fs::write(&path, gzip(&file)).unwrap();
    let mut r = open_txnlog(&path).unwrap();
    let recs: Vec<TxnRecord> = r.by_ref().map(|x| x.unwrap()).collect();
    let notices = r.take_notices();
    // The good records before and after are read; the multi is one malformed record.
    assert_eq!(recs.len(), 3);
    assert!(matches!(recs[0].op, Op::CreateSession { .. }));
    assert!(matches!(recs[2].op, Op::SetData { .. }));
    assert!(
        matches!(&recs[1].op, Op::Malformed { type_code: 14, reason } if reason.contains("200000")),
        "{:?}",
        recs[1].op
    );
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert_eq!(notices[0].kind, NoticeKind::BadBody);
    assert!(
        notices[0].message.contains("limit"),
        "{}",
        notices[0].message
    );
}

#[test]
fn multi_at_the_cap_builds_at_most_cap_sub_ops_and_one_notice() {
    let cap = DEFAULT_MAX_MULTI_OPS;
    let ops = every_op();
    let file = log_file(&[hostile_multi(50, cap), ops[8].clone()], 0);
    let (recs, notices, end) = read_all(&file);
    assert_eq!(end, Some(LogEnd::Eof));
    assert_eq!(recs.len(), 2);
    let Op::Multi { ops: Some(subs) } = &recs[0].op else {
        panic!("{:?}", recs[0].op)
    };
    assert!(subs.len() <= cap);
    assert!(subs.iter().all(|s| matches!(s.op, Op::Malformed { .. })));
    // One notice for the record, not one per undecodable sub-op.
    assert_eq!(notices.len(), 1, "{} notices", notices.len());
    assert!(notices[0].message.contains(&format!("{} more", cap - 1)));
    // One more sub-op is over the cap: nothing is built.
    let (recs, notices, _) = read_all(&log_file(&[hostile_multi(50, cap + 1)], 0));
    assert!(matches!(recs[0].op, Op::Malformed { type_code: 14, .. }));
    assert_eq!(notices.len(), 1);
    // A higher record limit raises the cap with it.
    assert_eq!(max_multi_ops(DEFAULT_MAX_RECORD_LEN), DEFAULT_MAX_MULTI_OPS);
    assert_eq!(max_multi_ops(1 << 20), DEFAULT_MAX_MULTI_OPS);
    assert_eq!(
        max_multi_ops(DEFAULT_MAX_RECORD_LEN * 4),
        DEFAULT_MAX_MULTI_OPS * 4
    );
    // Opened from a file, with the default limit: the same cap.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.9");
    std::fs::write(&path, log_file(&[], 0)).unwrap();
    assert_eq!(
        open_txnlog(&path).unwrap().max_multi_ops(),
        DEFAULT_MAX_MULTI_OPS
    );
}

#[test]
fn notices_are_capped_with_a_count_of_the_rest() {
    // 5 000 records with a bad checksum: every record is read, at most the limit of notices is
    // held, and one more notice counts the rest.
    let n = 5_000;
    let payloads: Vec<Vec<u8>> = (0..n)
        .map(|i| digest(hdr(i, i64::from(i) + 1, opcode::DELETE).str("/x")).0)
        .collect();
    let mut file = J::default().raw(b"ZKLG").i32(2).i64(0).0;
    for p in &payloads {
        let mut f = frame(p);
        f[7] ^= 0xff; // the checksum
        file.extend(f);
    }
    let mut r = TxnLogReader::new(&file[..], "bad.log").unwrap();
    let mut read = 0;
    // (not `for`: the notices are looked at between records)
    #[allow(clippy::while_let_on_iterator)]
    while let Some(rec) = r.next() {
        assert!(!rec.unwrap().crc_ok);
        read += 1;
        assert!(r.notices().len() <= DEFAULT_MAX_NOTICES);
    }
    assert_eq!(read, n);
    assert_eq!(
        r.notices_suppressed(),
        (n as u64) - DEFAULT_MAX_NOTICES as u64
    );
    let notices = r.take_notices();
    assert_eq!(notices.len(), DEFAULT_MAX_NOTICES + 1);
    let last = notices.last().unwrap();
    assert_eq!(last.kind, NoticeKind::Suppressed);
    assert!(last.message.contains("4000 more"), "{}", last.message);
    // A caller taking them as it goes sees every one.
    let mut r = TxnLogReader::new(&file[..], "bad.log").unwrap();
    let mut seen = 0;
    #[allow(clippy::while_let_on_iterator)]
    while let Some(rec) = r.next() {
        rec.unwrap();
        seen += r.take_notices().len();
    }
    assert_eq!(seen, n as usize);
}

#[test]
fn record_over_the_limit_is_skipped_and_reading_goes_on() {
    // A 3 MiB setData: over the default limit (2 MiB), read with a higher one.
    let big = digest(
        hdr(5, 2, opcode::SET_DATA)
            .str("/big")
            .buf(&vec![7u8; 3 << 20])
            .i32(1),
    )
    .0;
    let ops = every_op();
    let file = log_file(&[ops[0].clone(), big, ops[8].clone()], 0);
    let (recs, notices, end) = read_all(&file);
    assert_eq!(end, Some(LogEnd::Eof));
    assert_eq!(recs.len(), 2, "{notices:?}");
    assert_eq!(recs[1].zxid, 9);
    assert_eq!(notices.len(), 1);
    assert_eq!(notices[0].kind, NoticeKind::TooLarge);
    assert_eq!(
        notices[0].offset,
        recs[0].offset + 12 + u64::from(recs[0].len) + 1
    );
    let mut r = TxnLogReader::new(&file[..], "big.log")
        .unwrap()
        .with_max_record_len(4 << 20);
    assert_eq!(r.by_ref().filter(|x| x.is_ok()).count(), 3);
    assert!(r.notices().is_empty());
}

#[test]
fn gzip_with_trailing_garbage_is_an_error_with_both_offsets_after_the_good_records() {
    let file = log_file(&every_op()[..3], 0);
    let mut gz = gzip(&file);
    let member_end = gz.len();
    gz.extend_from_slice(b"this is not gzip at all, just trailing garbage\n");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.2.gz");
    std::fs::write(&path, &gz).unwrap();
    let mut r = open_txnlog(&path).unwrap();
    let got: Vec<_> = r.by_ref().collect();
    assert_eq!(got.len(), 4, "{got:?}");
    assert!(got[..3].iter().all(|x| x.is_ok()));
    let err = got[3].as_ref().unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, crate::Error::BadInput { offset, .. } if *offset == file.len() as u64),
        "{msg}"
    );
    assert!(msg.contains("decompressed stream"), "{msg}");
    assert!(msg.contains("compressed file"), "{msg}");
    assert!(msg.contains("gzip stream damaged"), "{msg}");
    // Where the decompressor stood in the file: past the good member, within the file.
    let read: usize = msg
        .split("had read ")
        .nth(1)
        .and_then(|t| t.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(
        read >= member_end && read <= gz.len(),
        "{read} {member_end} {msg}"
    );
}

#[test]
fn snapshot_summary_of_200k_sessions_and_ephemerals_is_not_quadratic() {
    // Each ephemeral's owner was found by scanning the whole session table: 200k x 200k took
    // 28 s in a release build. Owners are map lookups now; the ceiling is generous (debug).
    let n: i64 = 200_000;
    let mut j = J::default().raw(b"ZKSN").i32(2).i64(-1).i32(n as i32);
    j.0.reserve(n as usize * 120);
    for s in 0..n {
        j = j.i64(S1 + s).i32(10000);
    }
    j = j.i32(0);
    j = node(j, "", b"", 0, 0);
    for s in 0..n {
        j = node(j, &format!("/e{s}"), b"", S1 + n - 1 - s, 3);
    }
    // Two ephemerals of a session the table does not list.
    j = node(j, "/orphan1", b"", 0x7700, 3);
    j = node(j, "/orphan2", b"", 0x7700, 3);
    j = seal(j.str("/"));
    let bytes = j.0;
    let t = Instant::now();
    let mut r = SnapshotReader::new(&bytes[..], "snapshot.big").unwrap();
    let mut out = Vec::new();
    let st = snapshot_summary(&mut r, &mut out).unwrap();
    let took = t.elapsed();
    let text = String::from_utf8(out).unwrap();
    assert_eq!(st.ephemerals, n as u64 + 2);
    assert!(st.complete);
    assert!(
        text.contains(&format!("{:#016x}, 10000, 1\n", S1 + 5)),
        "session line"
    );
    assert!(text.contains(&format!(
        "{:#016x} (timeout 10000 ms):\n  /e{}\n",
        S1,
        n - 1
    )));
    assert!(
        text.contains("Ephemerals of sessions not in the session table:\n0x00000000007700:\n  /orphan1\n  /orphan2\n"),
        "{}",
        &text[text.len().saturating_sub(300)..]
    );
    assert!(took < Duration::from_secs(30), "{took:?}");
}
