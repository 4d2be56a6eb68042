//! Parsing registration znode data. (To be written: Curator ServiceInstance JSON and plain JSON.)
