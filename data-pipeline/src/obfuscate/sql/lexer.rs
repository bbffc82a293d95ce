//! The lexer of the go-sqllexer based modes: every byte of the query lands in exactly one token
//! (spaces and comments included), stepping through the text as go-sqllexer does, byte by byte in
//! the same places, so that token boundaries (and so the output) are the same.

use super::text::{decode, is_unicode_letter, is_unicode_number, rune_len};
use std::borrow::Cow;
use std::sync::OnceLock;

/// A token type (go-sqllexer's `TokenType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum T {
    Error,
    Eof,
    Space,
    String,
    IncompleteString,
    Number,
    Ident,
    QuotedIdent,
    Operator,
    Wildcard,
    Comment,
    MultilineComment,
    Punctuation,
    DollarQuotedFunction,
    DollarQuotedString,
    PositionalParameter,
    BindParameter,
    Function,
    SystemVariable,
    Unknown,
    Command,
    Keyword,
    JsonOp,
    Boolean,
    Null,
    ProcIndicator,
    CteIndicator,
    AliasIndicator,
}

/// The database dialect, after go-sqllexer's alias resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dbms {
    SqlServer,
    Postgres,
    MySql,
    Oracle,
    Snowflake,
    Other,
}

impl Dbms {
    pub(crate) fn from_config(s: &str) -> Self {
        match s {
            "mssql" | "sql-server" | "sqlserver" => Self::SqlServer,
            "postgresql" | "postgres" => Self::Postgres,
            "mysql" => Self::MySql,
            "oracle" => Self::Oracle,
            "snowflake" => Self::Snowflake,
            _ => Self::Other,
        }
    }
}

/// One token. `value` borrows the query unless a later stage rewrote it.
#[derive(Debug, Clone)]
pub(crate) struct Token<'a> {
    pub(crate) kind: T,
    pub(crate) value: Cow<'a, [u8]>,
    pub(crate) is_table_indicator: bool,
    pub(crate) has_digits: bool,
    pub(crate) is_simple_identifier: bool,
}

impl Token<'_> {
    /// Spaces, comments and the end are not "value" tokens.
    pub(crate) fn is_value(&self) -> bool {
        !matches!(
            self.kind,
            T::Eof | T::Space | T::Comment | T::MultilineComment
        )
    }
}

const COMMANDS: &[&str] = &[
    "SELECT",
    "INSERT",
    "UPDATE",
    "DELETE",
    "CREATE",
    "ALTER",
    "DROP",
    "JOIN",
    "GRANT",
    "REVOKE",
    "COMMIT",
    "BEGIN",
    "TRUNCATE",
    "MERGE",
    "EXECUTE",
    "EXEC",
    "EXPLAIN",
    "STRAIGHT_JOIN",
    "USE",
    "CLONE",
    "VACUUM",
];
const TABLE_INDICATOR_COMMANDS: &[&str] = &["JOIN", "UPDATE", "STRAIGHT_JOIN", "CLONE"];
const TABLE_INDICATOR_KEYWORDS: &[&str] = &["FROM", "INTO", "TABLE", "EXISTS", "ONLY"];
const KEYWORDS: &[&str] = &[
    "ADD",
    "ALL",
    "AND",
    "ANY",
    "ASC",
    "BETWEEN",
    "BY",
    "CASE",
    "CHECK",
    "COLUMN",
    "CONSTRAINT",
    "DATABASE",
    "DECLARE",
    "DEFAULT",
    "DESC",
    "DISTINCT",
    "ELSE",
    "END",
    "ESCAPE",
    "EXISTS",
    "FOREIGN",
    "FROM",
    "GROUP",
    "HAVING",
    "IN",
    "INDEX",
    "INNER",
    "INTO",
    "IS",
    "KEY",
    "LATERAL",
    "LEFT",
    "LIKE",
    "LIMIT",
    "NOT",
    "ON",
    "OR",
    "ORDER",
    "OUT",
    "OUTER",
    "PRIMARY",
    "PROCEDURE",
    "REPLACE",
    "RETURNS",
    "RIGHT",
    "ROLLBACK",
    "ROWNUM",
    "SET",
    "SOME",
    "TABLE",
    "TOP",
    "UNION",
    "UNIQUE",
    "VALUES",
    "VIEW",
    "WHERE",
    "CUBE",
    "ROLLUP",
    "LITERAL",
    "WINDOW",
    "ANALYZE",
    "ILIKE",
    "USING",
    "ASSERTION",
    "DOMAIN",
    "CLUSTER",
    "COPY",
    "PLPGSQL",
    "TRIGGER",
    "TEMPORARY",
    "UNLOGGED",
    "RECURSIVE",
    "RETURNING",
    "OFFSET",
    "OF",
    "SKIP",
    "IF",
    "ONLY",
];

/// A keyword trie over A-Z and `_` (case-insensitive by upper-casing the input).
struct Trie {
    /// children[node][letter] = child node index, 0 for none (0 is the root, never a child).
    children: Vec<[u16; 27]>,
    end: Vec<Option<(T, bool)>>,
}

fn trie_index(upper: u8) -> Option<usize> {
    match upper {
        b'A'..=b'Z' => Some(usize::from(upper - b'A')),
        b'_' => Some(26),
        _ => None,
    }
}

fn trie() -> &'static Trie {
    static TRIE: OnceLock<Trie> = OnceLock::new();
    TRIE.get_or_init(|| {
        let mut t = Trie {
            children: vec![[0; 27]],
            end: vec![None],
        };
        let mut add = |words: &[&str], kind: T, table: bool| {
            for w in words {
                let mut node = 0usize;
                for b in w.bytes() {
                    let Some(i) = trie_index(b) else { continue };
                    let next = t.children[node][i];
                    node = if next != 0 {
                        usize::from(next)
                    } else {
                        t.children.push([0; 27]);
                        t.end.push(None);
                        let n = t.children.len() - 1;
                        t.children[node][i] = n as u16;
                        n
                    };
                }
                t.end[node] = Some((kind, table));
            }
        };
        // later lists override earlier ones for the same word, as in go-sqllexer
        add(COMMANDS, T::Command, false);
        add(KEYWORDS, T::Keyword, false);
        add(TABLE_INDICATOR_COMMANDS, T::Command, true);
        add(TABLE_INDICATOR_KEYWORDS, T::Keyword, true);
        add(&["TRUE", "FALSE"], T::Boolean, false);
        add(&["NULL"], T::Null, false);
        add(&["PROCEDURE", "PROC"], T::ProcIndicator, false);
        add(&["WITH"], T::CteIndicator, false);
        add(&["AS"], T::AliasIndicator, false);
        t
    })
}

#[inline]
fn is_digit(c: u32) -> bool {
    (0x30..=0x39).contains(&c)
}
#[inline]
fn is_ascii_letter(c: u32) -> bool {
    (0x41..=0x5A).contains(&c) || (0x61..=0x7A).contains(&c)
}
#[inline]
pub(crate) fn is_letter(c: u32) -> bool {
    is_ascii_letter(c) || c == 0x5F || (c > 127 && is_unicode_letter(c))
}
#[inline]
pub(crate) fn is_alphanumeric(c: u32) -> bool {
    is_letter(c) || is_digit(c) || (c > 127 && is_unicode_number(c))
}
#[inline]
fn is_space(c: u32) -> bool {
    matches!(c, 0x20 | 0x09 | 0x0A | 0x0D)
}
#[inline]
fn is_sign(c: u32) -> bool {
    c == 0x2B || c == 0x2D
}
#[inline]
fn is_exponent(c: u32) -> bool {
    c == 0x65 || c == 0x45
}
#[inline]
fn is_operator(c: u32) -> bool {
    matches!(
        c,
        0x2B | 0x2D
            | 0x2A
            | 0x2F
            | 0x3D
            | 0x3C
            | 0x3E
            | 0x21
            | 0x26
            | 0x7C
            | 0x5E
            | 0x25
            | 0x7E
            | 0x3F
            | 0x40
            | 0x3A
            | 0x23
    )
}
#[inline]
pub(crate) fn is_punctuation(c: u32) -> bool {
    matches!(
        c,
        0x28 | 0x29 | 0x2C | 0x3B | 0x2E | 0x3A | 0x5B | 0x5D | 0x7B | 0x7D
    )
}
#[inline]
fn is_identifier(c: u32) -> bool {
    matches!(c, 0x22 | 0x2E | 0x3F | 0x24 | 0x23 | 0x2F | 0x40 | 0x21)
        || is_letter(c)
        || is_digit(c)
}

/// The lexer.
pub(crate) struct Lexer<'a> {
    src: &'a [u8],
    cursor: usize,
    start: usize,
    dbms: Dbms,
    has_quotes: bool,
    has_digits: bool,
    is_table_indicator: bool,
    is_simple_identifier: bool,
}

impl<'a> Lexer<'a> {
    pub(crate) fn new(src: &'a [u8], dbms: Dbms) -> Self {
        Lexer {
            src,
            cursor: 0,
            start: 0,
            dbms,
            has_quotes: false,
            has_digits: false,
            is_table_indicator: false,
            is_simple_identifier: false,
        }
    }

    #[inline]
    fn look_ahead(&self, n: usize) -> u32 {
        let pos = self.cursor + n;
        if pos >= self.src.len() {
            return 0;
        }
        decode(self.src, pos).0
    }

    #[inline]
    fn peek(&self) -> u32 {
        self.look_ahead(0)
    }

    #[inline]
    fn next_by(&mut self, n: usize) -> u32 {
        if self.cursor + n > self.src.len() {
            return 0;
        }
        self.cursor += n;
        if self.cursor >= self.src.len() {
            return 0;
        }
        decode(self.src, self.cursor).0
    }

    #[inline]
    fn next(&mut self) -> u32 {
        self.next_by(1)
    }

    /// Whether the bytes at the cursor are the low bytes of `runes`.
    fn match_at(&self, runes: &[u32]) -> bool {
        if self.cursor + runes.len() > self.src.len() {
            return false;
        }
        runes
            .iter()
            .enumerate()
            .all(|(i, &r)| self.src[self.cursor + i] == (r & 0xFF) as u8)
    }

    fn emit(&mut self, kind: T) -> Token<'a> {
        let t = Token {
            kind,
            value: Cow::Borrowed(&self.src[self.start.min(self.cursor)..self.cursor]),
            is_table_indicator: self.is_table_indicator,
            has_digits: self.has_digits,
            is_simple_identifier: self.is_simple_identifier,
        };
        self.start = self.cursor;
        self.is_table_indicator = false;
        self.has_digits = false;
        self.is_simple_identifier = false;
        t
    }

    /// Whether the last emitted quoted identifier kept its quotes (unused by the agent's output).
    #[allow(dead_code)]
    pub(crate) fn has_quotes(&self) -> bool {
        self.has_quotes
    }

    /// The next token (`T::Eof` at the end, and at a NUL character, as go-sqllexer does).
    pub(crate) fn scan(&mut self) -> Token<'a> {
        let c = self.peek();
        if is_space(c) {
            return self.scan_whitespace();
        }
        if is_letter(c) {
            return self.scan_identifier(c);
        }
        if c == 0x22 {
            if self.dbms == Dbms::MySql {
                return self.scan_string(0x22);
            }
            return self.scan_quoted_identifier(0x22);
        }
        if c == 0x27 {
            return self.scan_string(0x27);
        }
        let next = self.look_ahead(1);
        if c == 0x2D && next == 0x2D {
            return self.scan_line_comment(c);
        }
        if c == 0x2F && next == 0x2A {
            return self.scan_block_comment();
        }
        if is_sign(c) {
            if is_digit(next) || next == 0x2E {
                self.start = self.cursor;
                let ch = self.next();
                return self.scan_decimal(ch);
            }
            return self.scan_operator(c);
        }
        if is_digit(c) {
            return self.scan_number(c);
        }
        if c == 0x2A {
            self.start = self.cursor;
            self.next();
            return self.emit(T::Wildcard);
        }
        match c {
            0x24 => {
                if is_digit(next) {
                    return self.scan_positional_parameter();
                }
                if self.dbms == Dbms::SqlServer && is_letter(next) {
                    return self.scan_identifier(c);
                }
                return self.scan_dollar_quoted_string();
            }
            0x3A => {
                if self.dbms == Dbms::Oracle && is_alphanumeric(next) {
                    return self.scan_bind_parameter();
                }
                return self.scan_operator(c);
            }
            0x60 => {
                if self.dbms == Dbms::MySql {
                    return self.scan_quoted_identifier(0x60);
                }
                return self.scan_unknown();
            }
            0x23 => {
                if self.dbms == Dbms::SqlServer {
                    return self.scan_identifier(c);
                } else if self.dbms == Dbms::MySql {
                    return self.scan_line_comment(c);
                }
                return self.scan_operator(c);
            }
            0x40 => {
                if next == 0x40 {
                    if is_alphanumeric(self.look_ahead(2)) {
                        return self.scan_system_variable();
                    }
                    self.start = self.cursor;
                    self.next_by(2);
                    return self.emit(T::JsonOp);
                }
                if is_alphanumeric(next) {
                    if self.dbms == Dbms::Snowflake {
                        return self.scan_identifier(c);
                    }
                    return self.scan_bind_parameter();
                }
                if next == 0x3F || next == 0x3E {
                    self.start = self.cursor;
                    self.next_by(2);
                    return self.emit(T::JsonOp);
                }
                return self.scan_operator(c);
            }
            _ => {}
        }
        if is_operator(c) {
            return self.scan_operator(c);
        }
        if is_punctuation(c) {
            if c == 0x5B && self.dbms == Dbms::SqlServer {
                return self.scan_quoted_identifier(0x5B);
            }
            self.start = self.cursor;
            self.next();
            return self.emit(T::Punctuation);
        }
        if c == 0 {
            return self.emit(T::Eof);
        }
        self.scan_unknown()
    }

    fn scan_number(&mut self, c: u32) -> Token<'a> {
        self.start = self.cursor;
        if c == 0x30 {
            let n = self.look_ahead(1);
            if n == 0x78 || n == 0x58 {
                let mut ch = self.next_by(2);
                while is_digit(ch) || (0x61..=0x66).contains(&ch) || (0x41..=0x46).contains(&ch) {
                    ch = self.next();
                }
                return self.emit(T::Number);
            } else if (0x30..=0x37).contains(&n) {
                let mut ch = self.next_by(2);
                while (0x30..=0x37).contains(&ch) {
                    ch = self.next();
                }
                return self.emit(T::Number);
            }
        }
        let ch = self.next();
        self.scan_decimal(ch)
    }

    fn scan_decimal(&mut self, mut ch: u32) -> Token<'a> {
        while is_digit(ch) || ch == 0x2E || is_exponent(ch) {
            if is_exponent(ch) {
                ch = self.next();
                if is_sign(ch) {
                    ch = self.next();
                }
            } else {
                ch = self.next();
            }
        }
        self.emit(T::Number)
    }

    fn scan_string(&mut self, delim: u32) -> Token<'a> {
        self.start = self.cursor;
        let mut escaped = false;
        let mut escaped_quote = false;
        let backslash = self.dbms != Dbms::SqlServer && self.dbms != Dbms::Oracle;
        let mut ch = self.next();
        while ch != 0 {
            if escaped {
                escaped = false;
                escaped_quote = ch == delim;
            } else if backslash && ch == 0x5C {
                escaped = true;
            } else if ch == delim {
                self.next();
                return self.emit(T::String);
            }
            ch = self.next();
        }
        if escaped_quote {
            return self.emit(T::String);
        }
        self.emit(T::IncompleteString)
    }

    fn scan_identifier(&mut self, mut ch: u32) -> Token<'a> {
        self.start = self.cursor;
        if ch > 127 {
            while is_identifier(ch) {
                self.has_digits = self.has_digits || is_digit(ch);
                ch = self.next_by(rune_len(ch));
            }
            if self.start == self.cursor {
                return self.scan_unknown();
            }
            return self.emit(T::Ident);
        }
        let trie = trie();
        let mut node = 0usize;
        let mut pos = self.cursor;
        while is_ascii_letter(ch) || ch == 0x5F {
            let upper = (ch as u8).to_ascii_uppercase();
            let Some(i) = trie_index(upper) else {
                node = 0;
                ch = self.next();
                break;
            };
            let next = trie.children[node][i];
            if next != 0 {
                node = usize::from(next);
                pos = self.cursor;
                ch = self.next();
            } else {
                node = 0;
                ch = self.next();
                break;
            }
        }
        if let Some((kind, table)) = trie.end[node] {
            if is_punctuation(ch)
                || is_space(ch)
                || (ch == 0x2F && self.look_ahead(1) == 0x2A)
                || ch == 0
            {
                self.cursor = pos + 1;
                self.is_table_indicator = table;
                return self.emit(kind);
            }
        }
        while is_identifier(ch) {
            self.has_digits = self.has_digits || is_digit(ch);
            ch = self.next_by(rune_len(ch));
        }
        if self.start == self.cursor {
            return self.scan_unknown();
        }
        if ch == 0x28 {
            return self.emit(T::Function);
        }
        self.emit(T::Ident)
    }

    fn scan_quoted_identifier(&mut self, delim: u32) -> Token<'a> {
        let closing = if delim == 0x5B { 0x5D } else { delim };
        self.start = self.cursor;
        self.has_quotes = true;
        self.is_simple_identifier = true;
        let mut first = true;
        let mut ch = self.next();
        let special = [closing, 0x2E, delim];
        loop {
            if ch == closing {
                if self.match_at(&special) {
                    self.is_simple_identifier = false;
                    ch = self.next_by(3);
                    continue;
                }
                if first {
                    self.is_simple_identifier = false;
                }
                break;
            }
            if ch == 0 {
                self.has_quotes = false;
                self.is_simple_identifier = false;
                return self.emit(T::Error);
            }
            self.has_digits = self.has_digits || is_digit(ch);
            if self.is_simple_identifier {
                if first {
                    if !is_letter(ch) {
                        self.is_simple_identifier = false;
                    }
                    first = false;
                } else if !is_alphanumeric(ch) {
                    self.is_simple_identifier = false;
                }
            }
            let size = if self.cursor < self.src.len() {
                decode(self.src, self.cursor).1
            } else {
                0
            };
            ch = self.next_by(size);
        }
        self.next();
        self.emit(T::QuotedIdent)
    }

    fn scan_whitespace(&mut self) -> Token<'a> {
        self.start = self.cursor;
        let mut ch = self.next();
        while is_space(ch) {
            ch = self.next();
        }
        self.emit(T::Space)
    }

    fn scan_operator(&mut self, last: u32) -> Token<'a> {
        self.start = self.cursor;
        let mut ch = self.next();
        match last {
            0x2D if ch == 0x3E => {
                if self.next() == 0x3E {
                    self.next();
                }
                return self.emit(T::JsonOp);
            }
            0x23 if ch == 0x3E => {
                if self.next() == 0x3E {
                    self.next();
                }
                return self.emit(T::JsonOp);
            }
            0x23 if ch == 0x2D => {
                self.next();
                return self.emit(T::JsonOp);
            }
            0x3F if ch == 0x7C || ch == 0x26 => {
                self.next();
                return self.emit(T::JsonOp);
            }
            0x3C if ch == 0x40 => {
                self.next();
                return self.emit(T::JsonOp);
            }
            _ => {}
        }
        let mut last = last;
        // "=?" and "=@" are two tokens
        while is_operator(ch) && !(last == 0x3D && (ch == 0x3F || ch == 0x40)) {
            last = ch;
            ch = self.next();
        }
        self.emit(T::Operator)
    }

    fn scan_line_comment(&mut self, c: u32) -> Token<'a> {
        self.start = self.cursor;
        let mut ch = if c == 0x23 {
            self.next()
        } else {
            self.next_by(2)
        };
        while ch != 0x0A && ch != 0 {
            ch = self.next();
        }
        self.emit(T::Comment)
    }

    fn scan_block_comment(&mut self) -> Token<'a> {
        self.start = self.cursor;
        let mut ch = self.next_by(2);
        loop {
            if ch == 0x2A && self.look_ahead(1) == 0x2F {
                self.next_by(2);
                break;
            }
            if ch == 0 {
                return self.emit(T::Error);
            }
            ch = self.next();
        }
        self.emit(T::MultilineComment)
    }

    fn scan_dollar_quoted_string(&mut self) -> Token<'a> {
        self.start = self.cursor;
        let mut ch = self.next();
        let tag_start = self.cursor;
        while self.cursor < self.src.len() && ch != 0x24 {
            ch = self.next();
        }
        self.next();
        let tag = &self.src[tag_start - 1..self.cursor];
        // go-sqllexer matches the tag's characters against single bytes (low byte of each)
        let mut runes: Vec<u32> = Vec::with_capacity(tag.len());
        let mut i = 0;
        while i < tag.len() {
            let (r, n) = decode(tag, i);
            runes.push(r);
            i += n;
        }
        let is_func = tag == b"$func$";
        // go-sqllexer tries the tag at each following byte; a linear-time substring search finds
        // the same first match without its worst case of (text length x tag length).
        let needle: Vec<u8> = runes.iter().map(|&r| (r & 0xFF) as u8).collect();
        let from = self.cursor.min(self.src.len());
        match memchr::memmem::find(&self.src[from..], &needle) {
            Some(at) => {
                self.cursor = from + at;
                self.next_by(runes.len());
                self.emit(if is_func {
                    T::DollarQuotedFunction
                } else {
                    T::DollarQuotedString
                })
            }
            None => {
                self.cursor = self.src.len();
                self.emit(T::Error)
            }
        }
    }

    fn scan_positional_parameter(&mut self) -> Token<'a> {
        self.start = self.cursor;
        let mut ch = self.next_by(2);
        while is_digit(ch) {
            ch = self.next();
        }
        self.emit(T::PositionalParameter)
    }

    fn scan_bind_parameter(&mut self) -> Token<'a> {
        self.start = self.cursor;
        let mut ch = self.next_by(2);
        while is_alphanumeric(ch) {
            ch = self.next();
        }
        self.emit(T::BindParameter)
    }

    fn scan_system_variable(&mut self) -> Token<'a> {
        self.start = self.cursor;
        let mut ch = self.next_by(2);
        if !is_alphanumeric(ch) {
            return self.emit(T::Error);
        }
        while is_alphanumeric(ch) {
            ch = self.next();
        }
        self.emit(T::SystemVariable)
    }

    fn scan_unknown(&mut self) -> Token<'a> {
        self.start = self.cursor;
        if self.cursor < self.src.len() {
            self.cursor += decode(self.src, self.cursor).1;
        }
        self.emit(T::Unknown)
    }
}
