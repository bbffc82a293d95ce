//! Obfuscation of span data (SQL, and the other kinds in sibling modules), with results identical to
//! the Datadog agent's `pkg/obfuscate`.

pub mod sql;
