//! Unit tests of the SQL obfuscator (the agent's full tables run in tests/obfuscate_sql_tables.rs).

use super::*;

fn legacy(q: &str) -> String {
    obfuscate_sql(q, &SqlConfig::default()).unwrap().query
}

#[test]
fn legacy_basics() {
    assert_eq!(
        legacy("SELECT username AS person FROM users WHERE id=4"),
        "SELECT username FROM users WHERE id = ?"
    );
    assert_eq!(
        legacy("SELECT * FROM t WHERE a IN (1, 2, 3)"),
        "SELECT * FROM t WHERE a IN ( ? )"
    );
}

#[test]
fn legacy_errors_carry_agent_messages() {
    let e = obfuscate_sql(
        "SELECT age FROM profile WHERE name='John",
        &SqlConfig::default(),
    )
    .unwrap_err();
    assert_eq!(e.kind(), crate::ErrorKind::InvalidArgument);
    assert_eq!(e.message(), "at position 41: unexpected EOF in string");
    assert_eq!(
        obfuscate_sql("", &SqlConfig::default())
            .unwrap_err()
            .message(),
        "result is empty"
    );
}
