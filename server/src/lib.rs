//! custos-server: the Custos server (built in its own issue).

/// Usage text printed by the binary until its subcommands exist.
pub const USAGE: &str = concat!("custos-server ", env!("CARGO_PKG_VERSION"), "\n");
