//! A deterministic generator of realistic ZooKeeper-ensemble log corpora for benchmarks: server
//! logs in the 3.5 and 3.8+ layouts (upstream with `[myid:N]`, and Debian's without), Java-client,
//! kazoo and JSON-lines service logs, stack traces, and leader failovers embedded at known times
//! (listed in `.manifest.json`, which ingestion skips as a hidden file, so benchmarks can check what
//! they find).
//!
//! The message texts are the exact formats of `../shared/reference/zookeeper-log-messages.md`.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::time::short;

/// What to generate.
#[derive(Debug, Clone)]
pub struct CorpusSpec {
    /// Output directory.
    pub out: PathBuf,
    /// Total size to reach, in bytes (approximately: generation stops once it is passed).
    pub bytes: u64,
    /// ZooKeeper servers.
    pub servers: u32,
    /// Client service instances.
    pub services: u32,
    /// Seed.
    pub seed: u64,
    /// Start time (ns since the epoch).
    pub start: i64,
    /// A leader failover every this many seconds of log time.
    pub failover_every_s: u64,
    /// What the corpus looks like.
    pub profile: Profile,
}

/// What a corpus looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Profile {
    /// The first bench corpus (generator 2), kept so that figures stay comparable: one file per
    /// server and per service, a pool of 1,024 live sessions with one replaced every 200 entries
    /// (about 57,000 sessions in 2 GB), every line in a layout and most of them classified.
    #[default]
    Classic,
    /// Closer to a production fleet: high-cardinality session ids (one replaced every 3
    /// entries in a pool of 8,192: millions in a few GB), server logs rotated as log4j's
    /// RollingFileAppender does (`zookeeper.log`, `.1`, `.2`, ...), services that restart into
    /// a new small file (hundreds of files beside the few large ones) and print plain lines
    /// without a timestamp when they start, Java services with a JVM GC log (a layout no
    /// shipped format knows), Python services with tracebacks, and application lines no rule
    /// classifies.
    Mixed,
}

impl Profile {
    /// Its name (`classic`, `mixed`).
    pub fn name(self) -> &'static str {
        match self {
            Profile::Classic => "classic",
            Profile::Mixed => "mixed",
        }
    }
}

impl std::str::FromStr for Profile {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Profile, String> {
        match s {
            "classic" => Ok(Profile::Classic),
            "mixed" => Ok(Profile::Mixed),
            _ => Err(format!("corpus profile {s:?}: classic or mixed")),
        }
    }
}

/// One embedded failover, for checking what detection finds.
#[derive(Debug, Clone, Serialize)]
pub struct Failover {
    /// When the old leader was lost (RFC 3339).
    pub at: String,
    /// Old leader id.
    pub old_leader: u32,
    /// New leader id.
    pub new_leader: u32,
    /// The new epoch.
    pub new_epoch: u64,
    /// Sessions the new leader expired (0x hex).
    pub sessions_expired: Vec<String>,
}

/// Version of this generator, recorded in the manifest. 2: the probe zxid is one written, the
/// sync lines name the old epoch's last zxid, a failover's expiries come together, the manifest
/// counts election lines right. 3: the mixed profile (the classic one writes the same bytes as
/// version 2).
pub const GENERATOR: u32 = 3;

/// What was generated.
#[derive(Debug, Clone, Serialize)]
pub struct Manifest {
    /// Files written (relative paths) and their sizes.
    pub files: Vec<(String, u64)>,
    /// Lines written.
    pub lines: u64,
    /// Entries (lines minus stack-trace continuation lines).
    pub entries: u64,
    /// Bytes written.
    pub bytes: u64,
    /// Embedded failovers.
    pub failovers: Vec<Failover>,
    /// A session id that appears on servers and in a service log (for lookups).
    pub probe_session: String,
    /// A zxid that appears in logs (for lookups).
    pub probe_zxid: String,
    /// Version of the generator that wrote the corpus (a corpus from another version is
    /// generated again: its probes or lines may differ).
    pub generator: u32,
    /// Its profile.
    #[serde(default)]
    pub profile: Profile,
    /// Distinct session ids written.
    #[serde(default)]
    pub sessions: u64,
}

/// xorshift64*: a small, fast, reproducible generator (one seed, one sequence), for the
/// corpus and for tests that need reproducible randomness.
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// A number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

struct Out {
    w: BufWriter<File>,
    path: PathBuf,
    /// Bytes written to this log in all its files.
    bytes: u64,
    /// Bytes in the current file.
    current: u64,
    /// Rotate (log4j's RollingFileAppender: `x` to `x.1`, `x.1` to `x.2`, ...) once the current
    /// file holds this many bytes; 0: never.
    rotate_at: u64,
    /// Rotated files so far.
    rotated: u32,
}

impl Out {
    fn create(p: PathBuf) -> Result<Out> {
        if let Some(d) = p.parent() {
            fs::create_dir_all(d).map_err(|e| Error::io(d, e))?;
        }
        let f = File::create(&p).map_err(|e| Error::io(&p, e))?;
        Ok(Out {
            w: BufWriter::with_capacity(1 << 20, f),
            path: p,
            bytes: 0,
            current: 0,
            rotate_at: 0,
            rotated: 0,
        })
    }
    fn line(&mut self, s: &str) -> Result<()> {
        self.w
            .write_all(s.as_bytes())
            .and_then(|_| self.w.write_all(b"\n"))
            .map_err(|e| Error::io(&self.path, e))?;
        self.bytes += s.len() as u64 + 1;
        self.current += s.len() as u64 + 1;
        if self.rotate_at > 0 && self.current >= self.rotate_at {
            self.rotate()?;
        }
        Ok(())
    }
    fn rotate(&mut self) -> Result<()> {
        self.w.flush().map_err(|e| Error::io(&self.path, e))?;
        let numbered = |k: u32| PathBuf::from(format!("{}.{k}", self.path.display()));
        for k in (1..=self.rotated).rev() {
            fs::rename(numbered(k), numbered(k + 1)).map_err(|e| Error::io(numbered(k), e))?;
        }
        fs::rename(&self.path, numbered(1)).map_err(|e| Error::io(&self.path, e))?;
        self.rotated += 1;
        let f = File::create(&self.path).map_err(|e| Error::io(&self.path, e))?;
        self.w = BufWriter::with_capacity(1 << 20, f);
        self.current = 0;
        Ok(())
    }
    /// Ends this file and goes on in `next` (a service restarted into a new file).
    fn reopen(&mut self, next: PathBuf) -> Result<()> {
        self.w.flush().map_err(|e| Error::io(&self.path, e))?;
        let f = File::create(&next).map_err(|e| Error::io(&next, e))?;
        self.w = BufWriter::with_capacity(1 << 20, f);
        self.path = next;
        self.current = 0;
        Ok(())
    }
}

fn ts(ns: i64) -> String {
    // log4j ISO8601: 2026-11-24 22:02:29,123
    short(ns).replacen('.', ",", 1)
}

/// Generates a corpus; returns its manifest (also written to [`manifest_path`]).
pub fn generate(spec: &CorpusSpec) -> Result<Manifest> {
    let mut rng = Rng(spec.seed | 1);
    let mixed = spec.profile == Profile::Mixed;
    let n = spec.servers.max(3);
    let mut servers: Vec<Out> = (1..=n)
        .map(|i| Out::create(spec.out.join(format!("zk{i}/logs/zookeeper.log"))))
        .collect::<Result<_>>()?;
    if mixed {
        for o in &mut servers {
            o.rotate_at = (spec.bytes / 40).clamp(64_000, 256_000_000);
        }
    }
    let ext = |i: u32| if i % 3 == 0 { "jsonl" } else { "log" };
    // Mixed: each service run writes its own file, named as rolling appenders name them:
    // logback's `svc-N.DATE.RUN.log` (Java, JSON) and Python's TimedRotatingFileHandler
    // `svc-N.log.DATE_HH-MM-SS`.
    let run_file = |i: u32, run: u32, t: i64| {
        let at = crate::time::rfc3339(t);
        let name = if i % 2 == 0 && i % 3 != 0 {
            format!("svc-{i}.log.{}_{}", &at[..10], at[11..19].replace(':', "-"))
        } else {
            format!("svc-{i}.{}.{run}.{}", &at[..10], ext(i))
        };
        let p = spec.out.join(format!("svc-{i}/logs/{name}"));
        // Two runs within one second (a small corpus restarts often): the second gets its
        // run number too, as no file may be written twice.
        if p.exists() {
            return spec.out.join(format!("svc-{i}/logs/{name}.{run}"));
        }
        p
    };
    let mut services: Vec<Out> = (1..=spec.services.max(1))
        .map(|i| {
            if mixed {
                return Out::create(run_file(i, 1, spec.start));
            }
            let name = format!("svc-{i}");
            Out::create(spec.out.join(format!("{name}/logs/{name}.{}", ext(i))))
        })
        .collect::<Result<_>>()?;
    let mut runs: Vec<u32> = vec![1; services.len()];
    // Bytes a run writes before its service restarts (mixed): 0.5 - 6 MB in a 2 GB corpus,
    // fewer in a smaller one (hundreds of files either way).
    let scale = (spec.bytes / 400).clamp(10_000, 6_000_000);
    let run_len = |rng: &mut Rng| scale / 12 + rng.below(scale);
    let mut run_left: Vec<u64> = if mixed {
        (0..services.len()).map(|_| run_len(&mut rng)).collect()
    } else {
        Vec::new()
    };
    // Mixed: the Java services' (odd, not JSON) JVM GC logs, unified logging's layout.
    let java = |i: u32| i % 2 == 1 && i % 3 != 0;
    let mut gc: Vec<Option<Out>> = (1..=spec.services.max(1))
        .map(|i| {
            (mixed && java(i))
                .then(|| Out::create(spec.out.join(format!("svc-{i}/logs/gc.log"))))
                .transpose()
        })
        .collect::<Result<_>>()?;
    // Layout per server: odd ids upstream 3.8 with [myid:N], even ids Debian's (no myid).
    let head = |i: u32, t: i64, level: &str, thread: &str, class: &str, line: u32| -> String {
        if i % 2 == 1 {
            format!(
                "{} [myid:{i}] - {level:<5} [{thread}:{class}@{line}] - ",
                ts(t)
            )
        } else {
            format!("{} - {level:<5} [{thread}:{class}@{line}] - ", ts(t))
        }
    };
    let qp = |i: u32| {
        format!(
            "QuorumPeer[myid={i}](plain=[0:0:0:0:0:0:0:0]:{})(secure=disabled)",
            2180 + i
        )
    };
    let mut leader: u32 = n;
    let mut epoch: u64 = 1;
    let mut counter: u64 = 1;
    let mut t = spec.start;
    let mut next_failover = spec.start + spec.failover_every_s as i64 * 1_000_000_000;
    let mut lines = 0u64;
    let mut conts = 0u64;
    let mut failovers = Vec::new();
    // A pool of live sessions; one is replaced by a new one every 200 entries, so a session
    // lives for a while and is named by tens to hundreds of lines, as in a real ensemble.
    let mut next_session: u64 = 0;
    let mut new_session = |rng: &mut Rng| {
        next_session += 1;
        let origin = 1 + rng.below(u64::from(n));
        (origin << 56) | (0x0a1b_2c00_0000 + next_session * 0x1_0000)
    };
    // Mixed: a pool of 8,192, one replaced every 3 entries (the probe, slot 5, never is: a
    // busy client to look up among millions of short ones).
    let (pool, churn) = if mixed { (8192, 3) } else { (1024, 200) };
    let mut sessions: Vec<u64> = (0..pool).map(|_| new_session(&mut rng)).collect();
    let mut made = pool as u64;
    let probe_session = sessions[5];
    let mut entries_since_rotation = 0u32;
    let mut probe_zxid = None;
    let total = |s: &[Out], v: &[Out]| s.iter().chain(v).map(|o| o.bytes).sum::<u64>();
    while total(&servers, &services) < spec.bytes {
        t += 200_000 + rng.below(1_800_000) as i64; // 0.2 - 2 ms between entries
        if t >= next_failover {
            // ---- a leader failover ------------------------------------------------------
            let old = leader;
            let new = if old == n { 1 } else { old + 1 };
            let lost = t;
            for i in 1..=n {
                if i == old {
                    continue;
                }
                let o = &mut servers[i as usize - 1];
                o.line(&format!(
                    "{}Exception when following the leader",
                    head(i, t, "WARN", &qp(i), "Follower", 129)
                ))?;
                o.line("java.io.EOFException")?;
                o.line("\tat java.base/java.io.DataInputStream.readInt(DataInputStream.java:397)")?;
                o.line(
                    "\tat org.apache.zookeeper.server.quorum.Learner.readPacket(Learner.java:227)",
                )?;
                conts += 3;
                o.line(&format!("{}Disconnected from leader (with address: /127.0.0.1:{}). Was connected for {}ms. Sync state: true", head(i, t + 1_000_000, "INFO", &qp(i), "Follower", 286), 2880 + old, 1000 + rng.below(900_000)))?;
                o.line(&format!(
                    "{}Peer state changed: looking",
                    head(i, t + 2_000_000, "INFO", &qp(i), "QuorumPeer", 898)
                ))?;
                o.line(&format!(
                    "{}LOOKING",
                    head(i, t + 2_000_000, "INFO", &qp(i), "QuorumPeer", 1429)
                ))?;
                o.line(&format!(
                    "{}New election. My id = {i}, proposed zxid=0x{:x}",
                    head(i, t + 3_000_000, "INFO", &qp(i), "FastLeaderElection", 946),
                    (epoch << 32) | counter
                ))?;
                for j in 1..=n {
                    if j != old {
                        o.line(&format!("{}Notification: my state:LOOKING; n.sid:{j}, n.state:LOOKING, n.leader:{new}, n.round:0x{:x}, n.peerEpoch:0x{epoch:x}, n.zxid:0x{:x}, message format version:0x2, n.config version:0x0", head(i, t + 4_000_000, "INFO", &format!("WorkerReceiver[myid={i}]"), "FastLeaderElection$Messenger$WorkerReceiver", 389), epoch + 1, (epoch << 32) | counter))?;
                    }
                }
                lines += 8 + u64::from(n) - 1;
            }
            t += 200_000_000 + rng.below(300_000_000) as i64;
            // What the followers and the new leader had: the old epoch's last zxid.
            let last = (epoch << 32) | counter;
            epoch += 1;
            counter = 0;
            for i in 1..=n {
                if i == old {
                    continue;
                }
                let o = &mut servers[i as usize - 1];
                let took = (t - lost) / 1_000_000;
                if i == new {
                    o.line(&format!(
                        "{}LEADING",
                        head(i, t, "INFO", &qp(i), "QuorumPeer", 1511)
                    ))?;
                    o.line(&format!(
                        "{}LEADING - LEADER ELECTION TOOK - {took} MS",
                        head(i, t, "INFO", &qp(i), "Leader", 585)
                    ))?;
                    o.line(&format!(
                        "{}Peer state changed: leading - discovery",
                        head(i, t, "INFO", &qp(i), "QuorumPeer", 898)
                    ))?;
                    for j in 1..=n {
                        if j != old && j != new {
                            o.line(&format!("{}Synchronizing with Learner sid: {j} maxCommittedLog=0x{:x} minCommittedLog=0x{:x} lastProcessedZxid=0x{:x} peerLastZxid=0x{:x}", head(i, t + 5_000_000, "INFO", &format!("LearnerHandler-/127.0.0.1:{}", 40000 + j), "LearnerHandler", 723), last, ((epoch - 1) << 32) | 1, last, last))?;
                            o.line(&format!(
                                "{}Sending DIFF zxid=0x{:x}  for peer sid: {j}",
                                head(
                                    i,
                                    t + 5_000_000,
                                    "INFO",
                                    &format!("LearnerHandler-/127.0.0.1:{}", 40000 + j),
                                    "LearnerHandler",
                                    794
                                ),
                                last
                            ))?;
                            lines += 2;
                        }
                    }
                    o.line(&format!("{}Have quorum of supporters, sids: [[{}],[{}]]; starting up and setting last processed zxid: 0x{:x}", head(i, t + 9_000_000, "INFO", &qp(i), "Leader", 1623), new, new, epoch << 32))?;
                    o.line(&format!(
                        "{}Peer state changed: leading - broadcast",
                        head(i, t + 9_000_000, "INFO", &qp(i), "QuorumPeer", 898)
                    ))?;
                    lines += 5;
                    leader = new;
                } else {
                    o.line(&format!(
                        "{}FOLLOWING",
                        head(i, t, "INFO", &qp(i), "QuorumPeer", 1429)
                    ))?;
                    o.line(&format!(
                        "{}FOLLOWING - LEADER ELECTION TOOK - {took} MS",
                        head(i, t, "INFO", &qp(i), "Follower", 75)
                    ))?;
                    o.line(&format!(
                        "{}Getting a diff from the leader 0x{:x}",
                        head(i, t + 6_000_000, "INFO", &qp(i), "Learner", 556),
                        last
                    ))?;
                    o.line(&format!(
                        "{}Peer state changed: following - synchronization - diff",
                        head(i, t + 6_000_000, "INFO", &qp(i), "QuorumPeer", 898)
                    ))?;
                    o.line(&format!(
                        "{}Peer state changed: following - broadcast",
                        head(i, t + 10_000_000, "INFO", &qp(i), "QuorumPeer", 898)
                    ))?;
                    lines += 5;
                }
            }
            // The new leader expires the sessions that did not come back: each got a fresh
            // timeout (4 s) when the leader took over, so they expire together, a session
            // tracker tick apart.
            let mut expired = Vec::new();
            t += 4_000_000_000;
            for _ in 0..2 {
                let k = rng.below(sessions.len() as u64) as usize;
                let s = sessions[k];
                t += 1_000_000 + rng.below(250_000_000) as i64;
                let o = &mut servers[new as usize - 1];
                o.line(&format!(
                    "{}Expiring session 0x{s:x}, timeout of 4000ms exceeded",
                    head(new, t, "INFO", "SessionTracker", "ZooKeeperServer", 632)
                ))?;
                o.line(&format!(
                    "{}Submitting global closeSession request for session 0x{s:x}",
                    head(
                        new,
                        t,
                        "INFO",
                        "SessionTracker",
                        "QuorumZooKeeperServer",
                        150
                    )
                ))?;
                lines += 2;
                expired.push(format!("0x{s:x}"));
                sessions[k] =
                    (u64::from(new) << 56) | (s & 0x00ff_ffff_ffff_ffff).wrapping_add(0x100_0000);
                made += 1;
            }
            failovers.push(Failover {
                at: crate::time::rfc3339(lost),
                old_leader: old,
                new_leader: new,
                new_epoch: epoch,
                sessions_expired: expired,
            });
            next_failover = t + spec.failover_every_s as i64 * 1_000_000_000;
            continue;
        }
        // ---- steady state ------------------------------------------------------------------
        entries_since_rotation += 1;
        if entries_since_rotation >= churn {
            entries_since_rotation = 0;
            let k = rng.below(sessions.len() as u64) as usize;
            if !(mixed && k == 5) {
                sessions[k] = new_session(&mut rng);
                made += 1;
            }
        }
        let r = rng.below(100);
        let s = sessions[rng.below(sessions.len() as u64) as usize];
        counter += 1;
        let zxid = (epoch << 32) | counter;
        if r < 45 {
            let i = 1 + rng.below(u64::from(n)) as u32;
            let o = &mut servers[i as usize - 1];
            let m = match rng.below(6) {
                0 => format!("Processing srvr command from /127.0.0.1:{}", 30000 + rng.below(30000)),
                1 => format!("Revalidating client: 0x{s:x}"),
                2 => format!("Got user-level KeeperException when processing sessionid:0x{s:x} type:create cxid:0x{:x} zxid:0x{zxid:x} txntype:-1 reqpath:n/a Error Path:/services/svc Error:KeeperErrorCode = NodeExists for /services/svc", rng.below(4096)),
                3 => format!("Committing global session 0x{s:x}"),
                4 => format!("Closing session 0x{s:x}"),
                _ => format!("fsync-ing the write ahead log in SyncThread:{i} took {}ms which will adversely effect operation latency.File size is {} bytes. See the ZooKeeper troubleshooting guide", 1000 + rng.below(3000), 67_108_880),
            };
            let level = if m.starts_with("fsync") {
                "WARN"
            } else {
                "INFO"
            };
            o.line(&format!(
                "{}{m}",
                head(
                    i,
                    t,
                    level,
                    &format!("NIOWorkerThread-{}", 1 + rng.below(8)),
                    "ZooKeeperServer",
                    700
                )
            ))?;
            lines += 1;
        } else if r < 50 {
            let i = 1 + rng.below(u64::from(n)) as u32;
            let o = &mut servers[i as usize - 1];
            o.line(&format!(
                "{}Unexpected exception",
                head(
                    i,
                    t,
                    "WARN",
                    &format!("NIOWorkerThread-{}", 1 + rng.below(8)),
                    "NIOServerCnxn",
                    371
                )
            ))?;
            o.line(&format!("org.apache.zookeeper.server.ServerCnxn$EndOfStreamException: Unable to read additional data from client, it probably closed the socket: address = /127.0.0.1:{}, session = 0x{s:x}", 40000 + rng.below(20000)))?;
            o.line("\tat org.apache.zookeeper.server.NIOServerCnxn.handleFailedRead(NIOServerCnxn.java:163)")?;
            o.line("\tat org.apache.zookeeper.server.NIOServerCnxn.doIO(NIOServerCnxn.java:326)")?;
            o.line("\tat java.base/java.lang.Thread.run(Thread.java:829)")?;
            lines += 5;
            conts += 4;
        } else {
            let k = rng.below(services.len() as u64) as usize;
            let o = &mut services[k];
            let name = format!("svc-{}", k + 1);
            let stamp = ts(t);
            let line = if (k + 1) % 3 == 0 {
                // Every JSON line names its zxid: the probe is one that is in the corpus.
                if probe_zxid.is_none() {
                    probe_zxid = Some(zxid);
                }
                format!(
                    r#"{{"ts":"{}","level":"INFO","logger":"{name}","msg":"wrote /data/{name}/counter","session":"0x{s:x}","zxid":"0x{zxid:x}"}}"#,
                    crate::time::rfc3339(t)
                )
            } else if (k + 1) % 3 == 1 {
                match rng.below(4) {
                    0 => format!("{stamp} [myid:127.0.0.1:{}] - INFO  [main-SendThread(127.0.0.1:{}):ClientCnxn@1444] - Session establishment complete on server localhost/127.0.0.1:{}, session id = 0x{s:x}, negotiated timeout = 4000", 2180 + leader, 2180 + leader, 2180 + leader),
                    1 => format!("{stamp} [myid:127.0.0.1:{}] - WARN  [main-SendThread(127.0.0.1:{}):ClientCnxn@1285] - Client session timed out, have not heard from server in 2668ms for session id 0x{s:x}", 2180 + leader, 2180 + leader),
                    _ => format!("{stamp} [myid:] - INFO  [main:Service@88] - wrote /data/{name}/counter mzxid=0x{zxid:x} session 0x{s:x}"),
                }
            } else {
                match rng.below(4) {
                    0 => format!("{stamp} INFO kazoo.client: Zookeeper connection established, state: CONNECTED"),
                    1 => format!("{stamp} WARNING kazoo.client: Connection dropped: socket connection broken"),
                    _ => format!("{stamp} INFO {name}: wrote /data/{name}/counter version={} mzxid=0x{zxid:x} session 0x{s:x}", rng.below(100000)),
                }
            };
            o.line(&line)?;
            lines += 1;
            if mixed {
                let i = k as u32 + 1;
                let (l, c) = mixed_service_lines(&mut rng, o, i, t, s, java(i), gc[k].as_mut())?;
                lines += l;
                conts += c;
                if o.current >= run_left[k] {
                    // The service restarts into a new file, printing its banner first.
                    runs[k] += 1;
                    run_left[k] = run_len(&mut rng);
                    o.reopen(run_file(i, runs[k], t))?;
                    let banner = if java(i) {
                        vec![
                            "OpenJDK 64-Bit Server VM warning: Sharing is only supported for boot loader classes because bootstrap classpath has been appended".to_string(),
                            format!("Starting svc-{i} 4.2.{} with PID {}", runs[k], 1000 + rng.below(60000)),
                        ]
                    } else {
                        vec![
                            format!("Starting svc-{i} (pid {})", 1000 + rng.below(60000)),
                            "  listening on 0.0.0.0:8080, 4 workers".to_string(),
                        ]
                    };
                    for b in banner {
                        o.line(&b)?;
                        lines += 1;
                    }
                }
            }
        }
    }
    for g in gc.iter_mut().flatten() {
        g.w.flush().map_err(|e| Error::io(&g.path, e))?;
    }
    let mut files = Vec::new();
    let mut bytes = 0;
    for o in servers.iter_mut().chain(services.iter_mut()) {
        o.w.flush().map_err(|e| Error::io(&o.path, e))?;
        if !mixed {
            let rel = o
                .path
                .strip_prefix(&spec.out)
                .unwrap_or(&o.path)
                .to_string_lossy()
                .into_owned();
            files.push((rel, o.bytes));
            bytes += o.bytes;
        }
    }
    if mixed {
        // Rotated and restarted logs: every file written, as it is on disk.
        files = walk(&spec.out)?;
        bytes = files.iter().map(|f| f.1).sum();
    }
    let m = Manifest {
        files,
        lines,
        entries: lines - conts,
        bytes,
        failovers,
        probe_session: format!("0x{probe_session:x}"),
        probe_zxid: format!("0x{:x}", probe_zxid.unwrap_or(1 << 32 | 1)),
        generator: GENERATOR,
        profile: spec.profile,
        sessions: made,
    };
    let mp = manifest_path(&spec.out);
    let text = serde_json::to_string_pretty(&m).map_err(|e| Error::BadInput {
        path: mp.clone(),
        offset: 0,
        reason: e.to_string(),
    })?;
    fs::write(&mp, text).map_err(|e| Error::io(&mp, e))?;
    Ok(m)
}

/// Lines the mixed profile adds after a service's line: application lines no rule classifies,
/// Python tracebacks, JVM GC lines (in `gc`). Returns the lines written and how many of them
/// continue an entry.
fn mixed_service_lines(
    rng: &mut Rng,
    o: &mut Out,
    i: u32,
    t: i64,
    session: u64,
    java: bool,
    gc: Option<&mut Out>,
) -> Result<(u64, u64)> {
    let stamp = ts(t);
    let (mut lines, mut conts) = (0, 0);
    let r = rng.below(1000);
    let json = i % 3 == 0;
    if r < 120 {
        // Application lines: nothing ZooKeeper-specific, and no rule knows them.
        let order = rng.below(1_000_000);
        let ms = rng.below(400);
        let line = if json {
            format!(
                r#"{{"ts":"{}","level":"INFO","logger":"svc-{i}.orders","msg":"processed order {order} in {ms} ms","trace_id":"{:016x}"}}"#,
                crate::time::rfc3339(t),
                rng.next_u64()
            )
        } else if java {
            format!("{stamp} [myid:] - INFO  [http-nio-8080-exec-{}:OrderController@212] - processed order {order} in {ms} ms", 1 + rng.below(16))
        } else {
            format!("{stamp} INFO svc-{i}.api: GET /api/v1/items/{order} 200 {ms}ms")
        };
        o.line(&line)?;
        lines += 1;
    } else if r < 124 && !java && !json {
        o.line(&format!(
            "{stamp} ERROR svc-{i}.worker: job failed for session 0x{session:x}"
        ))?;
        for l in [
            "Traceback (most recent call last):",
            "  File \"/srv/app/worker.py\", line 88, in run",
            "    self.handle(job)",
            "  File \"/srv/app/worker.py\", line 131, in handle",
            "    raise ValueError(\"bad input\")",
            "ValueError: bad input",
        ] {
            o.line(l)?;
        }
        lines += 7;
        conts += 6;
    }
    if let Some(g) = gc {
        if rng.below(40) == 0 {
            let up = (t - 1_795_478_400_000_000_000).max(0) as f64 / 1e9;
            g.line(&format!(
                "[{}+0000][{up:.3}s][info][gc] GC({}) Pause Young (Normal) (G1 Evacuation Pause) {}M->{}M(512M) {:.3}ms",
                crate::time::rfc3339(t).trim_end_matches('Z'),
                rng.below(100_000),
                100 + rng.below(300),
                20 + rng.below(80),
                rng.below(20_000) as f64 / 1000.0
            ))?;
            lines += 1;
        }
    }
    Ok((lines, conts))
}

/// Every file under `dir` (but the manifest), relative, with its size, sorted.
fn walk(dir: &Path) -> Result<Vec<(String, u64)>> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in fs::read_dir(&d).map_err(|e| Error::io(&d, e))? {
            let e = e.map_err(|e| Error::io(&d, e))?;
            let p = e.path();
            let meta = e.metadata().map_err(|e| Error::io(&p, e))?;
            if meta.is_dir() {
                todo.push(p);
            } else if p != manifest_path(dir) {
                let rel = p
                    .strip_prefix(dir)
                    .unwrap_or(&p)
                    .to_string_lossy()
                    .into_owned();
                out.push((rel, meta.len()));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Where a corpus's manifest is.
pub fn manifest_path(dir: &Path) -> PathBuf {
    dir.join(".manifest.json")
}
