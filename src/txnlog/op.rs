//! Transaction bodies: the [`Op`] enum and its decoding from jute bytes
//! (`SerializeUtils.deserializeTxn` and `DataTree.processTxn` for multi sub-ops).

use super::jute::{Cursor, JuteError};

/// ZooKeeper opcodes that can appear in a transaction log (`ZooDefs.OpCode`).
pub mod opcode {
    /// `create`.
    pub const CREATE: i32 = 1;
    /// `delete`.
    pub const DELETE: i32 = 2;
    /// `setData`.
    pub const SET_DATA: i32 = 5;
    /// `setACL`.
    pub const SET_ACL: i32 = 7;
    /// `check` (inside multi only).
    pub const CHECK: i32 = 13;
    /// `multi`.
    pub const MULTI: i32 = 14;
    /// `create2`.
    pub const CREATE2: i32 = 15;
    /// `reconfig`.
    pub const RECONFIG: i32 = 16;
    /// `createContainer`.
    pub const CREATE_CONTAINER: i32 = 19;
    /// `deleteContainer`.
    pub const DELETE_CONTAINER: i32 = 20;
    /// `createTTL`.
    pub const CREATE_TTL: i32 = 21;
    /// `createSession`.
    pub const CREATE_SESSION: i32 = -10;
    /// `closeSession`.
    pub const CLOSE_SESSION: i32 = -11;
    /// `error`.
    pub const ERROR: i32 = -1;
}

/// The name ZooKeeper gives an opcode (`Request.op2String`, 3.8), e.g. `createTtl`,
/// `unknown 42`.
pub fn op_name(code: i32) -> String {
    let s = match code {
        0 => "notification",
        1 => "create",
        2 => "delete",
        3 => "exists",
        4 => "getData",
        5 => "setData",
        6 => "getACL",
        7 => "setACL",
        8 => "getChildren",
        9 => "sync",
        11 => "ping",
        12 => "getChildren2",
        13 => "check",
        14 => "multi",
        15 => "create2",
        16 => "reconfig",
        17 => "checkWatches",
        18 => "removeWatches",
        19 => "createContainer",
        20 => "deleteContainer",
        21 => "createTtl",
        22 => "multiRead",
        100 => "auth",
        101 => "setWatches",
        102 => "sasl",
        103 => "getEphemerals",
        104 => "getAllChildrenNumber",
        105 => "setWatches2",
        107 => "whoAmI",
        -10 => "createSession",
        -11 => "closeSession",
        -1 => "error",
        _ => return format!("unknown {code}"),
    };
    s.to_string()
}

/// The `KeeperException.Code` constant name of an error code (`NODEEXISTS` for -110), if known.
pub fn err_name(code: i32) -> Option<&'static str> {
    Some(match code {
        0 => "OK",
        -1 => "SYSTEMERROR",
        -2 => "RUNTIMEINCONSISTENCY",
        -3 => "DATAINCONSISTENCY",
        -4 => "CONNECTIONLOSS",
        -5 => "MARSHALLINGERROR",
        -6 => "UNIMPLEMENTED",
        -7 => "OPERATIONTIMEOUT",
        -8 => "BADARGUMENTS",
        -12 => "UNKNOWNSESSION",
        -13 => "NEWCONFIGNOQUORUM",
        -14 => "RECONFIGINPROGRESS",
        -100 => "APIERROR",
        -101 => "NONODE",
        -102 => "NOAUTH",
        -103 => "BADVERSION",
        -108 => "NOCHILDRENFOREPHEMERALS",
        -110 => "NODEEXISTS",
        -111 => "NOTEMPTY",
        -112 => "SESSIONEXPIRED",
        -113 => "INVALIDCALLBACK",
        -114 => "INVALIDACL",
        -115 => "AUTHFAILED",
        -118 => "SESSIONMOVED",
        -119 => "NOTREADONLY",
        -120 => "EPHEMERALONLOCALSESSION",
        -121 => "NOWATCHER",
        -122 => "REQUESTTIMEOUT",
        -123 => "RECONFIGDISABLED",
        -124 => "SESSIONCLOSEDREQUIRESASLAUTH",
        -125 => "QUOTAEXCEEDED",
        -127 => "THROTTLEDOP",
        _ => return None,
    })
}

/// One access-control entry (`ACL { int perms; Id id; }`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acl {
    /// Permission bits: READ=1, WRITE=2, CREATE=4, DELETE=8, ADMIN=16.
    pub perms: i32,
    /// Id scheme (`world`, `digest`, `ip`, `sasl`, ...).
    pub scheme: String,
    /// Id within the scheme (`anyone`, `user:hash`, ...).
    pub id: String,
}

/// One sub-operation of a `multi` transaction (`Txn { int type; buffer data; }`).
#[derive(Debug, Clone, PartialEq)]
pub struct SubOp {
    /// Its opcode (-1 for an error sub-op).
    pub type_code: i32,
    /// Its decoded body.
    pub op: Op,
    /// The raw jute bytes of the body (TxnLogToolkit prints them as a string); `None` for a
    /// null buffer.
    pub raw: Option<Vec<u8>>,
}

/// A decoded transaction body.
///
/// Strings are decoded as Java decodes them (malformed UTF-8 becomes U+FFFD); a null string
/// (length -1) reads as `""`. Node data is kept as raw bytes (`None` for a null buffer).
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// `create` (1) or `create2` (15): `CreateTxn`, or legacy `CreateTxnV0` (then `v0` is true and
    /// `parent_cversion` is -1, as ZooKeeper sets it).
    Create {
        /// True for opcode 15 (`create2`).
        create2: bool,
        /// Node path.
        path: String,
        /// Node data.
        data: Option<Vec<u8>>,
        /// ACL (`None` for a null vector).
        acl: Option<Vec<Acl>>,
        /// Ephemeral node (owned by the record's session).
        ephemeral: bool,
        /// The parent's cversion after the create.
        parent_cversion: i32,
        /// The body was the legacy `CreateTxnV0` layout (no parentCVersion).
        v0: bool,
    },
    /// `createContainer` (19): `CreateContainerTxn`.
    CreateContainer {
        /// Node path.
        path: String,
        /// Node data.
        data: Option<Vec<u8>>,
        /// ACL.
        acl: Option<Vec<Acl>>,
        /// The parent's cversion after the create.
        parent_cversion: i32,
    },
    /// `createTTL` (21): `CreateTTLTxn`.
    CreateTtl {
        /// Node path.
        path: String,
        /// Node data.
        data: Option<Vec<u8>>,
        /// ACL.
        acl: Option<Vec<Acl>>,
        /// The parent's cversion after the create.
        parent_cversion: i32,
        /// Time to live, ms.
        ttl: i64,
    },
    /// `delete` (2): `DeleteTxn`.
    Delete {
        /// Node path.
        path: String,
    },
    /// `deleteContainer` (20): `DeleteTxn`, issued by the server's container manager.
    DeleteContainer {
        /// Node path.
        path: String,
    },
    /// `setData` (5): `SetDataTxn`.
    SetData {
        /// Node path.
        path: String,
        /// New data.
        data: Option<Vec<u8>>,
        /// New data version.
        version: i32,
    },
    /// `reconfig` (16): `SetDataTxn` on `/zookeeper/config`.
    Reconfig {
        /// Node path (`/zookeeper/config`).
        path: String,
        /// The new dynamic configuration.
        data: Option<Vec<u8>>,
        /// New data version.
        version: i32,
    },
    /// `setACL` (7): `SetACLTxn`.
    SetAcl {
        /// Node path.
        path: String,
        /// New ACL.
        acl: Option<Vec<Acl>>,
        /// New ACL version.
        version: i32,
    },
    /// `check` (13, inside multi only): `CheckVersionTxn`.
    Check {
        /// Node path.
        path: String,
        /// Expected version.
        version: i32,
    },
    /// `multi` (14): `MultiTxn`. After the first failing sub-op every sub-op is an error.
    Multi {
        /// The sub-operations in order (`None` for a null vector).
        ops: Option<Vec<SubOp>>,
    },
    /// `createSession` (-10): `CreateSessionTxn`; the session id is the record's `session`.
    CreateSession {
        /// Negotiated session timeout, ms.
        timeout_ms: i32,
    },
    /// `closeSession` (-11), by the client or on expiry.
    CloseSession {
        /// Ephemeral nodes deleted by this close (`CloseSessionTxn`, 3.6+); `None` when the
        /// record has no body (older servers, or `zookeeper.closeSessionTxn.enabled=false`).
        paths_to_delete: Option<Vec<String>>,
    },
    /// `error` (-1): `ErrorTxn`, a failed write that still consumed a zxid (or a failed or
    /// skipped multi sub-op).
    Error {
        /// `KeeperException.Code` (e.g. -110 NodeExists); see [`err_name`].
        code: i32,
    },
    /// An opcode that has no body in a transaction log.
    Unknown {
        /// The opcode.
        type_code: i32,
    },
    /// The body could not be decoded.
    Malformed {
        /// The opcode.
        type_code: i32,
        /// What went wrong.
        reason: String,
    },
}

impl Op {
    /// The opcode of this body (the header's type for top-level records).
    pub fn type_code(&self) -> i32 {
        use opcode::*;
        match self {
            Op::Create { create2: false, .. } => CREATE,
            Op::Create { create2: true, .. } => CREATE2,
            Op::CreateContainer { .. } => CREATE_CONTAINER,
            Op::CreateTtl { .. } => CREATE_TTL,
            Op::Delete { .. } => DELETE,
            Op::DeleteContainer { .. } => DELETE_CONTAINER,
            Op::SetData { .. } => SET_DATA,
            Op::Reconfig { .. } => RECONFIG,
            Op::SetAcl { .. } => SET_ACL,
            Op::Check { .. } => CHECK,
            Op::Multi { .. } => MULTI,
            Op::CreateSession { .. } => CREATE_SESSION,
            Op::CloseSession { .. } => CLOSE_SESSION,
            Op::Error { .. } => ERROR,
            Op::Unknown { type_code } | Op::Malformed { type_code, .. } => *type_code,
        }
    }

    /// ZooKeeper's name for the opcode (`create`, `createTtl`, `closeSession`, ...).
    pub fn name(&self) -> String {
        op_name(self.type_code())
    }

    /// The znode path the operation concerns, if it has one.
    pub fn path(&self) -> Option<&str> {
        match self {
            Op::Create { path, .. }
            | Op::CreateContainer { path, .. }
            | Op::CreateTtl { path, .. }
            | Op::Delete { path }
            | Op::DeleteContainer { path }
            | Op::SetData { path, .. }
            | Op::Reconfig { path, .. }
            | Op::SetAcl { path, .. }
            | Op::Check { path, .. } => Some(path),
            _ => None,
        }
    }
}

fn acl_list(c: &mut Cursor<'_>) -> Result<Option<Vec<Acl>>, JuteError> {
    let Some(n) = c.vec_len()? else {
        return Ok(None);
    };
    let mut v = Vec::new();
    for _ in 0..n {
        let perms = c.i32()?;
        let scheme = c.string()?;
        let id = c.string()?;
        v.push(Acl { perms, scheme, id });
    }
    Ok(Some(v))
}

fn data(c: &mut Cursor<'_>) -> Result<Option<Vec<u8>>, JuteError> {
    Ok(c.buffer()?.map(<[u8]>::to_vec))
}

fn create(c: &mut Cursor<'_>, create2: bool, v0: bool) -> Result<Op, JuteError> {
    let path = c.string()?;
    let data = data(c)?;
    let acl = acl_list(c)?;
    let ephemeral = c.bool()?;
    let parent_cversion = if v0 { -1 } else { c.i32()? };
    Ok(Op::Create {
        create2,
        path,
        data,
        acl,
        ephemeral,
        parent_cversion,
        v0,
    })
}

/// Decodes the body of `type_code` at the cursor. `top` is true for a record body (where
/// `check` is not a valid txn type and `multi`/`createSession`/`closeSession`/`setACL`/`reconfig`
/// are), false for a multi sub-op.
/// `max_ops` is the most sub-ops a multi may declare: a larger count is refused before anything
/// is built (see [`DEFAULT_MAX_MULTI_OPS`](super::log::DEFAULT_MAX_MULTI_OPS)).
pub(crate) fn decode_body(
    type_code: i32,
    c: &mut Cursor<'_>,
    top: bool,
    max_ops: usize,
) -> Result<Op, JuteError> {
    use opcode::*;
    Ok(match type_code {
        CREATE | CREATE2 => create(c, type_code == CREATE2, false)?,
        CREATE_CONTAINER => Op::CreateContainer {
            path: c.string()?,
            data: data(c)?,
            acl: acl_list(c)?,
            parent_cversion: c.i32()?,
        },
        CREATE_TTL => Op::CreateTtl {
            path: c.string()?,
            data: data(c)?,
            acl: acl_list(c)?,
            parent_cversion: c.i32()?,
            ttl: c.i64()?,
        },
        DELETE => Op::Delete { path: c.string()? },
        DELETE_CONTAINER => Op::DeleteContainer { path: c.string()? },
        SET_DATA => Op::SetData {
            path: c.string()?,
            data: data(c)?,
            version: c.i32()?,
        },
        ERROR => Op::Error { code: c.i32()? },
        CHECK if !top => Op::Check {
            path: c.string()?,
            version: c.i32()?,
        },
        RECONFIG if top => Op::Reconfig {
            path: c.string()?,
            data: data(c)?,
            version: c.i32()?,
        },
        SET_ACL if top => Op::SetAcl {
            path: c.string()?,
            acl: acl_list(c)?,
            version: c.i32()?,
        },
        CREATE_SESSION if top => Op::CreateSession {
            timeout_ms: c.i32()?,
        },
        CLOSE_SESSION if top => {
            let paths = match c.vec_len()? {
                None => None,
                Some(n) => {
                    let mut v = Vec::new();
                    for _ in 0..n {
                        v.push(c.string()?);
                    }
                    Some(v)
                }
            };
            Op::CloseSession {
                paths_to_delete: Some(paths.unwrap_or_default()),
            }
        }
        MULTI if top => {
            let at = c.pos();
            let ops = match c.vec_len()? {
                None => None,
                Some(n) if n > max_ops => {
                    return Err(JuteError::TooMany {
                        at,
                        count: n,
                        max: max_ops,
                    })
                }
                Some(n) => {
                    let mut v = Vec::new();
                    for _ in 0..n {
                        let t = c.i32()?;
                        let raw = c.buffer()?;
                        v.push(decode_sub(t, raw));
                    }
                    Some(v)
                }
            };
            Op::Multi { ops }
        }
        _ => Op::Unknown { type_code },
    })
}

fn decode_sub(type_code: i32, raw: Option<&[u8]>) -> SubOp {
    let bytes = raw.unwrap_or(&[]);
    let mut c = Cursor::new(bytes);
    // A sub-op is never a multi: no count limit applies inside it.
    let op = match decode_body(type_code, &mut c, false, 0) {
        Ok(op) => op,
        Err(e) => Op::Malformed {
            type_code,
            reason: e.to_string(),
        },
    };
    SubOp {
        type_code,
        op,
        raw: raw.map(<[u8]>::to_vec),
    }
}

/// Decodes a top-level body with ZooKeeper's fallbacks: a `create` body that ends early is
/// re-read as `CreateTxnV0`; a `closeSession` without (complete) body has no paths. A multi
/// declaring more than `max_ops` sub-ops is refused whole.
pub(crate) fn decode_top(
    type_code: i32,
    c: &mut Cursor<'_>,
    max_ops: usize,
) -> Result<Op, JuteError> {
    let start = c.pos();
    match decode_body(type_code, c, true, max_ops) {
        Ok(op) => Ok(op),
        Err(e) if e.is_eof() && type_code == opcode::CREATE => {
            c.set_pos(start);
            create(c, false, true)
        }
        Err(e) if e.is_eof() && type_code == opcode::CLOSE_SESSION => {
            c.set_pos(start);
            Ok(Op::CloseSession {
                paths_to_delete: None,
            })
        }
        Err(e) => Err(e),
    }
}
