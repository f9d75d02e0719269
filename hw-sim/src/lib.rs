//! custos-sim: simulated reader hardware (being written).
