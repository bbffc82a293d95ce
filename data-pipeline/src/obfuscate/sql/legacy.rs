//! The legacy obfuscator: the tokenizer's tokens go through the agent's four filters in order
//! (metadata, discard, replace, grouping) and what survives is joined with single spaces.

use super::metadata::LegacyMetadata;
use super::text::push_replacing_digits;
use super::tokenizer::*;
use super::SqlConfig;

/// The outcome of one attempt: the query text (bytes, see `text::into_string`) and metadata.
pub(crate) struct Attempt {
    pub(crate) query: Vec<u8>,
    pub(crate) metadata: LegacyMetadata,
}

/// What a filter leaves of a token's text.
#[derive(Clone, Copy)]
enum Out {
    /// Dropped.
    Nothing,
    /// The token's own text.
    Token(Buf),
    /// The token's text with digit runs replaced by `?`.
    Digits(Buf),
    /// A `?`.
    Placeholder,
}

#[inline]
fn is_filtered_groupable(k: Kind) -> bool {
    k == FILTERED_GROUPABLE || k == FILTERED_GROUPABLE_PARENTHESIS
}

#[inline]
fn mark_filtered_groupable(k: Kind) -> Kind {
    if k == u32::from(b'(') {
        FILTERED_GROUPABLE_PARENTHESIS
    } else {
        FILTERED_GROUPABLE
    }
}

/// Kinds (above `LEX_ERROR`) that the filters may change: literals, comments, `AS` and the
/// filters' own kinds. Any other kind, in a plain state (see `attempt`), is written as it is.
const FILTERED_KINDS: u64 = {
    let ks = [
        LEX_ERROR,
        NULL,
        STRING,
        DOUBLE_QUOTED_STRING,
        DOLLAR_QUOTED_STRING,
        NUMBER,
        BOOLEAN_LITERAL,
        COMMENT,
        VARIABLE,
        PREPARED_STATEMENT,
        ESCAPE_SEQUENCE,
        AS,
        TABLE_NAME,
        FILTERED_GROUPABLE,
        FILTERED_GROUPABLE_PARENTHESIS,
        FILTERED,
        FILTERED_BRACKETED_IDENTIFIER,
    ];
    let mut m = 0u64;
    let mut i = 0;
    while i < ks.len() {
        m |= 1 << (ks[i] - LEX_ERROR);
        i += 1;
    }
    m
};

/// Whether the filters leave a token of kind `k` as it is when nothing before it matters (no
/// group open, previous token not `AS`, `SAVEPOINT` or a bracketed identifier, and no metadata
/// or digit replacement asked for): identifiers, keywords and most operators.
#[inline]
fn is_plain_kind(k: Kind) -> bool {
    if k < 0x80 {
        !matches!(k as u8, b',' | b'(' | b')' | b';' | b'?')
    } else if (LEX_ERROR..LEX_ERROR + 64).contains(&k) {
        FILTERED_KINDS & (1 << (k - LEX_ERROR)) == 0
    } else {
        false
    }
}

/// One run of the tokenizer and filters over `src`. Errors carry the agent's message.
pub(crate) fn attempt(
    src: &[u8],
    literal_escapes: bool,
    cfg: &SqlConfig,
    dbms: LegacyDbms,
) -> Result<Attempt, (String, bool)> {
    let mut tok = Tokenizer::new(src, literal_escapes, dbms, cfg.dollar_quoted_func);
    let func_body = |body: &[u8], lesc: bool| -> Option<Vec<u8>> {
        attempt(body, lesc, cfg, dbms).ok().map(|a| a.query)
    };
    let mut out: Vec<u8> = Vec::with_capacity(src.len());
    let mut meta = LegacyMetadata::default();
    let mut last: Kind = 0;
    // grouping filter state
    let mut group_filter = 0u32;
    let mut group_multi = 0u32;
    let keep_alias = cfg.keep_sql_alias;
    let plain_cfg =
        !cfg.collect_comments && !cfg.collect_commands && !cfg.table_names && !cfg.replace_digits;
    loop {
        let (mut token, buf) = tok.scan(&func_body);
        if token == END_CHAR {
            break;
        }
        if token == LEX_ERROR {
            let seen = tok.seen_escape();
            return Err((tok.take_err(), seen));
        }

        // Fast path: a token every filter below leaves as it is (what they would do, step by
        // step: no metadata, no discard, no replacement, the grouping state reset, the token
        // written after a space). Profiled: the full filter chain was ~30% of a query's
        // instructions, and most tokens are identifiers, keywords and operators.
        if plain_cfg
            && group_multi == 0
            && is_plain_kind(token)
            && last != FILTERED_BRACKETED_IDENTIFIER
            && last != AS
            && last != SAVEPOINT
        {
            let no_space = token == u32::from(b'=') && last == u32::from(b':');
            if !out.is_empty() && !no_space {
                out.push(b' ');
            }
            out.extend_from_slice(tok.resolve(&buf));
            group_filter = 0;
            last = token;
            continue;
        }

        // metadata filter
        if cfg.collect_comments && token == COMMENT {
            meta.add_comment(tok.resolve(&buf));
        }
        if cfg.collect_commands {
            if let Some(cmd) = command_name(token) {
                meta.add_command(cmd);
            }
        }
        if cfg.table_names {
            let is_table = match last {
                FROM | JOIN => {
                    let b = tok.resolve(&buf);
                    !b.is_empty() && {
                        let (c, _) = super::text::decode(b, 0);
                        super::text::is_unicode_letter(c)
                    }
                }
                UPDATE | INTO => true,
                _ => false,
            };
            if is_table {
                let b = tok.resolve(&buf);
                if cfg.replace_digits {
                    let mut v = Vec::with_capacity(b.len());
                    push_replacing_digits(&mut v, b);
                    meta.add_table(&v);
                } else {
                    meta.add_table(b);
                }
                token = TABLE_NAME;
            }
        }

        // discard filter
        let mut out_buf = Out::Token(buf);
        let mut discard_done = false;
        if last == FILTERED_BRACKETED_IDENTIFIER && token != u32::from(b']') {
            if token != ID {
                return Err((
                    format!("expected identifier in bracketed filter, got {token}"),
                    tok.seen_escape(),
                ));
            }
            token = FILTERED_BRACKETED_IDENTIFIER;
            out_buf = Out::Nothing;
            discard_done = true;
        } else if last == FILTERED_BRACKETED_IDENTIFIER || last == AS {
            if token == u32::from(b'[') {
                token = FILTERED_BRACKETED_IDENTIFIER;
                out_buf = Out::Nothing;
            } else if !keep_alias {
                token = FILTERED;
                out_buf = Out::Nothing;
            }
            discard_done = true;
        }
        if !discard_done {
            if token == COMMENT {
                token = FILTERED;
                out_buf = Out::Nothing;
            } else if token == u32::from(b';') {
                token = mark_filtered_groupable(token);
                out_buf = Out::Nothing;
            } else if token == AS && !keep_alias {
                out_buf = Out::Nothing;
            }
        }

        // replace filter
        let mut replaced = false;
        if last == SAVEPOINT || (last == u32::from(b'=') && token == DOUBLE_QUOTED_STRING) {
            token = mark_filtered_groupable(token);
            out_buf = Out::Placeholder;
            replaced = true;
        }
        if !replaced {
            match token {
                DOLLAR_QUOTED_STRING | STRING | NUMBER | NULL | VARIABLE | PREPARED_STATEMENT
                | BOOLEAN_LITERAL | ESCAPE_SEQUENCE | 0x3F => {
                    token = mark_filtered_groupable(token);
                    out_buf = Out::Placeholder;
                }
                TABLE_NAME | ID if cfg.replace_digits => {
                    if let Out::Token(b) = out_buf {
                        out_buf = Out::Digits(b);
                    }
                }
                _ => {}
            }
        }

        // grouping filter
        let mut paren_prefix = false;
        if (last == u32::from(b'(') && is_filtered_groupable(token))
            || (token == u32::from(b'(') && group_multi > 0)
        {
            group_multi += 1;
        }
        let start_of_subquery = matches!(token, SELECT | DELETE | UPDATE | ID);
        if group_multi > 0 && last == FILTERED_GROUPABLE_PARENTHESIS && start_of_subquery {
            // a nested query, not a group of values
            group_filter = 0;
            group_multi = 0;
            paren_prefix = true;
        } else if is_filtered_groupable(token) {
            group_filter += 1;
            if group_filter > 1 {
                token = mark_filtered_groupable(token);
                out_buf = Out::Nothing;
            }
        } else if (group_filter > 0 && (token == u32::from(b',') || token == u32::from(b'?')))
            || group_multi > 1
        {
            // inside a group: commas, and everything of repeated groups, go
            token = mark_filtered_groupable(token);
            out_buf = Out::Nothing;
        } else if token != u32::from(b',')
            && token != u32::from(b'(')
            && token != u32::from(b')')
            && !is_filtered_groupable(token)
        {
            group_filter = 0;
            group_multi = 0;
        }

        // write
        let has_text = paren_prefix || !matches!(out_buf, Out::Nothing);
        if has_text {
            if !out.is_empty() {
                let no_space = token == u32::from(b',')
                    || (token == u32::from(b'=') && last == u32::from(b':'));
                if !no_space {
                    out.push(b' ');
                }
            }
            if paren_prefix {
                out.extend_from_slice(b"( ");
            }
            match &out_buf {
                Out::Nothing => {}
                Out::Token(b) => out.extend_from_slice(tok.resolve(b)),
                Out::Digits(b) => push_replacing_digits(&mut out, tok.resolve(b)),
                Out::Placeholder => out.push(b'?'),
            }
        }
        last = token;
    }
    if out.is_empty() {
        return Err(("result is empty".to_owned(), tok.seen_escape()));
    }
    Ok(Attempt {
        query: out,
        metadata: meta,
    })
}
