//! custos-sim: simulated reader hardware (being written).
pub mod reader;
