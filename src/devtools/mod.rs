//! Development tools reachable from the binary but apart from the product: `zklens bench`
//! (figures beside same-run baselines) and `zklens corpus` (the deterministic synthetic corpus
//! it measures). They drive the `zklens` binary as a user would and nothing in the product
//! imports them.

pub mod bench;
pub mod corpus;
