//! Following the services root with `zookeeper-client`. (To be written.)
