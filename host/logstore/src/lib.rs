//! The raft log store (being written).
