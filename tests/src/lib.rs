//! End-to-end tests for Custos live in `tests/tests/`; this library holds their shared fixtures.
