//! The legacy SQL tokenizer: a lexer-like iterator that is deliberately loose (it is not a parser),
//! stepping through the query exactly as the agent's `SQLTokenizer` does, quirks included, because
//! the obfuscated text must be byte-for-byte the agent's. One pass, no regex, no allocation per
//! token (string contents go to a reused scratch buffer).

use super::text::{decode, display_char, is_unicode_letter, is_unicode_space, push_rune, rune_len};

/// A token kind: a character (its code point) or one of the constants below, numbered as the
/// agent numbers them (the numbers appear in one of its error messages).
pub(crate) type Kind = u32;

/// Past the last character of the query.
pub(crate) const END_CHAR: u32 = 0x11_0000;

macro_rules! kinds {
    ($first:ident = $v:expr, $($name:ident),* $(,)?) => {
        pub(crate) const $first: Kind = $v;
        kinds!(@next $first, $($name),*);
    };
    (@next $prev:ident, $name:ident $(, $rest:ident)*) => {
        pub(crate) const $name: Kind = $prev + 1;
        kinds!(@next $name $(, $rest)*);
    };
    (@next $prev:ident) => {};
}

kinds!(
    LEX_ERROR = 57346,
    ID,
    LIMIT,
    NULL,
    STRING,
    DOUBLE_QUOTED_STRING,
    DOLLAR_QUOTED_STRING,
    DOLLAR_QUOTED_FUNC,
    NUMBER,
    BOOLEAN_LITERAL,
    VALUE_ARG,
    LIST_ARG,
    COMMENT,
    VARIABLE,
    SAVEPOINT,
    PREPARED_STATEMENT,
    ESCAPE_SEQUENCE,
    NULL_SAFE_EQUAL,
    LE,
    GE,
    NE,
    NOT,
    AS,
    ALTER,
    DROP,
    CREATE,
    GRANT,
    REVOKE,
    COMMIT,
    BEGIN,
    TRUNCATE,
    SELECT,
    FROM,
    UPDATE,
    DELETE,
    INSERT,
    INTO,
    JOIN,
    TABLE_NAME,
    COLON_CAST,
    JSON_SELECT,
    JSON_SELECT_TEXT,
    JSON_SELECT_PATH,
    JSON_SELECT_PATH_TEXT,
    JSON_CONTAINS,
    JSON_CONTAINS_LEFT,
    JSON_KEY_EXISTS,
    JSON_ANY_KEYS_EXIST,
    JSON_ALL_KEYS_EXIST,
    JSON_DELETE,
    FILTERED_GROUPABLE,
    FILTERED_GROUPABLE_PARENTHESIS,
    FILTERED,
    FILTERED_BRACKETED_IDENTIFIER,
);

/// The command name of a command kind, upper-cased (for `collect_commands`).
pub(crate) fn command_name(k: Kind) -> Option<&'static str> {
    Some(match k {
        SELECT => "SELECT",
        UPDATE => "UPDATE",
        INSERT => "INSERT",
        DELETE => "DELETE",
        JOIN => "JOIN",
        ALTER => "ALTER",
        DROP => "DROP",
        CREATE => "CREATE",
        GRANT => "GRANT",
        REVOKE => "REVOKE",
        COMMIT => "COMMIT",
        BEGIN => "BEGIN",
        TRUNCATE => "TRUNCATE",
        _ => return None,
    })
}

/// Packs up to 8 upper-case ASCII letters into a `u64` (big-endian, zero-padded), for matching
/// keywords as integers.
const fn pack(k: &[u8]) -> u64 {
    let mut v = 0u64;
    let mut i = 0;
    while i < 8 {
        v <<= 8;
        if i < k.len() {
            v |= k[i] as u64;
        }
        i += 1;
    }
    v
}

/// The keyword kind of an identifier (case-insensitive, with Go's simple upper-casing), for
/// names [`Tokenizer::scan_identifier`] read with a non-ASCII character. That character may be
/// the one after the name (`SELECT\u{a0}`...), so an all-ASCII name can come here too: it takes
/// [`keyword_ascii`].
#[inline]
fn keyword(ident: &[u8]) -> Option<Kind> {
    if ident.is_ascii() {
        return keyword_ascii(ident);
    }
    // every keyword is 2 to 9 letters (a dotless i or long s takes 2 bytes)
    if ident.len() > 18 {
        return None;
    }
    keyword_unicode(ident)
}

/// For each length 2 to 9, the first letters of the keywords of that length (bit `letter & 31`).
static KEYWORD_FIRST: [u32; 10] = {
    const KEYWORDS: [&[u8]; 21] = [
        b"NULL",
        b"TRUE",
        b"FALSE",
        b"SAVEPOINT",
        b"LIMIT",
        b"AS",
        b"ALTER",
        b"CREATE",
        b"GRANT",
        b"REVOKE",
        b"COMMIT",
        b"BEGIN",
        b"TRUNCATE",
        b"DROP",
        b"SELECT",
        b"FROM",
        b"UPDATE",
        b"DELETE",
        b"INSERT",
        b"INTO",
        b"JOIN",
    ];
    let mut t = [0u32; 10];
    let mut i = 0;
    while i < KEYWORDS.len() {
        let k = KEYWORDS[i];
        t[k.len()] |= 1 << (k[0] & 31);
        i += 1;
    }
    t
};

/// [`keyword`] for an all-ASCII name: most names are ruled out by their length and first letter
/// before any case folding (profiled: the keyword test was ~7% of a query's instructions).
#[inline]
fn keyword_ascii(ident: &[u8]) -> Option<Kind> {
    let n = ident.len();
    if !(2..=9).contains(&n) {
        return None;
    }
    // `_` and `@` fold to bits 31 and 0, which no keyword uses
    if KEYWORD_FIRST[n] & (1 << (ident[0] & 31)) == 0 {
        return None;
    }
    // Clearing bit 5 upper-cases letters, and only letters land in `A..=Z` that way: a packed
    // name equal to a keyword's was all letters.
    let mut v = 0u64;
    for &b in ident.iter().take(8) {
        v = (v << 8) | u64::from(b & !0x20);
    }
    if n == 9 {
        return (v == pack(b"SAVEPOIN") && (ident[8] & !0x20) == b'T').then_some(SAVEPOINT);
    }
    keyword_packed(v << (8 * (8 - n)))
}

/// The keyword of an upper-cased name of at most 8 letters, packed with [`pack`].
#[inline]
fn keyword_packed(v: u64) -> Option<Kind> {
    const K_NULL: u64 = pack(b"NULL");
    const K_TRUE: u64 = pack(b"TRUE");
    const K_FALSE: u64 = pack(b"FALSE");
    const K_LIMIT: u64 = pack(b"LIMIT");
    const K_AS: u64 = pack(b"AS");
    const K_ALTER: u64 = pack(b"ALTER");
    const K_CREATE: u64 = pack(b"CREATE");
    const K_GRANT: u64 = pack(b"GRANT");
    const K_REVOKE: u64 = pack(b"REVOKE");
    const K_COMMIT: u64 = pack(b"COMMIT");
    const K_BEGIN: u64 = pack(b"BEGIN");
    const K_TRUNCATE: u64 = pack(b"TRUNCATE");
    const K_DROP: u64 = pack(b"DROP");
    const K_SELECT: u64 = pack(b"SELECT");
    const K_FROM: u64 = pack(b"FROM");
    const K_UPDATE: u64 = pack(b"UPDATE");
    const K_DELETE: u64 = pack(b"DELETE");
    const K_INSERT: u64 = pack(b"INSERT");
    const K_INTO: u64 = pack(b"INTO");
    const K_JOIN: u64 = pack(b"JOIN");
    Some(match v {
        K_NULL => NULL,
        K_TRUE | K_FALSE => BOOLEAN_LITERAL,
        K_LIMIT => LIMIT,
        K_AS => AS,
        K_ALTER => ALTER,
        K_CREATE => CREATE,
        K_GRANT => GRANT,
        K_REVOKE => REVOKE,
        K_COMMIT => COMMIT,
        K_BEGIN => BEGIN,
        K_TRUNCATE => TRUNCATE,
        K_DROP => DROP,
        K_SELECT => SELECT,
        K_FROM => FROM,
        K_UPDATE => UPDATE,
        K_DELETE => DELETE,
        K_INSERT => INSERT,
        K_INTO => INTO,
        K_JOIN => JOIN,
        _ => return None,
    })
}

/// [`keyword`] for a name with non-ASCII characters: Go's `ToUpper` maps the dotless i to `I`
/// and the long s to `S`, so `ſelect` is `SELECT`.
#[cold]
fn keyword_unicode(ident: &[u8]) -> Option<Kind> {
    let mut up = [0u8; 9];
    let mut n = 0;
    let mut i = 0;
    while i < ident.len() {
        let (c, len) = decode(ident, i);
        i += len;
        let u = match c {
            0x61..=0x7A => (c - 0x20) as u8,
            0..=0x7F => c as u8,
            0x131 => b'I', // dotless i upper-cases to I
            0x17F => b'S', // long s upper-cases to S
            _ => return None,
        };
        if n == up.len() {
            return None;
        }
        up[n] = u;
        n += 1;
    }
    let up = &up[..n];
    if up == b"SAVEPOINT" {
        return Some(SAVEPOINT);
    }
    if n > 8 || !up.iter().all(u8::is_ascii_uppercase) {
        return None;
    }
    keyword_packed(pack(up))
}

/// Where a token's text is (`Copy`: no drop glue in the filter loop).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Buf {
    /// A range of the query.
    Input(usize, usize),
    /// The tokenizer's scratch buffer (string contents with quotes and escapes removed).
    Scratch,
    /// A fixed text.
    Static(&'static [u8]),
    /// Text built for this token (an obfuscated `$func$` body), in the tokenizer's `func`.
    Func,
}

/// The dialect switches the legacy tokenizer knows (exact `dbms` spellings, as in the agent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LegacyDbms {
    SqlServer,
    Postgres,
    Other,
}

impl LegacyDbms {
    pub(crate) fn from_config(dbms: &str) -> Self {
        match dbms {
            "mssql" => Self::SqlServer,
            "postgresql" => Self::Postgres,
            _ => Self::Other,
        }
    }
}

/// ASCII bytes that continue an identifier (letters, digits, `_ @ # . * $`), as a table: the
/// identifier loop is the tokenizer's hottest (measured with perf on the bench corpus).
static IDENT_CONT: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 128 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric() || matches!(c, b'_' | b'@' | b'#' | b'.' | b'*' | b'$');
        b += 1;
    }
    t
};

/// For the string fast path: bit `STRING_STOP_ALL` for bytes that end it whatever the delimiter
/// (backslash, NUL, non-ASCII), and one bit per delimiter (see [`string_stop_bit`]).
static STRING_STOP: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0x80;
    while b < 256 {
        t[b] = STRING_STOP_ALL;
        b += 1;
    }
    t[0] = STRING_STOP_ALL;
    t[b'\\' as usize] = STRING_STOP_ALL;
    t[b'\'' as usize] = string_stop_bit(b'\'');
    t[b'"' as usize] = string_stop_bit(b'"');
    t[b'`' as usize] = string_stop_bit(b'`');
    t[b']' as usize] = string_stop_bit(b']');
    t
};

const STRING_STOP_ALL: u8 = 1;

/// The [`STRING_STOP`] bit of a string delimiter (`'`, `"`, `` ` `` or `]`; 0 for others, which
/// never reach the fast path).
const fn string_stop_bit(d: u8) -> u8 {
    match d {
        b'\'' => 2,
        b'"' => 4,
        b'`' => 8,
        b']' => 16,
        _ => 0,
    }
}

/// ASCII blanks (Go's `unicode.IsSpace` below 0x80), for [`Tokenizer::advance_while_table`].
static BLANK: [bool; 256] = {
    let mut t = [false; 256];
    t[0x09] = true;
    t[0x0A] = true;
    t[0x0B] = true;
    t[0x0C] = true;
    t[0x0D] = true;
    t[0x20] = true;
    t
};

/// ASCII digits, for [`Tokenizer::advance_while_table`].
static DIGIT: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = b'0';
    while b <= b'9' {
        t[b as usize] = true;
        b += 1;
    }
    t
};

/// ASCII bytes that start an identifier (letters, `_`, `@`).
static LEADING: [bool; 128] = {
    let mut t = [false; 128];
    let mut b = 0;
    while b < 128 {
        let c = b as u8;
        t[b] = c.is_ascii_alphabetic() || c == b'_' || c == b'@';
        b += 1;
    }
    t
};

#[inline]
fn is_leading_letter(c: u32) -> bool {
    match LEADING.get(c as usize) {
        Some(&t) => t,
        None => is_unicode_letter(c),
    }
}

#[inline]
fn is_letter(c: u32) -> bool {
    c == u32::from(b'#') || is_leading_letter(c)
}

/// Whether `c` continues an identifier (a letter, digit, `.`, `*` or `$`).
#[inline]
fn is_ident_cont(c: u32) -> bool {
    match IDENT_CONT.get(c as usize) {
        Some(&t) if c < 0x80 => t,
        _ => is_unicode_letter(c),
    }
}

#[inline]
fn is_digit(c: u32) -> bool {
    (0x30..=0x39).contains(&c)
}

#[inline]
fn digit_val(c: u32) -> u32 {
    match c {
        0x30..=0x39 => c - 0x30,
        0x61..=0x66 => c - 0x61 + 10,
        0x41..=0x46 => c - 0x41 + 10,
        _ => 16,
    }
}

fn is_valid_char_after_operator(c: u32) -> bool {
    matches!(c, 0x28 | 0x60 | 0x27 | 0x22 | 0x2B | 0x2D)
        || is_unicode_space(c)
        || is_letter(c)
        || is_digit(c)
}

const fn ch(b: u8) -> u32 {
    b as u32
}

/// The legacy tokenizer over one query.
pub(crate) struct Tokenizer<'a> {
    src: &'a [u8],
    /// Start of the text not yet returned by `bytes()` (the agent's re-sliced buffer start).
    start: usize,
    /// Offset of the next unread byte.
    off: usize,
    /// The agent's `pos` (its own arithmetic, which error messages and the `{` rule depend on).
    pos: usize,
    last: u32,
    err: Option<String>,
    curlys: u32,
    literal_escapes: bool,
    seen_escape: bool,
    dbms: LegacyDbms,
    dollar_quoted_func: bool,
    /// String contents of the last string token.
    pub(crate) scratch: Vec<u8>,
    /// The text of the last `Buf::Func` token.
    func: Vec<u8>,
    /// The first character was a NUL and the next has not been read yet.
    nul_first: bool,
    /// A non-ASCII character was read since `scan_identifier` cleared this.
    non_ascii: bool,
}

/// What a `$func$` body is turned into: the obfuscated body, or `None` when it can't be obfuscated.
pub(crate) type FuncBodyObfuscator<'f> = &'f dyn Fn(&[u8], bool) -> Option<Vec<u8>>;

impl<'a> Tokenizer<'a> {
    pub(crate) fn new(
        src: &'a [u8],
        literal_escapes: bool,
        dbms: LegacyDbms,
        dollar_quoted_func: bool,
    ) -> Self {
        Tokenizer {
            src,
            start: 0,
            off: 0,
            pos: 0,
            last: 0,
            err: None,
            curlys: 0,
            literal_escapes,
            seen_escape: false,
            dbms,
            dollar_quoted_func,
            scratch: Vec::new(),
            func: Vec::new(),
            nul_first: false,
            non_ascii: false,
        }
    }

    /// The first error met, with the agent's wording.
    pub(crate) fn take_err(&mut self) -> String {
        self.err.take().unwrap_or_default()
    }

    /// Whether a backslash was seen inside a string.
    pub(crate) fn seen_escape(&self) -> bool {
        self.seen_escape
    }

    /// The bytes of a token's text.
    pub(crate) fn resolve<'b>(&'b self, b: &'b Buf) -> &'b [u8] {
        match b {
            Buf::Input(s, e) => &self.src[*s..*e],
            Buf::Scratch => &self.scratch,
            Buf::Static(s) => s,
            Buf::Func => &self.func,
        }
    }

    fn set_err(&mut self, msg: String) {
        if self.err.is_none() {
            self.err = Some(format!("at position {}: {msg}", self.pos));
        }
    }

    /// Reads the next character (the agent's `advance`). ASCII is the inlined fast path.
    ///
    /// The agent does not count a character in `pos` while `pos` is 0 and the current character
    /// is NUL (its initial state): that happens only for the first character and, when that
    /// is a NUL, the next one, and `scan` corrects `pos` for exactly those two reads (see
    /// `first` there), so this path adds unconditionally (profiled: the test was ~3% of a
    /// query's instructions).
    #[inline(always)]
    fn advance(&mut self) {
        if let Some(&b) = self.src.get(self.off) {
            if b < 0x80 {
                self.pos += 1;
                self.off += 1;
                self.last = u32::from(b);
                return;
            }
        }
        self.advance_slow();
    }

    #[cold]
    #[inline(never)]
    fn advance_slow(&mut self) {
        if self.off >= self.src.len() {
            self.pos += 1;
            self.last = END_CHAR;
            return;
        }
        let (c, n) = decode(self.src, self.off);
        if c == super::text::RUNE_ERROR && n < 2 {
            // not reachable from a &str; kept for the agent's behaviour on bad bytes
            self.pos += 1;
            self.last = END_CHAR;
            let b = self.src[self.off];
            self.set_err(format!("invalid UTF-8 encoding beginning with 0x{b:x}"));
            return;
        }
        self.pos += n;
        self.off += n;
        self.non_ascii = true;
        self.last = c;
    }

    /// `advance()` over the current character and every following ASCII byte for which `pred`
    /// holds, then once more: the same state as calling `advance()` that many times (a hot-path
    /// shortcut; the caller checked `pred` for the current character).
    #[inline]
    fn advance_while_ascii(&mut self, pred: impl Fn(u8) -> bool) {
        let bytes = self.src;
        let from = self.off;
        let mut j = from;
        while j < bytes.len() && bytes[j] < 0x80 && bytes[j] != 0 && pred(bytes[j]) {
            j += 1;
        }
        if j > from {
            self.pos += j - from;
            self.off = j;
            self.last = u32::from(bytes[j - 1]);
        }
        self.advance();
    }

    /// [`Self::advance_while_ascii`] for a byte table that is false for NUL and every byte >= 0x80
    /// (so the loop needs no other test: profiled, the generic loop's extra tests were ~2% of a
    /// query's instructions).
    #[inline]
    fn advance_while_table(&mut self, table: &'static [bool; 256]) {
        let bytes = self.src;
        let from = self.off;
        let mut j = from;
        while j < bytes.len() && table[usize::from(bytes[j])] {
            j += 1;
        }
        if j > from {
            self.pos += j - from;
            self.off = j;
            self.last = u32::from(bytes[j - 1]);
        }
        self.advance();
    }

    /// Everything advanced over since the previous call, minus the current character.
    #[inline]
    fn bytes(&mut self) -> Buf {
        if self.last == END_CHAR {
            let r = Buf::Input(self.start, self.off);
            self.start = self.off;
            return r;
        }
        let end = self.off.saturating_sub(rune_len(self.last)).max(self.start);
        let r = Buf::Input(self.start, end);
        self.start = end;
        r
    }

    fn skip_blank(&mut self) {
        while match BLANK.get(self.last as usize) {
            Some(&t) if self.last < 0x80 => t,
            _ => is_unicode_space(self.last),
        } {
            self.advance_while_table(&BLANK);
        }
        self.bytes();
    }

    /// The next token. `func_body` obfuscates `$func$` bodies when `dollar_quoted_func` is on.
    pub(crate) fn scan(&mut self, func_body: FuncBodyObfuscator<'_>) -> (Kind, Buf) {
        if self.last == 0 {
            let first = self.off == 0;
            self.advance();
            if first && self.last != END_CHAR {
                // the agent's first read does not count (see `advance`)
                self.pos = 0;
                self.nul_first = self.last == 0;
            }
        }
        self.skip_blank();
        let c = self.last;
        if is_leading_letter(c) && !(self.dbms == LegacyDbms::Postgres && c == ch(b'@')) {
            return self.scan_identifier();
        }
        if is_digit(c) {
            return self.scan_number(false);
        }
        self.advance();
        if c == 0 && self.nul_first {
            // the read after a first NUL does not count either (see `advance`)
            self.nul_first = false;
            if self.last != END_CHAR {
                self.pos = 0;
            }
        }
        if self.last == END_CHAR && self.err.is_some() {
            return (LEX_ERROR, Buf::Static(b""));
        }
        let postgres = self.dbms == LegacyDbms::Postgres;
        let mssql = self.dbms == LegacyDbms::SqlServer;
        match c {
            END_CHAR => {
                if self.err.is_some() {
                    (LEX_ERROR, Buf::Static(b""))
                } else {
                    (END_CHAR, Buf::Static(b""))
                }
            }
            0x3A /* : */ => {
                if self.last == ch(b':') {
                    self.advance();
                    return (COLON_CAST, Buf::Static(b"::"));
                }
                if is_unicode_space(self.last) {
                    return (c, self.bytes());
                }
                if self.last == ch(b']') || self.last == ch(b'$') {
                    return (c, self.bytes());
                }
                if self.last != ch(b'=') {
                    return self.scan_bind_var();
                }
                // ":=" : the ':' alone (the agent's fallthrough into the '~' case)
                (c, self.bytes())
            }
            0x7E /* ~ */ => {
                if self.last == ch(b'*') {
                    self.advance();
                    return (c, Buf::Static(b"~*"));
                }
                (c, self.bytes())
            }
            0x3F /* ? */ if postgres => match self.last {
                0x7C => {
                    self.advance();
                    (JSON_ANY_KEYS_EXIST, Buf::Static(b"?|"))
                }
                0x26 => {
                    self.advance();
                    (JSON_ALL_KEYS_EXIST, Buf::Static(b"?&"))
                }
                _ => (JSON_KEY_EXISTS, self.bytes()),
            },
            0x3F | 0x3D | 0x2C | 0x3B | 0x28 | 0x29 | 0x2B | 0x2A | 0x26 | 0x7C | 0x5E | 0x5D => {
                (c, self.bytes())
            }
            0x5B /* [ */ => {
                if mssql {
                    return self.scan_string(ch(b']'), DOUBLE_QUOTED_STRING);
                }
                (c, self.bytes())
            }
            0x2E /* . */ => {
                if is_digit(self.last) {
                    return self.scan_number(true);
                }
                (c, self.bytes())
            }
            0x2F /* / */ => match self.last {
                0x2F => {
                    self.advance();
                    self.scan_comment_line()
                }
                0x2A => {
                    self.advance();
                    self.scan_comment_block()
                }
                _ => (c, self.bytes()),
            },
            0x2D /* - */ => {
                if self.last == ch(b'-') {
                    self.advance();
                    return self.scan_comment_line();
                }
                if self.last == ch(b'>') {
                    if postgres {
                        self.advance();
                        if self.last == ch(b'>') {
                            self.advance();
                            return (JSON_SELECT_TEXT, Buf::Static(b"->>"));
                        }
                        return (JSON_SELECT, Buf::Static(b"->"));
                    }
                    // the agent falls through into its "digit follows" case
                    return self.scan_number(false);
                }
                if is_digit(self.last) {
                    return self.scan_number(false);
                }
                if self.last == ch(b'.') {
                    self.advance();
                    if is_digit(self.last) {
                        return self.scan_number(true);
                    }
                    // The agent rewinds its current character to '.' without rewinding its
                    // read offset; reproduced as is.
                    self.last = ch(b'.');
                    self.pos = self.pos.saturating_sub(1);
                }
                (c, self.bytes())
            }
            0x23 /* # */ => match self.dbms {
                LegacyDbms::SqlServer => self.scan_identifier(),
                LegacyDbms::Postgres => match self.last {
                    0x3E => {
                        self.advance();
                        if self.last == ch(b'>') {
                            self.advance();
                            return (JSON_SELECT_PATH_TEXT, Buf::Static(b"#>>"));
                        }
                        (JSON_SELECT_PATH, Buf::Static(b"#>"))
                    }
                    0x2D => {
                        self.advance();
                        (JSON_DELETE, Buf::Static(b"#-"))
                    }
                    _ => (c, self.bytes()),
                },
                LegacyDbms::Other => {
                    self.advance();
                    self.scan_comment_line()
                }
            },
            0x3C /* < */ => match self.last {
                0x3E => {
                    self.advance();
                    (NE, Buf::Static(b"<>"))
                }
                0x3D => {
                    self.advance();
                    if self.last == ch(b'>') {
                        self.advance();
                        return (NULL_SAFE_EQUAL, Buf::Static(b"<=>"));
                    }
                    (LE, Buf::Static(b"<="))
                }
                0x40 if postgres => {
                    self.advance();
                    (JSON_CONTAINS_LEFT, Buf::Static(b"<@"))
                }
                _ => (c, self.bytes()),
            },
            0x3E /* > */ => {
                if self.last == ch(b'=') {
                    self.advance();
                    return (GE, Buf::Static(b">="));
                }
                (c, self.bytes())
            }
            0x21 /* ! */ => match self.last {
                0x3D => {
                    self.advance();
                    (NE, Buf::Static(b"!="))
                }
                0x7E => {
                    self.advance();
                    if self.last == ch(b'*') {
                        self.advance();
                        return (NE, Buf::Static(b"!~*"));
                    }
                    (NE, Buf::Static(b"!~"))
                }
                l => {
                    if is_valid_char_after_operator(l) {
                        return (NOT, self.bytes());
                    }
                    self.set_err(format!(
                        "unexpected char \"{}\" ({l}) after \"!\"",
                        display_char(l)
                    ));
                    (LEX_ERROR, self.bytes())
                }
            },
            0x27 => self.scan_string(c, STRING),
            0x22 => self.scan_string(c, DOUBLE_QUOTED_STRING),
            0x60 => self.scan_string(c, ID),
            0x25 /* % */ => {
                if self.last == ch(b'(') {
                    return self.scan_variable_identifier();
                }
                if is_letter(self.last) {
                    self.advance();
                    return (VARIABLE, self.bytes());
                }
                (c, self.bytes())
            }
            0x24 /* $ */ => {
                if is_digit(self.last) || self.last == ch(b'?') {
                    return self.scan_prepared_statement();
                }
                if mssql && is_letter(self.last) {
                    return self.scan_identifier();
                }
                let (kind, tok) = self.scan_dollar_quoted_string();
                if kind == DOLLAR_QUOTED_FUNC {
                    let body = self.resolve(&tok).to_vec();
                    return match func_body(&body, self.literal_escapes) {
                        Some(obf) => {
                            self.func.clear();
                            self.func.extend_from_slice(b"$func$");
                            self.func.extend_from_slice(&obf);
                            self.func.extend_from_slice(b"$func$");
                            (DOLLAR_QUOTED_FUNC, Buf::Func)
                        }
                        None => (DOLLAR_QUOTED_STRING, tok),
                    };
                }
                (kind, tok)
            }
            0x40 /* @ (postgres only: elsewhere it starts an identifier) */ if postgres => {
                if self.last == ch(b'>') {
                    self.advance();
                    return (JSON_CONTAINS, Buf::Static(b"@>"));
                }
                (c, self.bytes())
            }
            0x40 | 0x7B /* { */ => {
                if self.pos == 1 || self.curlys > 0 {
                    // top-level JDBC escape like {call proc(?)}: keep its shape
                    self.curlys += 1;
                    return (c, self.bytes());
                }
                self.scan_escape_sequence()
            }
            0x7D /* } */ => {
                if self.curlys == 0 {
                    self.set_err(format!("unexpected byte {c}"));
                    return (LEX_ERROR, self.bytes());
                }
                self.curlys -= 1;
                (c, self.bytes())
            }
            _ => {
                self.set_err(format!("unexpected byte {c}"));
                (LEX_ERROR, self.bytes())
            }
        }
    }

    fn scan_identifier(&mut self) -> (Kind, Buf) {
        let ascii_start = self.last < 0x80;
        self.non_ascii = false;
        self.advance();
        while is_ident_cont(self.last) {
            self.advance_while_table(&IDENT_CONT);
        }
        let t = self.bytes();
        let kind = match &t {
            Buf::Input(s, e) => {
                let ident = &self.src[*s..*e];
                if ascii_start && !self.non_ascii {
                    keyword_ascii(ident)
                } else {
                    keyword(ident)
                }
            }
            _ => None,
        };
        (kind.unwrap_or(ID), t)
    }

    fn scan_variable_identifier(&mut self) -> (Kind, Buf) {
        self.advance();
        while self.last != ch(b')') && self.last != END_CHAR {
            self.advance();
        }
        self.advance();
        if !is_letter(self.last) {
            let l = self.last;
            self.set_err(format!(
                "invalid character after variable identifier: \"{}\" ({l})",
                display_char(l)
            ));
            return (LEX_ERROR, self.bytes());
        }
        self.advance();
        (VARIABLE, self.bytes())
    }

    fn scan_dollar_quoted_string(&mut self) -> (Kind, Buf) {
        let (kind, _) = self.scan_string(ch(b'$'), STRING);
        if kind == LEX_ERROR {
            return (kind, self.bytes());
        }
        let mut delim: Vec<u8> = Vec::with_capacity(self.scratch.len() + 2);
        if self.scratch.as_slice() == b"$$" {
            delim.extend_from_slice(b"$$");
        } else {
            delim.push(b'$');
            delim.extend_from_slice(&self.scratch);
            delim.push(b'$');
        }
        self.scratch.clear();
        let mut got = 0usize;
        loop {
            let c = self.last;
            self.advance();
            if c == END_CHAR {
                self.set_err("unexpected EOF in dollar-quoted string".to_owned());
                return (LEX_ERROR, Buf::Scratch);
            }
            // the agent compares the low byte of the character with the delimiter byte
            if (c & 0xFF) as u8 == delim[got] {
                got += 1;
                if got == delim.len() {
                    break;
                }
                continue;
            }
            if got > 0 {
                self.scratch.extend_from_slice(&delim[..got]);
                got = 0;
            }
            push_rune(&mut self.scratch, c);
        }
        if self.dollar_quoted_func && delim.as_slice() == b"$func$" {
            return (DOLLAR_QUOTED_FUNC, Buf::Scratch);
        }
        (DOLLAR_QUOTED_STRING, Buf::Scratch)
    }

    fn scan_prepared_statement(&mut self) -> (Kind, Buf) {
        if !is_digit(self.last) && self.last != ch(b'?') {
            let l = self.last;
            self.set_err(format!(
                "prepared statements must start with digits, got \"{}\" ({l})",
                display_char(l)
            ));
            return (LEX_ERROR, self.bytes());
        }
        if self.last == ch(b'?') {
            self.advance();
            return (PREPARED_STATEMENT, self.bytes());
        }
        let (kind, buf) = self.scan_number(false);
        if kind == LEX_ERROR {
            self.set_err("invalid number".to_owned());
            return (LEX_ERROR, self.bytes());
        }
        (PREPARED_STATEMENT, buf)
    }

    fn scan_escape_sequence(&mut self) -> (Kind, Buf) {
        while self.last != ch(b'}') && self.last != END_CHAR {
            self.advance();
        }
        if self.last == END_CHAR {
            self.set_err("unexpected EOF in escape sequence".to_owned());
            return (LEX_ERROR, self.bytes());
        }
        self.advance();
        (ESCAPE_SEQUENCE, self.bytes())
    }

    fn scan_bind_var(&mut self) -> (Kind, Buf) {
        let mut kind = VALUE_ARG;
        if self.last == ch(b':') {
            kind = LIST_ARG;
            self.advance();
        }
        if !is_letter(self.last) && !is_digit(self.last) {
            let l = self.last;
            self.set_err(format!(
                "bind variables should start with letters or digits, got \"{}\" ({l})",
                display_char(l)
            ));
            return (LEX_ERROR, self.bytes());
        }
        while is_letter(self.last) || is_digit(self.last) || self.last == ch(b'.') {
            self.advance();
        }
        (kind, self.bytes())
    }

    fn scan_mantissa(&mut self, base: u32) {
        while digit_val(self.last) < base {
            if base == 10 {
                self.advance_while_table(&DIGIT);
            } else {
                self.advance();
            }
        }
    }

    fn scan_number(&mut self, seen_decimal_point: bool) -> (Kind, Buf) {
        #[derive(PartialEq)]
        enum Step {
            Mantissa,
            Fraction,
            Exponent,
            Exit,
        }
        let mut step = Step::Mantissa;
        if seen_decimal_point {
            self.scan_mantissa(10);
            step = Step::Exponent;
        } else if self.last == ch(b'0') {
            self.advance();
            if self.last == ch(b'x') || self.last == ch(b'X') {
                self.advance();
                self.scan_mantissa(16);
                step = Step::Exit;
            } else {
                self.scan_mantissa(8);
                if self.last == ch(b'8') || self.last == ch(b'9') {
                    self.scan_mantissa(10);
                }
                step = if matches!(self.last, 0x2E | 0x65 | 0x45) {
                    Step::Fraction
                } else {
                    Step::Exit
                };
            }
        }
        if step == Step::Mantissa {
            self.scan_mantissa(10);
            step = Step::Fraction;
        }
        if step == Step::Fraction {
            if self.last == ch(b'.') {
                self.advance();
                self.scan_mantissa(10);
            }
            step = Step::Exponent;
        }
        if step == Step::Exponent && (self.last == ch(b'e') || self.last == ch(b'E')) {
            self.advance();
            if self.last == ch(b'+') || self.last == ch(b'-') {
                self.advance();
            }
            self.scan_mantissa(10);
        }
        let t = self.bytes();
        if let Buf::Input(s, e) = t {
            if s == e {
                self.set_err("Parse error: ended up with zero-length number.".to_owned());
                return (LEX_ERROR, Buf::Static(b""));
            }
        }
        (NUMBER, t)
    }

    fn scan_string(&mut self, delim: u32, kind: Kind) -> (Kind, Buf) {
        if delim != ch(b'$') && self.last < 0x80 && self.last != 0 {
            // Fast path: plain ASCII contents (no backslash, no NUL) closed by a delimiter that
            // is not doubled are a slice of the query: no copy into the scratch buffer (and no
            // allocation of it). The state at the end is the loop's below: advanced over the
            // contents and the delimiter, then once more. (`$` strings need their tag in the
            // scratch buffer.)
            let d = delim as u8;
            let bytes = self.src;
            let from = self.off - 1; // where `self.last` is
            let mut j = from;
            // stop at the delimiter, a backslash, a NUL or a non-ASCII byte (one table test)
            let stop = STRING_STOP_ALL | string_stop_bit(d);
            while j < bytes.len() && STRING_STOP[usize::from(bytes[j])] & stop == 0 {
                j += 1;
            }
            if j < bytes.len() && bytes[j] == d && bytes.get(j + 1) != Some(&d) {
                self.pos += j + 1 - self.off;
                self.off = j + 1;
                self.last = delim;
                self.advance();
                let contents = &bytes[from..j];
                if contents.iter().all(|&b| BLANK[usize::from(b)]) {
                    // empty or blank: keep the delimiters so the result stays valid SQL
                    self.scratch.clear();
                    self.scratch.push(d);
                    self.scratch.push(d);
                    return (kind, Buf::Scratch);
                }
                return (kind, Buf::Input(from, j));
            }
        }
        self.scratch.clear();
        loop {
            let mut c = self.last;
            if c < 0x80 && c != 0 && c != delim && c != ch(b'\\') {
                // a run of plain ASCII characters, copied at once (same state as one by one)
                let bytes = self.src;
                let from = self.off;
                let mut j = from;
                while j < bytes.len()
                    && bytes[j] < 0x80
                    && bytes[j] != 0
                    && u32::from(bytes[j]) != delim
                    && bytes[j] != b'\\'
                {
                    j += 1;
                }
                self.scratch.push(c as u8);
                self.scratch.extend_from_slice(&bytes[from..j]);
                if j > from {
                    self.pos += j - from;
                    self.off = j;
                    self.last = u32::from(bytes[j - 1]);
                }
                self.advance();
                continue;
            }
            self.advance();
            if c == delim {
                if self.last == delim {
                    // a doubled delimiter stands for itself
                    self.advance();
                } else {
                    break;
                }
            } else if c == ch(b'\\') {
                self.seen_escape = true;
                if !self.literal_escapes {
                    c = self.last;
                    self.advance();
                }
            }
            if c == END_CHAR {
                self.set_err("unexpected EOF in string".to_owned());
                return (LEX_ERROR, Buf::Scratch);
            }
            push_rune(&mut self.scratch, c);
        }
        let blank = {
            let s = &self.scratch;
            let mut i = 0;
            let mut all_space = true;
            while i < s.len() {
                let (c, n) = decode(s, i);
                if !is_unicode_space(c) {
                    all_space = false;
                    break;
                }
                i += n;
            }
            all_space
        };
        if blank {
            // empty or blank: keep the delimiters so the result stays valid SQL
            self.scratch.clear();
            push_rune(&mut self.scratch, delim);
            push_rune(&mut self.scratch, delim);
        }
        (kind, Buf::Scratch)
    }

    fn scan_comment_line(&mut self) -> (Kind, Buf) {
        while self.last != END_CHAR {
            if self.last == ch(b'\n') {
                self.advance();
                break;
            }
            self.advance_while_ascii(|b| b != b'\n');
        }
        (COMMENT, self.bytes())
    }

    fn scan_comment_block(&mut self) -> (Kind, Buf) {
        loop {
            if self.last == ch(b'*') {
                self.advance();
                if self.last == ch(b'/') {
                    self.advance();
                    break;
                }
                continue;
            }
            if self.last == END_CHAR {
                self.set_err("unexpected EOF in comment".to_owned());
                return (LEX_ERROR, self.bytes());
            }
            self.advance_while_ascii(|b| b != b'*');
        }
        (COMMENT, self.bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kind of the first token of `q`.
    fn first_kind(q: &str) -> Kind {
        let mut t = Tokenizer::new(q.as_bytes(), false, LegacyDbms::Other, false);
        t.scan(&|_, _| None).0
    }

    #[test]
    fn keywords_ascii_unicode_and_ascii_followed_by_non_ascii() {
        assert_eq!(first_kind("select 1"), SELECT);
        assert_eq!(first_kind("SavePoint x"), SAVEPOINT);
        // an all-ASCII name ended by a non-ASCII character (no-break space, ideographic space)
        // is read with a non-ASCII character: it goes through `keyword`
        assert_eq!(first_kind("select\u{a0}1"), SELECT);
        assert_eq!(first_kind("savepoint\u{3000}x"), SAVEPOINT);
        assert_eq!(first_kind("from\u{a0}t"), FROM);
        assert_eq!(first_kind("selects\u{a0}1"), ID);
        assert_eq!(first_kind("a_b\u{a0}1"), ID);
        // Go's upper-casing: dotless i and long s
        assert_eq!(first_kind("\u{131}nto t"), INTO);
        assert_eq!(first_kind("\u{17f}elect 1"), SELECT);
        assert_eq!(first_kind("lim\u{131}t 1"), LIMIT);
        assert_eq!(first_kind("savepo\u{131}nt x"), SAVEPOINT);
        assert_eq!(first_kind("s\u{e9}lect 1"), ID);
        assert_eq!(
            first_kind("\u{17f}\u{17f}\u{17f}\u{17f}\u{17f}\u{17f}\u{17f}\u{17f}\u{17f}\u{17f}"),
            ID
        );
        for k in [b"null".as_slice(), b"TRUE", b"truncate", b"Join", b"as"] {
            assert_eq!(keyword(k), keyword_ascii(k), "{k:?}");
            assert!(keyword(k).is_some(), "{k:?}");
        }
        assert_eq!(keyword(b"x_y"), None);
        assert_eq!(keyword(b"savepoints"), None);
    }
}
