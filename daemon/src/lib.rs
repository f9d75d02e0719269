//! custosd: the Custos reader daemon (built in its own issue).

/// Usage text printed by the binary until its subcommands exist.
pub const USAGE: &str = concat!("custosd ", env!("CARGO_PKG_VERSION"), "\n");
