//! Redis (and Valkey) commands: resource quantization, argument obfuscation and the
//! remove-all-arguments mode, with the agent's exact results (`pkg/obfuscate/redis.go` and its
//! tokenizer are the reference).
//!
//! Everything works on slices of the input: tokens are never copied, and a command that needs no
//! change comes back `Cow::Borrowed`. Time is linear in the input; unterminated quotes simply run
//! to the end of the input.

use std::borrow::Cow;

/// Suffix tracers append to a command they truncated.
const TRUNCATION_MARK: &str = "...";
/// At most this many commands appear in a quantized resource.
const MAX_COMMANDS: usize = 3;
/// Commands made of two words.
const COMPOUND_COMMANDS: [&str; 6] = ["CLIENT", "CLUSTER", "COMMAND", "CONFIG", "DEBUG", "SCRIPT"];

/// Upper-cases like Go's `strings.ToUpper` (simple, one-to-one case mapping: `ß` stays `ß`).
fn go_upper(s: &str) -> Cow<'_, str> {
    if s.bytes().all(|b| !b.is_ascii_lowercase() && b < 0x80) {
        return Cow::Borrowed(s);
    }
    if s.is_ascii() {
        return Cow::Owned(s.to_ascii_uppercase());
    }
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let mut up = c.to_uppercase();
        match (up.next(), up.next()) {
            (Some(u), None) => out.push(u),
            _ => out.push(c),
        }
    }
    Cow::Owned(out)
}

fn eq_upper(s: &str, upper: &str) -> bool {
    s.eq_ignore_ascii_case(upper) && (s.is_ascii() || go_upper(s) == upper)
}

/// Collapses runs of spaces (only ' ') into one and trims spaces at both ends.
fn compact_spaces(t: &str) -> Cow<'_, str> {
    let t = t.trim_matches(' ');
    if !t.contains("  ") {
        return Cow::Borrowed(t);
    }
    let mut out = String::with_capacity(t.len());
    let mut prev_space = false;
    for c in t.chars() {
        if c == ' ' {
            if !prev_space {
                out.push(' ');
            }
            prev_space = true;
        } else {
            out.push(c);
            prev_space = false;
        }
    }
    Cow::Owned(out)
}

/// Quantizes a Redis query into a resource: the upper-cased command names (two words for
/// `CLIENT`, `CLUSTER`, `COMMAND`, `CONFIG`, `DEBUG`, `SCRIPT`) of at most three commands, one
/// per line, then ` ...` when more followed or the input was truncated (`...`).
pub fn quantize_redis(query: &str) -> Cow<'_, str> {
    // Fast path: one already upper-case word (the usual resource, e.g. "GET").
    let trimmed = query.trim_matches(' ');
    if !trimmed.is_empty()
        && trimmed
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        && !COMPOUND_COMMANDS.contains(&trimmed)
    {
        return Cow::Borrowed(trimmed);
    }
    let compact = compact_spaces(query);
    let mut rest: &str = &compact;
    let mut out = String::new();
    let mut truncated = false;
    let mut n = 0;
    while !rest.is_empty() && n < MAX_COMMANDS {
        let line = match rest.find('\n') {
            Some(i) => {
                let l = &rest[..i];
                rest = &rest[i + 1..];
                l
            }
            None => std::mem::take(&mut rest),
        };
        let line = line.trim_matches(' ');
        if line.is_empty() {
            continue;
        }
        let mut args = line.splitn(3, ' ');
        let first = args.next().unwrap_or_default();
        if first.ends_with(TRUNCATION_MARK) {
            truncated = true;
            continue;
        }
        let cmd = go_upper(first);
        let second = args.next();
        let compound = COMPOUND_COMMANDS.contains(&cmd.as_ref());
        if compound {
            if let Some(second) = second {
                if second.ends_with(TRUNCATION_MARK) {
                    truncated = true;
                    continue;
                }
                out.push(' ');
                out.push_str(&cmd);
                out.push(' ');
                out.push_str(&go_upper(second));
                n += 1;
                truncated = false;
                continue;
            }
        }
        out.push(' ');
        out.push_str(&cmd);
        n += 1;
        truncated = false;
    }
    if n == MAX_COMMANDS || truncated {
        out.push_str(" ...");
    }
    let res = out.trim_matches(' ');
    if res == query {
        Cow::Borrowed(query)
    } else {
        Cow::Owned(res.to_owned())
    }
}

/// Token kinds of the Redis tokenizer.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Command,
    Argument,
}

/// The agent's Redis tokenizer: commands one per line, arguments separated by spaces, double
/// quotes group spaces and newlines, a backslash escapes the next character. Tokens are byte
/// ranges of the (trimmed) input.
struct Tokenizer<'a> {
    data: &'a [u8],
    off: usize, // index of `ch` + 1 (0 = before the first byte)
    ch: u8,
    done: bool,
    state: Kind,
}

impl<'a> Tokenizer<'a> {
    fn new(data: &'a str) -> Self {
        Tokenizer {
            data: data.as_bytes(),
            off: 0,
            ch: 0,
            done: false,
            state: Kind::Command,
        }
    }

    fn next(&mut self) {
        // Mirrors the reference: the position always advances, `done` once past the end.
        self.off += 1;
        if self.off <= self.data.len() {
            self.ch = self.data[self.off - 1];
        } else {
            self.done = true;
        }
    }

    fn unread(&mut self) {
        // `ch` is at off - 1; step back one byte if there is one before it.
        if self.off < 2 {
            return;
        }
        self.off -= 1;
        if let Some(&c) = self.data.get(self.off - 1) {
            self.ch = c;
        }
    }

    fn skip_space(&mut self) {
        while !self.done && (self.ch == b' ' || self.ch == b'\t' || self.ch == b'\r') {
            self.next();
        }
        if self.ch == b'\n' {
            self.state = Kind::Command;
        } else {
            self.unread();
        }
    }

    /// The next token: (start, end, kind, last).
    fn scan(&mut self) -> (usize, usize, Kind, bool) {
        match self.state {
            Kind::Command => self.scan_command(),
            Kind::Argument => self.scan_arg(),
        }
    }

    fn scan_command(&mut self) -> (usize, usize, Kind, bool) {
        let mut start: Option<usize> = None;
        let mut end = self.off;
        let mut started = false;
        loop {
            self.next();
            if self.done {
                let s = start.unwrap_or(end);
                return (s, end.max(s), Kind::Command, true);
            }
            match self.ch {
                b' ' => {
                    if started {
                        self.state = Kind::Argument;
                        self.skip_space();
                        let s = start.unwrap_or(end);
                        return (s, end.max(s), Kind::Command, self.done);
                    }
                    self.skip_space();
                }
                b'\n' => {
                    let s = start.unwrap_or(end);
                    return (s, end.max(s), Kind::Command, self.done);
                }
                _ => {
                    let pos = self.off - 1;
                    if start.is_none() {
                        start = Some(pos);
                    }
                    end = pos + 1;
                }
            }
            started = true;
        }
    }

    fn scan_arg(&mut self) -> (usize, usize, Kind, bool) {
        let mut start: Option<usize> = None;
        let mut end = self.off;
        let mut quoted = false;
        let mut escape = false;
        loop {
            self.next();
            let s = start.unwrap_or(end);
            if self.done {
                return (s, end.max(s), Kind::Argument, true);
            }
            match self.ch {
                b'\n' if !quoted => {
                    self.state = Kind::Command;
                    return (s, end.max(s), Kind::Argument, self.done);
                }
                b' ' if !quoted => {
                    self.skip_space();
                    return (s, end.max(s), Kind::Argument, self.done);
                }
                _ => {}
            }
            // Every other byte belongs to the token (quotes and backslashes included).
            let pos = self.off - 1;
            start.get_or_insert(pos);
            end = pos + 1;
            match self.ch {
                b'\\' if !escape => {
                    escape = true;
                    continue;
                }
                b'"' if !escape => quoted = !quoted,
                _ => {}
            }
            escape = false;
        }
    }
}

/// Obfuscates a Redis command (or several, one per line): the values of commands known to carry
/// data (`SET key ?`, `HSET key field ?`, `AUTH ?`, ...) become `?`; keys, unknown commands and
/// their arguments are kept. Whitespace between tokens is normalized to one space and commands
/// to one per line.
pub fn obfuscate_redis(cmd: &str) -> Cow<'_, str> {
    let data = cmd.trim();
    let mut t = Tokenizer::new(data);
    let mut out = String::with_capacity(data.len());
    let mut command: &str = "";
    let mut args: Vec<&str> = Vec::new();
    loop {
        let (s, e, kind, done) = t.scan();
        let tok = data.get(s..e).unwrap_or_default();
        match kind {
            Kind::Command => {
                if !command.is_empty() {
                    write_command(&mut out, command, &mut args);
                    out.push('\n');
                }
                command = tok;
                args.clear();
            }
            Kind::Argument => args.push(tok),
        }
        if done {
            write_command(&mut out, command, &mut args);
            break;
        }
    }
    if out == cmd {
        Cow::Borrowed(cmd)
    } else {
        Cow::Owned(out)
    }
}

/// Replaces with `?` the argument at `n`, if present.
fn arg_n(args: &mut [&str], n: usize) {
    if let Some(a) = args.get_mut(n) {
        *a = "?";
    }
}

/// Replaces with `?` every `step`-th argument from `start + step - 1`.
fn args_step(args: &mut [&str], start: usize, step: usize) {
    let mut i = start + step - 1;
    while i < args.len() {
        args[i] = "?";
        i += step;
    }
}

fn write_command(out: &mut String, cmd: &str, args: &mut Vec<&str>) {
    out.push_str(cmd);
    if args.is_empty() {
        return;
    }
    out.push(' ');
    let upper = go_upper(cmd);
    match upper.as_ref() {
        "AUTH" => {
            args.truncate(1);
            args[0] = "?";
        }
        "APPEND" | "GETSET" | "LPUSHX" | "GEORADIUSBYMEMBER" | "RPUSHX" | "SET" | "SETNX"
        | "SISMEMBER" | "ZRANK" | "ZREVRANK" | "ZSCORE" => arg_n(args, 1),
        "HSETNX" | "LREM" | "LSET" | "SETBIT" | "SETEX" | "PSETEX" | "SETRANGE" | "ZINCRBY"
        | "SMOVE" | "RESTORE" => arg_n(args, 2),
        "LINSERT" => arg_n(args, 3),
        "GEOHASH" | "GEOPOS" | "GEODIST" | "LPUSH" | "RPUSH" | "SREM" | "ZREM" | "SADD"
            if args.len() > 1 =>
        {
            args.truncate(2);
            args[1] = "?";
        }
        "GEOADD" => args_step(args, 1, 3),
        "HMSET" | "HSET" => args_step(args, 1, 2),
        "MSET" | "MSETNX" => args_step(args, 0, 2),
        "CONFIG" if eq_upper(args[0], "SET") => arg_n(args, 2),
        "BITFIELD" => {
            // The value of the last `SET` seen, 3 arguments after it (the reference's quirk:
            // a `SET` in first position is never counted).
            let mut n = 0;
            for (i, a) in args.iter_mut().enumerate() {
                if eq_upper(a, "SET") {
                    n = i;
                }
                if n > 0 && i - n == 3 {
                    *a = "?";
                    break;
                }
            }
        }
        "ZADD" => {
            let mut i = 0;
            for (j, a) in args.iter().enumerate() {
                i = j;
                if j == 0 {
                    continue;
                }
                if !matches!(*a, "NX" | "XX" | "CH" | "INCR") {
                    break;
                }
            }
            args_step(args, i, 2);
        }
        _ => {}
    }
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(a);
    }
}

/// Keeps only the command (and for `CONFIG GET|SET|RESETSTAT|REWRITE` the sub-command, for
/// `BITFIELD` the `GET`/`SET`/`INCRBY` operations) and replaces all arguments with `?`.
pub fn remove_all_redis_args(cmd: &str) -> Cow<'_, str> {
    let mut fields = cmd.split_whitespace();
    let Some(command) = fields.next() else {
        return Cow::Borrowed("");
    };
    let first_arg = fields.next();
    let Some(first_arg) = first_arg else {
        return if command == cmd {
            Cow::Borrowed(cmd)
        } else {
            Cow::Owned(command.to_owned())
        };
    };
    let mut out = String::with_capacity(command.len() + 16);
    out.push_str(command);
    out.push(' ');
    let upper = go_upper(command);
    match upper.as_ref() {
        "BITFIELD" => {
            out.push('?');
            for a in std::iter::once(first_arg).chain(fields) {
                if eq_upper(a, "SET") || eq_upper(a, "GET") || eq_upper(a, "INCRBY") {
                    out.push(' ');
                    out.push_str(a);
                    out.push_str(" ?");
                }
            }
        }
        "CONFIG" => {
            let sub = go_upper(first_arg);
            if matches!(sub.as_ref(), "GET" | "SET" | "RESETSTAT" | "REWRITE") {
                out.push_str(first_arg);
                out.push_str(" ?");
            } else {
                out.push('?');
            }
        }
        _ => out.push('?'),
    }
    if out == cmd {
        Cow::Borrowed(cmd)
    } else {
        Cow::Owned(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantize() {
        assert_eq!(quantize_redis("GET"), "GET");
        assert!(matches!(quantize_redis("GET"), Cow::Borrowed(_)));
        assert_eq!(quantize_redis("get my_key"), "GET");
        assert_eq!(quantize_redis("CLIENT"), "CLIENT");
        assert_eq!(quantize_redis("GET k1\nGET k2\nG..."), "GET GET ...");
    }

    #[test]
    fn obfuscate() {
        assert_eq!(obfuscate_redis("SET key value"), "SET key ?");
        assert_eq!(obfuscate_redis("GET key"), "GET key");
        assert!(matches!(obfuscate_redis("GET key"), Cow::Borrowed(_)));
        assert_eq!(obfuscate_redis("SET \"a b\" \"c\\\" d\""), "SET \"a b\" ?");
        assert_eq!(obfuscate_redis("SET k \"unterminated"), "SET k ?");
        assert_eq!(obfuscate_redis(""), "");
    }

    #[test]
    fn remove_all() {
        assert_eq!(remove_all_redis_args("SET key value"), "SET ?");
        assert_eq!(remove_all_redis_args("  GET  "), "GET");
    }
}
