//! The go-sqllexer based modes: `obfuscate_only` (replace literals, keep the text), `normalize_only`
//! (one space between tokens, aliases and comments dropped, value lists collapsed, metadata
//! collected) and `obfuscate_and_normalize` (both in one pass).

use super::lexer::{Dbms, Lexer, Token, T};
use super::metadata::{LexerMetadata, List};
use super::text::{push_replacing_digits, trim_space};
use super::SqlConfig;
use std::borrow::Cow;
use std::collections::HashSet;

const PLACEHOLDER: &[u8] = b"?";

/// The literal-replacing half (go-sqllexer's obfuscator options as the agent sets them).
pub(crate) struct ObfOpts {
    replace_digits: bool,
    dollar_quoted_func: bool,
    replace_positional: bool,
    replace_boolean: bool,
    replace_null: bool,
    keep_json_path: bool,
    replace_bind: bool,
}

impl ObfOpts {
    pub(crate) fn from_config(c: &SqlConfig) -> Self {
        ObfOpts {
            replace_digits: c.replace_digits,
            dollar_quoted_func: c.dollar_quoted_func,
            replace_positional: !c.keep_positional_parameter,
            replace_boolean: !c.keep_boolean,
            replace_null: !c.keep_null,
            keep_json_path: c.keep_json_path,
            replace_bind: c.replace_bind_parameter,
        }
    }
}

/// The normalizing half.
pub(crate) struct NormOpts {
    tables: bool,
    commands: bool,
    comments: bool,
    procedures: bool,
    keep_alias: bool,
    remove_space_in_parens: bool,
    keep_trailing_semicolon: bool,
    keep_quotes: bool,
}

impl NormOpts {
    pub(crate) fn from_config(c: &SqlConfig) -> Self {
        NormOpts {
            tables: c.table_names,
            commands: c.collect_commands,
            comments: c.collect_comments,
            procedures: c.collect_procedures,
            keep_alias: c.keep_sql_alias,
            remove_space_in_parens: c.remove_space_between_parentheses,
            keep_trailing_semicolon: c.keep_trailing_semicolon,
            keep_quotes: c.keep_identifier_quotation,
        }
    }

    fn collects(&self) -> bool {
        self.tables || self.commands || self.comments || self.procedures
    }
}

/// What is remembered of the previous value token (after it was rewritten).
struct LastValue<'a> {
    kind: T,
    value: Cow<'a, [u8]>,
    is_table_indicator: bool,
}

impl<'a> LastValue<'a> {
    fn of(t: &Token<'a>) -> Self {
        LastValue {
            kind: t.kind,
            value: t.value.clone(),
            is_table_indicator: t.is_table_indicator,
        }
    }
}

fn value_is(last: Option<&LastValue<'_>>, v: &[u8]) -> bool {
    last.is_some_and(|l| l.value.as_ref() == v)
}

/// Go's `strings.EqualFold` against an upper-case ASCII word.
fn eq_fold_ascii(value: &[u8], word: &str) -> bool {
    let w = word.as_bytes();
    let mut i = 0;
    let mut j = 0;
    while i < value.len() {
        if j >= w.len() {
            return false;
        }
        let (c, n) = super::text::decode(value, i);
        let ok = match c {
            0..=0x7F => (c as u8).to_ascii_uppercase() == w[j],
            0x17F => w[j] == b'S',  // long s folds with s
            0x212A => w[j] == b'K', // Kelvin sign folds with k
            _ => false,
        };
        if !ok {
            return false;
        }
        i += n;
        j += 1;
    }
    j == w.len()
}

const EXTRACT_FIELDS: &[&str] = &[
    "CENTURY",
    "DAY",
    "DECADE",
    "DOW",
    "DOY",
    "EPOCH",
    "HOUR",
    "ISODOW",
    "ISOYEAR",
    "JULIAN",
    "MICROSECONDS",
    "MILLENNIUM",
    "MILLISECONDS",
    "MINUTE",
    "MONTH",
    "QUARTER",
    "SECOND",
    "TIMEZONE",
    "TIMEZONE_HOUR",
    "TIMEZONE_MINUTE",
    "WEEK",
    "YEAR",
];

/// The field of `EXTRACT(field FROM ...)` becomes `?` (as pg_stat_statements shows it).
#[derive(Default)]
struct ExtractContext {
    prev_open_paren: bool,
    prev_extract_func: bool,
    prev2_extract_func: bool,
}

impl ExtractContext {
    fn maybe_replace(&self, t: &mut Token<'_>) {
        if (t.kind == T::Ident || t.kind == T::Keyword)
            && self.prev_open_paren
            && self.prev2_extract_func
            && EXTRACT_FIELDS.iter().any(|f| eq_fold_ascii(&t.value, f))
        {
            t.value = Cow::Borrowed(PLACEHOLDER);
        }
    }

    fn update(&mut self, t: &Token<'_>) {
        if matches!(t.kind, T::Space | T::Comment | T::MultilineComment) {
            return;
        }
        self.prev2_extract_func = self.prev_extract_func;
        self.prev_extract_func = t.kind == T::Function && eq_fold_ascii(&t.value, "EXTRACT");
        self.prev_open_paren = t.kind == T::Punctuation && t.value.as_ref() == b"(";
    }
}

fn obfuscate_value(t: &mut Token<'_>, last: Option<&LastValue<'_>>, o: &ObfOpts, dbms: Dbms) {
    let after_json_op = o.keep_json_path && last.is_some_and(|l| l.kind == T::JsonOp);
    match t.kind {
        T::Number | T::String | T::IncompleteString | T::DollarQuotedString if !after_json_op => {
            t.value = Cow::Borrowed(PLACEHOLDER);
        }
        T::DollarQuotedFunction => {
            if o.dollar_quoted_func && t.value.len() >= 12 {
                let inner = &t.value[6..t.value.len() - 6];
                let body = obfuscate(inner, o, dbms);
                let mut v = Vec::with_capacity(body.len() + 12);
                v.extend_from_slice(b"$func$");
                v.extend_from_slice(&body);
                v.extend_from_slice(b"$func$");
                t.value = Cow::Owned(v);
            } else {
                t.value = Cow::Borrowed(PLACEHOLDER);
            }
        }
        T::PositionalParameter if o.replace_positional => t.value = Cow::Borrowed(PLACEHOLDER),
        T::BindParameter if o.replace_bind => t.value = Cow::Borrowed(PLACEHOLDER),
        T::Boolean if o.replace_boolean => t.value = Cow::Borrowed(PLACEHOLDER),
        T::Null if o.replace_null => t.value = Cow::Borrowed(PLACEHOLDER),
        T::Ident | T::QuotedIdent if o.replace_digits && t.has_digits => {
            let mut v = Vec::with_capacity(t.value.len());
            push_replacing_digits(&mut v, &t.value);
            t.value = Cow::Owned(v);
        }
        _ => {}
    }
}

/// `obfuscate_only`: every token written back, literals replaced, then trimmed.
pub(crate) fn obfuscate(src: &[u8], o: &ObfOpts, dbms: Dbms) -> Vec<u8> {
    let mut out = Vec::with_capacity(src.len());
    let mut lexer = Lexer::new(src, dbms);
    let mut last: Option<LastValue<'_>> = None;
    let mut ec = ExtractContext::default();
    loop {
        let mut t = lexer.scan();
        if t.kind == T::Eof {
            break;
        }
        obfuscate_value(&mut t, last.as_ref(), o, dbms);
        ec.maybe_replace(&mut t);
        out.extend_from_slice(&t.value);
        if t.is_value() {
            last = Some(LastValue::of(&t));
        }
        ec.update(&t);
    }
    let trimmed = trim_space(&out);
    if trimmed.len() == out.len() {
        out
    } else {
        trimmed.to_vec()
    }
}

fn trim_quotes(v: &[u8]) -> Vec<u8> {
    v.iter()
        .copied()
        .filter(|b| !matches!(b, b'"' | b'[' | b']' | b'`'))
        .collect()
}

#[derive(Default)]
struct HeadState {
    read_first: bool,
    in_leading: bool,
    found_leading: bool,
    standalone: bool,
    expr: Vec<u8>,
    has_command: bool,
    depth: i64,
}

struct Normalizer<'o> {
    n: &'o NormOpts,
    groupable: bool,
    head: HeadState,
    colon_has: bool,
    colon_before: T,
    ctes: HashSet<Vec<u8>>,
    in_table_list: bool,
}

impl Normalizer<'_> {
    fn should_strip_quotes(&self, t: &Token<'_>, last: Option<&LastValue<'_>>) -> bool {
        if self.n.keep_quotes {
            return false;
        }
        if last.is_some_and(|l| l.kind == T::AliasIndicator) && !t.is_simple_identifier {
            return false;
        }
        !t.value
            .iter()
            .any(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
    }

    fn collect(&mut self, t: &mut Token<'_>, last: Option<&LastValue<'_>>, m: &mut LexerMetadata) {
        if self.n.comments && matches!(t.kind, T::Comment | T::MultilineComment) {
            m.add(List::Comments, &t.value);
        } else if t.kind == T::Command || t.kind == T::Keyword {
            self.in_table_list = false;
            if self.n.commands && t.kind == T::Command {
                m.add(List::Commands, &t.value.to_ascii_uppercase());
            }
        } else if t.kind == T::Punctuation && matches!(t.value.as_ref(), b"(" | b")") {
            self.in_table_list = false;
        } else if matches!(t.kind, T::Ident | T::QuotedIdent | T::Function) {
            let mut name: Cow<'_, [u8]> = Cow::Borrowed(t.value.as_ref());
            let mut strip = false;
            if t.kind == T::QuotedIdent {
                name = Cow::Owned(trim_quotes(&t.value));
                strip = self.should_strip_quotes(t, last);
            }
            if let Some(l) = last {
                if l.kind == T::CteIndicator {
                    self.ctes.insert(name.to_vec());
                } else if self.n.tables && l.is_table_indicator {
                    self.in_table_list = true;
                    if !self.ctes.contains(name.as_ref()) {
                        m.add(List::Tables, &name);
                    }
                } else if self.n.tables
                    && self.in_table_list
                    && l.kind == T::Punctuation
                    && l.value.as_ref() == b","
                {
                    if !self.ctes.contains(name.as_ref()) {
                        m.add(List::Tables, &name);
                    }
                } else if self.n.procedures && l.kind == T::ProcIndicator {
                    m.add(List::Procedures, &name);
                }
            }
            if strip {
                let v = name.into_owned();
                t.value = Cow::Owned(v);
                t.kind = T::Ident;
            }
        }
    }

    fn append_space(&self, t: &Token<'_>, last: Option<&LastValue<'_>>, out: &mut Vec<u8>) {
        let v = t.value.as_ref();
        if self.n.remove_space_in_parens {
            if let Some(l) = last {
                if l.kind == T::Function || matches!(l.value.as_ref(), b"(" | b"[") {
                    return;
                }
            }
            if v == b")" || v == b"]" {
                return;
            }
        }
        let ident = matches!(t.kind, T::Ident | T::QuotedIdent);
        if let Some(l) = last {
            if l.value.len() > 1 && l.value.last() == Some(&b'.') && ident {
                return;
            }
            if l.value.as_ref() == b":"
                && ident
                && self.colon_has
                && self.colon_before != T::Ident
                && self.colon_before != T::QuotedIdent
            {
                return;
            }
        }
        match v {
            b"," | b";" => {}
            b"=" if value_is(last, b":") => {}
            _ => out.push(b' '),
        }
    }

    fn groupable(
        &mut self,
        t: &Token<'_>,
        last: Option<&LastValue<'_>>,
        out: &mut Vec<u8>,
    ) -> bool {
        let v = t.value.as_ref();
        if v == PLACEHOLDER {
            let Some(l) = last else { return false };
            if matches!(l.value.as_ref(), b"(" | b"[") {
                self.groupable = true;
            } else if l.value.as_ref() == b"," && self.groupable {
                return true;
            }
        }
        if value_is(last, PLACEHOLDER) && v == b"," && self.groupable {
            return true;
        }
        if self.groupable && (v == b")" || v == b"]") {
            self.groupable = false;
            return false;
        }
        if self.groupable && v != PLACEHOLDER && value_is(last, b",") {
            out.push(b',');
            return false;
        }
        false
    }

    fn normalize_token(
        &mut self,
        t: &mut Token<'_>,
        last: Option<&LastValue<'_>>,
        out: &mut Vec<u8>,
    ) {
        if matches!(t.kind, T::Space | T::Comment | T::MultilineComment) {
            return;
        }
        if t.kind == T::QuotedIdent && !self.n.keep_quotes && self.should_strip_quotes(t, last) {
            t.value = Cow::Owned(trim_quotes(&t.value));
        }
        if !self.head.read_first {
            self.head.read_first = true;
            if t.kind == T::Punctuation && t.value.as_ref() == b"(" {
                self.head.in_leading = true;
                self.head.standalone = true;
                self.head.depth = 1;
                self.head.expr.push(b'(');
                return;
            }
        }
        if t.kind == T::Eof {
            if self.head.standalone {
                out.extend_from_slice(&self.head.expr);
            }
            return;
        } else if self.head.found_leading {
            if self.head.has_command {
                out.extend_from_slice(&self.head.expr);
            }
            self.head.standalone = false;
            self.head.found_leading = false;
        }
        if t.kind == T::DollarQuotedFunction
            && t.value.as_ref() != PLACEHOLDER
            && t.value.len() >= 12
        {
            let inner = &t.value[6..t.value.len() - 6];
            let (body, _) = normalize(inner, None, self.n, Dbms::Other);
            let mut v = Vec::with_capacity(body.len() + 12);
            v.extend_from_slice(b"$func$");
            v.extend_from_slice(&body);
            v.extend_from_slice(b"$func$");
            t.value = Cow::Owned(v);
        }
        if !self.n.keep_alias {
            if t.kind == T::AliasIndicator {
                return;
            }
            if let Some(l) = last {
                if l.kind == T::AliasIndicator {
                    if matches!(t.kind, T::Ident | T::QuotedIdent) {
                        return;
                    }
                    // "AS" not followed by a name (e.g. a CTE's AS (...)): keep it
                    self.append_space(t, last, out);
                    out.extend_from_slice(&l.value);
                }
            }
        }
        if self.groupable(t, last, out) {
            return;
        }
        if self.head.in_leading {
            let mut expr = std::mem::take(&mut self.head.expr);
            self.append_space(t, last, &mut expr);
            expr.extend_from_slice(&t.value);
            self.head.expr = expr;
            if t.kind == T::Command {
                self.head.has_command = true;
            }
            if t.kind == T::Punctuation && t.value.as_ref() == b"(" {
                self.head.depth += 1;
            } else if t.kind == T::Punctuation && t.value.as_ref() == b")" {
                self.head.depth -= 1;
                if self.head.depth == 0 {
                    self.head.in_leading = false;
                    self.head.found_leading = true;
                }
            }
        } else {
            self.append_space(t, last, out);
            out.extend_from_slice(&t.value);
        }
        if t.value.as_ref() == b":" {
            self.colon_has = true;
            self.colon_before = last.map_or(T::Eof, |l| l.kind);
        } else if self.colon_has {
            self.colon_has = false;
            self.colon_before = T::Eof;
        }
    }
}

/// `normalize_only` (with `obf == None`) or `obfuscate_and_normalize`: the normalized text and the
/// metadata.
pub(crate) fn normalize(
    src: &[u8],
    obf: Option<&ObfOpts>,
    n: &NormOpts,
    dbms: Dbms,
) -> (Vec<u8>, LexerMetadata) {
    let mut out = Vec::with_capacity(src.len());
    let mut meta = LexerMetadata::default();
    let mut lexer = Lexer::new(src, dbms);
    let mut st = Normalizer {
        n,
        groupable: false,
        head: HeadState::default(),
        colon_has: false,
        colon_before: T::Error,
        ctes: HashSet::new(),
        in_table_list: false,
    };
    let mut last: Option<LastValue<'_>> = None;
    let mut ec = ExtractContext::default();
    let collects = n.collects();
    loop {
        let mut t = lexer.scan();
        if let Some(o) = obf {
            obfuscate_value(&mut t, last.as_ref(), o, dbms);
            ec.maybe_replace(&mut t);
            ec.update(&t);
        }
        if collects {
            st.collect(&mut t, last.as_ref(), &mut meta);
        }
        st.normalize_token(&mut t, last.as_ref(), &mut out);
        if t.kind == T::Eof {
            break;
        }
        if t.is_value() {
            last = Some(LastValue::of(&t));
        }
    }
    let mut s: &[u8] = &out;
    if !n.keep_trailing_semicolon {
        if let Some(stripped) = s.strip_suffix(b";") {
            s = stripped;
        }
    }
    let s = trim_space(s);
    let res = if s.len() == out.len() {
        out
    } else {
        s.to_vec()
    };
    (res, meta)
}
