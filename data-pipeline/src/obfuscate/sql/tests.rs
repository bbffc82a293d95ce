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

/// Edge cases of the legacy tokenizer's fast paths (plain strings as slices, packed keywords,
/// the filter fast path, `pos` counting): results as the agent's (from the implementation
/// before those fast paths, which matched the agent's package on the differential corpus).
#[test]
fn legacy_fast_path_edges() {
    let cases: &[(&str, std::result::Result<&str, &str>)] = &[
        ("\0x", Err("at position 0: unexpected byte 0")),
        ("\0", Err("at position 1: unexpected byte 0")),
        ("\0\0", Err("at position 0: unexpected byte 0")),
        ("\0日", Err("at position 0: unexpected byte 0")),
        ("{call p(?)}", Ok("{ call p ( ? ) }")),
        ("x\0y", Ok("x y")),
        ("SELECT ''", Ok("SELECT ?")),
        ("SELECT ' '", Ok("SELECT ?")),
        ("SELECT \"\"", Ok("SELECT \"\"")),
        ("SELECT \" \" FROM t", Ok("SELECT \"\" FROM t")),
        ("SELECT 'it''s' FROM t", Ok("SELECT ? FROM t")),
        ("SELECT 'a\\'b' FROM t", Ok("SELECT ? FROM t")),
        ("SELECT \"a\"\"b\" FROM t", Ok("SELECT a\"b FROM t")),
        ("SELECT `my col` FROM t", Ok("SELECT my col FROM t")),
        (
            "ſelect a FROM t WHERE b = 1",
            Ok("ſelect a FROM t WHERE b = ?"),
        ),
        ("SELECT a FROM t LİMİT 1", Ok("SELECT a FROM t LİMİT ?")),
        (
            "select a from t where b=TRUE and c=null",
            Ok("select a from t where b = ? and c = ?"),
        ),
        ("savepoint sp_1", Ok("savepoint ?")),
        ("SAVEPOINT \"x\"", Ok("SAVEPOINT ?")),
        ("SELECT a := 1 FROM t", Ok("SELECT a := ? FROM t")),
        (
            "SELECT a FROM t WHERE b = 'x' AS y",
            Ok("SELECT a FROM t WHERE b = ?"),
        ),
        (
            "UPDATE t SET a = \"v\" WHERE b IN (1, 2)",
            Ok("UPDATE t SET a = ? WHERE b IN ( ? )"),
        ),
        (
            "SELECT status, deleted_at, user_id FROM users_2 u WHERE u.id = 5",
            Ok("SELECT status, deleted_at, user_id FROM users_2 u WHERE u.id = ?"),
        ),
        ("SELECT 'é' FROM t", Ok("SELECT ? FROM t")),
        ("SELECT 'a' 'b'", Ok("SELECT ?")),
    ];
    for (q, want) in cases {
        let got = obfuscate_sql(q, &SqlConfig::default());
        match (got, want) {
            (Ok(o), Ok(w)) => assert_eq!(o.query, *w, "{q:?}"),
            (Err(e), Err(w)) => assert_eq!(e.message(), *w, "{q:?}"),
            (got, want) => panic!("{q:?}: got {got:?}, want {want:?}"),
        }
    }
}

fn all_modes() -> Vec<SqlConfig> {
    let mut v = Vec::new();
    for mode in [
        ObfuscationMode::Legacy,
        ObfuscationMode::ObfuscateOnly,
        ObfuscationMode::NormalizeOnly,
        ObfuscationMode::ObfuscateAndNormalize,
    ] {
        for dbms in ["", "postgresql", "mssql", "mysql", "oracle", "snowflake"] {
            v.push(SqlConfig {
                obfuscation_mode: mode,
                dbms: dbms.to_owned(),
                table_names: true,
                collect_commands: true,
                collect_comments: true,
                collect_procedures: true,
                dollar_quoted_func: true,
                replace_digits: true,
                ..SqlConfig::default()
            });
        }
    }
    v
}

/// Hostile inputs of about 1 MB: each mode and dialect returns (an error or a result), without
/// panicking; a path with quadratic time would make this test take minutes.
#[test]
fn big_and_broken_inputs_are_safe() {
    const MB: usize = 1 << 20;
    let inputs = [
        "(".repeat(MB),
        ")".repeat(MB),
        format!("SELECT * FROM t WHERE a IN ({}1)", "1, ".repeat(MB / 3)),
        format!("SELECT '{}", "x".repeat(MB)),
        format!("SELECT \"{}", "x".repeat(MB)),
        format!("SELECT /* {}", "x".repeat(MB)),
        format!("SELECT $tag$ {}", "$tag".repeat(MB / 4)),
        format!("SELECT ${} $", "a".repeat(MB / 2)) + &"$a".repeat(MB / 4),
        "$".repeat(MB),
        "'".repeat(MB + 1),
        "\\'".repeat(MB / 2),
        "[".repeat(MB),
        "{".repeat(MB),
        "-.".repeat(MB / 2),
        "é-.".repeat(MB / 4),
        "AS [".repeat(MB / 4),
        "SELECT a AS b, ".repeat(MB / 15),
        "日本語 ".repeat(MB / 10),
        "@@".repeat(MB / 2),
        "\u{0}".repeat(1000) + "SELECT 1",
    ];
    // every input in every mode, the dialect rotating (all pairs would only repeat the same paths)
    let cfgs = all_modes();
    for (i, q) in inputs.iter().enumerate() {
        for mode in 0..4 {
            let cfg = &cfgs[mode * 6 + i % 6];
            if let Ok(out) = obfuscate_sql(q, cfg) {
                assert!(
                    out.query.len() <= q.len() * 3 + 16,
                    "output grows beyond the input"
                );
            }
        }
    }
}

#[test]
fn unterminated_input_legacy_errors_lexer_modes_obfuscate() {
    let legacy = SqlConfig::default();
    for q in [
        "SELECT 'abc",
        "SELECT /* abc",
        "SELECT $$abc",
        "SELECT {abc",
        "SELECT \"abc",
    ] {
        let e = obfuscate_sql(q, &legacy).unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::InvalidArgument, "{q}");
        assert!(
            e.message().starts_with("at position "),
            "{q}: {}",
            e.message()
        );
    }
    let obf = SqlConfig {
        obfuscation_mode: ObfuscationMode::ObfuscateAndNormalize,
        ..SqlConfig::default()
    };
    assert_eq!(
        obfuscate_sql("SELECT 'abc", &obf).unwrap().query,
        "SELECT ?"
    );
}

#[test]
fn adaptive_escapes_switch_like_the_agent() {
    let o = SqlObfuscator::new();
    let q = r"SELECT * FROM foo WHERE name = 'backslash\' AND id ='1234'";
    assert!(!o.literal_escapes());
    assert_eq!(
        o.obfuscate(q, &SqlConfig::default()).unwrap().query,
        "SELECT * FROM foo WHERE name = ? AND id = ?"
    );
    assert!(o.literal_escapes());
    // the free function always starts from the default state
    assert!(obfuscate_sql(q, &SqlConfig::default()).is_ok());
}

/// The agent's tokenizer tests (sql_tokenizer_test.go / TestScanDollarQuotedString), as data.
#[test]
fn dollar_quoted_strings() {
    use super::tokenizer::*;
    let no_func: FuncBodyObfuscator<'_> = &|_, _| None;
    for (input, want, ok) in [
        ("$tag$abc$tag$", "abc", true),
        ("$func$abc$func$", "abc", true),
        (
            r"$tag$textwith\n\rnewlinesand\r\\\$tag$",
            r"textwith\n\rnewlinesand\r\\\",
            true,
        ),
        ("$tag$ab$tactac$tx$tag$", "ab$tactac$tx", true),
        ("$$abc$$", "abc", true),
        ("$$abc", "", false),
        ("$$abc$", "", false),
    ] {
        let mut t = Tokenizer::new(input.as_bytes(), false, LegacyDbms::Other, false);
        let (kind, buf) = t.scan(no_func);
        if ok {
            assert_eq!(kind, DOLLAR_QUOTED_STRING, "{input}");
            assert_eq!(t.resolve(&buf), want.as_bytes(), "{input}");
        } else {
            assert_eq!(kind, LEX_ERROR, "{input}");
        }
    }
    let mut t = Tokenizer::new(b"$func$abc$func$", false, LegacyDbms::Other, true);
    let func: FuncBodyObfuscator<'_> = &|b, _| Some(b.to_vec());
    assert_eq!(t.scan(func).0, DOLLAR_QUOTED_FUNC);
}
