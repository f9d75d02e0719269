//! Decode throughput benchmarks (being written).
fn main() {}
